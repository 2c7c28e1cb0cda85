package work_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// worker returns a started LocalWorker that is stopped at cleanup.
func (e *env) worker(h work.Handler, workers, maxAttempts int) *work.LocalWorker {
	e.t.Helper()
	w := &work.LocalWorker{
		Handler: handlerFunc(h), Store: e.store, Clock: e.clock, Logger: e.logger,
		Workers: workers, MaxAttempts: maxAttempts,
	}
	e.start(w)
	return w
}

// start starts w and stops it at cleanup.
func (e *env) start(w *work.LocalWorker) {
	w.Start()
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.Stop(ctx)
	})
}

type seen struct {
	mu    sync.Mutex
	items []work.Item
	ctxs  []*invocation.Context
}

func (s *seen) add(ctx context.Context, it work.Item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, it)
	s.ctxs = append(s.ctxs, invocation.From(ctx))
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

func TestLocalWorkerRunsAndAcks(t *testing.T) {
	e := newEnv(t)
	var s seen
	w := e.worker(func(ctx context.Context, it work.Item) error { s.add(ctx, it); return nil }, 2, 0)
	if w.Durable() {
		t.Fatal("the local worker must not be durable: the relay would ack before the work ran")
	}
	items := e.commit("test.work", 0, 0, 0)
	send(t, e.ctx, w, items)
	waitFor(t, "every entry acked", func() bool { return len(e.pending()) == 0 })

	if s.count() != 3 {
		t.Fatalf("handler ran %d times, want 3", s.count())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	byID := map[string]int{}
	for i, it := range s.items {
		byID[it.ID]++
		if it.Attempt != 1 {
			t.Errorf("item %s handled at attempt %d, want 1", it.ID, it.Attempt)
		}
		c := s.ctxs[i]
		if c.Trigger != "worker" || c.Principal.Kind != invocation.KindSystem || c.TenantID() != e.tenant {
			t.Errorf("handler ctx = %+v, want the system acting in %s from a worker", c, e.tenant)
		}
		if c.InvocationID != it.Invocation.InvocationID || c.TraceID != it.Invocation.TraceID {
			t.Errorf("handler ctx ids (%s, %s), want the cause's (%s, %s)", c.InvocationID, c.TraceID, it.Invocation.InvocationID, it.Invocation.TraceID)
		}
	}
	for _, it := range items {
		if byID[it.ID] != 1 {
			t.Errorf("item %s handled %d times, want 1", it.ID, byID[it.ID])
		}
	}
}

func TestLocalWorkerWithRegistry(t *testing.T) {
	e := newEnv(t)
	reg := work.NewRegistry()
	var ran atomic.Int32
	reg.Register("test.work", func(context.Context, work.Item) error { ran.Add(1); return nil })
	w := &work.LocalWorker{Handler: reg, Store: e.store, Clock: e.clock, Logger: e.logger}
	w.Start()
	defer w.Stop(e.ctx)
	items := e.commit("test.work", 0)
	unknown := e.commit("test.unknown", 0)
	send(t, e.ctx, w, append(items, unknown...))
	waitFor(t, "known type acked, unknown rescheduled", func() bool {
		_, known := e.stored(items[0].ID)
		u, ok := e.stored(unknown[0].ID)
		return !known && ok && u.Attempt == 1
	})
	if ran.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", ran.Load())
	}
}

// assertRescheduled checks that it is stored at attempt with a backoff DueAt from t0.
func assertRescheduled(t *testing.T, it work.Item, attempt int) {
	t.Helper()
	if it.Attempt != attempt {
		t.Fatalf("stored attempt = %d, want %d", it.Attempt, attempt)
	}
	d := min(time.Second<<(attempt-1), 5*time.Minute)
	lo, hi := t0.Add(d/2), t0.Add(d)
	if it.DueAt.Before(lo) || it.DueAt.After(hi) {
		t.Fatalf("stored DueAt = %v, want in [%v, %v]", it.DueAt, lo, hi)
	}
}

