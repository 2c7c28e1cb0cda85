package work

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Defaults of LocalWorker.
const (
	// DefaultLocalHorizon is how far ahead of their DueAt the local worker
	// takes items and holds them until due (its MaxDelay). It must exceed
	// the sweep period (1 s by default): an item committed days ahead is
	// handed by a sweep within the horizon and then runs on time.
	DefaultLocalHorizon = 10 * time.Second
	// DefaultLocalCapacity is how many items the local worker holds at once
	// (scheduled, queued, running or waiting for their acknowledgement).
	DefaultLocalCapacity = 10_000
	// DefaultSlowAfter is how long an item runs before it gives its worker
	// slot to another goroutine (LocalWorker.SlowAfter): work items take
	// milliseconds, unless a remote party keeps them waiting.
	DefaultSlowAfter = time.Second
	// DefaultMaxSlow bounds the items detached from their slots at once
	// (LocalWorker.MaxSlow): goroutines waiting on remote parties, each
	// subscriber bounded further by the webhooks' EndpointGate (8 slow
	// attempts each).
	DefaultMaxSlow = 256
)

// LocalWorker runs work in-process for local mode. It is a Transport that is
// not durable: it acknowledges an outbox entry only after its handler
// succeeded, so a crash (kill -9) at any point leaves the entry in the store,
// and the sweep hands it again after the restart.
//
// Handler is the Executor in production (unit of work, dedupe by work id,
// panics recovered); a panic of another handler is recovered here too.
//
// Scheduled work: the worker takes items due within Horizon (MaxDelay: the
// relay hands such items at commit, and the sweep looks that far ahead for
// a non-durable transport) and holds them in a timer heap until their DueAt,
// so that work runs on time rather than at the next sweep; come due, they run
// before the items taken when already due (next). A held item is
// only in memory as a copy: it stays in the store until it ran and was
// acknowledged.
//
// Acknowledgements are batched: a worker hands the finished item to one
// acknowledging goroutine and goes on; the items finished meanwhile are
// acknowledged together, in one AckOutbox (one transaction). An item stays
// held (a Send of it is a no-op) until its acknowledgement was written.
//
// A failed item is rescheduled in the store (Attempt, LastError, exponential
// backoff with jitter) and, when its retry is due within Horizon, held for
// it; after MaxAttempts it is parked (DueAt = eventstore.ParkedAt) and
// logged at error level, kept in the store for an operator (Parked) rather
// than dropped.
type LocalWorker struct {
	Handler     ItemHandler
	Store       eventstore.Outbox
	Clock       clock.Clock
	Logger      *slog.Logger
	Workers     int // default 4
	MaxAttempts int // default DefaultMaxAttempts
	// Horizon is how far ahead of DueAt items are taken and held (default
	// DefaultLocalHorizon); keep it above the sweep period.
	Horizon time.Duration
	// Capacity bounds the items held at once (default
	// DefaultLocalCapacity); Send refuses more, and the store keeps them for
	// a later sweep.
	Capacity int
	// Busy, when set, reports whether foreground work is under way (local
	// mode: API requests in flight). While it is, at most BusyWorkers items
	// run at once (default 1), so that a burst of requests keeps the CPU and
	// the store's commits for itself and the work it creates waits (it is in
	// the store already); once Busy reports false, all Workers run. The
	// worker polls it every BusyPoll (default 10 ms) while items wait for it.
	Busy        func() bool
	BusyWorkers int
	BusyPoll    time.Duration
	// SlowAfter (default DefaultSlowAfter) and MaxSlow (default
	// DefaultMaxSlow) keep slow items from holding every worker: an item
	// still running SlowAfter after it started (a provider or a webhook
	// receiver that answers late or never, until its call's own deadline)
	// gives its slot to a new worker goroutine and finishes on its own, so
	// that other work goes on. At most MaxSlow items run so detached at
	// once; beyond that, slow items keep their slots.
	SlowAfter time.Duration
	MaxSlow   int

	once     sync.Once
	stopOnce sync.Once
	mu       sync.Mutex
	cond     *sync.Cond      // signals ready items (and the stop) to the workers
	held     map[string]bool // ids taken and not finished (ready, scheduled, running, acknowledging)
	ready    []Item          // due when taken, in the order taken
	timed    []Item          // taken ahead and come due (scheduled work, retries): run before ready
	sched    schedHeap       // not yet due, earliest first
	timer    *time.Timer     // fires at the earliest scheduled item
	stopped  bool
	started  bool
	running  int // items being run by the workers, in their slots
	slow     int // items run past SlowAfter that gave up their slots
	// slowCapWarned is when warnSlowCap last logged (unix nanoseconds).
	slowCapWarned atomic.Int64
	gated         bool          // an item is ready and waits for Busy to end
	acks          []Item        // finished, to acknowledge
	ackWake       chan struct{} // capacity 1
	ackDone       chan struct{} // closed when the acknowledging goroutine exited (or Stop, when never started)
	wg            sync.WaitGroup
	// workersExited is closed once the workers exited after Stop.
	workersExited chan struct{}
}

