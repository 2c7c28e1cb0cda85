// Package kvlayout is the key layout, the commit validation and the row
// encodings the two embedded store adapters share (boltstore: buckets of one
// bbolt file; pebblestore: key prefixes of one Pebble store), so that they
// keep the same keys, the same checks and the same values.
package kvlayout

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// Layout constants. Persisted: never change.
const (
	// Sep separates a key's partition part from its sort part.
	Sep = "\x00"
	// DueLayout formats due and expiry times with a fixed width, so that
	// byte order is time order (RFC3339Nano trims trailing zeros).
	DueLayout = "2006-01-02T15:04:05.000000000Z"
	// VersionDigits is the width of an event's version in its key.
	VersionDigits = 20
)

// ListRowsBinary marks a "list-rows" value in the binary form: the keys,
// each as a uvarint length and its bytes. Values written before it are the
// JSON array of the keys (base64), 40% larger; both read.
const ListRowsBinary = 0x01

// Head is a stream head's value.
type Head struct {
	Version int64 `json:"version"`
}

// Marshal encodes v as the stores keep JSON (eventstore.MarshalJSON: no
// HTML escaping, so raw payloads keep their bytes).
func Marshal(v any) ([]byte, error) { return eventstore.MarshalJSON(v) }

// Key is a data key: partition key, Sep, sort key.
func Key(pk, sk string) []byte { return []byte(pk + Sep + sk) }

// StreamPK is the partition key of a stream's events.
func StreamPK(tenant, stream string) string { return "T#" + tenant + "#S#" + stream }

// HeadPK is the partition key of a stream's head.
func HeadPK(tenant, stream string) string { return "T#" + tenant + "#H#" + stream }

// IdemPK is the partition key of an idempotency record.
func IdemPK(tenant, k string) string { return "T#" + tenant + "#I#" + k }

// RecordPK is the partition key of a collection's rows (a tenant's, or the global ones).
func RecordPK(tenant string, global bool, collection string) string {
	if global {
		return "G#R#" + collection
	}
	return "T#" + tenant + "#R#" + collection
}

// VersionSK is the sort key of an event: its version, fixed width.
func VersionSK(v int64) string { return fmt.Sprintf("%0*d", VersionDigits, v) }

// ListPrefix is the "lists" key prefix of one partition of a list.
func ListPrefix(tenant string, l eventstore.List, partition string) []byte {
	return []byte("T#" + tenant + "#L#" + l.Name + "#" + partition + Sep)
}

// ListSK is the position of a row in a list partition: the DynamoDB
// adapter's list sort key, then NUL and the row's collection, so that rows of
// two collections with the same key and sort are entries of their own (the
// DynamoDB adapter keeps them apart as items of their own). Entries written
// before the collection was part of the key ("<sort>#<row key>") still read
// and are replaced when their row is written.
func ListSK(sort, collection, rowKey string) string {
	return sort + "#" + rowKey + Sep + collection
}

// SplitRecordKey returns the collection and key of a tenant's row from its
// "data" key.
func SplitRecordKey(tenant string, k []byte) (coll, rowKey string, ok bool) {
	pk, sk, ok := strings.Cut(string(k), Sep)
	if !ok {
		return "", "", false
	}
	coll, ok = strings.CutPrefix(pk, "T#"+tenant+"#R#")
	return coll, sk, ok
}

// ExpiryKey is the "idem-expiry" key of the idempotency record at dataKey.
func ExpiryKey(expires time.Time, dataKey []byte) []byte {
	return append([]byte(expires.UTC().Format(DueLayout)+Sep), dataKey...)
}

// OutboxKey is the outbox key of an entry: its due time, fixed width, then its id.
func OutboxKey(due time.Time, id string) []byte {
	return []byte(due.UTC().Format(DueLayout) + "#" + id)
}

// Invalid is an eventstore.ErrInvalid error with a message.
func Invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), eventstore.ErrInvalid)
}

// BadPart reports a key part that would break the layout (it holds Sep).
func BadPart(s string) bool { return strings.Contains(s, Sep) }

// IdempotencyTenant is the namespace of c's idempotency record.
func IdempotencyTenant(c *eventstore.Commit) string {
	if c.Idempotency.TenantID != "" {
		return c.Idempotency.TenantID
	}
	return c.TenantID
}