func TestLocalWorkerFailureReschedules(t *testing.T) {
	e := newEnv(t)
	w := e.worker(func(context.Context, work.Item) error { return errors.New("downstream 503") }, 1, 0)
	items := e.commit("test.work", 0)
	send(t, e.ctx, w, items)
	var got work.Item
	waitFor(t, "entry rescheduled", func() bool {
		var ok bool
		got, ok = e.stored(items[0].ID)
		return ok && got.Attempt == 1
	})
	assertRescheduled(t, got, 1)
	if due := e.pendingBy(t0); len(due) != 0 {
		t.Fatalf("rescheduled entry is due at once: %v", idsOf(due))
	}
	if got.Type != items[0].Type || string(got.Payload) != string(items[0].Payload) || got.TenantID != e.tenant {
		t.Fatalf("rescheduled entry lost its content: %+v", got)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "will retry") || !strings.Contains(logs, "downstream 503") {
		t.Fatalf("logs = %q, want the failure logged", logs)
	}
}

func TestLocalWorkerParksAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	w := e.worker(func(context.Context, work.Item) error { return errors.New("still failing") }, 1, 3)
	items := e.commit("test.work", 0)
	// Two attempts already failed: this is the last one.
	items[0].Attempt = 2
	send(t, e.ctx, w, items)
	var got work.Item
	waitFor(t, "entry parked", func() bool {
		var ok bool
		got, ok = e.stored(items[0].ID)
		return ok && got.Attempt == 3
	})
	if !got.DueAt.Equal(eventstore.ParkedAt) {
		t.Fatalf("DueAt = %v, want Parked %v", got.DueAt, eventstore.ParkedAt)
	}
	if due := e.pendingBy(t0.AddDate(100, 0, 0)); len(due) != 0 {
		t.Fatalf("a parked entry must not come back to a sweep: %v", idsOf(due))
	}
	if !strings.Contains(e.logs.String(), "parked") {
		t.Fatalf("logs = %q, want the parked entry logged", e.logs.String())
	}
}

func TestLocalWorkerDefaultMaxAttemptsIsEight(t *testing.T) {
	e := newEnv(t)
	w := e.worker(func(context.Context, work.Item) error { return errors.New("no") }, 0, 0)
	seventh := e.commit("test.work", 0)
	seventh[0].Attempt = 6
	last := e.commit("test.work", 0)
	last[0].Attempt = 7
	send(t, e.ctx, w, append(seventh, last...))
	var a, b work.Item
	waitFor(t, "both entries failed", func() bool {
		var ok1, ok2 bool
		a, ok1 = e.stored(seventh[0].ID)
		b, ok2 = e.stored(last[0].ID)
		return ok1 && ok2 && a.Attempt == 7 && b.Attempt == 8
	})
	if a.DueAt.Equal(eventstore.ParkedAt) || !a.DueAt.After(t0) {
		t.Fatalf("attempt 7 DueAt = %v, want a retry after %v", a.DueAt, t0)
	}
	if !b.DueAt.Equal(eventstore.ParkedAt) {
		t.Fatalf("attempt 8 DueAt = %v, want Parked", b.DueAt)
	}
}

func TestLocalWorkerRecoversPanics(t *testing.T) {
	e := newEnv(t)
	var ok atomic.Int32
	w := e.worker(func(_ context.Context, it work.Item) error {
		if it.Type == "test.panic" {
			panic("nil map write")
		}
		ok.Add(1)
		return nil
	}, 1, 0)
	bad := e.commit("test.panic", 0)
	send(t, e.ctx, w, bad)
	var got work.Item
	waitFor(t, "panicking entry rescheduled", func() bool {
		var found bool
		got, found = e.stored(bad[0].ID)
		return found && got.Attempt == 1
	})
	assertRescheduled(t, got, 1)
	if !strings.Contains(e.logs.String(), "work panicked") {
		t.Fatalf("logs = %q, want the panic logged", e.logs.String())
	}
	// The worker survived: it still runs work.
	good := e.commit("test.work", 0)
	send(t, e.ctx, w, good)
	waitFor(t, "next entry acked", func() bool { _, found := e.stored(good[0].ID); return !found })
	if ok.Load() != 1 {
		t.Fatalf("good handler ran %d times, want 1", ok.Load())
	}
}

