package work

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// LocalWorker runs work in-process for local mode. It is a Transport that is
// not durable: it acknowledges an outbox entry only after its handler
// succeeded, so a crash (kill -9) at any point leaves the entry in the store,
// and the sweep hands it again after the restart.
//
// A failed item is rescheduled in the store with exponential backoff and
// jitter; after MaxAttempts it is parked (DueAt far in the future) and logged,
// kept in the store for inspection rather than dropped.
type LocalWorker struct {
	Handler interface {
		Handle(context.Context, Item) error
	}
	Store       eventstore.Outbox
	Clock       clock.Clock
	Logger      *slog.Logger
	Workers     int // default 4
	MaxAttempts int // default 8

	once     sync.Once
	stopOnce sync.Once
	queue    chan Item
	mu       sync.Mutex
	inflight map[string]bool
	wg       sync.WaitGroup
	stop     chan struct{}
}

// Parked is the DueAt of entries that exhausted their attempts.
var Parked = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (w *LocalWorker) init() {
	w.once.Do(func() {
		if w.Workers <= 0 {
			w.Workers = 4
		}
		if w.MaxAttempts <= 0 {
			w.MaxAttempts = 8
		}
		w.queue = make(chan Item, 1024)
		w.inflight = map[string]bool{}
		w.stop = make(chan struct{})
	})
}

// Durable implements Transport.
func (w *LocalWorker) Durable() bool { return false }

// Send implements Transport: it queues items that are not already queued or
// running. A full queue is not an error: the store keeps the items and the
// next sweep hands them again.
func (w *LocalWorker) Send(_ context.Context, items []Item) error {
	w.init()
	for _, it := range items {
		w.mu.Lock()
		busy := w.inflight[it.ID]
		if !busy {
			w.inflight[it.ID] = true
		}
		w.mu.Unlock()
		if busy {
			continue
		}
		select {
		case w.queue <- it:
		default:
			w.done(it.ID)
		}
	}
	return nil
}

// Start runs the workers until Stop.
func (w *LocalWorker) Start() {
	w.init()
	for i := 0; i < w.Workers; i++ {
		w.wg.Add(1)
		go w.loop()
	}
}

// Stop lets running items finish (calling it again is harmless) (queued ones stay in the store for the next
// start) and returns when the workers exited or ctx ends.
func (w *LocalWorker) Stop(ctx context.Context) {
	w.init()
	w.stopOnce.Do(func() { close(w.stop) })
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (w *LocalWorker) loop() {
	defer w.wg.Done()
	for {
		select {
		case <-w.stop:
			return
		case it := <-w.queue:
			w.run(it)
		}
	}
}

func (w *LocalWorker) run(it Item) {
	defer w.done(it.ID)
	ctx := invocation.With(context.Background(), invocation.FromMeta(it.Invocation, "worker", it.TenantID))
	it.Attempt++
	err := w.safeHandle(ctx, it)
	if err == nil {
		if aerr := w.Store.AckOutbox(ctx, []Item{it}); aerr != nil {
			w.Logger.WarnContext(ctx, "work done but not acknowledged; it will run again", "workId", it.ID, "error", aerr.Error())
		}
		return
	}
	retryLater(ctx, w.Store, w.Clock, w.Logger, it, w.MaxAttempts, err)
}

// retryLater reschedules a failed item with backoff, or parks it once it
// used maxAttempts: kept in the store for inspection, never retried.
func retryLater(ctx context.Context, store eventstore.Outbox, clk clock.Clock, log *slog.Logger, it Item, maxAttempts int, err error) {
	if it.Attempt >= maxAttempts {
		it.DueAt = Parked
		log.ErrorContext(ctx, "work failed for good; parked in the outbox", "workId", it.ID, "type", it.Type, "attempt", it.Attempt, "error", err.Error())
	} else {
		it.DueAt = clk.Now().Add(Backoff(it.Attempt))
		log.WarnContext(ctx, "work failed; will retry", "workId", it.ID, "type", it.Type, "attempt", it.Attempt, "retryAt", it.DueAt, "error", err.Error())
	}
	if rerr := store.RescheduleOutbox(ctx, it); rerr != nil {
		log.ErrorContext(ctx, "reschedule failed", "workId", it.ID, "error", rerr.Error())
	}
}

func (w *LocalWorker) safeHandle(ctx context.Context, it Item) (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.Logger.ErrorContext(ctx, "work panicked", "workId", it.ID, "panic", p, "stack", string(debug.Stack()))
			err = errPanic
		}
	}()
	return w.Handler.Handle(ctx, it)
}

var errPanic = &panicError{}

type panicError struct{}

func (*panicError) Error() string { return "work: handler panicked" }

func (w *LocalWorker) done(id string) {
	w.mu.Lock()
	delete(w.inflight, id)
	w.mu.Unlock()
}

// Backoff is the delay before attempt+1: exponential from 1 s, capped at 5
// minutes, with full jitter in its upper half.
func Backoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt-1, 0), 9) // attempt < 1 reads as 1 (a negative shift panics)
	if d > 5*time.Minute {
		d = 5 * time.Minute
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
