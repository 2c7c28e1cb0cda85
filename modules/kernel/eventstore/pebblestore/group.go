package pebblestore

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
)

// Group commit.
//
// Every write of the store (Commit, AckOutbox, RescheduleOutbox, Purge) is a
// request to one committer goroutine, which applies the requests waiting at
// that moment to one indexed batch (pebble.DB.NewIndexedBatch), in arrival
// order, writes that batch to the memtable and the log with a sync
// requested (DB.ApplyNoSyncWait with pebble.Sync), and answers each request
// once the log is synced (Batch.SyncWait): one log write and one fdatasync
// for the group, and durability unchanged (a write returns only once it is
// on disk). Reads inside the batch (Batch.Get, Batch.NewIter) see the
// committed state and the writes of the requests before them in the same
// batch, so each request's conditions are checked exactly as if it ran alone
// after them.
//
// A conflict (ErrConflict, ErrDuplicate) is an ordinary answer, so a request
// can be rejected without aborting the others:
//
//   - A request's apply checks all its conditions before it writes anything.
//     A failed condition is returned as a rejection: the request wrote
//     nothing, its caller gets the error, and the batch goes on (later
//     requests see the state without it, exactly as if it had run alone).
//   - Any other error (a panic, a failed write to the batch) may leave part
//     of the request in the batch, so the batch is dropped. The failing
//     request then runs alone in a batch of its own (its caller gets that
//     run's answer) and the rest of the batch runs again without it. So
//     apply may run more than once: it computes everything from what it
//     captured (prepared outside the committer) and the batch's state, and
//     it never changes what it captured nor the caller's data.
//
// Pipelining: the committer does not wait for a batch's sync. It hands the
// applied batch to a second goroutine (syncLoop), which waits for the syncs
// in order and answers, and goes on with the next batch meanwhile (up to
// maxInFlight batches wait for their sync; pebble's log writer shares one
// fdatasync among the batches written while the previous one ran). The next
// batch's conditions see the writes of the batches before it, synced or
// not, which is safe because no answer goes out before the sync that covers
// everything it depends on: the log is written in order, a batch's answers
// go out only after its own sync and every earlier one, and the answers of a
// batch that wrote nothing (every request rejected, acknowledgements of
// nothing) wait for the batches before it too. Only the committer writes,
// so the state does not change under it while it builds a batch.
//
// Batching is natural, without a timer: while the committer builds one
// batch, new requests queue; the next batch takes all of them (up to
// maxBatchRequests requests and maxBatchBytes of encoded data). A lone
// commit pays one log write and fdatasync; under load the fdatasync is
// shared by every commit written while the one before ran.
//
// Durable reads. Pebble makes a batch visible to readers of the DB as soon
// as it is in the memtable, before its log write reached the file, let alone
// the disk: a reader of the DB could see a commit that a kill -9 a moment
// later loses (and hand its outbox work to the transport). So readers do
// not read the DB: they read the store's view, a snapshot the committer
// takes right after applying a batch (it holds that batch and every one
// before it, and nothing after) and that syncLoop publishes once that batch
// is synced, before it answers the batch's requests. A reader sees every
// write acknowledged before its read began (read your writes), and never one
// that is not yet on disk.
const (
	// maxBatchRequests bounds the requests of one batch: 128 command
	// commits are some 5 ms of the committer's CPU (measured: 40-50 µs
	// each, most of it the point reads of their conditions), which each of
	// them waits for, while the fdatasync is already shared 100 ways.
	maxBatchRequests = 128
	// maxBatchBytes bounds the encoded data of one batch (a request larger
	// than this goes alone), so that a batch of large commits does not make
	// one long log write before its fdatasync.
	maxBatchBytes = 4 << 20
	// maxInFlight bounds the batches applied and waiting for their sync;
	// when they are that many, the committer waits and the queue grows into
	// a larger next batch.
	maxInFlight = 4
)

// ErrClosed is the error of a write or read after Close.
var ErrClosed = errors.New("pebblestore: store closed")

// request is one write: apply runs against the group's batch.
type request struct {
	apply func(b *pebble.Batch) error
	size  int        // encoded bytes, for maxBatchBytes
	done  chan error // buffered; receives the answer once
}

// rejected is the error of a request that wrote nothing: the batch goes on
// without it, and its caller gets err.
type rejected struct{ err error }

func (r rejected) Error() string { return r.err.Error() }

// reject marks err (non-nil) as a rejection.
func reject(err error) error { return rejected{err} }

// answer is the error a caller gets for apply's err.
func answer(err error) error {
	if r, ok := err.(rejected); ok {
		return r.err
	}
	return err
}