func TestLocalWorkerRunsAnInFlightIDOnce(t *testing.T) {
	e := newEnv(t)
	var blocked, sentinel atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	w := &work.LocalWorker{
		Handler: handlerFunc(func(_ context.Context, it work.Item) error {
			if it.Type == "test.sentinel" {
				sentinel.Add(1)
				return nil
			}
			if blocked.Add(1) == 1 {
				close(started)
			}
			<-release
			return nil
		}),
		Store: e.store, Clock: e.clock, Logger: e.logger, Workers: 1,
	}
	items := e.commit("test.block", 0)
	// Queued, not yet running: a second Send is dropped.
	for i := 0; i < 2; i++ {
		send(t, e.ctx, w, items)
	}
	w.Start()
	defer w.Stop(e.ctx)
	select {
	case <-started:
	case <-e.ctx.Done():
		t.Fatal("handler never started")
	}
	// Running: more Sends (as from the relay and a sweep at once) are dropped too.
	for i := 0; i < 3; i++ {
		send(t, e.ctx, w, items)
	}
	close(release)
	waitFor(t, "entry acked", func() bool { _, found := e.stored(items[0].ID); return !found })
	// One worker runs the queue in order: once the sentinel ran, any queued
	// duplicate would have run before it.
	s := e.commit("test.sentinel", 0)
	send(t, e.ctx, w, s)
	waitFor(t, "sentinel ran", func() bool { return sentinel.Load() == 1 })
	if n := blocked.Load(); n != 1 {
		t.Fatalf("handler ran %d times for one id, want 1", n)
	}
	// Once finished, the same id is accepted again (a later retry). The ack is
	// visible a moment before the id leaves the in-flight set: send until taken.
	waitFor(t, "re-sent id ran again", func() bool {
		if blocked.Load() >= 2 {
			return true
		}
		for _, err := range w.Send(e.ctx, items) {
			if err != nil {
				t.Error(err)
			}
		}
		return false
	})
}

func TestLocalWorkerStopWaitsForRunningHandler(t *testing.T) {
	e := newEnv(t)
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	w := &work.LocalWorker{
		Handler: handlerFunc(func(context.Context, work.Item) error {
			close(started)
			<-release
			finished.Store(true)
			return nil
		}),
		Store: e.store, Clock: e.clock, Logger: e.logger, Workers: 2,
	}
	w.Start()
	items := e.commit("test.work", 0)
	send(t, e.ctx, w, items)
	<-started
	stopped := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.Stop(ctx)
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a handler was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-e.ctx.Done():
		t.Fatal("Stop did not return after the handler finished")
	}
	if !finished.Load() {
		t.Fatal("Stop returned before the handler finished")
	}
	if _, found := e.stored(items[0].ID); found {
		t.Fatal("the running item was not acked before Stop returned")
	}
}

func TestLocalWorkerStopGivesUpWithItsContext(t *testing.T) {
	e := newEnv(t)
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	w := &work.LocalWorker{
		Handler: handlerFunc(func(context.Context, work.Item) error { close(started); <-release; return nil }),
		Store:   e.store, Clock: e.clock, Logger: e.logger, Workers: 1,
	}
	w.Start()
	items := e.commit("test.work", 0)
	send(t, e.ctx, w, items)
	<-started
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Millisecond)
	defer cancel()
	w.Stop(ctx) // returns although the handler still runs
	if ctx.Err() == nil {
		t.Fatal("Stop returned before its context ended while a handler was running")
	}
	if _, found := e.stored(items[0].ID); !found {
		t.Fatal("an unfinished item must stay in the store")
	}
}

