// Package pebblestore is a local-mode adapter of the eventstore port on
// Pebble (github.com/cockroachdb/pebble), a log-structured merge tree with a
// write-ahead log: one directory in the data directory. It keeps the
// semantics of package boltstore (the shared contract suite, storetest,
// proves them) at a fraction of its write cost: a group commit appends its
// batch to the log and syncs it (one fdatasync), where bbolt rewrites the
// B+tree pages the commit touched and syncs twice.
//
// # Durability
//
// Every write (Commit, PutRecords, AckOutbox, RescheduleOutbox, Purge)
// returns only after the batch that holds it, and every batch before it, is
// synced to the write-ahead log, so an acknowledged write survives a kill -9
// of the process (and a power loss: the log is fdatasync'ed). Concurrent
// writes share one batch and one sync (group commit, see group.go); each is
// still atomic and answered on its own: a commit that fails a condition
// writes nothing and does not fail the others. The committer builds the next
// batch while the previous one syncs (pipelining, see group.go), and no
// answer, not even a conflict, goes out before the sync of everything it
// depends on. Reads see exactly the synced writes: they read a snapshot
// that is published once its batch is synced, before its writers are
// answered (see group.go), so a write is readable once acknowledged and
// never before it is on disk. A directory is used by one process at a time:
// Open locks it (Pebble's LOCK file) and fails when another process holds
// it.
//
// # Layout
//
// The keys are those of boltstore, with a prefix per boltstore bucket
// instead of the bucket, so one key space holds them all (a bucket's keys
// copy over unchanged with its prefix; the values are boltstore's too):
//
//	"d/"   data: pk + "\x00" + sk, the DynamoDB adapter's (partition key,
//	       sort key) design flattened; the tenant id is part of every
//	       partition key:
//	         T#<tenant>#S#<stream>      \x00 <version, 20 digits>  event JSON
//	         T#<tenant>#H#<stream>      \x00                       stream head {"version":n}
//	         T#<tenant>#R#<collection>  \x00 <key>                 record Data
//	         G#R#<collection>           \x00 <key>                 global record Data
//	         T#<tenant>#I#<key>         \x00                       idempotency JSON
//	"l/"   lists: "T#<tenant>#L#<list>#<partition>" + "\x00" + <entry sort>
//	       + "#" + <row key> + "\x00" + <collection>, one key per list
//	       membership, whose value is the row's data key (without "d/")
//	"lr/"  list-rows: a row's data key -> its current list keys (without
//	       "l/", boltstore's binary form), so that a rewrite or a delete of
//	       the row replaces or removes them in the same batch
//	"o/"   outbox: "<dueAt UTC, fixed-width nanoseconds>#<id>" -> entry JSON
//	       (byte order is due order; parked entries, eventstore.ParkedAt,
//	       sort after every due time)
//	"oi/"  outbox-ids: id -> its outbox key (without "o/"), so that Ack and
//	       Reschedule are lookups rather than scans
//	"ie/"  idem-expiry: "<expiresAt, fixed width>" + "\x00" + data key, every
//	       expiry (idempotency records and rows with ExpiresAt), in expiry
//	       order for Purge
//	"re/"  row-expiry: a row's data key -> its expiry (fixed width), which
//	       reads check (a row past it reads as missing)
//	"!format"  the layout's version ("switchboard-pebblestore/1")
//
// ListRecords reads one partition in key order (List.Shards is accepted and
// has no effect); its cursor (eventstore.EncodeListCursor) holds the last
// entry's key after the partition prefix. Acknowledged outbox entries are
// deleted at once. Expired idempotency records read as missing (the
// injected clock decides) and are overwritten by the next commit with their
// key; Purge (run by StartPurger) deletes expired records and rows, with
// their list entries, in expiry order without a scan. Deleted keys leave
// tombstones that Pebble's compactions drop, and the space with them; the
// outbox and the expiry index, queues deleted from the front, are read from
// a low-water mark so that their scans do not step over the tombstones
// again and again (see hints.go).
//
// # Tuning
//
// The options (pebbleOptions) are chosen for one process on a small machine
// (2 cores) taking a few thousand small commits per second:
//
//   - The log is synced by every group commit (pebble.Sync) and never in
//     the background (WALBytesPerSync 0): the group commit is the sync
//     point, and it is shared by every commit of the group.
//   - Memtable: 32 MiB (Pebble's default is 4 MiB), at most two (the
//     mutable one and one flushing; writes stall beyond). A commit appends to
//     the memtable; a larger one flushes less often (fewer, larger L0
//     tables, less compaction work) at the cost of memory (up to 64 MiB)
//     and of replaying up to 32 MiB of log at Open after a crash (well under
//     a second).
//   - Compaction: Pebble's defaults (one concurrent compaction, L0
//     compaction at 4 files, writes stop at 12), which leave one core to the
//     requests.
//   - Block cache: 16 MiB, small: recent data is read from the memtables;
//     the cache holds the index and filter blocks and the hot data blocks
//     of the tables. Pebble counts the memtables against the cache's
//     capacity, so the cache is created with 16 MiB plus the memtables'
//     64 MiB (80 MiB); with a capacity of 16 MiB it held no block at all
//     once the memtables had grown, and every point read of a commit read
//     the tables' bloom filters from the files again (measured: the point
//     reads took half the committer's CPU instead of a quarter).
//   - Bloom filters (10 bits per key) on every level: most point reads of a
//     commit look for keys that do not exist (a new stream's head, a new
//     idempotency key, an outbox id), and the filters answer them without
//     reading data blocks.
//   - Format: pebble.FormatNewest of v1.1.5 (FormatVirtualSSTables), so a
//     later move to pebble/v2 (which opens FormatFlushableIngest and later)
//     can open the directory.
//   - Pebble's log lines go to slog (Debug); its background errors and
//     write stalls are logged as warnings.
package pebblestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/internal/kvlayout"
)

