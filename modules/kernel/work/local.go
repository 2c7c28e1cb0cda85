package work

import (
	"context"
	"fmt"
	"log/slog"
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
// Handler is the Executor in production (unit of work, dedupe by work id,
// panics recovered); a panic of another handler is recovered here too.
//
// A failed item is rescheduled in the store (Attempt, LastError, exponential
// backoff with jitter); after MaxAttempts it is parked (DueAt =
// eventstore.ParkedAt) and logged at error level, kept in the store for an
// operator (Parked) rather than dropped.
type LocalWorker struct {
	Handler     ItemHandler
	Store       eventstore.Outbox
	Clock       clock.Clock
	Logger      *slog.Logger
	Workers     int // default 4
	MaxAttempts int // default DefaultMaxAttempts

	once     sync.Once
	stopOnce sync.Once
	queue    chan Item
	mu       sync.Mutex
	inflight map[string]bool
	wg       sync.WaitGroup
	stop     chan struct{}
}

func (w *LocalWorker) init() {
	w.once.Do(func() {
		if w.Workers <= 0 {
			w.Workers = 4
		}
		if w.MaxAttempts <= 0 {
			w.MaxAttempts = DefaultMaxAttempts
		}
		w.queue = make(chan Item, 1024)
		w.inflight = map[string]bool{}
		w.stop = make(chan struct{})
	})
}

// Durable implements Transport.
func (w *LocalWorker) Durable() bool { return false }

// MaxDelay implements Transport: the worker runs what it gets at once.
func (w *LocalWorker) MaxDelay() time.Duration { return 0 }

// Send implements Transport: it queues items that are not already queued or
// running (nil for them: the worker has them). A full queue fails the items
// that did not fit; the store keeps them and the next sweep hands them again.
func (w *LocalWorker) Send(_ context.Context, items []Item) []error {
	w.init()
	results := make([]error, len(items))
	for i, it := range items {
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
			results[i] = errQueueFull
		}
	}
	return results
}

var errQueueFull = fmt.Errorf("work: local worker queue full")

// Start runs the workers until Stop.
func (w *LocalWorker) Start() {
	w.init()
	for i := 0; i < w.Workers; i++ {
		w.wg.Add(1)
		go w.loop()
	}
}

// Stop lets running items finish (queued ones stay in the store for the next
// start) and returns when the workers exited or ctx ends. Calling it again is
// harmless.
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
	ctx := invocation.With(context.Background(), invocation.FromMeta(it.Invocation, TriggerWorker, it.TenantID))
	runItem(ctx, w.Handler, w.Store, w.Clock, orDiscard(w.Logger), it, w.MaxAttempts)
}

// runItem runs one item of a non-durable transport (it.Attempt is the number
// of attempts before this one): on success it acknowledges the outbox entry,
// on failure it reschedules or parks it. It returns the handler's error.
func runItem(ctx context.Context, h ItemHandler, store eventstore.Outbox, clk clock.Clock, log *slog.Logger, it Item, maxAttempts int) error {
	it.Attempt++
	err := safeHandle(ctx, h, log, it)
	if err == nil {
		if aerr := store.AckOutbox(ctx, []Item{it}); aerr != nil {
			log.WarnContext(ctx, "work done but not acknowledged; it will run again", "workId", it.ID, "error", aerr.Error())
			return fmt.Errorf("ack %s: %w", it.ID, aerr)
		}
		return nil
	}
	retryLater(ctx, store, systemClock(clk), log, it, maxAttempts, err)
	return fmt.Errorf("work %s: %w", it.ID, err)
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
	delete(w.inflight, id)
	w.mu.Unlock()
}