// committer is the goroutine that builds and applies the batches, with the
// goroutine that waits for their log syncs and answers (syncLoop).
type committer struct {
	db      *pebble.DB
	views   *views
	mu      sync.Mutex
	queue   []*request
	closed  bool
	wake    chan struct{} // capacity 1: "the queue is not empty"
	flights chan *flight  // applied batches, in order, to syncLoop
	done    chan struct{} // closed when both goroutines exited
	failed  atomic.Pointer[error]
	hints   // low-water marks of the outbox and the expiry index (hints.go)

	txs    atomic.Int64 // batches built (tests: how requests were grouped)
	syncs  atomic.Int64 // batches written to the log and synced
	writes atomic.Int64 // requests answered
	busy   atomic.Int64 // nanoseconds the committer spent building and applying batches
	synced atomic.Int64 // nanoseconds from applying a batch to its sync
}

// flight is a batch applied to the DB (visible to the committer, not to
// readers) and not yet known to be synced, with the answers of its
// requests. A flight without a batch wrote nothing, but its answers may
// depend on the flights before it: they wait for those to be synced.
type flight struct {
	b       *pebble.Batch    // nil: nothing to sync
	snap    *pebble.Snapshot // the DB with b and every batch before it, taken when b was applied
	reqs    []*request
	answers []error
	applied time.Time
}

func startCommitter(db *pebble.DB, vs *views) *committer {
	c := &committer{db: db, views: vs, wake: make(chan struct{}, 1),
		flights: make(chan *flight, maxInFlight), done: make(chan struct{})}
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		c.syncLoop()
	}()
	go func() {
		defer close(c.done)
		c.loop()
		close(c.flights)
		<-synced
	}()
	return c
}