// Key prefixes, one per boltstore bucket. Persisted: never change.
const (
	nsData      = "d/"
	nsOutbox    = "o/"
	nsOutboxIDs = "oi/"
	nsLists     = "l/"
	nsListRows  = "lr/"
	nsExpiry    = "ie/" // every expiry: idempotency records and rows
	nsRowExpiry = "re/"
)

// formatKey holds formatValue, the version of the layout above.
const (
	formatKey   = "!format"
	formatValue = "switchboard-pebblestore/1"
)

// Limits and defaults.
const (
	defaultOutboxLimit = 100
	defaultPurgeMax    = 1000
	defaultOpenTimeout = 2 * time.Second
	maxReadPrealloc    = 1024
	// maxKeySize bounds a key as boltstore does (bbolt's limit), so that the
	// two refuse the same commits.
	maxKeySize = 32768
)

// Pebble tuning (see the package doc).
const (
	memTableSize   = 32 << 20
	blockCacheSize = 16 << 20
	// memTables is how many memtables may exist at once: the mutable one
	// and one flushing (pebble's MemTableStopWritesThreshold, 2).
	memTables = 2
	// cacheCapacity is the block cache's capacity: pebble counts the
	// memtables against it (Cache.Reserve), so it is the block cache plus
	// the memtables' budget. (A 16 MiB cache with 32 MiB memtables held no
	// block at all: every bloom filter was read from the file again.)
	cacheCapacity = blockCacheSize + memTables*memTableSize
	bloomBitsPer  = 10
	numLevels     = 7
	l0TargetFile  = 2 << 20
)

// Store is the Pebble adapter; it implements eventstore.Store and is safe for
// concurrent use. Its writes go through one committer (group commit: see
// group.go); its reads read the view the committer publishes.
type Store struct {
	db     *pebble.DB
	lock   *pebble.Lock
	w      *committer
	views  *views
	clock  clock.Clock
	closed atomic.Bool
	dbMu   sync.RWMutex // held for writing while the DB closes (WriteStats reads its metrics)
}

var _ eventstore.Store = (*Store)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	clock       clock.Clock
	openTimeout time.Duration
}

// WithClock sets the clock that decides idempotency and row expiry (default
// clock.System).
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithOpenTimeout sets how long Open waits for another process to release
// the directory (default 2 s).
func WithOpenTimeout(d time.Duration) Option { return func(o *options) { o.openTimeout = d } }

// Open opens (creating when missing, with mode 0700 and its parents) the
// store in directory dir. It fails after the open timeout when another
// process holds the directory, and when the directory holds a Pebble store
// of another layout.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{clock: clock.System{}, openTimeout: defaultOpenTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	lock, err := lockDir(dir, o.openTimeout)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	cache := pebble.NewCache(cacheCapacity)
	defer cache.Unref() // the DB holds its own reference
	db, err := pebble.Open(dir, pebbleOptions(cache, lock))
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if err := checkFormat(db); err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	vs := &views{db: db}
	vs.publish()
	return &Store{db: db, lock: lock, w: startCommitter(db, vs), views: vs, clock: o.clock}, nil
}

