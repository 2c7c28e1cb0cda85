package work_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// ---- shared fixtures ----

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// lockedBuffer is a log sink that worker goroutines may write concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a real bbolt store with a fixed clock, deterministic ids and a log capture.
type env struct {
	t      *testing.T
	ctx    context.Context
	store  *boltstore.Store
	clock  *clock.Fixed
	ids    *ids.Sequence
	tenant string
	logs   *lockedBuffer
	logger *slog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := clock.NewFixed(t0)
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "db"), boltstore.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	seq := ids.NewSequence(t0)
	logs := &lockedBuffer{}
	return &env{
		t: t, ctx: ctx, store: s, clock: clk, ids: seq, tenant: seq.New(ids.Tenant),
		logs: logs, logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// commit commits one outbox entry per due offset (from t0) and returns them as stored.
func (e *env) commit(typ string, due ...time.Duration) []work.Item {
	e.t.Helper()
	items := make([]work.Item, len(due))
	for i, d := range due {
		items[i] = work.Item{
			ID: e.ids.New(ids.Work), TenantID: e.tenant, Type: typ,
			Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), DueAt: t0.Add(d),
			Invocation: invocation.Meta{InvocationID: e.ids.New(ids.Invocation), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Principal: "operator"},
		}
	}
	if err := e.store.Commit(e.ctx, &eventstore.Commit{TenantID: e.tenant, Outbox: items}); err != nil {
		e.t.Fatalf("commit outbox: %v", err)
	}
	return items
}

// pending lists every stored outbox entry, parked ones (last) included.
func (e *env) pending() []work.Item {
	e.t.Helper()
	parked, err := e.store.ParkedOutbox(e.ctx, 1000)
	if err != nil {
		e.t.Fatalf("parked outbox: %v", err)
	}
	return append(e.pendingBy(eventstore.ParkedAt), parked...)
}

func (e *env) pendingBy(dueBy time.Time) []work.Item {
	e.t.Helper()
	items, err := e.store.PendingOutbox(e.ctx, dueBy, 1000)
	if err != nil {
		e.t.Fatalf("pending outbox: %v", err)
	}
	return items
}

