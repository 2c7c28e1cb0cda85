// Package boltstore is the local-mode adapter of the eventstore port: one
// bbolt file in the data directory. Every Commit is one bbolt read-write
// transaction, synced to disk before Commit returns, so a commit survives a
// kill -9 of the process.
//
// # Layout
//
// The keys mirror the DynamoDB adapter's (partition key, sort key) design,
// flattened to pk + "\x00" + sk in one bucket ("data"); the tenant id is part
// of every partition key:
//
//	T#<tenant>#S#<stream>      \x00 <version, 20 digits>  event JSON
//	T#<tenant>#H#<stream>      \x00                       stream head {"version":n}
//	T#<tenant>#R#<collection>  \x00 <key>                 record Data
//	G#R#<collection>           \x00 <key>                 global record Data
//	T#<tenant>#I#<key>         \x00                       idempotency JSON
//
// Pending outbox entries live in bucket "outbox" under
// "<dueAt UTC, fixed-width nanoseconds>#<id>" (so byte order is due order),
// with bucket "outbox-ids" mapping id -> that key, so that Ack and Reschedule
// are lookups rather than scans.
//
// Expired idempotency records read as missing (the injected clock decides) and
// are overwritten by the next commit with their key; they are not swept.
package boltstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// Bucket names. Persisted: never rename.
const (
	bucketData      = "data"
	bucketOutbox    = "outbox"
	bucketOutboxIDs = "outbox-ids"
)

// dueLayout formats outbox due times with a fixed width, so that byte order is
// time order (RFC3339Nano trims trailing zeros and does not sort).
const dueLayout = "2006-01-02T15:04:05.000000000Z"

const (
	defaultListLimit   = 50
	maxListLimit       = 100
	defaultOutboxLimit = 100
	defaultOpenTimeout = 2 * time.Second
	versionDigits      = 20
	sep                = "\x00" // between partition key and sort key
	maxReadPrealloc    = 1024
)

// Store is the bbolt adapter; it implements eventstore.Store and is safe for
// concurrent use (bbolt serializes writers).
type Store struct {
	db    *bolt.DB
	clock clock.Clock
}

var _ eventstore.Store = (*Store)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	clock       clock.Clock
	openTimeout time.Duration
}

// WithClock sets the clock that decides idempotency expiry (default clock.System).
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithOpenTimeout sets how long Open waits for the file lock (default 2 s).
func WithOpenTimeout(d time.Duration) Option { return func(o *options) { o.openTimeout = d } }

// Open opens (creating when missing) the store file at path, with mode 0600
// and its parent directories. It fails after the open timeout when another
// process holds the file.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{clock: clock.System{}, openTimeout: defaultOpenTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.openTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: locked by another process (is another switchboard running on this data dir?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{bucketData, bucketOutbox, bucketOutboxIDs} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: create buckets: %w", path, err)
	}
	return &Store{db: db, clock: o.clock}, nil
}

// Close closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// ---- keys ----

func key(pk, sk string) []byte { return []byte(pk + sep + sk) }

func streamPK(tenant, stream string) string { return "T#" + tenant + "#S#" + stream }
func headPK(tenant, stream string) string   { return "T#" + tenant + "#H#" + stream }
func idemPK(tenant, k string) string        { return "T#" + tenant + "#I#" + k }
func recordPK(tenant string, global bool, collection string) string {
	if global {
		return "G#R#" + collection
	}
	return "T#" + tenant + "#R#" + collection
}

func versionSK(v int64) string { return fmt.Sprintf("%0*d", versionDigits, v) }

func outboxKey(due time.Time, id string) []byte {
	return []byte(due.UTC().Format(dueLayout) + "#" + id)
}

// marshal encodes v as JSON without HTML escaping, so raw payloads keep their bytes.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

type head struct {
	Version int64 `json:"version"`
}

// ---- commit ----

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), eventstore.ErrInvalid)
}

func badPart(s string) bool { return strings.Contains(s, sep) }