// err is the error that stopped the store taking writes, if any.
func (c *committer) err() error {
	if p := c.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail stops the store taking writes: pebble may hold a batch in its
// memtable although the log lacks it, so later conditions could be checked
// against writes that are not on disk. (Pebble itself treats a failed log
// write as fatal: see pebbleLogger.Fatalf.)
func (c *committer) fail(err error) error {
	err = fmt.Errorf("pebblestore: log write failed; the store takes no more writes until reopened: %w", err)
	c.failed.CompareAndSwap(nil, &err)
	return c.err()
}

// write submits apply and waits for its answer: nil once the batch that
// applied it (and every batch before it) is synced to the log, else its
// error (a rejection's error, ErrClosed after close). It does not give up
// when the caller's context ends: the write may be committed, and the
// caller must know.
func (c *committer) write(size int, apply func(b *pebble.Batch) error) error {
	r := &request{apply: apply, size: size, done: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return <-r.done
}

// close stops taking requests, lets the queued ones commit, and returns when
// the goroutines exited. Calling it again is harmless.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.done
}

func (c *committer) loop() {
	for {
		c.mu.Lock()
		for len(c.queue) == 0 {
			if c.closed {
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		n, size := 0, 0
		for n < len(c.queue) && n < maxBatchRequests && (n == 0 || size+c.queue[n].size <= maxBatchBytes) {
			size += c.queue[n].size
			n++
		}
		batch := make([]*request, n)
		copy(batch, c.queue)
		rest := copy(c.queue, c.queue[n:])
		clear(c.queue[rest:])
		c.queue = c.queue[:rest]
		c.mu.Unlock()
		c.run(batch)
	}
}

// run applies batch as one indexed batch and hands it to syncLoop.
func (c *committer) run(batch []*request) {
	t0 := time.Now()
	defer func() { c.busy.Add(int64(time.Since(t0))) }()
	for len(batch) > 0 {
		if err := c.err(); err != nil {
			c.flights <- &flight{reqs: batch, answers: repeat(err, len(batch))}
			return
		}
		answers := make([]error, len(batch))
		b := c.db.NewIndexedBatch()
		c.txs.Add(1)
		c.expiryPending = nil
		failed := -1
		for i, r := range batch {
			err := safeApply(r.apply, b)
			if _, ok := err.(rejected); err != nil && !ok {
				failed = i
				break
			}
			answers[i] = answer(err)
		}
		if failed < 0 {
			c.apply(b, batch, answers)
			return
		}
		// The failing request alone, then the others again without it.
		_ = b.Close()
		bad := batch[failed]
		b = c.db.NewIndexedBatch()
		c.txs.Add(1)
		c.expiryPending = nil
		if err := safeApply(bad.apply, b); err != nil {
			_ = b.Close()
			c.flights <- &flight{reqs: []*request{bad}, answers: []error{answer(err)}}
		} else {
			c.apply(b, []*request{bad}, []error{nil})
		}
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// apply writes b (when it holds anything) to the memtable and the log
// without waiting for the sync (DB.ApplyNoSyncWait), moves the low-water
// marks (hints.go), takes the snapshot of the DB with it, and hands it to
// syncLoop. The committer goes on with the next batch while the log
// syncs: that batch's reads see b.
func (c *committer) apply(b *pebble.Batch, reqs []*request, answers []error) {
	if b.Empty() {
		_ = b.Close() // read only, or every request rejected: nothing to sync
		c.applied()
		c.flights <- &flight{reqs: reqs, answers: answers}
		return
	}
	t0 := time.Now()
	if err := c.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		_ = b.Close()
		err = c.fail(err)
		c.flights <- &flight{reqs: reqs, answers: repeat(err, len(reqs))}
		return
	}
	c.applied()
	// Only the committer writes: the snapshot holds b and what came before.
	c.flights <- &flight{b: b, snap: c.db.NewSnapshot(), reqs: reqs, answers: answers, applied: t0}
}

// applied moves the low-water marks once a batch is applied: the expiry
// index's past what its Purge deleted, the outbox's when acknowledgements
// made it worth it (see hints.go).
func (c *committer) applied() {
	c.raiseExpiry()
	c.maybeRaiseOutbox()
}

// syncLoop waits for each flight's sync, in order, publishes its snapshot as
// the read view, and answers its requests. A flight's answers go out only
// once it and every flight before it are synced.
func (c *committer) syncLoop() {
	for f := range c.flights {
		answers := f.answers
		if f.b != nil {
			err := f.b.SyncWait()
			c.synced.Add(int64(time.Since(f.applied)))
			c.syncs.Add(1)
			_ = f.b.Close()
			if err != nil {
				_ = f.snap.Close()
				answers = repeat(c.fail(err), len(f.reqs))
			} else {
				c.views.publishSnapshot(f.snap)
			}
		}
		if err := c.err(); err != nil {
			answers = repeat(err, len(f.reqs)) // what it read may not be on disk
		}
		for i, r := range f.reqs {
			r.done <- answers[i]
		}
		c.writes.Add(int64(len(f.reqs)))
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// safeApply runs apply, turning a panic into an error (which drops the batch
// rather than the process, and reaches the request's caller).
func safeApply(apply func(b *pebble.Batch) error, b *pebble.Batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("pebblestore: write panicked: %v", p)
		}
	}()
	return apply(b)
}

// ---- read views ----

// views holds the store's current read view: a snapshot of the DB taken
// after the last synced commit. Readers take a reference to it; the
// snapshot is closed when it has been replaced and its last reader is done.
type views struct {
	db   *pebble.DB
	cur  atomic.Pointer[view]
	open sync.WaitGroup // views not yet closed
}

type view struct {
	snap *pebble.Snapshot
	refs atomic.Int64 // the store's (while current) and its readers'
	open *sync.WaitGroup
}

// publish makes a snapshot of the DB's state now the current view (Open,
// before the committer starts).
func (vs *views) publish() { vs.publishSnapshot(vs.db.NewSnapshot()) }

// publishSnapshot makes snap the current view; the view owns it.
func (vs *views) publishSnapshot(snap *pebble.Snapshot) {
	v := &view{snap: snap, open: &vs.open}
	v.refs.Store(1)
	vs.open.Add(1)
	if old := vs.cur.Swap(v); old != nil {
		old.release()
	}
}

// acquire returns the current view with a reference the caller releases,
// or ErrClosed.
func (vs *views) acquire() (*view, error) {
	for {
		v := vs.cur.Load()
		if v == nil {
			return nil, ErrClosed
		}
		// refs is 0 only for a view already replaced (and closing): load
		// the current one again.
		if n := v.refs.Load(); n > 0 && v.refs.CompareAndSwap(n, n+1) {
			return v, nil
		}
	}
}

// release drops a reference; the last one closes the snapshot.
func (v *view) release() {
	if v.refs.Add(-1) == 0 {
		_ = v.snap.Close()
		v.open.Done()
	}
}

// close drops the current view and waits until every reader released its
// view (their snapshots must close before the DB does). Reads after it fail
// with ErrClosed.
func (vs *views) close() {
	if old := vs.cur.Swap(nil); old != nil {
		old.release()
	}
	vs.open.Wait()
}

// ---- stats ----

// WriteStats is what the store's writes cost so far (see Store.WriteStats).
type WriteStats struct {
	Transactions int64         // batches built (group commits, and the runs again after a failed request)
	Syncs        int64         // batches written to the log and synced (pebble may cover several with one fdatasync)
	Writes       int64         // writes answered (Commit, AckOutbox, ...)
	Busy         time.Duration // time the committer spent building and applying batches (CPU, mostly)
	SyncTime     time.Duration // time from applying each batch to its sync, summed (the log write and fdatasync it waited for)
	WALBytes     int64         // bytes written to the write-ahead log (pebble's metric; 0 after Close)
}

// WriteStats reports the store's write cost since Open: how well group
// commit shares log syncs (Writes / Syncs), what a group commit costs the
// committer (Busy / Transactions) and waits for the disk (SyncTime / Syncs),
// and what a write costs the log (WALBytes / Writes).
func (s *Store) WriteStats() WriteStats {
	st := WriteStats{
		Transactions: s.w.txs.Load(), Syncs: s.w.syncs.Load(), Writes: s.w.writes.Load(),
		Busy: time.Duration(s.w.busy.Load()), SyncTime: time.Duration(s.w.synced.Load()),
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if !s.closed.Load() {
		st.WALBytes = int64(s.db.Metrics().WAL.BytesWritten)
	}
	return st
}