// Validate checks c before any I/O.
func Validate(c *eventstore.Commit) error {
	if c.TenantID == "" || BadPart(c.TenantID) {
		return Invalid("tenant %q", c.TenantID)
	}
	items := len(c.Records) + len(c.Outbox)
	if c.Idempotency != nil {
		items++
		if c.Idempotency.Key == "" || BadPart(c.Idempotency.Key) || BadPart(c.Idempotency.TenantID) {
			return Invalid("idempotency key %q", c.Idempotency.Key)
		}
	}
	streams := make(map[string]bool, len(c.Appends))
	for _, a := range c.Appends {
		items += 1 + len(a.Events)
		if a.StreamID == "" || BadPart(a.StreamID) {
			return Invalid("stream id %q", a.StreamID)
		}
		if streams[a.StreamID] {
			return Invalid("stream %q appended twice", a.StreamID)
		}
		streams[a.StreamID] = true
		if a.ExpectedVersion < 0 {
			return Invalid("stream %q: expected version %d", a.StreamID, a.ExpectedVersion)
		}
		if len(a.Events) == 0 {
			return Invalid("stream %q: no events", a.StreamID)
		}
		for i, e := range a.Events {
			if e.Type == "" || e.ID == "" {
				return Invalid("stream %q event %d: empty type or id", a.StreamID, i)
			}
			if len(e.Data) > eventstore.MaxItemBytes {
				return fmt.Errorf("stream %q event %d: %d bytes: %w", a.StreamID, i, len(e.Data), eventstore.ErrTooLarge)
			}
		}
	}
	rows := make(map[string]bool, len(c.Records))
	for _, r := range c.Records {
		if r.Collection == "" || r.Key == "" || BadPart(r.Collection) || strings.Contains(r.Collection, "#") {
			return Invalid("record %q/%q", r.Collection, r.Key)
		}
		if r.Delete && r.IfAbsent {
			return Invalid("record %s/%s: delete with IfAbsent", r.Collection, r.Key)
		}
		if err := eventstore.ValidateLists(r); err != nil {
			return fmt.Errorf("record %s/%s: %w", r.Collection, r.Key, err)
		}
		k := string(Key(RecordPK(c.TenantID, r.Global, r.Collection), r.Key))
		if rows[k] {
			return Invalid("record %s/%s written twice", r.Collection, r.Key)
		}
		rows[k] = true
		if len(r.Data) > eventstore.MaxItemBytes {
			return fmt.Errorf("record %s/%s: %d bytes: %w", r.Collection, r.Key, len(r.Data), eventstore.ErrTooLarge)
		}
	}
	work := make(map[string]bool, len(c.Outbox))
	for _, e := range c.Outbox {
		if e.ID == "" || e.Type == "" {
			return Invalid("outbox entry %q: empty id or type", e.ID)
		}
		if e.TenantID != "" && e.TenantID != c.TenantID {
			return Invalid("outbox entry %s of tenant %q in a commit of tenant %q", e.ID, e.TenantID, c.TenantID)
		}
		if work[e.ID] {
			return Invalid("outbox entry %s twice", e.ID)
		}
		work[e.ID] = true
		if len(e.Payload) > eventstore.MaxOutboxPayload {
			return fmt.Errorf("outbox entry %s: payload of %d bytes, more than %d: %w", e.ID, len(e.Payload), eventstore.MaxOutboxPayload, eventstore.ErrTooLarge)
		}
	}
	if items > eventstore.MaxCommitItems {
		return Invalid("%d items, at most %d", items, eventstore.MaxCommitItems)
	}
	if err := eventstore.CheckCommitBytes(c); err != nil {
		return err
	}
	return eventstore.CheckHeadRecords(c)
}

// Expired reports whether the idempotency record r has expired at now.
func Expired(r eventstore.Idempotency, now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

// EncodeListRows is the "list-rows" value of a row's list keys.
func EncodeListRows(keys [][]byte) []byte {
	n := 1
	for _, k := range keys {
		n += binary.MaxVarintLen64 + len(k)
	}
	out := make([]byte, 1, n)
	out[0] = ListRowsBinary
	for _, k := range keys {
		out = binary.AppendUvarint(out, uint64(len(k)))
		out = append(out, k...)
	}
	return out
}

// DecodeListRows reads a "list-rows" value in either form.
func DecodeListRows(v []byte) ([][]byte, error) {
	if len(v) == 0 || v[0] != ListRowsBinary {
		var keys [][]byte
		if err := json.Unmarshal(v, &keys); err != nil {
			return nil, err
		}
		return keys, nil
	}
	var keys [][]byte
	for rest := v[1:]; len(rest) > 0; {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return nil, fmt.Errorf("list entries: corrupt binary value")
		}
		keys = append(keys, bytes.Clone(rest[w:w+int(n)])) // v is only valid in its transaction
		rest = rest[w+int(n):]
	}
	return keys, nil
}