func (w *LocalWorker) init() {
	w.once.Do(func() {
		if w.Workers <= 0 {
			w.Workers = 4
		}
		if w.MaxAttempts <= 0 {
			w.MaxAttempts = DefaultMaxAttempts
		}
		if w.Horizon <= 0 {
			w.Horizon = DefaultLocalHorizon
		}
		if w.Capacity <= 0 {
			w.Capacity = DefaultLocalCapacity
		}
		if w.BusyWorkers <= 0 {
			w.BusyWorkers = 1
		}
		if w.BusyPoll <= 0 {
			w.BusyPoll = 10 * time.Millisecond
		}
		if w.SlowAfter <= 0 {
			w.SlowAfter = DefaultSlowAfter
		}
		if w.MaxSlow <= 0 {
			w.MaxSlow = DefaultMaxSlow
		}
		w.cond = sync.NewCond(&w.mu)
		w.held = map[string]bool{}
		w.ackWake = make(chan struct{}, 1)
		w.ackDone = make(chan struct{})
		w.workersExited = make(chan struct{})
		w.timer = time.AfterFunc(time.Hour, w.release)
		w.timer.Stop()
	})
}

// Durable implements Transport.
func (w *LocalWorker) Durable() bool { return false }

// MaxDelay implements Transport: the horizon within which the worker takes
// items and holds them until due.
func (w *LocalWorker) MaxDelay() time.Duration {
	w.init()
	return w.Horizon
}

// SweepLimit is how many pending entries a sweep reads for the worker in
// one page: its capacity, so that a page reaches past the entries it holds
// (they stay pending until acknowledged) to as many as it has room for. It
// is 0 (the sweep reads nothing) while the worker holds more than half its
// capacity: a page would be mostly entries it holds (decoded for nothing),
// and it has work enough until the next sweep.
func (w *LocalWorker) SweepLimit() int {
	w.init()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.held) > w.Capacity/2 {
		return 0
	}
	return w.Capacity
}

// Send implements Transport: it takes the items that it does not hold
// already (nil for those too: the worker has them), to run at once when due
// and at their DueAt otherwise. When it holds Capacity items, or after Stop,
// it refuses the rest (errQueueFull, errStopped); the store keeps them and
// the next sweep hands them again.
func (w *LocalWorker) Send(_ context.Context, items []Item) []error {
	w.init()
	results := make([]error, len(items))
	now, mono := systemClock(w.Clock).Now(), time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, it := range items {
		switch {
		case w.held[it.ID]:
		case w.stopped:
			results[i] = errStopped
		case len(w.held) >= w.Capacity:
			results[i] = errQueueFull
		default:
			w.held[it.ID] = true
			w.take(it, now, mono)
		}
	}
	return results
}

// take queues it, or schedules it when it is not due yet. Call with mu held.
func (w *LocalWorker) take(it Item, now, mono time.Time) {
	if d := it.DueAt.Sub(now); d > 0 {
		// The injected clock tells how far ahead it is; the wait is real time.
		heap.Push(&w.sched, scheduled{at: mono.Add(d), it: it})
		if w.sched[0].it.ID == it.ID {
			w.timer.Reset(d)
		}
		return
	}
	w.ready = append(w.ready, it)
	w.cond.Signal()
}

// queued is how many items wait to run. Call with mu held.
func (w *LocalWorker) queued() int { return len(w.timed) + len(w.ready) }

