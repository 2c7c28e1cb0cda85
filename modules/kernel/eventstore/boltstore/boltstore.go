// Package boltstore is the local-mode adapter of the eventstore port: one
// bbolt file in the data directory. Every write (Commit, AckOutbox,
// RescheduleOutbox, Purge) is synced to disk before it returns, so it
// survives a kill -9 of the process. Concurrent writes share one read-write
// transaction and its fsync (group commit, see group.go); each is still
// atomic and answered on its own: a commit that fails a condition writes
// nothing and does not fail the others.
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
// (One file has no partitions to spread, so rows of a collection stay
// together; they are only read one by one or through lists, like the
// DynamoDB adapter's one-item-per-row layout.)
//
// Lists: bucket "lists" holds one key per list membership,
// "T#<tenant>#L#<list>#<partition>" + "\x00" + <entry sort> + "#" + <row key>
// + "\x00" + <collection> (so rows of two collections that share a list are
// entries of their own), whose value is the row's "data" key; bucket
// "list-rows" maps a row's "data" key to the JSON array of its current
// "lists" keys, so that a rewrite or a delete of the row replaces or removes
// them in the same transaction.
// ListRecords reads one partition in key order (List.Shards is accepted and
// has no effect: the order and the pages are those of the DynamoDB adapter);
// its cursor (eventstore.EncodeListCursor) holds the last entry's key after
// the partition prefix.
//
// Pending outbox entries live in bucket "outbox" under
// "<dueAt UTC, fixed-width nanoseconds>#<id>" (so byte order is due order),
// with bucket "outbox-ids" mapping id -> that key, so that Ack and Reschedule
// are lookups rather than scans. Parked entries (eventstore.ParkedAt) sort
// after every due time; ParkedOutbox seeks to them. Acknowledged entries are
// deleted at once (AckOutbox).
//
// Expired idempotency records read as missing (the injected clock decides)
// and are overwritten by the next commit with their key. Bucket "idem-expiry"
// indexes them by expiry ("<expiresAt UTC, fixed width>" + "\x00" + <the
// record's "data" key>), so Purge (run by StartPurger) deletes expired records
// in expiry order without a scan and the file stops growing; bbolt reuses the
// freed pages. Records written before the index existed are not indexed and
// only go when their key is reused.
//
// Rows with an ExpiresAt: bucket "row-expiry" maps the row's "data" key to its
// expiry (the fixed-width layout), which reads check (a row past it reads as
// missing), and the same "idem-expiry" index lists it, so Purge deletes the
// row with its list entries once it expired. A row written again replaces
// both entries.
package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/internal/kvlayout"
)

// Bucket names. Persisted: never rename.
const (
	bucketData       = "data"
	bucketOutbox     = "outbox"
	bucketOutboxIDs  = "outbox-ids"
	bucketLists      = "lists"
	bucketListRows   = "list-rows"
	bucketIdemExpiry = "idem-expiry" // every expiry: idempotency records and rows (the name predates rows)
	bucketRowExpiry  = "row-expiry"
)

var buckets = []string{bucketData, bucketOutbox, bucketOutboxIDs, bucketLists, bucketListRows, bucketIdemExpiry, bucketRowExpiry}

// Limits and defaults.
const (
	defaultOutboxLimit = 100
	defaultPurgeMax    = 1000
	defaultOpenTimeout = 2 * time.Second
	maxReadPrealloc    = 1024
)