func TestRelayToLocalWorkerEndToEnd(t *testing.T) {
	e := newEnv(t)
	var s seen
	w := e.worker(func(ctx context.Context, it work.Item) error { s.add(ctx, it); return nil }, 2, 0)
	r := e.relay(w)
	items := e.commit("test.work", 0, 0, time.Minute)
	r.AfterCommit(e.ctx, items)
	waitFor(t, "due entries acked", func() bool { return len(e.pendingBy(t0)) == 0 })
	if got := len(e.pending()); got != 1 {
		t.Fatalf("pending = %d, want the future entry", got)
	}
	// After a "restart", the sweep hands what is left once it is due.
	e.clock.Advance(time.Minute)
	if n, err := r.Sweep(e.ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = (%d, %v), want (1, nil)", n, err)
	}
	waitFor(t, "every entry acked", func() bool { return len(e.pending()) == 0 })
	if s.count() != 3 {
		t.Fatalf("handler ran %d times, want 3", s.count())
	}
}

func TestLocalWorkerStopTwiceIsHarmless(t *testing.T) {
	e := newEnv(t)
	w := e.worker(func(context.Context, work.Item) error { return nil }, 1, 3) // started; its cleanup stops it again
	w.Stop(e.ctx)
	w.Stop(e.ctx)
}

// ---- scheduled work, capacity, batched acknowledgements ----

// realTimeEnv is a store, a relay and its worker on the system clock.
type realTimeEnv struct {
	store *boltstore.Store
	ran   chan time.Time // when the handler ran each item
}

func newRealTimeEnv(t *testing.T) *realTimeEnv {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &realTimeEnv{store: s, ran: make(chan time.Time, 16)}
}

// start starts a worker (and its relay) on the system clock that records
// when it runs an item.
func (e *realTimeEnv) start(t *testing.T) (*work.LocalWorker, *work.Relay) {
	t.Helper()
	w := &work.LocalWorker{Store: e.store, Clock: clock.System{}, Workers: 2,
		Handler: handlerFunc(func(context.Context, work.Item) error { e.ran <- time.Now(); return nil })}
	w.Start()
	t.Cleanup(func() { w.Stop(context.Background()) })
	return w, &work.Relay{Store: e.store, Transport: w, Clock: clock.System{}}
}

func (e *realTimeEnv) commit(t *testing.T, due time.Time) work.Item {
	t.Helper()
	it := work.Item{ID: "wrk_" + strings.ReplaceAll(due.Format("150405.000000000"), ".", ""), TenantID: "tnt_a", Type: "test.work", DueAt: due}
	if err := e.store.Commit(context.Background(), &eventstore.Commit{TenantID: "tnt_a", Outbox: []work.Item{it}}); err != nil {
		t.Fatal(err)
	}
	return it
}