// idempotencyTenant is the namespace of c's idempotency record.
func idempotencyTenant(c *eventstore.Commit) string {
	if c.Idempotency.TenantID != "" {
		return c.Idempotency.TenantID
	}
	return c.TenantID
}

// validate checks c before any I/O.
func validate(c *eventstore.Commit) error {
	if c.TenantID == "" || badPart(c.TenantID) {
		return invalid("tenant %q", c.TenantID)
	}
	items := len(c.Records) + len(c.Outbox)
	if c.Idempotency != nil {
		items++
		if c.Idempotency.Key == "" || badPart(c.Idempotency.Key) || badPart(c.Idempotency.TenantID) {
			return invalid("idempotency key %q", c.Idempotency.Key)
		}
	}
	streams := make(map[string]bool, len(c.Appends))
	for _, a := range c.Appends {
		items += 1 + len(a.Events)
		if a.StreamID == "" || badPart(a.StreamID) {
			return invalid("stream id %q", a.StreamID)
		}
		if streams[a.StreamID] {
			return invalid("stream %q appended twice", a.StreamID)
		}
		streams[a.StreamID] = true
		if a.ExpectedVersion < 0 {
			return invalid("stream %q: expected version %d", a.StreamID, a.ExpectedVersion)
		}
		if len(a.Events) == 0 {
			return invalid("stream %q: no events", a.StreamID)
		}
		for i, e := range a.Events {
			if e.Type == "" || e.ID == "" {
				return invalid("stream %q event %d: empty type or id", a.StreamID, i)
			}
			if len(e.Data) > eventstore.MaxItemBytes {
				return fmt.Errorf("stream %q event %d: %d bytes: %w", a.StreamID, i, len(e.Data), eventstore.ErrTooLarge)
			}
		}
	}
	rows := make(map[string]bool, len(c.Records))
	for _, r := range c.Records {
		if r.Collection == "" || r.Key == "" || badPart(r.Collection) {
			return invalid("record %q/%q", r.Collection, r.Key)
		}
		k := string(key(recordPK(c.TenantID, r.Global, r.Collection), r.Key))
		if rows[k] {
			return invalid("record %s/%s written twice", r.Collection, r.Key)
		}
		rows[k] = true
		if len(r.Data) > eventstore.MaxItemBytes {
			return fmt.Errorf("record %s/%s: %d bytes: %w", r.Collection, r.Key, len(r.Data), eventstore.ErrTooLarge)
		}
	}
	work := make(map[string]bool, len(c.Outbox))
	for _, e := range c.Outbox {
		if e.ID == "" || e.Type == "" {
			return invalid("outbox entry %q: empty id or type", e.ID)
		}
		if e.TenantID != "" && e.TenantID != c.TenantID {
			return invalid("outbox entry %s of tenant %q in a commit of tenant %q", e.ID, e.TenantID, c.TenantID)
		}
		if work[e.ID] {
			return invalid("outbox entry %s twice", e.ID)
		}
		work[e.ID] = true
		if len(e.Payload) > eventstore.MaxItemBytes {
			return fmt.Errorf("outbox entry %s: %d bytes: %w", e.ID, len(e.Payload), eventstore.ErrTooLarge)
		}
	}
	if items > eventstore.MaxCommitItems {
		return invalid("%d items, at most %d", items, eventstore.MaxCommitItems)
	}
	return nil
}

// Commit implements eventstore.Appender: one bbolt transaction that checks
// every condition (idempotency first, then stream versions, IfAbsent rows,
// outbox ids) before it writes anything. An outbox entry whose id is already
// pending fails the commit with ErrConflict.
func (s *Store) Commit(ctx context.Context, c *eventstore.Commit) error {
	if err := s.commit(ctx, c); err != nil {
		return fmt.Errorf("commit tenant %s: %w", c.TenantID, err)
	}
	return nil
}

