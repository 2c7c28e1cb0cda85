package work_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// afterCommits records what a runner hands to the relay.
type afterCommits struct {
	mu      sync.Mutex
	entries []work.Item
}

func (a *afterCommits) add(_ context.Context, entries []eventstore.OutboxEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, entries...)
}

func (e *env) executor(reg *work.Registry, after func(context.Context, []eventstore.OutboxEntry)) *work.Executor {
	return &work.Executor{
		Handlers: reg,
		Runner:   &uow.Runner{Store: e.store, AfterCommit: after, Logger: e.logger},
		Clock:    e.clock, Logger: e.logger,
	}
}

// appendEvent is a handler that appends an event with a new id to the stream
// "counter" at its current version, on every run.
func (e *env) appendEvent(ctx context.Context, it work.Item) error {
	evs, err := e.store.ReadStream(ctx, it.TenantID, "counter", 1, 0)
	if err != nil {
		return err
	}
	return eventstore.Write(ctx, e.store, &eventstore.Commit{TenantID: it.TenantID, Appends: []eventstore.StreamAppend{{
		StreamID: "counter", ExpectedVersion: int64(len(evs)),
		Events: []eventstore.Event{{ID: e.ids.New(ids.Event), Type: "test.counted", SchemaVersion: 1, OccurredAt: t0, Data: json.RawMessage(`{}`)}},
	}}})
}

func TestExecutorRunsAnItemOnce(t *testing.T) {
	e := newEnv(t)
	reg := work.NewRegistry()
	runs := 0
	reg.Register("test.count", func(ctx context.Context, it work.Item) error { runs++; return e.appendEvent(ctx, it) })
	x := e.executor(reg, nil)
	it := e.commit("test.count", 0)[0]
	for i := 0; i < 2; i++ {
		if err := x.Execute(e.ctx, it); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	evs, err := e.store.ReadStream(e.ctx, e.tenant, "counter", 1, 0)
	if err != nil || len(evs) != 1 || runs != 2 {
		t.Fatalf("stream = %d events (%v) after %d runs, want 1 event after 2 runs", len(evs), err, runs)
	}
	rec, err := e.store.GetIdempotency(e.ctx, e.tenant, work.DedupeKey(it.ID))
	if err != nil || rec.Fingerprint != "test.count" || rec.Status != 200 || !rec.CreatedAt.Equal(t0) ||
		!rec.ExpiresAt.Equal(t0.Add(work.DefaultDedupeTTL)) {
		t.Fatalf("dedupe record = (%+v, %v)", rec, err)
	}
	if !strings.Contains(e.logs.String(), "already ran") {
		t.Fatalf("logs = %q, want the duplicate logged", e.logs.String())
	}
	// Another item of the same type is not a duplicate.
	other := e.commit("test.count", 0)[0]
	if err := x.Execute(e.ctx, other); err != nil {
		t.Fatal(err)
	}
	if evs, _ := e.store.ReadStream(e.ctx, e.tenant, "counter", 1, 0); len(evs) != 2 {
		t.Fatalf("stream = %d events, want 2", len(evs))
	}
}

// A type registered with RegisterIdempotent commits its handler's writes
// without a dedupe record; its handler, conditioned on the state that makes
// the work due, still commits once however often the item runs, also when
// two runs overlap (the second conflicts, runs again and stages nothing).
func TestExecutorIdempotentTypeWritesNoDedupeRecord(t *testing.T) {
	e := newEnv(t)
	reg := work.NewRegistry()
	var mu sync.Mutex
	runs := 0
	arrived, release := make(chan struct{}), make(chan struct{})
	reg.RegisterIdempotent("test.once", func(ctx context.Context, it work.Item) error {
		mu.Lock()
		runs++
		first := runs <= 2
		mu.Unlock()
		evs, err := e.store.ReadStream(ctx, it.TenantID, "once", 1, 0)
		if err != nil || len(evs) > 0 {
			return err // done already: stage nothing
		}
		if first { // the two first runs read the empty stream before either commits
			arrived <- struct{}{}
			<-release
		}
		return eventstore.Write(ctx, e.store, &eventstore.Commit{TenantID: it.TenantID, Appends: []eventstore.StreamAppend{{
			StreamID: "once", ExpectedVersion: 0,
			Events: []eventstore.Event{{ID: e.ids.New(ids.Event), Type: "test.done", SchemaVersion: 1, OccurredAt: t0, Data: json.RawMessage(`{}`)}},
		}}})
	})
	if !reg.Idempotent("test.once") || reg.Idempotent("test.other") {
		t.Fatal("Idempotent does not report the registration")
	}
	x := e.executor(reg, nil)
	it := e.commit("test.once", 0)[0]
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- x.Execute(e.ctx, it) }()
	}
	<-arrived
	<-arrived
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("overlapping run: %v", err)
		}
	}
	if err := x.Execute(e.ctx, it); err != nil { // a late redelivery
		t.Fatal(err)
	}
	evs, err := e.store.ReadStream(e.ctx, e.tenant, "once", 1, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("stream = %d events (%v), want 1", len(evs), err)
	}
	if runs != 4 { // two overlapping, the conflicting one again, the redelivery
		t.Fatalf("runs = %d, want 4", runs)
	}
	if rec, err := e.store.GetIdempotency(e.ctx, e.tenant, work.DedupeKey(it.ID)); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("dedupe record = (%+v, %v), want none", rec, err)
	}
}

