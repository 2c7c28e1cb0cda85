package boltstore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Group commit.
//
// Every write of the store (Commit, AckOutbox, RescheduleOutbox, Purge) is a
// request to one committer goroutine, which applies the requests waiting at
// that moment in one bbolt read-write transaction, in arrival order, and
// answers each after that transaction was synced: one fsync for the batch
// instead of one per write, and durability unchanged (a write returns only
// once it is on disk).
//
// Why not bbolt's DB.Batch: it starts a batch on a timer (MaxBatchDelay,
// 10 ms by default), which is latency added to every lone commit, and a
// function that fails aborts the whole batch's transaction, which runs again
// without it, then the failing function alone in a transaction of its own: a
// batch with k conflicting commits costs k+1 rollbacks and k extra fsyncs. A
// conflict (ErrConflict, ErrDuplicate) is an ordinary answer here, so the
// committer lets a request be rejected without aborting the others:
//
//   - A request's apply checks all its conditions before it writes anything.
//     A failed condition is returned as a rejection: the request wrote
//     nothing, its caller gets the error, and the batch goes on (later
//     requests see the state without it, exactly as if it had run alone).
//   - Any other error (a write failed, a panic) aborts the transaction. The
//     failing request then runs alone in a transaction of its own (its caller
//     gets that run's answer) and the rest of the batch runs again without it.
//     So apply may run more than once: it computes everything from what it
//     captured (prepared outside the transaction) and the transaction's
//     state, and it never changes what it captured nor the caller's data.
//
// Batching is natural, without a timer: while one transaction is being
// written and synced, new requests queue; the next transaction takes all of
// them (up to maxBatchRequests requests and maxBatchBytes of encoded data). A
// lone commit pays one fsync and nothing more; under load the batch grows
// with the queue, and the fsync is shared by every commit in it.
const (
	// maxBatchRequests bounds the requests of one transaction. A command
	// commit costs some 20-50 µs of CPU inside the transaction: 128 of them
	// keep one transaction (and so the latency it adds to each of its
	// commits) within a few ms plus the fsync, while the fsync (two
	// fdatasyncs in bbolt, ~0.5-1 ms on a disk) is already shared more than
	// 100 ways.
	maxBatchRequests = 128
	// maxBatchBytes bounds the encoded data of one transaction (a request
	// larger than this goes alone), so that a batch of large commits does not
	// hold megabytes of dirty pages and a long write before its fsync.
	maxBatchBytes = 4 << 20
)

// request is one write: apply runs inside the batch's transaction.
type request struct {
	apply func(tx *bolt.Tx) error
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

// committer is the goroutine that runs the batches.
type committer struct {
	db     *bolt.DB
	mu     sync.Mutex
	queue  []*request
	closed bool
	wake   chan struct{} // capacity 1: "the queue is not empty"
	done   chan struct{} // closed when the goroutine exits
	txs    atomic.Int64  // read-write transactions run (tests: batches)
	writes atomic.Int64  // requests answered
	busy   atomic.Int64  // nanoseconds spent running batches
}

func startCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.loop()
	return c
}

// write submits apply and waits for its answer: nil once the transaction
// that applied it is synced to disk, else its error (a rejection's error,
// ErrDatabaseNotOpen after close). It does not give up when the caller's
// context ends: the write may be committed, and the caller must know.
func (c *committer) write(size int, apply func(tx *bolt.Tx) error) error {
	r := &request{apply: apply, size: size, done: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return bolt.ErrDatabaseNotOpen
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
// the goroutine exited. Calling it again is harmless.
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
	defer close(c.done)
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

// run commits batch in one transaction and answers every request.
func (c *committer) run(batch []*request) {
	t0 := time.Now()
	defer func() {
		c.writes.Add(int64(len(batch)))
		c.busy.Add(int64(time.Since(t0)))
	}()
	answers := make([]error, len(batch))
	for len(batch) > 0 {
		failed := -1
		c.txs.Add(1)
		err := c.db.Update(func(tx *bolt.Tx) error {
			fill(tx)
			for i, r := range batch {
				err := safeApply(r.apply, tx)
				if _, ok := err.(rejected); err != nil && !ok {
					failed = i
					return err
				}
				answers[i] = answer(err)
			}
			return nil
		})
		if failed < 0 {
			for i, r := range batch {
				if err != nil { // the transaction did not commit (or sync): nothing of it is written
					r.done <- fmt.Errorf("write transaction: %w", err)
				} else {
					r.done <- answers[i]
				}
			}
			return
		}
		// The failing request alone, then the others again without it.
		bad := batch[failed]
		c.txs.Add(1)
		bad.done <- answer(c.db.Update(func(tx *bolt.Tx) error { return safeApply(bad.apply, tx) }))
		batch = append(batch[:failed:failed], batch[failed+1:]...)
		answers = answers[:len(batch)]
	}
}

// fill sets the fill percent of the store's buckets for this transaction:
// nearly every write appends (keys are ULIDs and due times), and bbolt's
// default (0.5) splits a full page in two halves, writing twice the pages a
// batch of appends needs (measured: 8.0 pages per send-message commit at
// 0.5, 6.2 at 0.9, in the load run of make bench).
func fill(tx *bolt.Tx) {
	for _, name := range buckets {
		if b := tx.Bucket([]byte(name)); b != nil {
			b.FillPercent = fillPercent
		}
	}
}

const fillPercent = 0.9

// WriteStats is what the store's writes cost so far (see Store.WriteStats).
type WriteStats struct {
	Transactions int64         // read-write transactions (each one fsync pair)
	Writes       int64         // writes answered (Commit, AckOutbox, ...)
	Busy         time.Duration // time the committer spent in transactions
	PagesWritten int64         // pages bbolt wrote (4 KiB each)
	SpillTime    time.Duration // of Busy: bbolt building the dirty pages at commit
	WriteTime    time.Duration // of Busy: bbolt writing and syncing them (two fdatasyncs a transaction)
}

// WriteStats reports the store's write cost since Open: how well group
// commit shares transactions (Writes / Transactions) and what a write costs
// the disk (PagesWritten / Writes). The load generator of make bench prints
// them.
func (s *Store) WriteStats() WriteStats {
	st := s.db.Stats()
	return WriteStats{Transactions: s.w.txs.Load(), Writes: s.w.writes.Load(),
		Busy: time.Duration(s.w.busy.Load()), PagesWritten: int64(st.TxStats.GetWrite()),
		SpillTime: st.TxStats.GetSpillTime(), WriteTime: st.TxStats.GetWriteTime()}
}

// safeApply runs apply, turning a panic into an error (which aborts the
// transaction rather than the process, and reaches the request's caller).
func safeApply(apply func(tx *bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("boltstore: write panicked: %v", p)
		}
	}()
	return apply(tx)
}