// next takes the item to run: a timed one first (it was promised a time:
// a scheduled message, a retry's backoff), so that a backlog of work taken
// at once (a burst of sends while the API is loaded and one worker runs)
// does not make it late (acceptance finding). Call with mu held, queued() > 0.
func (w *LocalWorker) next() Item {
	q := &w.ready
	if len(w.timed) > 0 {
		q = &w.timed
	}
	it := (*q)[0]
	(*q)[0] = Item{}
	*q = (*q)[1:]
	if len(*q) == 0 {
		*q = nil // let the backing array go
	}
	return it
}

// release moves the scheduled items that are due to the timed queue (the
// timer's function) and sets the timer for the next one.
func (w *LocalWorker) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	mono := time.Now()
	for len(w.sched) > 0 && !w.sched[0].at.After(mono) {
		s := heap.Pop(&w.sched).(scheduled)
		w.timed = append(w.timed, s.it)
		w.cond.Signal()
	}
	if len(w.sched) > 0 {
		w.timer.Reset(w.sched[0].at.Sub(mono))
	}
}

var (
	errQueueFull = errors.New("work: local worker full")
	errStopped   = errors.New("work: local worker stopped")
)

// Start runs the workers until Stop.
func (w *LocalWorker) Start() {
	w.init()
	w.mu.Lock()
	if w.started || w.stopped {
		w.mu.Unlock()
		return
	}
	w.started = true
	w.mu.Unlock()
	for i := 0; i < w.Workers; i++ {
		w.wg.Add(1)
		go w.loop()
	}
	go w.ackLoop()
	if w.Busy != nil {
		go w.busyLoop()
	}
}

// limit is how many items may run at once now. Call with mu held.
func (w *LocalWorker) limit() int {
	if w.Busy != nil && w.Busy() {
		return min(w.BusyWorkers, w.Workers)
	}
	return w.Workers
}

// busyLoop wakes the workers when ready items wait for Busy to end, every
// BusyPoll, until Stop.
func (w *LocalWorker) busyLoop() {
	t := time.NewTicker(w.BusyPoll)
	defer t.Stop()
	for range t.C {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return
		}
		if w.gated && w.queued() > 0 && w.running < w.limit() {
			w.gated = false
			w.cond.Broadcast()
		}
		w.mu.Unlock()
	}
}

// Stop lets running items finish and writes their acknowledgements (queued
// and scheduled ones stay in the store for the next start) and returns when
// that is done or ctx ends. Calling it again is harmless.
func (w *LocalWorker) Stop(ctx context.Context) {
	w.init()
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopped = true
		w.timer.Stop()
		started := w.started
		w.cond.Broadcast()
		w.mu.Unlock()
		go func() {
			w.wg.Wait()
			close(w.workersExited)
			if !started {
				close(w.ackDone) // no acknowledging goroutine
			}
		}()
	})
	select {
	case <-w.ackDone:
	case <-ctx.Done():
	}
}

func (w *LocalWorker) loop() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		for !w.stopped && (w.queued() == 0 || w.running >= w.limit()) {
			if w.queued() > 0 {
				w.gated = true // busyLoop wakes us when the limit grows
			}
			w.cond.Wait()
		}
		if w.stopped {
			w.mu.Unlock()
			return
		}
		it := w.next()
		w.running++
		w.mu.Unlock()
		if w.runWatched(it) {
			return // a new goroutine took this one's slot
		}
		w.mu.Lock()
		w.running--
		if w.queued() > 0 {
			w.cond.Signal() // a slot is free for a waiting item
		}
		w.mu.Unlock()
	}
}

// warnSlowCap logs, at most once a minute, that slow items keep their slots
// because MaxSlow are detached already: from then on they hold workers.
func (w *LocalWorker) warnSlowCap() {
	now := time.Now().UnixNano()
	last := w.slowCapWarned.Load()
	if now-last < int64(time.Minute) || !w.slowCapWarned.CompareAndSwap(last, now) {
		return
	}
	orDiscard(w.Logger).Warn("work items slow and the detached ones at their cap: slow items now hold worker slots",
		"maxSlow", w.MaxSlow, "workers", w.Workers)
}