// CheckSource fails a row derived at version of a stream now at cur
// (eventstore.Record.Source) when the stream moved past it: ErrConflict.
func CheckSource(collection, key string, version, cur int64) error {
	if cur > version {
		return fmt.Errorf("record %s/%s derived at version %d of a stream at %d: %w", collection, key, version, cur, eventstore.ErrConflict)
	}
	return nil
}

// ListChanges compares a row's stored list keys (old) with its new ones
// (cur, each after the first skip bytes, an adapter's namespace prefix):
// gone are the old keys the row leaves, added the indexes into cur of the
// keys it enters. An entry the row keeps is not rewritten: its key, and so
// its value (the row's data key, part of the key), are the same. Status
// moves touch only the lists whose partition changes.
func ListChanges(old, cur [][]byte, skip int) (gone [][]byte, added []int) {
	have := make(map[string]bool, len(old))
	for _, k := range old {
		have[string(k)] = true
	}
	keep := make(map[string]bool, len(cur))
	for i, k := range cur {
		inner := string(k[skip:])
		keep[inner] = true
		if !have[inner] {
			added = append(added, i)
		}
	}
	for _, k := range old {
		if !keep[string(k)] {
			gone = append(gone, k)
		}
	}
	return gone, added
}

// EncodeOutbox is the "outbox" key and value of e (LastError truncated).
func EncodeOutbox(e eventstore.OutboxEntry) (k, v []byte, err error) {
	e.LastError = eventstore.TruncateLastError(e.LastError)
	v, err = Marshal(e)
	if err != nil {
		return nil, nil, fmt.Errorf("outbox entry %s: encode: %w", e.ID, err)
	}
	return OutboxKey(e.DueAt, e.ID), v, nil
}

// DecodeOutbox decodes the outbox value v at key k. A value that does not
// decode is logged (with its key, never its payload) and skipped, so that
// one bad entry does not stop the work path; ok is false then.
func DecodeOutbox(ctx context.Context, k, v []byte) (e eventstore.OutboxEntry, ok bool) {
	if err := json.Unmarshal(v, &e); err != nil {
		slog.Default().ErrorContext(ctx, "outbox entry does not decode; skipped", slog.String("key", string(k)), slog.Any("error", err))
		return eventstore.OutboxEntry{}, false
	}
	return e, true
}

// Page sizes of ListRecords.
const (
	DefaultListLimit = 50
	MaxListLimit     = 100
)

// ListPage checks a ListRecords query of tenantID and returns its page size
// (DefaultListLimit for <= 0, at most MaxListLimit) and the position after
// the partition prefix its cursor holds (nil without a cursor; a cursor
// issued for another tenant, list or partition is ErrInvalid).
func ListPage(tenantID string, q eventstore.ListQuery) (limit int, after []byte, err error) {
	if tenantID == "" || BadPart(tenantID) {
		return 0, nil, Invalid("tenant %q", tenantID)
	}
	if err := eventstore.ValidateList(q.List); err != nil {
		return 0, nil, err
	}
	limit = q.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	if q.Cursor != "" {
		if after, err = eventstore.DecodeListCursor(tenantID, q.List, q.Partition, q.Cursor); err != nil {
			return 0, nil, err
		}
	}
	return limit, after, nil
}

// PutRecords validates the rows of a RecordWriter.PutRecords and writes them
// through commit, at most eventstore.MaxCommitItems rows and
// eventstore.MaxCommitBytes of data per commit.
func PutRecords(tenantID string, rows []eventstore.Record, commit func(*eventstore.Commit) error) error {
	if tenantID == "" || BadPart(tenantID) {
		return fmt.Errorf("put records: %w", Invalid("tenant %q", tenantID))
	}
	for _, r := range rows {
		if err := eventstore.ValidatePut(r); err != nil {
			return fmt.Errorf("put records: %w", err)
		}
	}
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && n < eventstore.MaxCommitItems && (n == 0 || size+len(rows[n].Data) <= eventstore.MaxCommitBytes) {
			size += len(rows[n].Data)
			n++
		}
		chunk := rows[:n]
		rows = rows[n:]
		if err := commit(&eventstore.Commit{TenantID: tenantID, Records: chunk}); err != nil {
			return fmt.Errorf("put records: %w", err)
		}
	}
	return nil
}