func (s *Store) commit(ctx context.Context, c *eventstore.Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validate(c); err != nil {
		return err
	}
	if c.Empty() {
		return nil
	}
	now := s.clock.Now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		data, ob, obIDs := tx.Bucket([]byte(bucketData)), tx.Bucket([]byte(bucketOutbox)), tx.Bucket([]byte(bucketOutboxIDs))

		// Conditions.
		var idemKey []byte
		if c.Idempotency != nil {
			idemKey = key(idemPK(idempotencyTenant(c), c.Idempotency.Key), "")
			if v := data.Get(idemKey); v != nil {
				var old eventstore.Idempotency
				if err := json.Unmarshal(v, &old); err != nil {
					return fmt.Errorf("idempotency %q: decode: %w", c.Idempotency.Key, err)
				}
				if !expired(old, now) {
					return fmt.Errorf("idempotency %q: %w", c.Idempotency.Key, eventstore.ErrDuplicate)
				}
			}
		}
		for _, a := range c.Appends {
			cur, err := readHead(data, c.TenantID, a.StreamID)
			if err != nil {
				return err
			}
			if cur != a.ExpectedVersion {
				return fmt.Errorf("append %s: at version %d, expected %d: %w", a.StreamID, cur, a.ExpectedVersion, eventstore.ErrConflict)
			}
		}
		for _, r := range c.Records {
			if r.IfAbsent && !r.Delete && data.Get(key(recordPK(c.TenantID, r.Global, r.Collection), r.Key)) != nil {
				return fmt.Errorf("record %s/%s exists: %w", r.Collection, r.Key, eventstore.ErrConflict)
			}
		}
		for _, e := range c.Outbox {
			if obIDs.Get([]byte(e.ID)) != nil {
				return fmt.Errorf("outbox entry %s is pending: %w", e.ID, eventstore.ErrConflict)
			}
		}

		// Writes.
		for _, a := range c.Appends {
			for i, e := range a.Events {
				e.TenantID, e.StreamID, e.Version = c.TenantID, a.StreamID, a.ExpectedVersion+int64(i)+1
				v, err := marshal(e)
				if err != nil {
					return fmt.Errorf("append %s: encode event %s: %w", a.StreamID, e.ID, err)
				}
				if err := data.Put(key(streamPK(c.TenantID, a.StreamID), versionSK(e.Version)), v); err != nil {
					return fmt.Errorf("append %s: %w", a.StreamID, err)
				}
			}
			v, _ := marshal(head{Version: a.ExpectedVersion + int64(len(a.Events))})
			if err := data.Put(key(headPK(c.TenantID, a.StreamID), ""), v); err != nil {
				return fmt.Errorf("append %s: head: %w", a.StreamID, err)
			}
		}
		for _, r := range c.Records {
			k := key(recordPK(c.TenantID, r.Global, r.Collection), r.Key)
			var err error
			if r.Delete {
				err = data.Delete(k)
			} else {
				v := []byte(r.Data)
				if v == nil {
					v = []byte("null")
				}
				err = data.Put(k, v)
			}
			if err != nil {
				return fmt.Errorf("record %s/%s: %w", r.Collection, r.Key, err)
			}
		}
		for _, e := range c.Outbox {
			if e.TenantID == "" {
				e.TenantID = c.TenantID
			}
			if err := putOutbox(ob, obIDs, e); err != nil {
				return err
			}
		}
		if c.Idempotency != nil {
			v, err := marshal(c.Idempotency)
			if err != nil {
				return fmt.Errorf("idempotency %q: encode: %w", c.Idempotency.Key, err)
			}
			if err := data.Put(idemKey, v); err != nil {
				return fmt.Errorf("idempotency %q: %w", c.Idempotency.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range c.Appends {
		for i := range a.Events {
			e := &a.Events[i]
			e.TenantID, e.StreamID, e.Version = c.TenantID, a.StreamID, a.ExpectedVersion+int64(i)+1
		}
	}
	return nil
}

func readHead(data *bolt.Bucket, tenant, stream string) (int64, error) {
	v := data.Get(key(headPK(tenant, stream), ""))
	if v == nil {
		return 0, nil
	}
	var h head
	if err := json.Unmarshal(v, &h); err != nil {
		return 0, fmt.Errorf("append %s: decode head: %w", stream, err)
	}
	return h.Version, nil
}

func expired(r eventstore.Idempotency, now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

func putOutbox(ob, obIDs *bolt.Bucket, e eventstore.OutboxEntry) error {
	v, err := marshal(e)
	if err != nil {
		return fmt.Errorf("outbox entry %s: encode: %w", e.ID, err)
	}
	k := outboxKey(e.DueAt, e.ID)
	if err := ob.Put(k, v); err != nil {
		return fmt.Errorf("outbox entry %s: %w", e.ID, err)
	}
	if err := obIDs.Put([]byte(e.ID), k); err != nil {
		return fmt.Errorf("outbox entry %s: index: %w", e.ID, err)
	}
	return nil
}

// ---- reads ----

// ReadStream implements eventstore.StreamReader.
func (s *Store) ReadStream(ctx context.Context, tenantID, streamID string, from int64, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	from = max(from, 1)
	prefix := key(streamPK(tenantID, streamID), "")
	var out []eventstore.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		if limit > 0 {
			out = make([]eventstore.Event, 0, min(limit, maxReadPrealloc))
		}
		cur := tx.Bucket([]byte(bucketData)).Cursor()
		for k, v := cur.Seek(key(streamPK(tenantID, streamID), versionSK(from))); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var e eventstore.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %q: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	return out, nil
}

// GetRecord implements eventstore.RecordReader.
func (s *Store) GetRecord(ctx context.Context, tenantID, collection, k string) (eventstore.Record, error) {
	r, err := s.getRecord(ctx, tenantID, false, collection, k)
	if err != nil {
		return r, fmt.Errorf("get record %s/%s: %w", collection, k, err)
	}
	return r, nil
}

// GetGlobalRecord implements eventstore.RecordReader.
func (s *Store) GetGlobalRecord(ctx context.Context, collection, k string) (eventstore.Record, error) {
	r, err := s.getRecord(ctx, "", true, collection, k)
	if err != nil {
		return r, fmt.Errorf("get global record %s/%s: %w", collection, k, err)
	}
	return r, nil
}

func (s *Store) getRecord(ctx context.Context, tenantID string, global bool, collection, k string) (eventstore.Record, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Record{}, err
	}
	if !global && tenantID == "" {
		return eventstore.Record{}, eventstore.ErrNotFound
	}
	r := eventstore.Record{Collection: collection, Key: k, Global: global}
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bucketData)).Get(key(recordPK(tenantID, global, collection), k))
		if v == nil {
			return eventstore.ErrNotFound
		}
		r.Data = bytes.Clone(v)
		return nil
	})
	return r, err
}

