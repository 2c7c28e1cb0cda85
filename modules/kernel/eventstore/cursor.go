package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

// List cursors (the adapters' ListRecords). A cursor names what it was
// issued for and where its page ended: the base64url (no padding) of
//
//	version (1 byte) | tag (8 bytes) | position (the adapter's, at least 1 byte)
//
// where tag is the first 8 bytes of the SHA-256 of the tenant, the list's
// name and the partition (length-prefixed), and position is the adapter's
// key of the page's last entry. DecodeListCursor takes a cursor back only for
// the tenant, list and partition it was issued for: a cursor made up, or
// issued by another list, another partition (another filter) or another
// tenant, is ErrInvalid instead of a position taken at random. The tag is no
// secret: it does not stop a caller who knows the format from forging a
// position in a list of its own (which shows nothing that paging would not);
// it stops a cursor from being taken where it does not belong. The direction
// of the page is not part of it: a cursor continues either way.
const (
	cursorVersion = 1
	cursorTagLen  = 8
	cursorHead    = 1 + cursorTagLen
)

// cursorTag is the tag of the cursors of one partition of a tenant's list.
func cursorTag(tenantID string, l List, partition string) [cursorTagLen]byte {
	b := make([]byte, 0, 64+len(tenantID)+len(l.Name)+len(partition))
	b = append(b, "switchboard list cursor"...)
	for _, s := range []string{tenantID, l.Name, partition} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	sum := sha256.Sum256(b)
	return [cursorTagLen]byte(sum[:cursorTagLen])
}

// EncodeListCursor returns the cursor of position (not empty) in the
// partition of the tenant's list.
func EncodeListCursor(tenantID string, l List, partition string, position []byte) string {
	tag := cursorTag(tenantID, l, partition)
	b := make([]byte, 0, cursorHead+len(position))
	b = append(b, cursorVersion)
	b = append(b, tag[:]...)
	b = append(b, position...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeListCursor returns the position of a cursor EncodeListCursor issued
// for the same tenant, list and partition; any other cursor is ErrInvalid.
func DecodeListCursor(tenantID string, l List, partition, cursor string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) <= cursorHead || b[0] != cursorVersion {
		return nil, fmt.Errorf("bad cursor: %w", ErrInvalid)
	}
	if tag := cursorTag(tenantID, l, partition); !bytes.Equal(b[1:cursorHead], tag[:]) {
		return nil, fmt.Errorf("cursor of another list, partition or tenant: %w", ErrInvalid)
	}
	return b[cursorHead:], nil
}