// Store is the bbolt adapter; it implements eventstore.Store and is safe for
// concurrent use. Its writes go through one committer (group commit: see
// group.go).
type Store struct {
	db    *bolt.DB
	w     *committer
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
	// NoFreelistSync: the free page list is not written by every
	// transaction (bbolt rebuilds it by scanning at open), which saves pages
	// on every commit of a large file; the map freelist allocates in O(1).
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.openTimeout, InitialMmapSize: initialMmapSize(),
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: locked by another process (is another switchboard running on this data dir?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range buckets {
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
	return &Store{db: db, w: startCommitter(db), clock: o.clock}, nil
}

// initialMmapSize is the address space mapped at open: 1 GiB on 64-bit
// systems other than Windows. bbolt maps the file and maps it again, larger,
// as it grows (doubling up to 1 GiB); a new mapping waits until every read
// transaction ended and holds new ones and the writer back meanwhile, a
// stall of every request for as long as the longest read (a sweep reads
// thousands of outbox entries). Mapping ahead costs address space only: the
// file still grows with the data, in steps of 16 MiB (bbolt's AllocSize); on
// Windows bbolt would grow the file to the mapping, so it keeps its default
// there.
func initialMmapSize() int {
	if runtime.GOOS == "windows" || strconv.IntSize < 64 {
		return 0
	}
	return 1 << 30
}

// Close lets the writes under way commit, then closes the file; writes after
// Close fail with bbolt's ErrDatabaseNotOpen.
func (s *Store) Close() error {
	s.w.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// ---- keys ----

// ---- commit ----

// Commit implements eventstore.Appender: it encodes c, then, inside the
// group's transaction, checks every condition (idempotency first, then
// stream versions, IfAbsent rows, outbox ids) before it writes anything. An
// outbox entry whose id is already pending fails the commit with
// ErrConflict. c is not changed until the transaction is synced; then its
// events carry their versions.
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
	if err := kvlayout.Validate(c); err != nil {
		return err
	}
	if c.Empty() {
		return nil
	}
	p, err := prepare(c, s.clock.Now())
	if err != nil {
		return err
	}
	if err := s.w.write(p.size, p.apply); err != nil {
		return err
	}
	// Committed and synced: only now the caller's events get their versions.
	for _, a := range c.Appends {
		for i := range a.Events {
			e := &a.Events[i]
			e.TenantID, e.StreamID, e.Version = c.TenantID, a.StreamID, a.ExpectedVersion+int64(i)+1
		}
	}
	return nil
}

// prepared is a commit encoded before its transaction: apply only reads the
// transaction's state and writes these bytes, so it may run more than once
// (see group.go) and never reads or changes the caller's Commit.
type prepared struct {
	now     time.Time // decides idempotency expiry
	idem    *preparedIdem
	appends []preparedAppend
	records []preparedRecord
	outbox  []preparedOutbox
	size    int // bytes of keys and values
}

type preparedIdem struct {
	name       string // the idempotency key, for errors
	key, value []byte
	expiresAt  time.Time
}

type preparedAppend struct {
	stream             string
	expected           int64
	headKey, headValue []byte
	events             []kv
}

type kv struct{ k, v []byte }

type preparedRecord struct {
	collection, key  string
	expiresAt        time.Time
	dataKey, value   []byte // value is ignored for a delete
	ifAbsent, delete bool
	listKeys         [][]byte // the row's "lists" keys
	listRows         []byte   // listKeys as stored in "list-rows"; nil when none
	// source is Record.Source: the head of its stream and its version.
	sourceHead    []byte
	sourceVersion int64
}

type preparedOutbox struct {
	id         string
	key, value []byte
}

// checkKey fails a key bbolt would refuse (a write error inside the
// transaction would cost the batch a second run).
func checkKey(what string, k []byte) error {
	if len(k) > bolt.MaxKeySize {
		return kvlayout.Invalid("%s: key of %d bytes, more than %d", what, len(k), bolt.MaxKeySize)
	}
	return nil
}

// prepare encodes c (validated, not empty) for apply.
func prepare(c *eventstore.Commit, now time.Time) (*prepared, error) {
	p := &prepared{now: now}
	add := func(what string, k, v []byte) error {
		p.size += len(k) + len(v)
		return checkKey(what, k)
	}
	if c.Idempotency != nil {
		k := kvlayout.Key(kvlayout.IdemPK(kvlayout.IdempotencyTenant(c), c.Idempotency.Key), "")
		v, err := kvlayout.Marshal(c.Idempotency)
		if err != nil {
			return nil, fmt.Errorf("idempotency %q: encode: %w", c.Idempotency.Key, err)
		}
		if err := add("idempotency "+c.Idempotency.Key, k, v); err != nil {
			return nil, err
		}
		if err := checkKey("idempotency "+c.Idempotency.Key, kvlayout.ExpiryKey(c.Idempotency.ExpiresAt, k)); err != nil {
			return nil, err
		}
		p.idem = &preparedIdem{name: c.Idempotency.Key, key: k, value: v, expiresAt: c.Idempotency.ExpiresAt}
	}
	p.appends = make([]preparedAppend, 0, len(c.Appends))
	for _, a := range c.Appends {
		pa := preparedAppend{stream: a.StreamID, expected: a.ExpectedVersion, headKey: kvlayout.Key(kvlayout.HeadPK(c.TenantID, a.StreamID), "")}
		pa.headValue, _ = kvlayout.Marshal(kvlayout.Head{Version: a.ExpectedVersion + int64(len(a.Events))})
		if err := add("append "+a.StreamID, pa.headKey, pa.headValue); err != nil {
			return nil, err
		}
		pa.events = make([]kv, 0, len(a.Events))
		for i, e := range a.Events {
			e.TenantID, e.StreamID, e.Version = c.TenantID, a.StreamID, a.ExpectedVersion+int64(i)+1
			v, err := kvlayout.Marshal(e)
			if err != nil {
				return nil, fmt.Errorf("append %s: encode event %s: %w", a.StreamID, e.ID, err)
			}
			k := kvlayout.Key(kvlayout.StreamPK(c.TenantID, a.StreamID), kvlayout.VersionSK(e.Version))
			if err := add("append "+a.StreamID, k, v); err != nil {
				return nil, err
			}
			pa.events = append(pa.events, kv{k, v})
		}
		p.appends = append(p.appends, pa)
	}
	p.records = make([]preparedRecord, 0, len(c.Records))
	for _, r := range c.Records {
		what := "record " + r.Collection + "/" + r.Key
		pr := preparedRecord{collection: r.Collection, key: r.Key, ifAbsent: r.IfAbsent, delete: r.Delete,
			dataKey: kvlayout.Key(kvlayout.RecordPK(c.TenantID, r.Global, r.Collection), r.Key)}
		if r.Source != nil {
			pr.sourceHead, pr.sourceVersion = kvlayout.Key(kvlayout.HeadPK(c.TenantID, r.Source.StreamID), ""), r.Source.Version
		}
		if !r.Delete {
			pr.expiresAt = r.ExpiresAt
		}
		if !r.Delete {
			pr.value = slices.Clone([]byte(r.Data))
			if pr.value == nil {
				pr.value = []byte("null")
			}
		}
		if err := add(what, pr.dataKey, pr.value); err != nil {
			return nil, err
		}
		if !r.Delete && len(r.Lists) > 0 {
			pr.listKeys = make([][]byte, 0, len(r.Lists))
			for _, e := range r.Lists {
				lk := append(kvlayout.ListPrefix(c.TenantID, e.List, e.Partition), kvlayout.ListSK(e.Sort, r.Collection, r.Key)...)
				if err := add(what+" list "+e.List.Name, lk, pr.dataKey); err != nil {
					return nil, err
				}
				pr.listKeys = append(pr.listKeys, lk)
			}
			pr.listRows = kvlayout.EncodeListRows(pr.listKeys)
			p.size += len(pr.listRows)
		}
		p.records = append(p.records, pr)
	}
	p.outbox = make([]preparedOutbox, 0, len(c.Outbox))
	for _, e := range c.Outbox {
		if e.TenantID == "" {
			e.TenantID = c.TenantID
		}
		k, v, err := kvlayout.EncodeOutbox(e)
		if err != nil {
			return nil, err
		}
		if err := add("outbox entry "+e.ID, k, v); err != nil {
			return nil, err
		}
		if err := add("outbox entry "+e.ID, []byte(e.ID), k); err != nil {
			return nil, err
		}
		p.outbox = append(p.outbox, preparedOutbox{id: e.ID, key: k, value: v})
	}
	return p, nil
}

// apply checks every condition (idempotency first, then stream versions,
// IfAbsent rows, outbox ids) and reads what the writes replace, then writes.
// A failed condition, or a stored value that does not decode, is a
// rejection: nothing is written yet.
func (p *prepared) apply(tx *bolt.Tx) error {
	data, ob, obIDs := tx.Bucket([]byte(bucketData)), tx.Bucket([]byte(bucketOutbox)), tx.Bucket([]byte(bucketOutboxIDs))
	lists, rowsB := tx.Bucket([]byte(bucketLists)), tx.Bucket([]byte(bucketListRows))

	// Conditions, and what the writes replace (reads only).
	var oldIdem *eventstore.Idempotency // the expired record the commit replaces
	if p.idem != nil {
		if v := data.Get(p.idem.key); v != nil {
			var old eventstore.Idempotency
			if err := json.Unmarshal(v, &old); err != nil {
				return reject(fmt.Errorf("idempotency %q: decode: %w", p.idem.name, err))
			}
			if !kvlayout.Expired(old, p.now) {
				return reject(fmt.Errorf("idempotency %q: %w", p.idem.name, eventstore.ErrDuplicate))
			}
			oldIdem = &old
		}
	}
	for _, a := range p.appends {
		cur, err := readHeadAt(data, a.headKey, a.stream)
		if err != nil {
			return reject(err)
		}
		if cur != a.expected {
			return reject(fmt.Errorf("append %s: at version %d, expected %d: %w", a.stream, cur, a.expected, eventstore.ErrConflict))
		}
	}
	nowKey := p.now.UTC().Format(kvlayout.DueLayout)
	for _, r := range p.records {
		if r.ifAbsent && !r.delete && data.Get(r.dataKey) != nil && !rowExpired(tx.Bucket([]byte(bucketRowExpiry)), r.dataKey, nowKey) {
			return reject(fmt.Errorf("record %s/%s exists: %w", r.collection, r.key, eventstore.ErrConflict))
		}
		if r.sourceHead != nil {
			cur, err := readHeadAt(data, r.sourceHead, r.collection+"/"+r.key)
			if err == nil {
				err = kvlayout.CheckSource(r.collection, r.key, r.sourceVersion, cur)
			}
			if err != nil {
				return reject(err)
			}
		}
	}
	for _, e := range p.outbox {
		if obIDs.Get([]byte(e.id)) != nil {
			return reject(fmt.Errorf("outbox entry %s is pending: %w", e.id, eventstore.ErrConflict))
		}
	}
	oldLists := make([][][]byte, len(p.records)) // each row's current "lists" keys
	oldRows := make([][]byte, len(p.records))    // and their "list-rows" value as stored
	for i, r := range p.records {
		if v := rowsB.Get(r.dataKey); v != nil {
			keys, err := kvlayout.DecodeListRows(v)
			if err != nil {
				return reject(fmt.Errorf("record %s/%s: decode list entries: %w", r.collection, r.key, err))
			}
			oldLists[i], oldRows[i] = keys, bytes.Clone(v)
		}
	}

	// Writes.
	for _, a := range p.appends {
		for _, e := range a.events {
			if err := data.Put(e.k, e.v); err != nil {
				return fmt.Errorf("append %s: %w", a.stream, err)
			}
		}
		if err := data.Put(a.headKey, a.headValue); err != nil {
			return fmt.Errorf("append %s: head: %w", a.stream, err)
		}
	}
	for i, r := range p.records {
		var err error
		if r.delete {
			err = data.Delete(r.dataKey)
		} else {
			err = data.Put(r.dataKey, r.value)
		}
		if err == nil {
			err = writeLists(lists, rowsB, r, oldLists[i], oldRows[i])
		}
		if err == nil {
			err = indexRowExpiry(tx.Bucket([]byte(bucketIdemExpiry)), tx.Bucket([]byte(bucketRowExpiry)), r.dataKey, r.expiresAt)
		}
		if err != nil {
			return fmt.Errorf("record %s/%s: %w", r.collection, r.key, err)
		}
	}
	for _, e := range p.outbox {
		if err := ob.Put(e.key, e.value); err != nil {
			return fmt.Errorf("outbox entry %s: %w", e.id, err)
		}
		if err := obIDs.Put([]byte(e.id), e.key); err != nil {
			return fmt.Errorf("outbox entry %s: index: %w", e.id, err)
		}
	}
	if p.idem != nil {
		if err := data.Put(p.idem.key, p.idem.value); err != nil {
			return fmt.Errorf("idempotency %q: %w", p.idem.name, err)
		}
		if err := indexExpiry(tx.Bucket([]byte(bucketIdemExpiry)), p.idem.key, oldIdem, p.idem.expiresAt); err != nil {
			return fmt.Errorf("idempotency %q: %w", p.idem.name, err)
		}
	}
	return nil
}

// readHeadAt reads the version of stream from its head row at k (0: none).
func readHeadAt(data *bolt.Bucket, k []byte, stream string) (int64, error) {
	v := data.Get(k)
	if v == nil {
		return 0, nil
	}
	var h kvlayout.Head
	if err := json.Unmarshal(v, &h); err != nil {
		return 0, fmt.Errorf("append %s: decode head: %w", stream, err)
	}
	return h.Version, nil
}

// writeLists replaces the list entries old of the row r with r's (none for a
// delete or a row without Lists): it deletes the entries the row leaves and
// puts those it enters (kvlayout.ListChanges), and rewrites its "list-rows"
// value (stored: oldRows) only when that changes, so an update that keeps
// the row's lists dirties no page of them.
func writeLists(lists, rowsB *bolt.Bucket, r preparedRecord, old [][]byte, oldRows []byte) error {
	gone, added := kvlayout.ListChanges(old, r.listKeys, 0)
	for _, lk := range gone {
		if err := lists.Delete(lk); err != nil {
			return fmt.Errorf("list entry: %w", err)
		}
	}
	if r.listRows == nil {
		if oldRows == nil {
			return nil
		}
		if err := rowsB.Delete(r.dataKey); err != nil {
			return fmt.Errorf("list entries: %w", err)
		}
		return nil
	}
	for _, i := range added {
		if err := lists.Put(r.listKeys[i], r.dataKey); err != nil {
			return fmt.Errorf("list entry: %w", err)
		}
	}
	if bytes.Equal(oldRows, r.listRows) {
		return nil
	}
	if err := rowsB.Put(r.dataKey, r.listRows); err != nil {
		return fmt.Errorf("list entries: %w", err)
	}
	return nil
}

// indexRowExpiry replaces the expiry entries of the row at dataKey (those of
// its previous version, if any) with those of its new expiry (none when zero).
func indexRowExpiry(exp, rowExp *bolt.Bucket, dataKey []byte, expiresAt time.Time) error {
	if old := rowExp.Get(dataKey); old != nil {
		if err := exp.Delete(append(append(bytes.Clone(old), kvlayout.Sep...), dataKey...)); err != nil {
			return fmt.Errorf("expiry index: %w", err)
		}
	}
	if expiresAt.IsZero() {
		if err := rowExp.Delete(dataKey); err != nil {
			return fmt.Errorf("row expiry: %w", err)
		}
		return nil
	}
	if err := rowExp.Put(dataKey, []byte(expiresAt.UTC().Format(kvlayout.DueLayout))); err != nil {
		return fmt.Errorf("row expiry: %w", err)
	}
	if err := exp.Put(kvlayout.ExpiryKey(expiresAt, dataKey), nil); err != nil {
		return fmt.Errorf("expiry index: %w", err)
	}
	return nil
}

// rowExpired reports whether the row at dataKey is past its expiry at now
// (now formatted in kvlayout.DueLayout).
func rowExpired(rowExp *bolt.Bucket, dataKey []byte, now string) bool {
	v := rowExp.Get(dataKey)
	return v != nil && string(v) <= now
}

// indexExpiry replaces the expiry index entry of the replaced record old (if
// any) with that of the new record, which expires at expiresAt (none when it
// never expires).
func indexExpiry(exp *bolt.Bucket, dataKey []byte, old *eventstore.Idempotency, expiresAt time.Time) error {
	if old != nil && !old.ExpiresAt.IsZero() {
		if err := exp.Delete(kvlayout.ExpiryKey(old.ExpiresAt, dataKey)); err != nil {
			return fmt.Errorf("expiry index: %w", err)
		}
	}
	if !expiresAt.IsZero() {
		if err := exp.Put(kvlayout.ExpiryKey(expiresAt, dataKey), nil); err != nil {
			return fmt.Errorf("expiry index: %w", err)
		}
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
	prefix := kvlayout.Key(kvlayout.StreamPK(tenantID, streamID), "")
	var out []eventstore.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		if limit > 0 {
			out = make([]eventstore.Event, 0, min(limit, maxReadPrealloc))
		}
		cur := tx.Bucket([]byte(bucketData)).Cursor()
		for k, v := cur.Seek(kvlayout.Key(kvlayout.StreamPK(tenantID, streamID), kvlayout.VersionSK(from))); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
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

// GetGlobalRecord implements eventstore.RecordReader. Reads of one file are
// always consistent; eventstore.Eventually has no effect.
func (s *Store) GetGlobalRecord(ctx context.Context, collection, k string, _ ...eventstore.ReadOption) (eventstore.Record, error) {
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
		dk := kvlayout.Key(kvlayout.RecordPK(tenantID, global, collection), k)
		v := tx.Bucket([]byte(bucketData)).Get(dk)
		if v == nil || rowExpired(tx.Bucket([]byte(bucketRowExpiry)), dk, s.clock.Now().UTC().Format(kvlayout.DueLayout)) {
			return eventstore.ErrNotFound
		}
		r.Data = bytes.Clone(v)
		return nil
	})
	return r, err
}

// ListRecords implements eventstore.RecordReader: it reads one partition of
// the list in "lists" key order (entry sort, then row key, then collection)
// and each entry's row. The cursor (eventstore.EncodeListCursor) names the
// tenant, list and partition and holds the last entry's key after the
// partition prefix ("<sort>#<row key>\x00<collection>"); a cursor issued for
// another is ErrInvalid. next is "" exactly when no entry follows. Reads are
// consistent, and an entry is always the row's current membership (it
// changes with the row, in the same transaction).
func (s *Store) ListRecords(ctx context.Context, tenantID string, q eventstore.ListQuery) ([]eventstore.Record, string, error) {
	rows, next, err := s.listRecords(ctx, tenantID, q)
	if err != nil {
		return nil, "", fmt.Errorf("list records %s/%s: %w", q.List.Name, q.Partition, err)
	}
	return rows, next, nil
}

func (s *Store) listRecords(ctx context.Context, tenantID string, q eventstore.ListQuery) ([]eventstore.Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	limit, after, err := kvlayout.ListPage(tenantID, q)
	if err != nil {
		return nil, "", err
	}
	prefix := kvlayout.ListPrefix(tenantID, q.List, q.Partition)
	at := func(pos []byte) []byte { return append(slices.Clone(prefix), pos...) }
	// The bounds on the position after the prefix: lo inclusive, hi exclusive.
	var lo, hi []byte
	if q.From != "" {
		lo = []byte(q.From)
	}
	if q.To != "" {
		hi = []byte(q.To)
	}
	now := s.clock.Now().UTC().Format(kvlayout.DueLayout)
	var rows []eventstore.Record
	var next string
	err = s.db.View(func(tx *bolt.Tx) error {
		data, rowExp := tx.Bucket([]byte(bucketData)), tx.Bucket([]byte(bucketRowExpiry))
		cur := tx.Bucket([]byte(bucketLists)).Cursor()
		var k, v []byte
		step := cur.Next
		if !q.Descending {
			switch {
			case after != nil && (lo == nil || bytes.Compare(after, lo) >= 0):
				k, v = cur.Seek(at(after))
				if k != nil && bytes.Equal(k, at(after)) {
					k, v = cur.Next()
				}
			case lo != nil:
				k, v = cur.Seek(at(lo))
			default:
				k, v = cur.Seek(prefix)
			}
		} else {
			step = cur.Prev
			upper := hi
			if after != nil && (upper == nil || bytes.Compare(after, upper) < 0) {
				upper = after
			}
			if upper == nil {
				// The first key past the prefix (which ends with NUL).
				k, v = cur.Seek(append(slices.Clone(prefix[:len(prefix)-1]), 1))
			} else {
				k, v = cur.Seek(at(upper))
			}
			if k == nil {
				k, v = cur.Last()
			} else {
				k, v = cur.Prev()
			}
		}
		within := func(k []byte) bool {
			if !bytes.HasPrefix(k, prefix) {
				return false
			}
			pos := k[len(prefix):]
			return (lo == nil || bytes.Compare(pos, lo) >= 0) && (hi == nil || bytes.Compare(pos, hi) < 0)
		}
		n := 0
		var last []byte
		for ; k != nil && within(k); k, v = step() {
			if n == limit {
				next = eventstore.EncodeListCursor(tenantID, q.List, q.Partition, last)
				break
			}
			n++
			last = k[len(prefix):]
			coll, rowKey, ok := kvlayout.SplitRecordKey(tenantID, v)
			if !ok {
				return fmt.Errorf("list entry %q points to %q, not a row of the tenant", k, v)
			}
			row := data.Get(v)
			if row == nil || rowExpired(rowExp, v, now) {
				continue
			}
			rows = append(rows, eventstore.Record{Collection: coll, Key: rowKey, Data: bytes.Clone(row)})
		}
		return nil
	})
	return rows, next, err
}

// PutRecords implements eventstore.RecordWriter: the rows go through the
// commit path (validated and written as a commit's records), up to
// eventstore.MaxCommitItems rows per transaction of the group committer.
func (s *Store) PutRecords(ctx context.Context, tenantID string, rows []eventstore.Record) error {
	return kvlayout.PutRecords(tenantID, rows, func(c *eventstore.Commit) error { return s.commit(ctx, c) })
}

// GetIdempotency implements eventstore.IdempotencyReader.
func (s *Store) GetIdempotency(ctx context.Context, tenantID, k string) (eventstore.Idempotency, error) {
	var r eventstore.Idempotency
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("get idempotency %q: %w", k, err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bucketData)).Get(kvlayout.Key(kvlayout.IdemPK(tenantID, k), ""))
		if v == nil || tenantID == "" {
			return eventstore.ErrNotFound
		}
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if kvlayout.Expired(r, s.clock.Now()) {
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

// PendingOutbox implements eventstore.Outbox (limit <= 0: 100): the entries
// of bucket "outbox" before the bound, in due order (exactly earliest first).
// Values that do not decode are logged and skipped.
func (s *Store) PendingOutbox(ctx context.Context, dueBy time.Time, limit int) ([]eventstore.OutboxEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	if limit <= 0 {
		limit = defaultOutboxLimit
	}
	// Every key due at or before dueBy sorts before this bound; parked
	// entries are never pending.
	bound := []byte(dueBy.UTC().Format(kvlayout.DueLayout) + "#\xff")
	if parked := []byte(eventstore.ParkedAt.UTC().Format(kvlayout.DueLayout)); bytes.Compare(bound, parked) > 0 {
		bound = parked
	}
	var out []eventstore.OutboxEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket([]byte(bucketOutbox)).Cursor()
		for k, v := cur.First(); k != nil && bytes.Compare(k, bound) < 0 && len(out) < limit; k, v = cur.Next() {
			e, ok := kvlayout.DecodeOutbox(ctx, k, v)
			if ok {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	return out, nil
}

// ParkedOutbox implements eventstore.Outbox (limit <= 0: 100): the entries
// under the eventstore.ParkedAt prefix of bucket "outbox", in id order.
func (s *Store) ParkedOutbox(ctx context.Context, limit int) ([]eventstore.OutboxEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("parked outbox: %w", err)
	}
	if limit <= 0 {
		limit = defaultOutboxLimit
	}
	prefix := []byte(eventstore.ParkedAt.UTC().Format(kvlayout.DueLayout) + "#")
	var out []eventstore.OutboxEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket([]byte(bucketOutbox)).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = cur.Next() {
			e, ok := kvlayout.DecodeOutbox(ctx, k, v)
			if ok {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parked outbox: %w", err)
	}
	return out, nil
}

// AckOutbox implements eventstore.Outbox: an entry is identified by its ID
// and removed at once if it is still the version acknowledged, that is its
// key (due time and id) is that of the acknowledged entry's DueAt; an entry
// rescheduled or re-committed with another DueAt since is kept.
func (s *Store) AckOutbox(ctx context.Context, entries []eventstore.OutboxEntry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ack outbox: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	type acked struct{ id, key []byte }
	acks := make([]acked, len(entries))
	size := 0
	for i, e := range entries {
		acks[i] = acked{[]byte(e.ID), kvlayout.OutboxKey(e.DueAt, e.ID)}
		size += 2*len(e.ID) + len(acks[i].key)
	}
	err := s.w.write(size, func(tx *bolt.Tx) error {
		ob, obIDs := tx.Bucket([]byte(bucketOutbox)), tx.Bucket([]byte(bucketOutboxIDs))
		for _, a := range acks {
			if k := obIDs.Get(a.id); k == nil || !bytes.Equal(k, a.key) {
				continue // acknowledged already, or another version now
			}
			if err := ob.Delete(a.key); err != nil {
				return fmt.Errorf("entry %s: %w", a.id, err)
			}
			if err := obIDs.Delete(a.id); err != nil {
				return fmt.Errorf("entry %s: index: %w", a.id, err)
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
// DueAt, Attempt and LastError (truncated) from e (other fields of e are
// ignored).
func (s *Store) RescheduleOutbox(ctx context.Context, e eventstore.OutboxEntry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reschedule outbox %s: %w", e.ID, err)
	}
	id := []byte(e.ID)
	err := s.w.write(len(e.ID)+len(e.LastError)+256, func(tx *bolt.Tx) error {
		ob, obIDs := tx.Bucket([]byte(bucketOutbox)), tx.Bucket([]byte(bucketOutboxIDs))
		k := obIDs.Get(id)
		if k == nil {
			return nil
		}
		k = bytes.Clone(k)
		v := ob.Get(k)
		if v == nil {
			return reject(fmt.Errorf("index points to missing key %q", k))
		}
		var stored eventstore.OutboxEntry
		if err := json.Unmarshal(v, &stored); err != nil {
			return reject(fmt.Errorf("decode %q: %w", k, err))
		}
		stored.DueAt, stored.Attempt, stored.LastError = e.DueAt, e.Attempt, e.LastError
		nk, nv, err := kvlayout.EncodeOutbox(stored)
		if err != nil {
			return reject(err)
		}
		if err := ob.Delete(k); err != nil {
			return err
		}
		if err := ob.Put(nk, nv); err != nil {
			return fmt.Errorf("outbox entry %s: %w", e.ID, err)
		}
		if err := obIDs.Put(id, nk); err != nil {
			return fmt.Errorf("outbox entry %s: index: %w", e.ID, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reschedule outbox %s: %w", e.ID, err)
	}
	return nil
}

// ---- housekeeping ----

// Purge deletes up to max (<= 0: 1000) idempotency records and rows that
// expired at or before now (rows with their list entries), and their expiry
// index entries, in one transaction, and returns
// how many it deleted. It walks bucket "idem-expiry" in expiry order (no
// scan). A record replaced meanwhile by a live one is left alone.
func (s *Store) Purge(ctx context.Context, now time.Time, max int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	if max <= 0 {
		max = defaultPurgeMax
	}
	// Every entry expiring at or before now sorts before this bound.
	bound := []byte(now.UTC().Format(kvlayout.DueLayout) + "\x01")
	n := 0
	// It may run more than once (group commit): n is counted afresh.
	err := s.w.write(max*64, func(tx *bolt.Tx) error {
		n = 0
		data, exp := tx.Bucket([]byte(bucketData)), tx.Bucket([]byte(bucketIdemExpiry))
		rowExp, lists, rowsB := tx.Bucket([]byte(bucketRowExpiry)), tx.Bucket([]byte(bucketLists)), tx.Bucket([]byte(bucketListRows))
		var done, gone, rows, rowsExp [][]byte // expiry entries, expired idempotency records, expired rows and their entries
		seen := map[string]bool{}
		skip := map[string]bool{} // expiry entries of what does not decode: kept, logged
		corrupt := func(what, entry []byte, err error) {
			slog.ErrorContext(ctx, "bbolt purge: an expired item does not decode; left in place", slog.String("key", string(what)), slog.Any("error", err))
			skip[string(entry)] = true
		}
		cur := exp.Cursor()
		for k, _ := cur.First(); k != nil && bytes.Compare(k, bound) < 0 && len(done) < max; k, _ = cur.Next() {
			k = bytes.Clone(k)
			done = append(done, k)
			_, dataKey, ok := bytes.Cut(k, []byte(kvlayout.Sep))
			if !ok || seen[string(dataKey)] {
				continue
			}
			if exp := rowExp.Get(dataKey); exp != nil {
				// A row: gone when this entry is its current expiry.
				if string(exp) == string(k[:len(k)-len(dataKey)-len(kvlayout.Sep)]) {
					seen[string(dataKey)] = true
					rows, rowsExp = append(rows, dataKey), append(rowsExp, k)
				}
				continue
			}
			v := data.Get(dataKey)
			if v == nil {
				continue
			}
			var rec eventstore.Idempotency
			if err := json.Unmarshal(v, &rec); err != nil {
				corrupt(dataKey, k, err)
				continue
			}
			if !kvlayout.Expired(rec, now) {
				continue // replaced by a live record, indexed under its own expiry
			}
			seen[string(dataKey)] = true
			gone = append(gone, dataKey)
		}
		// Every row's list entries decode before the first write; a row
		// whose do not is left in place, logged, and the others purged (a
		// refusal would stop every purge after it: it comes first in
		// expiry order).
		olds := make([][][]byte, 0, len(rows))
		kept := rows[:0]
		for i, k := range rows {
			var keys [][]byte
			if v := rowsB.Get(k); v != nil {
				var err error
				if keys, err = kvlayout.DecodeListRows(v); err != nil {
					corrupt(k, rowsExp[i], err)
					continue
				}
			}
			kept, olds = append(kept, k), append(olds, keys)
		}
		rows = kept
		for _, k := range done {
			if skip[string(k)] {
				continue
			}
			if err := exp.Delete(k); err != nil {
				return fmt.Errorf("expiry index: %w", err)
			}
		}
		for _, k := range gone {
			if err := data.Delete(k); err != nil {
				return fmt.Errorf("delete %q: %w", k, err)
			}
		}
		for i, k := range rows {
			if err := writeLists(lists, rowsB, preparedRecord{dataKey: k}, olds[i], rowsB.Get(k)); err != nil {
				return fmt.Errorf("delete %q: %w", k, err)
			}
			if err := data.Delete(k); err != nil {
				return fmt.Errorf("delete %q: %w", k, err)
			}
			if err := rowExp.Delete(k); err != nil {
				return fmt.Errorf("delete %q: %w", k, err)
			}
		}
		n = len(gone) + len(rows)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	return n, nil
}

// StartPurger runs Purge (with the store's clock) every interval in a
// goroutine until ctx ends, repeating at once while a run deletes a full
// batch. Failures are logged and retried at the next tick. Cancel ctx before
// Close.
func (s *Store) StartPurger(ctx context.Context, every time.Duration) {
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for ctx.Err() == nil {
				n, err := s.Purge(ctx, s.clock.Now(), defaultPurgeMax)
				if err != nil {
					if ctx.Err() == nil {
						slog.WarnContext(ctx, "bbolt purge failed", slog.Any("error", err))
					}
					break
				}
				if n < defaultPurgeMax {
					break
				}
			}
		}
	}()
}