func (e *realTimeEnv) pending(t *testing.T) int {
	t.Helper()
	items, err := e.store.PendingOutbox(context.Background(), eventstore.ParkedAt.Add(-time.Nanosecond), 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// wantOnTime waits for the item due at due to run and checks it ran between
// due and due + 1 s.
func (e *realTimeEnv) wantOnTime(t *testing.T, due time.Time) {
	t.Helper()
	select {
	case ran := <-e.ran:
		if ran.Before(due) || ran.Sub(due) > time.Second {
			t.Fatalf("ran at %s, %s after its due time; want within [0, 1 s]", ran.Format(time.StampMicro), ran.Sub(due))
		}
	case <-time.After(due.Sub(time.Now()) + 5*time.Second):
		t.Fatal("the scheduled item never ran")
	}
	waitFor(t, "the item acknowledged", func() bool { return e.pending(t) == 0 })
}

// An item committed 1.5 s ahead is handed at commit (within MaxDelay), held,
// and runs at its due time, not at a sweep after it; until then it is
// pending in the store.
func TestLocalWorkerRunsScheduledWorkOnTime(t *testing.T) {
	e := newRealTimeEnv(t)
	w, r := e.start(t)
	if w.MaxDelay() != work.DefaultLocalHorizon {
		t.Fatalf("MaxDelay = %s, want the horizon %s", w.MaxDelay(), work.DefaultLocalHorizon)
	}
	due := time.Now().Add(1500 * time.Millisecond)
	it := e.commit(t, due)
	r.AfterCommit(context.Background(), []work.Item{it})
	time.Sleep(500 * time.Millisecond)
	select {
	case <-e.ran:
		t.Fatal("the item ran before its due time")
	default:
	}
	if e.pending(t) != 1 {
		t.Fatal("a held item must stay in the store until it ran")
	}
	e.wantOnTime(t, due)
}

// An item committed far ahead (the lifecycle schedules up to 30 days) is left
// in the store until a sweep within the horizon hands it; then it runs on
// time. The clock of the sweep is moved to 1.5 s before the due time.
func TestSweepHandsFarFutureWorkWithinTheHorizon(t *testing.T) {
	e := newEnv(t)
	var ran atomic.Int64 // unix nanos of the run
	w := e.worker(func(context.Context, work.Item) error { ran.Store(time.Now().UnixNano()); return nil }, 1, 0)
	r := e.relay(w)
	items := e.commit("test.work", 30*24*time.Hour)
	r.AfterCommit(e.ctx, items)
	if n, err := r.Sweep(e.ctx); err != nil || n != 0 {
		t.Fatalf("Sweep 30 days ahead = (%d, %v), want nothing handed", n, err)
	}
	e.clock.Set(items[0].DueAt.Add(-1500 * time.Millisecond))
	start := time.Now()
	if n, err := r.Sweep(e.ctx); err != nil || n != 1 {
		t.Fatalf("Sweep 1.5 s ahead = (%d, %v), want the item handed", n, err)
	}
	waitFor(t, "the item ran and was acknowledged", func() bool { return ran.Load() != 0 && len(e.pending()) == 0 })
	if d := time.Unix(0, ran.Load()).Sub(start); d < 1500*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("ran %s after the sweep, want 1.5 s (its due time) to 2.5 s", d)
	}
}

// A held item is only a copy in memory: after a restart (the worker stopped
// before it was due) it is still in the store, and the next worker's sweep
// runs it on time.
func TestLocalWorkerHeldItemSurvivesARestart(t *testing.T) {
	e := newRealTimeEnv(t)
	w1, r1 := e.start(t)
	due := time.Now().Add(1500 * time.Millisecond)
	it := e.commit(t, due)
	r1.AfterCommit(context.Background(), []work.Item{it})
	w1.Stop(context.Background())
	if e.pending(t) != 1 {
		t.Fatal("the held item is not in the store after the worker stopped")
	}
	time.Sleep(time.Until(due) + 200*time.Millisecond)
	select {
	case <-e.ran:
		t.Fatal("the stopped worker ran the item")
	default:
	}
	if e.pending(t) != 1 {
		t.Fatal("the item left the store without running")
	}
	// The restart: a new worker, and the sweep that serveLocal runs at start.
	_, r2 := e.start(t)
	sweepAt := time.Now()
	if n, err := r2.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("Sweep after restart = (%d, %v), want (1, nil)", n, err)
	}
	e.wantOnTime(t, sweepAt) // overdue: at once
}

// A failed item whose retry is due within the horizon is held for it: it
// runs again after its backoff without waiting for a sweep.
func TestLocalWorkerHoldsItsRetries(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	var first, second atomic.Int64
	w := e.worker(func(context.Context, work.Item) error {
		switch runs.Add(1) {
		case 1:
			first.Store(time.Now().UnixNano())
			return errors.New("downstream 503")
		default:
			second.Store(time.Now().UnixNano())
			return nil
		}
	}, 1, 0)
	items := e.commit("test.work", 0)
	send(t, e.ctx, w, items)
	waitFor(t, "the retry ran and was acknowledged", func() bool { return second.Load() != 0 && len(e.pending()) == 0 })
	// Backoff(1) is 0.5 to 1 s.
	if d := time.Duration(second.Load() - first.Load()); d < 500*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("retry ran %s after the failure, want its backoff (0.5 to 1 s)", d)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
}

// ackCounter counts AckOutbox calls; the first one waits until release is
// closed, so that the items that finish meanwhile are acknowledged together.
type ackCounter struct {
	*boltstore.Store
	mu      sync.Mutex
	calls   []int
	release chan struct{}
}

func (a *ackCounter) AckOutbox(ctx context.Context, entries []eventstore.OutboxEntry) error {
	a.mu.Lock()
	a.calls = append(a.calls, len(entries))
	first := len(a.calls) == 1
	a.mu.Unlock()
	if first {
		<-a.release
	}
	return a.Store.AckOutbox(ctx, entries)
}