// ListRecords implements eventstore.RecordReader. The cursor is the last
// row's key, base64url-encoded; next is "" exactly when no row follows.
func (s *Store) ListRecords(ctx context.Context, tenantID, collection string, p eventstore.Page) ([]eventstore.Record, string, error) {
	rows, next, err := s.listRecords(ctx, tenantID, collection, p)
	if err != nil {
		return nil, "", fmt.Errorf("list records %s: %w", collection, err)
	}
	return rows, next, nil
}

func (s *Store) listRecords(ctx context.Context, tenantID, collection string, p eventstore.Page) ([]eventstore.Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if tenantID == "" {
		return nil, "", nil
	}
	limit := p.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	var after []byte
	if p.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil {
			return nil, "", invalid("cursor %q", p.Cursor)
		}
		after = b
	}
	pk := recordPK(tenantID, false, collection)
	prefix := key(pk, "")
	var rows []eventstore.Record
	var next string
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket([]byte(bucketData)).Cursor()
		var k, v []byte
		step := cur.Next
		switch {
		case !p.Descending && after == nil:
			k, v = cur.Seek(prefix)
		case !p.Descending:
			k, v = cur.Seek(key(pk, string(after)))
			if k != nil && bytes.Equal(k[len(prefix):], after) {
				k, v = cur.Next()
			}
		default:
			step = cur.Prev
			if after == nil {
				k, v = cur.Seek([]byte(pk + "\x01")) // the first key past the prefix
			} else {
				k, v = cur.Seek(key(pk, string(after)))
			}
			if k == nil {
				k, v = cur.Last()
			} else {
				k, v = cur.Prev()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = step() {
			if len(rows) == limit {
				next = base64.RawURLEncoding.EncodeToString([]byte(rows[len(rows)-1].Key))
				break
			}
			rows = append(rows, eventstore.Record{Collection: collection, Key: string(k[len(prefix):]), Data: bytes.Clone(v)})
		}
		return nil
	})
	return rows, next, err
}