// stored returns the stored entry with id, or false when it was acknowledged.
func (e *env) stored(id string) (work.Item, bool) {
	e.t.Helper()
	for _, it := range e.pending() {
		if it.ID == id {
			return it, true
		}
	}
	return work.Item{}, false
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func idsOf(items []work.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func sortedIDs(items []work.Item) []string {
	out := idsOf(items)
	sort.Strings(out)
	return out
}

// handlerFunc adapts a function to the Handler interface of the transports.
type handlerFunc func(context.Context, work.Item) error

func (f handlerFunc) Handle(ctx context.Context, it work.Item) error { return f(ctx, it) }

// send hands items to tr and fails the test unless every result is nil.
func send(t *testing.T, ctx context.Context, tr work.Transport, items []work.Item) {
	t.Helper()
	results := tr.Send(ctx, items)
	if len(results) != len(items) {
		t.Fatalf("Send answered %d results for %d items", len(results), len(items))
	}
	for i, err := range results {
		if err != nil {
			t.Fatalf("Send: item %s: %v", items[i].ID, err)
		}
	}
}

// faultyStore is the real store with injected outbox failures.
type faultyStore struct {
	*boltstore.Store
	rescheduleErr error
	ackNoop       bool // AckOutbox succeeds without removing anything
	maxPage       int  // > 0: PendingOutbox answers at most this many entries
	maxParked     int  // > 0: ParkedOutbox answers at most this many entries
	mu            sync.Mutex
	reschedules   int
}

func (f *faultyStore) RescheduleOutbox(ctx context.Context, e eventstore.OutboxEntry) error {
	f.mu.Lock()
	f.reschedules++
	f.mu.Unlock()
	if f.rescheduleErr != nil {
		return f.rescheduleErr
	}
	return f.Store.RescheduleOutbox(ctx, e)
}

func (f *faultyStore) PendingOutbox(ctx context.Context, dueBy time.Time, limit int) ([]eventstore.OutboxEntry, error) {
	if f.maxPage > 0 {
		limit = min(limit, f.maxPage)
	}
	return f.Store.PendingOutbox(ctx, dueBy, limit)
}

func (f *faultyStore) ParkedOutbox(ctx context.Context, limit int) ([]eventstore.OutboxEntry, error) {
	if f.maxParked > 0 {
		limit = min(limit, f.maxParked)
	}
	return f.Store.ParkedOutbox(ctx, limit)
}

func (f *faultyStore) AckOutbox(ctx context.Context, entries []eventstore.OutboxEntry) error {
	if f.ackNoop {
		return nil
	}
	return f.Store.AckOutbox(ctx, entries)
}

// ---- Registry ----

func TestRegistry(t *testing.T) {
	r := work.NewRegistry()
	var got []string
	r.Register("b.work", func(_ context.Context, it work.Item) error { got = append(got, "b:"+it.ID); return nil })
	boom := errors.New("boom")
	r.Register("a.work", func(_ context.Context, it work.Item) error { got = append(got, "a:"+it.ID); return boom })

	ctx := context.Background()
	if err := r.Handle(ctx, work.Item{ID: "wrk_1", Type: "b.work"}); err != nil {
		t.Fatalf("Handle b.work: %v", err)
	}
	if err := r.Handle(ctx, work.Item{ID: "wrk_2", Type: "a.work"}); !errors.Is(err, boom) {
		t.Fatalf("Handle a.work: err = %v, want the handler's error", err)
	}
	if want := []string{"b:wrk_1", "a:wrk_2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	err := r.Handle(ctx, work.Item{ID: "wrk_3", Type: "c.work"})
	if !errors.Is(err, work.ErrUnknownType) || !strings.Contains(err.Error(), "wrk_3") || !strings.Contains(err.Error(), "c.work") {
		t.Fatalf("unknown type: err = %v, want ErrUnknownType naming the item and type", err)
	}
	if want := []string{"a.work", "b.work"}; !reflect.DeepEqual(r.Types(), want) {
		t.Fatalf("Types() = %v, want %v", r.Types(), want)
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	f()
}

func TestRegistryDuplicatePanics(t *testing.T) {
	r := work.NewRegistry()
	r.Register("a.work", func(context.Context, work.Item) error { return nil })
	mustPanic(t, "registering a type twice", func() {
		r.Register("a.work", func(context.Context, work.Item) error { return nil })
	})
}

// ---- Jobs ----

func TestJobs(t *testing.T) {
	j := work.NewJobs()
	ran := map[string]int{}
	fail := errors.New("fail")
	j.Register("zeta", func(context.Context) error { ran["zeta"]++; return nil })
	j.Register("alpha", func(context.Context) error { ran["alpha"]++; return fail })
	ctx := context.Background()
	if err := j.Run(ctx, "zeta"); err != nil {
		t.Fatalf("Run zeta: %v", err)
	}
	if err := j.Run(ctx, "alpha"); !errors.Is(err, fail) {
		t.Fatalf("Run alpha: err = %v, want the job's error", err)
	}
	if err := j.Run(ctx, "nope"); !errors.Is(err, work.ErrUnknownJob) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("Run unknown: err = %v, want ErrUnknownJob naming the job", err)
	}
	if want := map[string]int{"zeta": 1, "alpha": 1}; !reflect.DeepEqual(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	if want := []string{"alpha", "zeta"}; !reflect.DeepEqual(j.Names(), want) {
		t.Fatalf("Names() = %v, want %v", j.Names(), want)
	}
	mustPanic(t, "registering a job twice", func() { j.Register("zeta", func(context.Context) error { return nil }) })
}

// ---- Subscriptions ----

func TestSubscriptionsDeliverToAll(t *testing.T) {
	s := work.NewSubscriptions()
	var got []string
	s.Subscribe("tenancy.tenant-onboarded", func(_ context.Context, ev work.IntegrationEvent) error {
		got = append(got, "first:"+ev.ID)
		return nil
	})
	s.Subscribe("tenancy.tenant-onboarded", func(_ context.Context, ev work.IntegrationEvent) error {
		got = append(got, "second:"+ev.ID)
		return nil
	})
	s.Subscribe("other.type", func(context.Context, work.IntegrationEvent) error {
		got = append(got, "other")
		return nil
	})
	ev := work.IntegrationEvent{ID: "evt_1", Type: "tenancy.tenant-onboarded", Source: "switchboard.tenancy", Time: t0}
	if err := s.Deliver(context.Background(), ev); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if want := []string{"first:evt_1", "second:evt_1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("delivered %v, want %v (in subscription order, only to subscribers of the type)", got, want)
	}
}

func TestSubscriptionsFirstErrorAfterAllRan(t *testing.T) {
	s := work.NewSubscriptions()
	errA, errB := errors.New("a failed"), errors.New("b failed")
	var ran []string
	s.Subscribe("x", func(context.Context, work.IntegrationEvent) error { ran = append(ran, "a"); return errA })
	s.Subscribe("x", func(context.Context, work.IntegrationEvent) error { ran = append(ran, "b"); return errB })
	s.Subscribe("x", func(context.Context, work.IntegrationEvent) error { ran = append(ran, "c"); return nil })
	err := s.Deliver(context.Background(), work.IntegrationEvent{ID: "evt_1", Type: "x"})
	if !errors.Is(err, errA) || errors.Is(err, errB) {
		t.Fatalf("Deliver: err = %v, want the first error only", err)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(ran, want) {
		t.Fatalf("ran %v, want every subscriber %v", ran, want)
	}
}

func TestSubscriptionsNoSubscriber(t *testing.T) {
	s := work.NewSubscriptions()
	s.Subscribe("x", func(context.Context, work.IntegrationEvent) error { return nil })
	err := s.Deliver(context.Background(), work.IntegrationEvent{ID: "evt_1", Type: "y"})
	if !errors.Is(err, work.ErrNoSubscriber) || !strings.Contains(err.Error(), `"y"`) {
		t.Fatalf("Deliver of an unsubscribed type: err = %v, want ErrNoSubscriber naming it", err)
	}
}

// ---- Backoff ----

func TestBackoffBounds(t *testing.T) {
	for i := 0; i < 200; i++ {
		if d := work.Backoff(1); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("Backoff(1) = %v, want in [0.5s, 1s]", d)
		}
		if d := work.Backoff(3); d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("Backoff(3) = %v, want in [2s, 4s]", d)
		}
		if d := work.Backoff(9); d < 128*time.Second || d > 256*time.Second {
			t.Fatalf("Backoff(9) = %v, want in [128s, 256s]", d)
		}
		for _, a := range []int{10, 11, 64, 1000, math.MaxInt} {
			if d := work.Backoff(a); d < 150*time.Second || d > 5*time.Minute {
				t.Fatalf("Backoff(%d) = %v, want in [2.5m, 5m]", a, d)
			}
		}
		// Out-of-range attempts never panic or go negative.
		for _, a := range []int{0, -1, math.MinInt} {
			if d := work.Backoff(a); d < 0 || d > 5*time.Minute {
				t.Fatalf("Backoff(%d) = %v, want in [0, 5m]", a, d)
			}
		}
	}
	for a := 1; a <= 100; a++ {
		if d := work.Backoff(a); d <= 0 || d > 5*time.Minute {
			t.Fatalf("Backoff(%d) = %v, want in (0, 5m]", a, d)
		}
	}
}

func TestBackoffJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		seen[work.Backoff(5)] = true
	}
	if len(seen) < 2 {
		t.Fatal("Backoff(5) returned one value 50 times: no jitter")
	}
}