// Acknowledgements are not one transaction per item: the items that finish
// while one acknowledgement is written are acknowledged together.
func TestLocalWorkerBatchesAcknowledgements(t *testing.T) {
	e := newEnv(t)
	store := &ackCounter{Store: e.store, release: make(chan struct{})}
	var handled atomic.Int32
	w := &work.LocalWorker{Store: store, Clock: e.clock, Logger: e.logger, Workers: 4,
		Handler: handlerFunc(func(context.Context, work.Item) error { handled.Add(1); return nil })}
	w.Start()
	defer w.Stop(e.ctx)
	const n = 60
	due := make([]time.Duration, n)
	items := e.commit("test.work", due...)
	send(t, e.ctx, w, items)
	waitFor(t, "every item handled", func() bool { return handled.Load() == n })
	time.Sleep(50 * time.Millisecond) // their acknowledgements queue behind the first
	close(store.release)
	waitFor(t, "every item acknowledged", func() bool { return len(e.pending()) == 0 })
	store.mu.Lock()
	defer store.mu.Unlock()
	total := 0
	for _, c := range store.calls {
		total += c
	}
	if total != n || len(store.calls) > 3 {
		t.Fatalf("AckOutbox calls %v: want %d items in at most 3 calls", store.calls, n)
	}
}

// Capacity bounds what the worker holds; what it refuses stays in the store
// without a warning (back-pressure), and the next sweep hands it.
func TestLocalWorkerCapacity(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var handled atomic.Int32
	w := &work.LocalWorker{Store: e.store, Clock: e.clock, Logger: e.logger, Workers: 1, Capacity: 2,
		Handler: handlerFunc(func(context.Context, work.Item) error { <-release; handled.Add(1); return nil })}
	w.Start()
	defer w.Stop(e.ctx)
	r := e.relay(w)
	items := e.commit("test.work", 0, 0, 0)
	r.AfterCommit(e.ctx, items)
	if strings.Contains(e.logs.String(), "level=WARN") {
		t.Fatalf("a full worker is back-pressure, not a failure; logs = %q", e.logs.String())
	}
	if errs := w.Send(e.ctx, items[2:]); errs[0] == nil {
		t.Fatal("a worker at capacity took another item")
	}
	if n, err := r.Sweep(e.ctx); err != nil || n != 0 {
		t.Fatalf("Sweep of a full worker = (%d, %v), want (0, nil): it reads nothing", n, err)
	}
	close(release)
	waitFor(t, "the held items done", func() bool { return handled.Load() == 2 && len(e.pending()) == 1 })
	waitFor(t, "the last item handed by a sweep and done", func() bool {
		if _, err := r.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		return handled.Load() == 3 && len(e.pending()) == 0
	})
}

// TestLocalWorkerYieldsWhileBusy: while Busy reports true, at most
// BusyWorkers items run at once; once it reports false, all Workers run the
// rest, without a new Send.
func TestLocalWorkerYieldsWhileBusy(t *testing.T) {
	e := newEnv(t)
	var busy atomic.Bool
	busy.Store(true)
	var running, peak atomic.Int64
	release := make(chan struct{})
	w := &work.LocalWorker{
		Store: e.store, Clock: e.clock, Logger: e.logger, Workers: 8, BusyWorkers: 2,
		Busy: busy.Load, BusyPoll: time.Millisecond,
		Handler: handlerFunc(func(context.Context, work.Item) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			return nil
		}),
	}
	e.start(w)
	send(t, e.ctx, w, e.commit("test.work", 0, 0, 0, 0, 0, 0, 0, 0))

	waitFor(t, "two items running", func() bool { return running.Load() == 2 })
	time.Sleep(30 * time.Millisecond) // a chance for more to start, which must not
	if n := running.Load(); n != 2 {
		t.Fatalf("%d items run while busy, want BusyWorkers = 2", n)
	}

	busy.Store(false)
	waitFor(t, "all eight running once not busy", func() bool { return running.Load() == 8 })
	close(release)
	waitFor(t, "every entry acked", func() bool { return len(e.pending()) == 0 })
	if p := peak.Load(); p != 8 {
		t.Fatalf("peak concurrency %d, want 8", p)
	}
}