// GetIdempotency implements eventstore.IdempotencyReader.
func (s *Store) GetIdempotency(ctx context.Context, tenantID, k string) (eventstore.Idempotency, error) {
	var r eventstore.Idempotency
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("get idempotency %q: %w", k, err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bucketData)).Get(key(idemPK(tenantID, k), ""))
		if v == nil || tenantID == "" {
			return eventstore.ErrNotFound
		}
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if expired(r, s.clock.Now()) {
			r = eventstore.Idempotency{}
			return eventstore.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("get idempotency %q: %w", k, err)
	}
	return r, nil
}

// ---- outbox ----

// PendingOutbox implements eventstore.Outbox (limit <= 0: 100).
func (s *Store) PendingOutbox(ctx context.Context, dueBy time.Time, limit int) ([]eventstore.OutboxEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	if limit <= 0 {
		limit = defaultOutboxLimit
	}
	// Every key due at or before dueBy sorts before this bound.
	bound := []byte(dueBy.UTC().Format(dueLayout) + "#\xff")
	var out []eventstore.OutboxEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket([]byte(bucketOutbox)).Cursor()
		for k, v := cur.First(); k != nil && bytes.Compare(k, bound) < 0 && len(out) < limit; k, v = cur.Next() {
			var e eventstore.OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %q: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	return out, nil
}

// AckOutbox implements eventstore.Outbox; entries are identified by ID.
func (s *Store) AckOutbox(ctx context.Context, entries []eventstore.OutboxEntry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ack outbox: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		ob, obIDs := tx.Bucket([]byte(bucketOutbox)), tx.Bucket([]byte(bucketOutboxIDs))
		for _, e := range entries {
			k := obIDs.Get([]byte(e.ID))
			if k == nil {
				continue
			}
			if err := ob.Delete(bytes.Clone(k)); err != nil {
				return fmt.Errorf("entry %s: %w", e.ID, err)
			}
			if err := obIDs.Delete([]byte(e.ID)); err != nil {
				return fmt.Errorf("entry %s: index: %w", e.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack outbox: %w", err)
	}
	return nil
}

// RescheduleOutbox implements eventstore.Outbox: it sets the stored entry's
// DueAt and Attempt from e (other fields of e are ignored).
func (s *Store) RescheduleOutbox(ctx context.Context, e eventstore.OutboxEntry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reschedule outbox %s: %w", e.ID, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		ob, obIDs := tx.Bucket([]byte(bucketOutbox)), tx.Bucket([]byte(bucketOutboxIDs))
		k := obIDs.Get([]byte(e.ID))
		if k == nil {
			return nil
		}
		k = bytes.Clone(k)
		v := ob.Get(k)
		if v == nil {
			return fmt.Errorf("index points to missing key %q", k)
		}
		var stored eventstore.OutboxEntry
		if err := json.Unmarshal(v, &stored); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		stored.DueAt, stored.Attempt = e.DueAt, e.Attempt
		if err := ob.Delete(k); err != nil {
			return err
		}
		return putOutbox(ob, obIDs, stored)
	})
	if err != nil {
		return fmt.Errorf("reschedule outbox %s: %w", e.ID, err)
	}
	return nil
}