func TestExecutorInvocationContext(t *testing.T) {
	e := newEnv(t)
	reg := work.NewRegistry()
	var seen []*invocation.Context
	reg.Register("test.ctx", func(ctx context.Context, _ work.Item) error { seen = append(seen, invocation.From(ctx)); return nil })
	x := e.executor(reg, nil)
	it := e.commit("test.ctx", 0)[0]
	if err := x.Execute(e.ctx, it); err != nil {
		t.Fatal(err)
	}
	router := invocation.FromMeta(it.Invocation, "sqs", it.TenantID)
	if err := x.Handle(invocation.With(e.ctx, router), it); err != nil {
		t.Fatal(err)
	}
	if c := seen[0]; c.Trigger != work.TriggerWorker || c.InvocationID != it.Invocation.InvocationID ||
		c.TenantID() != e.tenant || c.Principal.Kind != invocation.KindSystem {
		t.Fatalf("ctx without an invocation = %+v, want the cause's as the system, trigger worker", c)
	}
	if seen[1] != router {
		t.Fatalf("ctx with an invocation = %+v, want it kept", seen[1])
	}
}

func TestExecutorFailures(t *testing.T) {
	e := newEnv(t)
	reg := work.NewRegistry()
	boom := errors.New("boom")
	reg.Register("test.fail", func(ctx context.Context, it work.Item) error {
		if err := e.appendEvent(ctx, it); err != nil {
			return err
		}
		return boom
	})
	reg.Register("test.panic", func(context.Context, work.Item) error { panic("nil map write") })
	x := e.executor(reg, nil)
	fail := e.commit("test.fail", 0)[0]
	if err := x.Execute(e.ctx, fail); !errors.Is(err, boom) {
		t.Fatalf("Execute = %v, want the handler's error", err)
	}
	if evs, _ := e.store.ReadStream(e.ctx, e.tenant, "counter", 1, 0); len(evs) != 0 {
		t.Fatal("a failed handler's writes were committed")
	}
	if _, err := e.store.GetIdempotency(e.ctx, e.tenant, work.DedupeKey(fail.ID)); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("dedupe record of a failed run: %v, want none", err)
	}
	if err := x.Execute(e.ctx, e.commit("test.panic", 0)[0]); !errors.Is(err, uow.ErrPanic) {
		t.Fatalf("Execute = %v, want uow.ErrPanic", err)
	}
	if err := x.Execute(e.ctx, work.Item{ID: "wrk_x", TenantID: e.tenant, Type: "test.nobody"}); !errors.Is(err, work.ErrUnknownType) {
		t.Fatalf("Execute = %v, want ErrUnknownType", err)
	}
}

