// Package ids makes and checks Switchboard identifiers: ULIDs with a type prefix,
// such as tnt_01J9Z3K6X5YB2W1Q0V8N4M7R2T. The prefix makes an id self-describing
// in logs and rejects ids of the wrong type at the edge.
package ids

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Prefixes of every identifier type. Persisted: never rename.
const (
	Tenant         = "tnt"
	Scope          = "scp"
	ServiceAccount = "sva"
	APIKey         = "key"
	Channel        = "chn"
	Message        = "msg"
	Subscription   = "sub"
	Event          = "evt"
	Delivery       = "dlv"
	Invocation     = "inv"
	Work           = "wrk"
	Role           = "rol" // a tenant-defined role (its id is the role's name in bindings)
	AccessToken    = "tok" // an access token's id (its jti); tokens themselves are never stored
	SigningKey     = "sgk" // a platform signing key (the kid of access tokens)
	Audit          = "aud" // an audit log entry
)

// Generator makes new identifiers. Implementations are safe for concurrent use.
type Generator interface {
	// New returns prefix + "_" + a new ULID.
	New(prefix string) string
}

// ULIDs is the production Generator: monotonic ULIDs from crypto/rand, so ids
// made in the same millisecond still sort in creation order.
type ULIDs struct {
	mu      sync.Mutex
	entropy io.Reader
	now     func() time.Time
}

// NewULIDs returns a Generator using the system clock.
func NewULIDs() *ULIDs {
	return &ULIDs{entropy: ulid.Monotonic(rand.Reader, 0), now: time.Now}
}

// New implements Generator.
func (g *ULIDs) New(prefix string) string {
	g.mu.Lock()
	id := ulid.MustNew(ulid.Timestamp(g.now()), g.entropy)
	g.mu.Unlock()
	return prefix + "_" + id.String()
}

// Valid reports whether s is a well-formed id of the given prefix, in the
// canonical upper case that New makes (ids are case-sensitive store keys).
func Valid(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(rest) != ulid.EncodedSize || strings.ToUpper(rest) != rest {
		return false
	}
	_, err := ulid.ParseStrict(rest)
	return err == nil
}

// ValidULID reports whether s is a bare ULID (as clients send in X-Action-Id).
func ValidULID(s string) bool {
	_, err := ulid.ParseStrict(s)
	return len(s) == ulid.EncodedSize && err == nil
}

// Derive returns the id prefix + "_" + a ULID made from t (its time part)
// and the SHA-256 of parts (its 80 random bits): the same arguments always
// give the same id, and different parts give different ids with the odds
// of a ULID collision. It names an entity that must exist at most once per
// key (a webhook delivery per subscription and event), so that creating its
// stream at version 0 is the dedupe. Parts are joined unambiguously (each
// is length-prefixed).
func Derive(prefix string, t time.Time, parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)
	ms := max(t.UnixMilli(), 0)
	id, err := ulid.New(uint64(ms), bytes.NewReader(sum[:10]))
	if err != nil { // a time beyond ULID's range (year 10889)
		id, _ = ulid.New(ulid.MaxTime(), bytes.NewReader(sum[:10]))
	}
	return prefix + "_" + id.String()
}

// Time returns the creation time embedded in a prefixed id.
func Time(s string) (time.Time, error) {
	i := strings.IndexByte(s, '_')
	u, err := ulid.ParseStrict(s[i+1:])
	if err != nil {
		return time.Time{}, fmt.Errorf("parse id %q: %w", s, err)
	}
	return ulid.Time(u.Time()), nil
}

// Sequence is a deterministic Generator for tests: ids count up from a fixed time.
type Sequence struct {
	mu sync.Mutex
	t  time.Time
	n  uint64
}

// NewSequence returns a deterministic generator whose ids start at t.
func NewSequence(t time.Time) *Sequence { return &Sequence{t: t} }

// New implements Generator.
func (s *Sequence) New(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	var e [10]byte
	for i := 0; i < 8; i++ {
		e[9-i] = byte(s.n >> (8 * i))
	}
	id, _ := ulid.New(ulid.Timestamp(s.t), strings.NewReader(string(e[:])))
	return prefix + "_" + id.String()
}
