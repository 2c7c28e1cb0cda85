package work_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// fakeBus records the events put on it; fail decides, per put (from 1), the
// error of an event.
type fakeBus struct {
	mu   sync.Mutex
	puts []work.IntegrationEvent
	fail func(n int, ev work.IntegrationEvent) error
}

func (b *fakeBus) Put(_ context.Context, evs []work.IntegrationEvent) []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]error, len(evs))
	for i, ev := range evs {
		b.puts = append(b.puts, ev)
		if b.fail != nil {
			out[i] = b.fail(len(b.puts), ev)
		}
	}
	return out
}

func (b *fakeBus) put() []work.IntegrationEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]work.IntegrationEvent(nil), b.puts...)
}

// busPath is the work path of Lambda mode without a queue, on a real store:
// an Executor whose runner hands its commits to a relay with an Inline
// transport, PublishType forwarding to bus, BusType putting on it.
type busPath struct {
	e     *env
	relay *work.Relay
	bus   *fakeBus
	// delivered counts the subscriber's runs; its writes (one event each on
	// the stream "counter") count the runs that committed.
	mu        sync.Mutex
	delivered []string
	subErr    error
}

func newBusPath(t *testing.T, forward bool) *busPath {
	e := newEnv(t)
	p := &busPath{e: e, bus: &fakeBus{}}
	subs := work.NewSubscriptions()
	subs.Subscribe("message.delivered", func(ctx context.Context, ev work.IntegrationEvent) error {
		p.mu.Lock()
		p.delivered = append(p.delivered, ev.ID)
		err := p.subErr
		p.mu.Unlock()
		if err != nil {
			return err
		}
		return e.appendEvent(ctx, work.Item{TenantID: ev.TenantID})
	})
	reg := work.NewRegistry()
	if forward {
		reg.Register(work.PublishType, subs.ForwardingPublishHandler(work.BusForward{Store: e.store, IDs: e.ids, Clock: e.clock}))
	} else {
		reg.Register(work.PublishType, subs.PublishHandler())
	}
	reg.Register(work.BusType, work.BusHandler(p.bus))
	runner := &uow.Runner{Store: e.store, Logger: e.logger}
	exec := &work.Executor{Handlers: reg, Runner: runner, Clock: e.clock, Logger: e.logger}
	p.relay = &work.Relay{Store: e.store, Clock: e.clock, Logger: e.logger,
		Transport: &work.Inline{Handler: exec, Store: e.store, Clock: e.clock, Logger: e.logger}}
	runner.AfterCommit = p.relay.AfterCommit
	return p
}

// publish commits the publication of one event (as a module's commit does)
// and hands it to the relay; it returns the event and its outbox entry.
func (p *busPath) publish(t *testing.T, typ string) (work.IntegrationEvent, eventstore.OutboxEntry) {
	t.Helper()
	e := p.e
	ev := work.IntegrationEvent{
		ID: e.ids.New(ids.Event), Source: "switchboard.messaging", Type: typ, TenantID: e.tenant, Time: t0,
		Detail: json.RawMessage(`{"tenantId":"` + e.tenant + `","data":{"text":"<b>hi</b> & bye"}}`),
	}
	entry, err := work.Publication(e.ids.New(ids.Work), ev, t0)
	if err != nil {
		t.Fatal(err)
	}
	entry.Invocation = invocation.Meta{InvocationID: e.ids.New(ids.Invocation), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Principal: "system"}
	if err := e.store.Commit(e.ctx, &eventstore.Commit{TenantID: e.tenant, Outbox: []eventstore.OutboxEntry{entry}}); err != nil {
		t.Fatal(err)
	}
	p.relay.AfterCommit(e.ctx, []work.Item{entry})
	return ev, entry
}

func (p *busPath) deliveries() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.delivered...)
}