func TestExecutorHandsCommittedWorkToTheRelay(t *testing.T) {
	e := newEnv(t)
	reg := work.NewRegistry()
	next := work.Item{ID: e.ids.New(ids.Work), TenantID: e.tenant, Type: "test.next", DueAt: t0, Payload: json.RawMessage(`{}`)}
	reg.Register("test.chain", func(ctx context.Context, it work.Item) error {
		return eventstore.Write(ctx, e.store, &eventstore.Commit{TenantID: it.TenantID, Outbox: []work.Item{next}})
	})
	var after afterCommits
	x := e.executor(reg, after.add)
	if err := x.Execute(e.ctx, e.commit("test.chain", 0)[0]); err != nil {
		t.Fatal(err)
	}
	if len(after.entries) != 1 || after.entries[0].ID != next.ID {
		t.Fatalf("handed %v, want the committed entry", idsOf(after.entries))
	}
	if _, ok := e.stored(next.ID); !ok {
		t.Fatal("the committed entry is not in the outbox")
	}
}

// Run twice through a transport (the sweep re-hands an item that ran but
// was not acknowledged: a crash between the commit and the ack): one event.
func TestLocalWorkerWithExecutorRunsADuplicateOnce(t *testing.T) {
	e := newEnv(t)
	reg := work.NewRegistry()
	reg.Register("test.count", e.appendEvent)
	x := e.executor(reg, nil)
	it := e.commit("test.count", 0)[0]
	if err := x.Execute(e.ctx, it); err != nil { // the run whose ack was lost
		t.Fatal(err)
	}
	w := &work.LocalWorker{Handler: x, Store: e.store, Clock: e.clock, Logger: e.logger, Workers: 1}
	w.Start()
	defer w.Stop(e.ctx)
	send(t, e.ctx, w, []work.Item{it})
	waitFor(t, "entry acked", func() bool { _, ok := e.stored(it.ID); return !ok })
	if evs, _ := e.store.ReadStream(e.ctx, e.tenant, "counter", 1, 0); len(evs) != 1 {
		t.Fatalf("stream = %d events, want 1", len(evs))
	}
}

func TestInlineRecoversAPanickingHandler(t *testing.T) {
	e := newEnv(t)
	reg := work.NewRegistry()
	reg.Register("test.panic", func(context.Context, work.Item) error { panic("nil map write") })
	reg.Register("test.work", func(context.Context, work.Item) error { return nil })
	tr := &work.Inline{Handler: e.executor(reg, nil), Store: e.store, Clock: e.clock, Logger: e.logger}
	bad, good := e.commit("test.panic", 0)[0], e.commit("test.work", 0)[0]
	results := tr.Send(e.ctx, []work.Item{bad, good})
	if !errors.Is(results[0], uow.ErrPanic) || results[1] != nil {
		t.Fatalf("Send = %v, want the panic as the first item's error only", results)
	}
	got, ok := e.stored(bad.ID)
	if !ok {
		t.Fatal("the panicking item was acknowledged")
	}
	assertRescheduled(t, got, 1)
	if !strings.Contains(got.LastError, "nil map write") {
		t.Fatalf("LastError = %q, want the panic", got.LastError)
	}
	if _, ok := e.stored(good.ID); ok {
		t.Fatal("the item after the panic was not run")
	}
}

// Inline without an Executor recovers too.
func TestInlineRecoversAPanicOfAnyHandler(t *testing.T) {
	e := newEnv(t)
	tr := e.inline(func(context.Context, work.Item) error { panic("boom") })
	it := e.commit("test.work", 0)[0]
	if results := tr.Send(e.ctx, []work.Item{it}); !errors.Is(results[0], work.ErrPanic) {
		t.Fatalf("Send = %v, want work.ErrPanic", results)
	}
	if got, _ := e.stored(it.ID); got.Attempt != 1 {
		t.Fatalf("stored = %+v, want rescheduled", got)
	}
}

func (e *env) requeuer(after func(context.Context, []eventstore.OutboxEntry)) *work.Requeuer {
	return &work.Requeuer{Runner: &uow.Runner{Store: e.store, AfterCommit: after}, Store: e.store, Clock: e.clock, Logger: e.logger}
}