// lockDir takes the directory's lock (Pebble's LOCK file), retrying until
// timeout while another process holds it.
func lockDir(dir string, timeout time.Duration) (*pebble.Lock, error) {
	deadline := time.Now().Add(timeout)
	for {
		lock, err := pebble.LockDirectory(dir, vfs.Default)
		if err == nil {
			return lock, nil
		}
		if !lockHeld(err) {
			return nil, fmt.Errorf("lock: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("locked by another process (is another switchboard running on this data dir?): %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockHeld reports whether err, from pebble.LockDirectory, says that another
// process (or another Store of this process) holds the lock, rather than that
// the lock file could not be created.
func lockHeld(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")
}

// pebbleOptions are the DB's options (see Tuning in the package doc).
func pebbleOptions(cache *pebble.Cache, lock *pebble.Lock) *pebble.Options {
	o := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                memTableSize,
		MemTableStopWritesThreshold: memTables,
		FormatMajorVersion:          pebble.FormatNewest,
		Lock:                        lock,
		Logger:                      pebbleLogger{},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				slog.Warn("pebble background error", slog.Any("error", err))
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				slog.Warn("pebble write stall", slog.String("reason", info.Reason))
			},
			WriteStallEnd: func() { slog.Info("pebble write stall ended") },
			DiskSlow: func(info pebble.DiskSlowInfo) {
				slog.Warn("pebble disk slow", slog.String("info", info.String()))
			},
		},
	}
	o.Levels = make([]pebble.LevelOptions, numLevels)
	for i := range o.Levels {
		l := &o.Levels[i]
		l.FilterPolicy = bloom.FilterPolicy(bloomBitsPer)
		l.FilterType = pebble.TableFilter
		l.TargetFileSize = int64(l0TargetFile) << i // Pebble's default progression
	}
	return o
}

// pebbleLogger sends Pebble's log lines to slog. Fatalf must not return:
// Pebble calls it when it cannot go on (a failed log write, a corrupt
// manifest); it logs and panics, which ends the process (nothing of a
// failed commit was acknowledged).
type pebbleLogger struct{}

func (pebbleLogger) Infof(format string, args ...any) {
	slog.Debug("pebble: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	slog.Error("pebble: fatal: " + msg)
	panic("pebble: " + msg)
}

// checkFormat writes the layout's version into a new store, and refuses a
// store of another layout (or a Pebble directory written by someone else).
func checkFormat(db *pebble.DB) error {
	v, ok, err := get(db, []byte(formatKey))
	if err != nil {
		return fmt.Errorf("read format: %w", err)
	}
	if ok {
		if string(v) != formatValue {
			return fmt.Errorf("store of format %q, this build reads %q", v, formatValue)
		}
		return nil
	}
	it, err := db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("read format: %w", err)
	}
	nonEmpty := it.First()
	if err := it.Close(); err != nil {
		return fmt.Errorf("read format: %w", err)
	}
	if nonEmpty {
		return fmt.Errorf("a Pebble store without the %q key: not a switchboard store", formatKey)
	}
	if err := db.Set([]byte(formatKey), []byte(formatValue), pebble.Sync); err != nil {
		return fmt.Errorf("write format: %w", err)
	}
	return nil
}

// Close lets the writes under way commit, waits for the reads under way,
// then closes the store and releases the directory; writes and reads after
// Close fail with ErrClosed. Calling it again is harmless.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.w.close()
	s.views.close()
	s.dbMu.Lock()
	err := s.db.Close()
	s.dbMu.Unlock()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// ---- keys ----

// nsKey is the key of inner (a boltstore bucket's key) under prefix ns.
func nsKey(ns string, inner []byte) []byte {
	b := make([]byte, 0, len(ns)+len(inner))
	return append(append(b, ns...), inner...)
}

// prefixEnd is the first key after every key that starts with prefix (which
// must not end with 0xff).
func prefixEnd(prefix []byte) []byte {
	end := slices.Clone(prefix)
	end[len(end)-1]++
	return end
}

// get reads k from r (the DB, a snapshot or a batch): a copy of its value
// and whether it exists.
func get(r pebble.Reader, k []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := make([]byte, len(v))
	copy(out, v)
	return out, true, closer.Close()
}

// ---- commit ----

// Commit implements eventstore.Appender: it encodes c, then, inside the
// group's batch, checks every condition (idempotency first, then stream
// versions, IfAbsent rows, outbox ids) before it writes anything. An outbox
// entry whose id is already pending fails the commit with ErrConflict. c is
// not changed until the batch is synced; then its events carry their
// versions.
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
	if err := s.w.write(p.size, func(b *pebble.Batch) error { return p.apply(&s.w.hints, b) }); err != nil {
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

// prepared is a commit encoded before the committer takes it, with every key
// complete: apply only reads the batch's state and writes these bytes, so it
// may run more than once (see group.go) and never reads or changes the
// caller's Commit.
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
	dataKey    []byte // without "d/"
	key, value []byte // key: with "d/"
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
	dataKey          []byte // without "d/": list values, index keys
	fullKey          []byte // "d/" + dataKey
	listRowsKey      []byte // "lr/" + dataKey
	rowExpiryKey     []byte // "re/" + dataKey
	value            []byte // ignored for a delete
	ifAbsent, delete bool
	listKeys         [][]byte // the row's list keys, with "l/"
	listRows         []byte   // the keys without "l/" as stored under "lr/"; nil when none
	// source is Record.Source: the head of its stream ("d/" + key) and its version.
	sourceHead    []byte
	sourceVersion int64
}

type preparedOutbox struct {
	id           string
	key, idKey   []byte // "o/" + outbox key, "oi/" + id
	inner, value []byte // the outbox key without "o/" (the "oi/" value), the entry
}

// checkKey fails a key boltstore would refuse, so that the adapters refuse
// the same commits.
func checkKey(what string, k []byte) error {
	if len(k) > maxKeySize {
		return kvlayout.Invalid("%s: key of %d bytes, more than %d", what, len(k), maxKeySize)
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
		dk := kvlayout.Key(kvlayout.IdemPK(kvlayout.IdempotencyTenant(c), c.Idempotency.Key), "")
		v, err := kvlayout.Marshal(c.Idempotency)
		if err != nil {
			return nil, fmt.Errorf("idempotency %q: encode: %w", c.Idempotency.Key, err)
		}
		if err := add("idempotency "+c.Idempotency.Key, dk, v); err != nil {
			return nil, err
		}
		if err := checkKey("idempotency "+c.Idempotency.Key, kvlayout.ExpiryKey(c.Idempotency.ExpiresAt, dk)); err != nil {
			return nil, err
		}
		p.idem = &preparedIdem{name: c.Idempotency.Key, dataKey: dk, key: nsKey(nsData, dk), value: v, expiresAt: c.Idempotency.ExpiresAt}
	}
	p.appends = make([]preparedAppend, 0, len(c.Appends))
	for _, a := range c.Appends {
		pa := preparedAppend{stream: a.StreamID, expected: a.ExpectedVersion, headKey: nsKey(nsData, kvlayout.Key(kvlayout.HeadPK(c.TenantID, a.StreamID), ""))}
		pa.headValue, _ = kvlayout.Marshal(kvlayout.Head{Version: a.ExpectedVersion + int64(len(a.Events))})
		if err := add("append "+a.StreamID, pa.headKey[len(nsData):], pa.headValue); err != nil {
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
			pa.events = append(pa.events, kv{nsKey(nsData, k), v})
		}
		p.appends = append(p.appends, pa)
	}
	p.records = make([]preparedRecord, 0, len(c.Records))
	for _, r := range c.Records {
		what := "record " + r.Collection + "/" + r.Key
		dk := kvlayout.Key(kvlayout.RecordPK(c.TenantID, r.Global, r.Collection), r.Key)
		pr := preparedRecord{collection: r.Collection, key: r.Key, ifAbsent: r.IfAbsent, delete: r.Delete,
			dataKey: dk, fullKey: nsKey(nsData, dk), listRowsKey: nsKey(nsListRows, dk), rowExpiryKey: nsKey(nsRowExpiry, dk)}
		if r.Source != nil {
			pr.sourceHead, pr.sourceVersion = nsKey(nsData, kvlayout.Key(kvlayout.HeadPK(c.TenantID, r.Source.StreamID), "")), r.Source.Version
		}
		if !r.Delete {
			pr.expiresAt = r.ExpiresAt
			pr.value = slices.Clone([]byte(r.Data))
			if pr.value == nil {
				pr.value = []byte("null")
			}
		}
		if err := add(what, dk, pr.value); err != nil {
			return nil, err
		}
		if !r.Delete && len(r.Lists) > 0 {
			inner := make([][]byte, 0, len(r.Lists))
			pr.listKeys = make([][]byte, 0, len(r.Lists))
			for _, e := range r.Lists {
				lk := append(kvlayout.ListPrefix(c.TenantID, e.List, e.Partition), kvlayout.ListSK(e.Sort, r.Collection, r.Key)...)
				if err := add(what+" list "+e.List.Name, lk, dk); err != nil {
					return nil, err
				}
				inner = append(inner, lk)
				pr.listKeys = append(pr.listKeys, nsKey(nsLists, lk))
			}
			pr.listRows = kvlayout.EncodeListRows(inner)
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
		p.outbox = append(p.outbox, preparedOutbox{id: e.ID, key: nsKey(nsOutbox, k), idKey: nsKey(nsOutboxIDs, []byte(e.ID)), inner: k, value: v})
	}
	return p, nil
}

// apply checks every condition (idempotency first, then stream versions,
// IfAbsent rows, outbox ids) and reads what the writes replace, then writes.
// A failed condition, a read that fails or a stored value that does not
// decode is a rejection: nothing is written yet. It lowers the low-water
// marks h to the outbox and expiry keys it writes.
func (p *prepared) apply(h *hints, b *pebble.Batch) error {
	// Conditions, and what the writes replace (reads only).
	var oldIdem *eventstore.Idempotency // the expired record the commit replaces
	if p.idem != nil {
		v, ok, err := get(b, p.idem.key)
		if err != nil {
			return reject(fmt.Errorf("idempotency %q: %w", p.idem.name, err))
		}
		if ok {
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
		cur, err := readHeadAt(b, a.headKey, a.stream)
		if err != nil {
			return reject(err)
		}
		if cur != a.expected {
			return reject(fmt.Errorf("append %s: at version %d, expected %d: %w", a.stream, cur, a.expected, eventstore.ErrConflict))
		}
	}
	for _, r := range p.records {
		if r.sourceHead != nil {
			cur, err := readHeadAt(b, r.sourceHead, r.collection+"/"+r.key)
			if err == nil {
				err = kvlayout.CheckSource(r.collection, r.key, r.sourceVersion, cur)
			}
			if err != nil {
				return reject(err)
			}
		}
		if !r.ifAbsent || r.delete {
			continue
		}
		_, ok, err := get(b, r.fullKey)
		if err == nil && ok { // an expired row counts as absent, as reads see it
			var gone bool
			gone, err = rowExpired(b, r.dataKey, p.now.UTC().Format(kvlayout.DueLayout))
			ok = !gone
		}
		if err != nil {
			return reject(fmt.Errorf("record %s/%s: %w", r.collection, r.key, err))
		}
		if ok {
			return reject(fmt.Errorf("record %s/%s exists: %w", r.collection, r.key, eventstore.ErrConflict))
		}
	}
	for _, e := range p.outbox {
		_, ok, err := get(b, e.idKey)
		if err != nil {
			return reject(fmt.Errorf("outbox entry %s: %w", e.id, err))
		}
		if ok {
			return reject(fmt.Errorf("outbox entry %s is pending: %w", e.id, eventstore.ErrConflict))
		}
	}
	oldLists := make([][][]byte, len(p.records)) // each row's current list keys (without "l/")
	oldRows := make([][]byte, len(p.records))    // and their "lr/" value as stored
	oldExpiry := make([][]byte, len(p.records))  // each row's current expiry, if any
	for i, r := range p.records {
		v, ok, err := get(b, r.listRowsKey)
		if err != nil {
			return reject(fmt.Errorf("record %s/%s: list entries: %w", r.collection, r.key, err))
		}
		if ok {
			keys, err := kvlayout.DecodeListRows(v)
			if err != nil {
				return reject(fmt.Errorf("record %s/%s: decode list entries: %w", r.collection, r.key, err))
			}
			oldLists[i], oldRows[i] = keys, v
		}
		if oldExpiry[i], _, err = get(b, r.rowExpiryKey); err != nil {
			return reject(fmt.Errorf("record %s/%s: expiry: %w", r.collection, r.key, err))
		}
	}

	// Writes.
	for _, a := range p.appends {
		for _, e := range a.events {
			if err := b.Set(e.k, e.v, nil); err != nil {
				return fmt.Errorf("append %s: %w", a.stream, err)
			}
		}
		if err := b.Set(a.headKey, a.headValue, nil); err != nil {
			return fmt.Errorf("append %s: head: %w", a.stream, err)
		}
	}
	for i, r := range p.records {
		var err error
		if r.delete {
			err = b.Delete(r.fullKey, nil)
		} else {
			err = b.Set(r.fullKey, r.value, nil)
		}
		if err == nil {
			err = writeLists(b, r, oldLists[i], oldRows[i])
		}
		if err == nil {
			err = indexRowExpiry(h, b, r, oldExpiry[i])
		}
		if err != nil {
			return fmt.Errorf("record %s/%s: %w", r.collection, r.key, err)
		}
	}
	for _, e := range p.outbox {
		h.lowerOutbox(e.inner)
		if err := b.Set(e.key, e.value, nil); err != nil {
			return fmt.Errorf("outbox entry %s: %w", e.id, err)
		}
		if err := b.Set(e.idKey, e.inner, nil); err != nil {
			return fmt.Errorf("outbox entry %s: index: %w", e.id, err)
		}
	}
	if p.idem != nil {
		if err := b.Set(p.idem.key, p.idem.value, nil); err != nil {
			return fmt.Errorf("idempotency %q: %w", p.idem.name, err)
		}
		if err := indexExpiry(h, b, p.idem.dataKey, oldIdem, p.idem.expiresAt); err != nil {
			return fmt.Errorf("idempotency %q: %w", p.idem.name, err)
		}
	}
	return nil
}

// readHeadAt reads the version of stream from its head row at k (0: none).
func readHeadAt(r pebble.Reader, k []byte, stream string) (int64, error) {
	v, ok, err := get(r, k)
	if err != nil {
		return 0, fmt.Errorf("append %s: read head: %w", stream, err)
	}
	if !ok {
		return 0, nil
	}
	var h kvlayout.Head
	if err := json.Unmarshal(v, &h); err != nil {
		return 0, fmt.Errorf("append %s: decode head: %w", stream, err)
	}
	return h.Version, nil
}

// writeLists replaces the list entries old (without "l/") of the row r with
// r's (none for a delete or a row without Lists): it deletes the entries the
// row leaves and sets those it enters (kvlayout.ListChanges), and rewrites
// its "lr/" value (stored: oldRows) only when that changes, so an update
// that keeps the row's lists writes nothing for them (no tombstones).
func writeLists(b *pebble.Batch, r preparedRecord, old [][]byte, oldRows []byte) error {
	gone, added := kvlayout.ListChanges(old, r.listKeys, len(nsLists))
	for _, lk := range gone {
		if err := b.Delete(nsKey(nsLists, lk), nil); err != nil {
			return fmt.Errorf("list entry: %w", err)
		}
	}
	if r.listRows == nil {
		if len(old) == 0 && oldRows == nil {
			return nil // nothing to remove: no tombstone either
		}
		if err := b.Delete(r.listRowsKey, nil); err != nil {
			return fmt.Errorf("list entries: %w", err)
		}
		return nil
	}
	for _, i := range added {
		if err := b.Set(r.listKeys[i], r.dataKey, nil); err != nil {
			return fmt.Errorf("list entry: %w", err)
		}
	}
	if bytes.Equal(oldRows, r.listRows) {
		return nil
	}
	if err := b.Set(r.listRowsKey, r.listRows, nil); err != nil {
		return fmt.Errorf("list entries: %w", err)
	}
	return nil
}

// indexRowExpiry replaces the expiry entries of the row r (those of its
// previous version, whose expiry was old, if any) with those of its new
// expiry (none when zero).
func indexRowExpiry(h *hints, b *pebble.Batch, r preparedRecord, old []byte) error {
	if old != nil {
		if err := b.Delete(nsKey(nsExpiry, append(append(old, kvlayout.Sep...), r.dataKey...)), nil); err != nil {
			return fmt.Errorf("expiry index: %w", err)
		}
	}
	if r.expiresAt.IsZero() {
		if old == nil {
			return nil
		}
		if err := b.Delete(r.rowExpiryKey, nil); err != nil {
			return fmt.Errorf("row expiry: %w", err)
		}
		return nil
	}
	if err := b.Set(r.rowExpiryKey, []byte(r.expiresAt.UTC().Format(kvlayout.DueLayout)), nil); err != nil {
		return fmt.Errorf("row expiry: %w", err)
	}
	ek := kvlayout.ExpiryKey(r.expiresAt, r.dataKey)
	h.lowerExpiry(ek)
	if err := b.Set(nsKey(nsExpiry, ek), nil, nil); err != nil {
		return fmt.Errorf("expiry index: %w", err)
	}
	return nil
}

// rowExpired reports whether the row at dataKey (without "d/") is past its
// expiry at now (now formatted in kvlayout.DueLayout).
func rowExpired(r pebble.Reader, dataKey []byte, now string) (bool, error) {
	v, ok, err := get(r, nsKey(nsRowExpiry, dataKey))
	return ok && string(v) <= now, err
}

// indexExpiry replaces the expiry index entry of the replaced record old (if
// any) with that of the new record at dataKey (without "d/"), which expires
// at expiresAt (none when it never expires).
func indexExpiry(h *hints, b *pebble.Batch, dataKey []byte, old *eventstore.Idempotency, expiresAt time.Time) error {
	if old != nil && !old.ExpiresAt.IsZero() {
		if err := b.Delete(nsKey(nsExpiry, kvlayout.ExpiryKey(old.ExpiresAt, dataKey)), nil); err != nil {
			return fmt.Errorf("expiry index: %w", err)
		}
	}
	if !expiresAt.IsZero() {
		ek := kvlayout.ExpiryKey(expiresAt, dataKey)
		h.lowerExpiry(ek)
		if err := b.Set(nsKey(nsExpiry, ek), nil, nil); err != nil {
			return fmt.Errorf("expiry index: %w", err)
		}
	}
	return nil
}

// ---- reads ----

// read runs f with the store's current view (see group.go).
func (s *Store) read(f func(r pebble.Reader) error) error {
	v, err := s.views.acquire()
	if err != nil {
		return err
	}
	defer v.release()
	return f(v.snap)
}

// scan runs f for each key and value of r in [lower, upper), forward (or
// backward when reverse), until f returns false or an error. Key and value
// are only valid during the call.
func scan(r pebble.Reader, lower, upper []byte, f func(k, v []byte) (bool, error)) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		more, err := f(it.Key(), it.Value())
		if err != nil {
			_ = it.Close()
			return err
		}
		if !more {
			break
		}
	}
	return it.Close()
}

// ReadStream implements eventstore.StreamReader.
func (s *Store) ReadStream(ctx context.Context, tenantID, streamID string, from int64, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	from = max(from, 1)
	prefix := nsKey(nsData, kvlayout.Key(kvlayout.StreamPK(tenantID, streamID), ""))
	var out []eventstore.Event
	err := s.read(func(r pebble.Reader) error {
		if limit > 0 {
			out = make([]eventstore.Event, 0, min(limit, maxReadPrealloc))
		}
		return scan(r, nsKey(nsData, kvlayout.Key(kvlayout.StreamPK(tenantID, streamID), kvlayout.VersionSK(from))), prefixEnd(prefix), func(k, v []byte) (bool, error) {
			if limit > 0 && len(out) >= limit {
				return false, nil
			}
			var e eventstore.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return false, fmt.Errorf("decode %q: %w", k, err)
			}
			out = append(out, e)
			return true, nil
		})
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

// GetGlobalRecord implements eventstore.RecordReader. Reads of one store are
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
	err := s.read(func(rd pebble.Reader) error {
		dk := kvlayout.Key(kvlayout.RecordPK(tenantID, global, collection), k)
		v, ok, err := get(rd, nsKey(nsData, dk))
		if err != nil {
			return err
		}
		if !ok {
			return eventstore.ErrNotFound
		}
		if gone, err := rowExpired(rd, dk, s.clock.Now().UTC().Format(kvlayout.DueLayout)); err != nil || gone {
			if err == nil {
				err = eventstore.ErrNotFound
			}
			return err
		}
		r.Data = v
		return nil
	})
	return r, err
}

// ListRecords implements eventstore.RecordReader: it reads one partition of
// the list in list key order (entry sort, then row key, then collection)
// and each entry's row. The cursor (eventstore.EncodeListCursor) names the
// tenant, list and partition and holds the last entry's key after the
// partition prefix ("<sort>#<row key>\x00<collection>"); a cursor issued for
// another is ErrInvalid. next is "" exactly when no entry follows. Reads are
// consistent (one snapshot), and an entry is always the row's current
// membership (it changes with the row, in the same batch).
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
	prefix := nsKey(nsLists, kvlayout.ListPrefix(tenantID, q.List, q.Partition))
	at := func(pos []byte) []byte { return append(slices.Clone(prefix), pos...) }
	// The iterator's bounds: the partition, within From (inclusive) and To
	// (exclusive) on the position after the prefix.
	lower, upper := prefix, prefixEnd(prefix)
	if q.From != "" {
		lower = at([]byte(q.From))
	}
	if q.To != "" {
		upper = at([]byte(q.To))
	}
	if bytes.Compare(lower, upper) >= 0 {
		return nil, "", nil // an empty range
	}
	now := s.clock.Now().UTC().Format(kvlayout.DueLayout)
	var rows []eventstore.Record
	var next string
	err = s.read(func(r pebble.Reader) error {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return err
		}
		defer it.Close()
		var ok bool
		step := it.Next
		if !q.Descending {
			switch {
			case after != nil && bytes.Compare(at(after), lower) >= 0:
				// The first key after the cursor's: its successor is at+"\x00".
				ok = it.SeekGE(append(at(after), 0))
			default:
				ok = it.First()
			}
		} else {
			step = it.Prev
			switch {
			case after != nil && bytes.Compare(at(after), upper) < 0:
				ok = it.SeekLT(at(after))
			default:
				ok = it.Last()
			}
		}
		n := 0
		var last []byte
		for ; ok; ok = step() {
			k := it.Key()
			if n == limit {
				next = eventstore.EncodeListCursor(tenantID, q.List, q.Partition, last)
				break
			}
			n++
			last = slices.Clone(k[len(prefix):])
			dk := it.Value()
			coll, rowKey, valid := kvlayout.SplitRecordKey(tenantID, dk)
			if !valid {
				return fmt.Errorf("list entry %q points to %q, not a row of the tenant", k, dk)
			}
			row, found, err := get(r, nsKey(nsData, dk))
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			if gone, err := rowExpired(r, dk, now); err != nil || gone {
				if err != nil {
					return err
				}
				continue
			}
			rows = append(rows, eventstore.Record{Collection: coll, Key: rowKey, Data: row})
		}
		return it.Error()
	})
	return rows, next, err
}