// committedDeliveries is how many subscriber runs committed their writes.
func (p *busPath) committedDeliveries(t *testing.T) int {
	t.Helper()
	evs, err := p.e.store.ReadStream(p.e.ctx, p.e.tenant, "counter", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// sweepAfter advances the clock by d and sweeps (what the sweep job does);
// the sweep fails when the items it handed all failed.
func (p *busPath) sweepAfter(d time.Duration) error {
	p.e.clock.Advance(d)
	_, err := p.relay.Sweep(p.e.ctx)
	return err
}

// The publish item delivers to the subscribers and hands the event to the
// bus through a BusType item of its own: the same payload, tenant and
// invocation; the bus gets the event exactly as published.
func TestForwardingPublishPutsTheEventOnTheBus(t *testing.T) {
	p := newBusPath(t, true)
	ev, entry := p.publish(t, "message.delivered")
	if got := p.deliveries(); !reflect.DeepEqual(got, []string{ev.ID}) || p.committedDeliveries(t) != 1 {
		t.Fatalf("subscriber runs %v (%d committed), want one", got, p.committedDeliveries(t))
	}
	puts := p.bus.put()
	if len(puts) != 1 {
		t.Fatalf("%d puts, want 1", len(puts))
	}
	got, _ := json.Marshal(puts[0])
	want, _ := json.Marshal(ev)
	if string(got) != string(want) {
		t.Fatalf("put %s, want the published event %s", got, want)
	}
	if left := p.e.pending(); len(left) != 0 {
		t.Fatalf("outbox after the work: %v, want empty", idsOf(left))
	}
	// The BusType item was committed with the publish item's dedupe record.
	if _, err := p.e.store.GetIdempotency(p.e.ctx, p.e.tenant, work.DedupeKey(entry.ID)); err != nil {
		t.Fatalf("dedupe record of the publish item: %v", err)
	}
}

// BusItem carries the publish item's payload, tenant and invocation.
func TestBusItem(t *testing.T) {
	it := work.Item{ID: "wrk_1", TenantID: "tnt_1", Type: work.PublishType, Payload: json.RawMessage(`{"id":"evt_1"}`),
		DueAt: t0, Attempt: 3, LastError: "x", Invocation: invocation.Meta{InvocationID: "inv_1", Principal: "system"}}
	got := work.BusItem("wrk_2", it, t0.Add(time.Minute))
	want := work.Item{ID: "wrk_2", TenantID: "tnt_1", Type: work.BusType, Payload: it.Payload, DueAt: t0.Add(time.Minute),
		Invocation: it.Invocation}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("BusItem = %+v, want %+v", got, want)
	}
}

// A failing bus is retried as its own item (backoff, then the sweep) and
// never runs the subscribers (webhooks) again; each put carries the same
// event id.
func TestBusFailureDoesNotRedeliverToSubscribers(t *testing.T) {
	p := newBusPath(t, true)
	down := errors.New("eventbridge: ThrottlingException")
	p.bus.fail = func(n int, _ work.IntegrationEvent) error {
		if n <= 2 {
			return down
		}
		return nil
	}
	ev, entry := p.publish(t, "message.delivered")
	left := p.e.pending()
	if len(left) != 1 || left[0].Type != work.BusType || left[0].Attempt != 1 || !strings.Contains(left[0].LastError, "ThrottlingException") ||
		string(left[0].Payload) != string(entry.Payload) || left[0].Invocation != entry.Invocation {
		t.Fatalf("outbox after a failed put: %+v, want the BusType item rescheduled (attempt 1, the error)", left)
	}
	// Backoff(1) <= 1 s: the second put fails too (and so does the sweep
	// that handed only it); Backoff(2) <= 2 s: the third succeeds.
	if err := p.sweepAfter(5 * time.Second); !errors.Is(err, down) {
		t.Fatalf("sweep while the bus is down: %v", err)
	}
	if err := p.sweepAfter(5 * time.Second); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if left := p.e.pending(); len(left) != 0 {
		t.Fatalf("outbox after the bus recovered: %+v", left)
	}
	puts := p.bus.put()
	if len(puts) != 3 {
		t.Fatalf("%d puts, want 3", len(puts))
	}
	for _, put := range puts {
		if put.ID != ev.ID {
			t.Fatalf("put event id %s, want %s on every attempt", put.ID, ev.ID)
		}
	}
	if got := p.deliveries(); len(got) != 1 || p.committedDeliveries(t) != 1 {
		t.Fatalf("subscriber ran %d times (%d committed) while the bus failed, want once", len(got), p.committedDeliveries(t))
	}
}

// A publish item that runs again (the sweep races the relay, SQS
// redelivers) commits neither the subscribers' writes nor the bus item
// twice.
func TestPublishItemRunTwiceForwardsOnce(t *testing.T) {
	p := newBusPath(t, true)
	_, entry := p.publish(t, "message.delivered")
	// A redelivery of the same item, after it was done.
	if err := p.relay.Transport.Send(p.e.ctx, []work.Item{entry})[0]; err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if n := len(p.bus.put()); n != 1 {
		t.Fatalf("%d puts after a redelivered publish item, want 1", n)
	}
	if p.committedDeliveries(t) != 1 {
		t.Fatalf("%d subscriber commits, want 1", p.committedDeliveries(t))
	}
}

// When a subscriber fails, nothing is committed: no bus item either; the
// retried publish item does both.
func TestSubscriberFailureForwardsNothingUntilItSucceeds(t *testing.T) {
	p := newBusPath(t, true)
	p.subErr = errors.New("store down")
	p.publish(t, "message.delivered")
	left := p.e.pending()
	if len(left) != 1 || left[0].Type != work.PublishType || len(p.bus.put()) != 0 {
		t.Fatalf("outbox %+v, puts %d: want the publish item rescheduled and nothing put", left, len(p.bus.put()))
	}
	p.mu.Lock()
	p.subErr = nil
	p.mu.Unlock()
	if err := p.sweepAfter(5 * time.Second); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if len(p.bus.put()) != 1 || p.committedDeliveries(t) != 1 || len(p.e.pending()) != 0 {
		t.Fatalf("after the retry: %d puts, %d subscriber commits, outbox %v", len(p.bus.put()), p.committedDeliveries(t), idsOf(p.e.pending()))
	}
}

// An event type without subscribers still goes on the bus.
func TestForwardingPublishWithoutSubscriber(t *testing.T) {
	p := newBusPath(t, true)
	ev, _ := p.publish(t, "tenancy.tenant-onboarded")
	if puts := p.bus.put(); len(puts) != 1 || puts[0].ID != ev.ID || len(p.deliveries()) != 0 {
		t.Fatalf("puts %v, deliveries %v", puts, p.deliveries())
	}
}

// PublishHandler (no bus configured, local mode) forwards nothing.
func TestPublishHandlerDoesNotForward(t *testing.T) {
	p := newBusPath(t, false)
	p.publish(t, "message.delivered")
	if len(p.bus.put()) != 0 || p.committedDeliveries(t) != 1 || len(p.e.pending()) != 0 {
		t.Fatalf("puts %d, subscriber commits %d, outbox %v", len(p.bus.put()), p.committedDeliveries(t), idsOf(p.e.pending()))
	}
}

// BusHandler: the item's tenant fills an event without one; no bus is an
// error (the item parks and can be replayed), never a drop; a bus that
// answers the wrong number of results fails the item.
func TestBusHandler(t *testing.T) {
	ctx := context.Background()
	it := work.Item{ID: "wrk_1", TenantID: "tnt_1", Type: work.BusType, Payload: json.RawMessage(`{"id":"evt_1","source":"switchboard.messaging","type":"message.sent","time":"2025-06-01T12:00:00Z","detail":{}}`)}
	bus := &fakeBus{}
	if err := work.BusHandler(bus)(ctx, it); err != nil {
		t.Fatal(err)
	}
	if puts := bus.put(); len(puts) != 1 || puts[0].TenantID != "tnt_1" || puts[0].ID != "evt_1" || !puts[0].Time.Equal(t0) {
		t.Fatalf("put %+v", puts)
	}
	if err := work.BusHandler(nil)(ctx, it); !errors.Is(err, work.ErrNoBus) || !strings.Contains(err.Error(), "evt_1") {
		t.Fatalf("no bus: %v, want ErrNoBus naming the event", err)
	}
	if err := work.BusHandler(nil)(ctx, work.Item{ID: "wrk_2", Type: work.BusType, Payload: json.RawMessage(`[`)}); err == nil ||
		!strings.Contains(err.Error(), "decode") {
		t.Fatalf("bad payload: %v", err)
	}
	if err := work.BusHandler(badBus{})(ctx, it); err == nil || !strings.Contains(err.Error(), "2 results") {
		t.Fatalf("bus with 2 results for 1 event: %v", err)
	}
}

type badBus struct{}

func (badBus) Put(context.Context, []work.IntegrationEvent) []error { return []error{nil, nil} }