func TestRequeuerPutsTheItemBackWithBackoff(t *testing.T) {
	e := newEnv(t)
	it := e.commit("test.work", 0)[0]
	if err := e.store.AckOutbox(e.ctx, []work.Item{it}); err != nil { // handed to SQS
		t.Fatal(err)
	}
	var after afterCommits
	q := e.requeuer(after.add)
	it.Attempt = 3
	if err := q.RetryLater(e.ctx, it, errors.New("provider 503")); err != nil {
		t.Fatal(err)
	}
	got, ok := e.stored(it.ID)
	if !ok || got.LastError != "provider 503" || string(got.Payload) != string(it.Payload) {
		t.Fatalf("stored = %+v (found %v)", got, ok)
	}
	assertRescheduled(t, got, 3)
	if len(after.entries) != 1 || !after.entries[0].DueAt.Equal(got.DueAt) {
		t.Fatalf("handed to the relay: %+v, want the requeued entry", after.entries)
	}
	// Still pending (its ack failed): rescheduled in place.
	got.Attempt = 4
	if err := q.RetryLater(e.ctx, got, errors.New("again")); err != nil {
		t.Fatal(err)
	}
	again, _ := e.stored(it.ID)
	assertRescheduled(t, again, 4)
	if again.LastError != "again" {
		t.Fatalf("LastError = %q", again.LastError)
	}
}

func TestRequeuerParksAtMaxAttempts(t *testing.T) {
	e := newEnv(t)
	it := e.commit("test.work", 0)[0]
	_ = e.store.AckOutbox(e.ctx, []work.Item{it})
	var after afterCommits
	q := e.requeuer(after.add)
	it.Attempt = work.DefaultMaxAttempts
	if err := q.RetryLater(e.ctx, it, errors.New("poison")); err != nil {
		t.Fatal(err)
	}
	got, ok := e.stored(it.ID)
	if !ok || !got.DueAt.Equal(eventstore.ParkedAt) || got.Attempt != work.DefaultMaxAttempts || got.LastError != "poison" {
		t.Fatalf("stored = %+v (found %v), want parked", got, ok)
	}
	if !strings.Contains(e.logs.String(), "parked") {
		t.Fatalf("logs = %q, want the parking logged", e.logs.String())
	}
}

// ackingStore acknowledges the handed entry just before rescheduling it: the
// relay's late acknowledgement landing between the requeue's conflict and
// its reschedule (review finding: the item was then lost).
type ackingStore struct {
	*boltstore.Store
	handed work.Item
}

func (s *ackingStore) RescheduleOutbox(ctx context.Context, e eventstore.OutboxEntry) error {
	if err := s.Store.AckOutbox(ctx, []work.Item{s.handed}); err != nil {
		return err
	}
	return s.Store.RescheduleOutbox(ctx, e)
}

func TestRequeuerKeepsAnItemAcknowledgedBeforeItsReschedule(t *testing.T) {
	e := newEnv(t)
	handed := e.commit("test.work", 0)[0] // still pending: the requeue's commit conflicts
	q := &work.Requeuer{Runner: &uow.Runner{Store: e.store}, Store: &ackingStore{Store: e.store, handed: handed}, Clock: e.clock}
	it := handed
	it.Attempt = 1
	if err := q.RetryLater(e.ctx, it, errors.New("provider 503")); err != nil {
		t.Fatal(err)
	}
	got, ok := e.stored(it.ID)
	if !ok || got.LastError != "provider 503" {
		t.Fatalf("stored = %+v (found %v): the item was lost", got, ok)
	}
	assertRescheduled(t, got, 1)
}

func TestRequeuerReportsAStoreFailure(t *testing.T) {
	e := newEnv(t)
	it := e.commit("test.work", 0)[0] // still pending: the commit conflicts
	down := errors.New("store unavailable")
	q := &work.Requeuer{Runner: &uow.Runner{Store: e.store}, Store: &faultyStore{Store: e.store, rescheduleErr: down}, Clock: e.clock}
	it.Attempt = 1
	if err := q.RetryLater(e.ctx, it, errors.New("x")); !errors.Is(err, down) {
		t.Fatalf("RetryLater = %v, want the store's error", err)
	}
	noStore := &work.Requeuer{Runner: &uow.Runner{Store: e.store}, Clock: e.clock}
	if err := noStore.RetryLater(e.ctx, it, errors.New("x")); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("RetryLater = %v, want the conflict", err)
	}
}