// runWatched runs it in its slot; when it is still running SlowAfter later
// and fewer than MaxSlow items are detached, it gives the slot to a new
// worker goroutine (so that one late remote party does not stop all work)
// and reports true once it finished: the caller's goroutine then exits.
func (w *LocalWorker) runWatched(it Item) (detached bool) {
	finished := false
	t := time.AfterFunc(w.SlowAfter, func() {
		w.mu.Lock()
		if finished || w.stopped {
			w.mu.Unlock()
			return
		}
		if w.slow >= w.MaxSlow {
			w.mu.Unlock()
			w.warnSlowCap()
			return
		}
		detached = true
		w.slow++
		w.running--
		w.wg.Add(1)
		go w.loop()
		slow := w.slow
		w.mu.Unlock()
		orDiscard(w.Logger).Warn("work item slow: its worker slot goes to another goroutine",
			"workId", it.ID, "type", it.Type, "after", w.SlowAfter.String(), "slow", slow)
	})
	w.run(it)
	t.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	finished = true
	if detached {
		w.slow--
	}
	return detached
}

// run runs one item (it.Attempt is the number of attempts before this one):
// on success it hands it to the acknowledging goroutine; on failure it
// reschedules or parks it in the store, and holds the retry when it is due
// within the horizon.
func (w *LocalWorker) run(it Item) {
	ctx := invocation.With(context.Background(), invocation.FromMeta(it.Invocation, TriggerWorker, it.TenantID))
	log := orDiscard(w.Logger)
	it.Attempt++
	err := safeHandle(ctx, w.Handler, log, it)
	if err == nil {
		w.mu.Lock()
		w.acks = append(w.acks, it)
		w.mu.Unlock()
		w.wakeAcks()
		return
	}
	clk := systemClock(w.Clock)
	retry, parked := failed(it, clk.Now(), w.MaxAttempts, err)
	logFailure(ctx, log, retry, parked, "work failed", err)
	if rerr := w.Store.RescheduleOutbox(ctx, retry); rerr != nil {
		log.ErrorContext(ctx, "reschedule failed", "workId", it.ID, "error", rerr.Error())
		w.done(it.ID)
		return
	}
	now := clk.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if parked || w.stopped || retry.DueAt.Sub(now) > w.Horizon {
		delete(w.held, it.ID) // the sweep hands it when it is due
		return
	}
	w.take(retry, now, time.Now()) // the version just stored, due after its backoff
}

func (w *LocalWorker) wakeAcks() {
	select {
	case w.ackWake <- struct{}{}:
	default:
	}
}

// ackLoop acknowledges finished items, all those that finished since the
// last acknowledgement in one AckOutbox, until the workers exited after Stop
// (it acknowledges what they finished first).
func (w *LocalWorker) ackLoop() {
	defer close(w.ackDone)
	for {
		select {
		case <-w.ackWake:
			w.flushAcks()
		case <-w.workersExited:
			w.flushAcks()
			return
		}
	}
}

func (w *LocalWorker) flushAcks() {
	w.mu.Lock()
	batch := w.acks
	w.acks = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := w.Store.AckOutbox(context.Background(), batch); err != nil {
		orDiscard(w.Logger).Warn("work done but not acknowledged; it will run again",
			"items", len(batch), "workId", batch[0].ID, "error", err.Error())
	}
	w.mu.Lock()
	for _, it := range batch {
		delete(w.held, it.ID)
	}
	w.mu.Unlock()
}

// safeHandle runs h, turning a panic into an error (the Executor recovers its
// handlers' panics itself; this covers any other ItemHandler).
func safeHandle(ctx context.Context, h ItemHandler, log *slog.Logger, it Item) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(ctx, "work panicked", "workId", it.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", ErrPanic, p)
		}
	}()
	return h.Handle(ctx, it)
}

// ErrPanic is wrapped by the error of an item whose handler panicked outside
// an Executor (the Executor's errors wrap uow.ErrPanic).
var ErrPanic = fmt.Errorf("work: handler panicked")

func (w *LocalWorker) done(id string) {
	w.mu.Lock()
	delete(w.held, id)
	w.mu.Unlock()
}

// scheduled is an item held until at (monotonic wall time).
type scheduled struct {
	at time.Time
	it Item
}

// schedHeap orders scheduled items, earliest first (container/heap).
type schedHeap []scheduled

func (h schedHeap) Len() int           { return len(h) }
func (h schedHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h schedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *schedHeap) Push(x any)        { *h = append(*h, x.(scheduled)) }
func (h *schedHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = scheduled{}
	*h = old[:len(old)-1]
	return x
}