// PutRecords implements eventstore.RecordWriter: the rows go through the
// commit path (validated and written as a commit's records), up to
// eventstore.MaxCommitItems rows per commit.
func (s *Store) PutRecords(ctx context.Context, tenantID string, rows []eventstore.Record) error {
	return kvlayout.PutRecords(tenantID, rows, func(c *eventstore.Commit) error { return s.commit(ctx, c) })
}

// GetIdempotency implements eventstore.IdempotencyReader.
func (s *Store) GetIdempotency(ctx context.Context, tenantID, k string) (eventstore.Idempotency, error) {
	var r eventstore.Idempotency
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("get idempotency %q: %w", k, err)
	}
	err := s.read(func(rd pebble.Reader) error {
		v, ok, err := get(rd, nsKey(nsData, kvlayout.Key(kvlayout.IdemPK(tenantID, k), "")))
		if err != nil {
			return err
		}
		if !ok || tenantID == "" {
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
// under "o/" before the bound, in due order (exactly earliest first).
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
	// The scan starts at the outbox's low-water mark (hints.go), read once
	// the view is taken.
	out, err := s.readOutbox(ctx, s.w.outboxStart, nsKey(nsOutbox, bound), limit)
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	return out, nil
}

// ParkedOutbox implements eventstore.Outbox (limit <= 0: 100): the entries
// under the eventstore.ParkedAt prefix of "o/", in id order.
func (s *Store) ParkedOutbox(ctx context.Context, limit int) ([]eventstore.OutboxEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("parked outbox: %w", err)
	}
	if limit <= 0 {
		limit = defaultOutboxLimit
	}
	prefix := nsKey(nsOutbox, []byte(eventstore.ParkedAt.UTC().Format(kvlayout.DueLayout)+"#"))
	out, err := s.readOutbox(ctx, func() []byte { return prefix }, prefixEnd(prefix), limit)
	if err != nil {
		return nil, fmt.Errorf("parked outbox: %w", err)
	}
	return out, nil
}

// readOutbox reads up to limit outbox entries in [lower(), upper); lower
// is called with the view taken.
func (s *Store) readOutbox(ctx context.Context, lower func() []byte, upper []byte, limit int) ([]eventstore.OutboxEntry, error) {
	var out []eventstore.OutboxEntry
	err := s.read(func(r pebble.Reader) error {
		lo := lower()
		if bytes.Compare(lo, upper) >= 0 {
			return nil
		}
		return scan(r, lo, upper, func(k, v []byte) (bool, error) {
			if e, ok := kvlayout.DecodeOutbox(ctx, k, v); ok {
				out = append(out, e)
			}
			return len(out) < limit, nil
		})
	})
	return out, err
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
	type acked struct{ idKey, inner []byte }
	acks := make([]acked, len(entries))
	size := 0
	for i, e := range entries {
		acks[i] = acked{nsKey(nsOutboxIDs, []byte(e.ID)), kvlayout.OutboxKey(e.DueAt, e.ID)}
		size += 2*len(e.ID) + len(acks[i].inner)
	}
	err := s.w.write(size, func(b *pebble.Batch) error {
		var gone []acked
		for _, a := range acks {
			k, ok, err := get(b, a.idKey)
			if err != nil {
				return reject(err)
			}
			if !ok || !bytes.Equal(k, a.inner) || slices.ContainsFunc(gone, func(g acked) bool { return bytes.Equal(g.idKey, a.idKey) }) {
				continue // acknowledged already, or another version now
			}
			gone = append(gone, a)
		}
		s.w.outboxDeleted(len(gone))
		for _, a := range gone {
			if err := b.Delete(nsKey(nsOutbox, a.inner), nil); err != nil {
				return fmt.Errorf("entry %s: %w", a.idKey[len(nsOutboxIDs):], err)
			}
			if err := b.Delete(a.idKey, nil); err != nil {
				return fmt.Errorf("entry %s: index: %w", a.idKey[len(nsOutboxIDs):], err)
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
	idKey := nsKey(nsOutboxIDs, []byte(e.ID))
	err := s.w.write(len(e.ID)+len(e.LastError)+256, func(b *pebble.Batch) error {
		k, ok, err := get(b, idKey)
		if err != nil {
			return reject(err)
		}
		if !ok {
			return nil
		}
		v, ok, err := get(b, nsKey(nsOutbox, k))
		if err != nil {
			return reject(err)
		}
		if !ok {
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
		if !bytes.Equal(nk, k) {
			s.w.outboxDeleted(1)
			s.w.lowerOutbox(nk)
			if err := b.Delete(nsKey(nsOutbox, k), nil); err != nil {
				return err
			}
			if err := b.Set(idKey, nk, nil); err != nil {
				return fmt.Errorf("outbox entry %s: index: %w", e.ID, err)
			}
		}
		if err := b.Set(nsKey(nsOutbox, nk), nv, nil); err != nil {
			return fmt.Errorf("outbox entry %s: %w", e.ID, err)
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
// index entries, in one synced batch, and returns how many it deleted. It
// walks "ie/" in expiry order (no scan). A record replaced meanwhile by a
// live one is left alone.
func (s *Store) Purge(ctx context.Context, now time.Time, max int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	if max <= 0 {
		max = defaultPurgeMax
	}
	// Every entry expiring at or before now sorts before this bound.
	bound := nsKey(nsExpiry, []byte(now.UTC().Format(kvlayout.DueLayout)+"\x01"))
	n := 0
	// It may run more than once (group commit): n is counted afresh.
	err := s.w.write(max*64, func(b *pebble.Batch) error {
		n = 0
		var done, gone, rows, rowsExp [][]byte // expiry entries (with "ie/"), expired idempotency records, expired rows (data keys) and their entries
		seen := map[string]bool{}
		skip := map[string]bool{} // expiry entries of what does not decode: kept, logged
		corrupt := func(what, entry []byte, err error) {
			slog.ErrorContext(ctx, "pebble purge: an expired item does not decode; left in place", slog.String("key", string(what)), slog.Any("error", err))
			skip[string(entry)] = true
		}
		// From the expiry index's low-water mark (hints.go): every entry
		// before it is deleted already.
		start := s.w.expiryStart()
		if bytes.Compare(start, bound) >= 0 {
			return nil
		}
		err := scan(b, start, bound, func(k, _ []byte) (bool, error) {
			k = bytes.Clone(k)
			done = append(done, k)
			exp, dataKey, ok := bytes.Cut(k[len(nsExpiry):], []byte(kvlayout.Sep))
			if !ok || seen[string(dataKey)] {
				return len(done) < max, nil
			}
			cur, isRow, err := get(b, nsKey(nsRowExpiry, dataKey))
			if err != nil {
				return false, err
			}
			if isRow {
				// A row: gone when this entry is its current expiry.
				if string(cur) == string(exp) {
					seen[string(dataKey)] = true
					rows, rowsExp = append(rows, dataKey), append(rowsExp, k)
				}
				return len(done) < max, nil
			}
			v, ok, err := get(b, nsKey(nsData, dataKey))
			if err != nil || !ok {
				return err == nil && len(done) < max, err
			}
			var rec eventstore.Idempotency
			if err := json.Unmarshal(v, &rec); err != nil {
				corrupt(dataKey, k, err) // a refusal would stop every purge after it
				return len(done) < max, nil
			}
			if !kvlayout.Expired(rec, now) {
				return len(done) < max, nil // replaced by a live record, indexed under its own expiry
			}
			seen[string(dataKey)] = true
			gone = append(gone, dataKey)
			return len(done) < max, nil
		})
		if err != nil {
			return reject(err)
		}
		var oldKeys [][][]byte
		var oldRows [][]byte
		kept := rows[:0]
		for i, k := range rows {
			var old [][]byte
			v, ok, err := get(b, nsKey(nsListRows, k))
			if err != nil {
				return reject(err)
			}
			if ok {
				if old, err = kvlayout.DecodeListRows(v); err != nil {
					corrupt(k, rowsExp[i], err) // left in place; the others are purged
					continue
				}
			}
			kept = append(kept, k)
			oldKeys = append(oldKeys, old)
			oldRows = append(oldRows, v)
		}
		rows = kept
		for _, k := range done {
			if skip[string(k)] {
				continue
			}
			if err := b.Delete(k, nil); err != nil {
				return fmt.Errorf("expiry index: %w", err)
			}
		}
		for _, k := range gone {
			if err := b.Delete(nsKey(nsData, k), nil); err != nil {
				return fmt.Errorf("delete %q: %w", k, err)
			}
		}
		for i, k := range rows {
			r := preparedRecord{dataKey: k, listRowsKey: nsKey(nsListRows, k)}
			if err := writeLists(b, r, oldKeys[i], oldRows[i]); err != nil {
				return fmt.Errorf("delete %q: %w", k, err)
			}
			if err := b.Delete(nsKey(nsData, k), nil); err != nil {
				return fmt.Errorf("delete %q: %w", k, err)
			}
			if err := b.Delete(nsKey(nsRowExpiry, k), nil); err != nil {
				return fmt.Errorf("delete %q: %w", k, err)
			}
		}
		// The low-water mark stays before an entry left in place.
		deleted := done
		for i, k := range done {
			if skip[string(k)] {
				deleted = done[:i]
				break
			}
		}
		if len(deleted) > 0 {
			s.w.purgedTo(deleted[len(deleted)-1][len(nsExpiry):])
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
						slog.WarnContext(ctx, "pebble purge failed", slog.Any("error", err))
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