// TestLocalWorkerRunsTimedWorkFirst: an item taken ahead of its due time (a
// scheduled message, a retry's backoff) runs as soon as a worker is free,
// before the backlog of items taken at once, so a burst that holds the
// worker to one item at a time does not make scheduled work late
// (acceptance finding: scheduled messages went out seconds late).
func TestLocalWorkerRunsTimedWorkFirst(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var order []string
	w := &work.LocalWorker{
		Store: e.store, Clock: e.clock, Logger: e.logger, Workers: 4, BusyWorkers: 1,
		Busy: func() bool { return true }, BusyPoll: time.Millisecond,
		Handler: handlerFunc(func(_ context.Context, it work.Item) error {
			mu.Lock()
			order = append(order, it.Type)
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			return nil
		}),
	}
	e.start(w)
	backlog := make([]time.Duration, 30)
	send(t, e.ctx, w, append(e.commit("test.now", backlog...), e.commit("test.timed", 40*time.Millisecond)...))
	waitFor(t, "every entry acked", func() bool { return len(e.pending()) == 0 })
	mu.Lock()
	defer mu.Unlock()
	at := slices.Index(order, "test.timed")
	if at < 0 || at > 15 {
		t.Fatalf("the timed item ran at position %d of %d, want soon after it came due (about the 5th)", at, len(order))
	}
}

// Items that keep a remote party waiting (a provider or a webhook receiver
// that answers late or never, until their calls' deadlines) must not hold
// every worker: past SlowAfter they give their slots to new goroutines, up to
// MaxSlow at once; beyond that they keep them.
func TestLocalWorkerSlowItemsGiveUpTheirSlots(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var slowStarted, fast atomic.Int32
	w := &work.LocalWorker{
		Handler: handlerFunc(func(_ context.Context, it work.Item) error {
			if it.Type == "test.slow" {
				slowStarted.Add(1)
				<-release
				return nil
			}
			fast.Add(1)
			return nil
		}),
		Store: e.store, Clock: e.clock, Logger: e.logger, Workers: 2,
		SlowAfter: 50 * time.Millisecond, MaxSlow: 3,
	}
	e.start(w)
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()

	send(t, e.ctx, w, e.commit("test.slow", 0, 0))
	waitFor(t, "both slow items running", func() bool { return slowStarted.Load() == 2 })
	send(t, e.ctx, w, e.commit("test.fast", 0, 0, 0))
	waitFor(t, "the fast items run while both workers' first items hang", func() bool { return fast.Load() == 3 })

	// Two more slow items: one detaches (3 = MaxSlow), the other keeps its
	// slot, and a slot is left for ordinary work.
	send(t, e.ctx, w, e.commit("test.slow", 0, 0))
	waitFor(t, "four slow items running", func() bool { return slowStarted.Load() == 4 })
	time.Sleep(150 * time.Millisecond) // past SlowAfter: the detaching is done
	send(t, e.ctx, w, e.commit("test.fast", 0))
	waitFor(t, "a fast item runs in the slot left", func() bool { return fast.Load() == 4 })

	// The fifth slow item takes the last slot, and no more detach: ordinary
	// work waits for them.
	send(t, e.ctx, w, e.commit("test.slow", 0))
	waitFor(t, "five slow items running", func() bool { return slowStarted.Load() == 5 })
	send(t, e.ctx, w, e.commit("test.fast", 0))
	time.Sleep(300 * time.Millisecond)
	if n := fast.Load(); n != 4 {
		t.Fatalf("%d fast items ran with MaxSlow items detached and both slots held; want 4", n)
	}
	if n := strings.Count(e.logs.String(), "detached ones at their cap"); n != 1 {
		t.Fatalf("the cap was logged %d times, want once:\n%s", n, e.logs.String())
	}

	close(release)
	released = true
	waitFor(t, "every item ran and was acknowledged", func() bool { return fast.Load() == 5 && len(e.pending()) == 0 })
}
