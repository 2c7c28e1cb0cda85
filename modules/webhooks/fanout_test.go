package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/webhooks/adapters"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// paths returns the request paths a receiver got, sorted.
func paths(r *receiver) []string {
	var out []string
	for _, rq := range r.requests() {
		out = append(out, rq.Path)
	}
	sort.Strings(out)
	return out
}

// A subscription sees the events of its scope and every scope below it,
// never of a scope above or beside it; event types filter.
func TestScopeInheritanceAndEventTypes(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	tn := e.onboard("Acme")
	eu := e.scope(tn, tn.Root, "EU")
	de := e.scope(tn, eu, "DE")
	us := e.scope(tn, tn.Root, "US")
	rcv := newReceiver(t)
	// Every subscription posts to its own path of one receiver; the receiver
	// checks signatures of the root subscription only, so check them per path.
	secrets := map[string]string{}
	sub := func(scope, name string, types ...string) {
		out := e.subscribe(tn, scope, rcv.URL+"/"+name, types...)
		secrets["/"+name] = out.Secret
	}
	sub(tn.Root, "root-all", "*")
	sub(eu, "eu-all", "*")
	sub(us, "us-all", "*")
	sub(de, "de-sent", "message.sent")
	sub(de, "de-failed-received", "message.failed", "message.received")

	e.publish(e.event(tn, "message.delivered", []string{tn.Root, eu, de}, "msg_1"))
	e.drain()
	if got := strings.Join(paths(rcv), " "); got != "/eu-all /root-all" {
		t.Fatalf("message.delivered in DE reached %s", got)
	}

	rcv.reset()
	e.publish(e.event(tn, "message.sent", []string{tn.Root, eu, de}, "msg_2"))
	e.drain()
	if got := strings.Join(paths(rcv), " "); got != "/de-sent /eu-all /root-all" {
		t.Fatalf("message.sent in DE reached %s", got)
	}

	rcv.reset()
	e.publish(e.event(tn, "message.failed", []string{tn.Root, us}, "msg_3"))
	e.publish(e.event(tn, "message.received", []string{tn.Root}, "msg_4"))
	e.drain()
	if got := strings.Join(paths(rcv), " "); got != "/root-all /root-all /us-all" {
		t.Fatalf("message.failed in US and message.received at the root reached %s", got)
	}
	// Every request verifies with its own subscription's secret.
	for _, rq := range rcv.requests() {
		if err := verify(secrets[rq.Path], rq); err != nil {
			t.Fatalf("%s: %v", rq.Path, err)
		}
	}
}

// The wildcard receives every one of the seven message event types; events
// of other types are not the fan-out's.
func TestWildcardReceivesEveryMessageType(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	all := e.subscribe(tn, tn.Root, rcv.URL+"/all", "*")
	two := e.subscribe(tn, tn.Root, rcv.URL+"/two", "message.queued", "message.canceled")
	for i, typ := range domain.EventTypes() {
		e.publish(e.event(tn, typ, []string{tn.Root}, fmt.Sprintf("msg_%d", i)))
	}
	// Not a message event: nobody subscribed, nothing delivered.
	other := e.event(tn, "tenancy.scope-created", []string{tn.Root}, "msg_x")
	if err := e.mod.App().FanOut.Handle(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if n := len(e.deliveries(tn, all.SubscriptionID)); n != 7 {
		t.Fatalf("wildcard: %d deliveries, want 7", n)
	}
	var types []string
	for _, d := range e.deliveries(tn, two.SubscriptionID) {
		types = append(types, d["eventType"].(string))
	}
	sort.Strings(types)
	if strings.Join(types, " ") != "message.canceled message.queued" {
		t.Fatalf("explicit types got %v", types)
	}
}

// The same integration event delivered twice (two publications, and one
// work item run twice) makes one delivery per subscription and one request.
func TestFanOutIsIdempotent(t *testing.T) {
	e, tn, rcv, sub := oneSubscriber(t, options{allowPrivate: true})
	ev := e.event(tn, "message.sent", []string{tn.Root}, "msg_1")

	first := e.publish(ev)
	// The first publication runs twice (a redelivery): the second run finds
	// the delivery (its derived id) and creates none.
	if err := e.exec.Handle(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	if err := e.exec.Handle(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	_ = e.store.AckOutbox(context.Background(), []eventstore.OutboxEntry{first})
	// A second publication of the same event (another work id): the
	// delivery's derived id skips it.
	e.publish(ev)
	e.drain()
	// And the subscriber called directly, outside any unit of work.
	if err := e.mod.App().FanOut.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	e.drain()

	if n := len(e.deliveries(tn, sub.SubscriptionID)); n != 1 {
		t.Fatalf("%d deliveries of one event, want 1", n)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 || reqs[0].VerifyErr != nil {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	// A redelivered attempt item does not call the receiver again.
	if len(e.pending(app.WorkDeliver)) != 0 {
		t.Fatal("no attempt is pending")
	}
}

// A publication run again after a subscription was made does not deliver the
// (older) event to it: the targets are the subscriptions made no later than
// the event, the same on every run.
func TestRedeliveredEventSkipsLaterSubscriptions(t *testing.T) {
	e, tn, rcv, first := oneSubscriber(t, options{allowPrivate: true})
	ev := e.event(tn, "message.sent", []string{tn.Root}, "msg_1")
	pub := e.publish(ev)
	if err := e.exec.Handle(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(e.clock.Now().Add(time.Minute))
	later := e.subscribe(tn, tn.Root, rcv.URL+"/later", "*")
	if err := e.exec.Handle(context.Background(), pub); err != nil { // redelivered
		t.Fatal(err)
	}
	e.drain()
	if n := len(e.deliveries(tn, first.SubscriptionID)); n != 1 {
		t.Fatalf("first subscription: %d deliveries, want 1", n)
	}
	if ds := e.deliveries(tn, later.SubscriptionID); len(ds) != 0 {
		t.Fatalf("a subscription made after the event got %v", ds)
	}
}

// Two publications of one event running at the same time make one delivery:
// both name it by its derived id, one creates its stream, the other's commit
// conflicts, runs again and finds it. No dedupe record is written for them.
func TestConcurrentFanOutsMakeOneDelivery(t *testing.T) {
	e, tn, rcv, sub := oneSubscriber(t, options{allowPrivate: true})
	ev := e.event(tn, "message.sent", []string{tn.Root}, "msg_1")
	items := []eventstore.OutboxEntry{e.publish(ev), e.publish(ev), e.publish(ev)}
	var wg sync.WaitGroup
	errs := make([]error, len(items))
	for i, it := range items {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.exec.Handle(context.Background(), it) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("publication %d: %v", i, err)
		}
		if _, err := e.store.GetIdempotency(context.Background(), tn.ID, work.DedupeKey(items[i].ID)); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("publication %d left a dedupe record (%v)", i, err)
		}
	}
	ds := e.deliveries(tn, sub.SubscriptionID)
	if len(ds) != 1 || ds[0]["deliveryId"] != app.DeliveryID(tn.ID, sub.SubscriptionID, ev.ID, ev.Time) || ds[0]["attempts"] != 1.0 {
		t.Fatalf("deliveries = %v, want one with the derived id and one attempt recorded", ds)
	}
	// Racing runs may each have made the first attempt before one recorded
	// it (at least once): every POST carries the event's webhook-id.
	reqs := rcv.requests()
	if len(reqs) < 1 || len(reqs) > len(items) {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	for _, rq := range reqs {
		if rq.Header.Get("webhook-id") != ev.ID || rq.VerifyErr != nil {
			t.Fatalf("request webhook-id %q (verify: %v), want %s", rq.Header.Get("webhook-id"), rq.VerifyErr, ev.ID)
		}
	}
}

// A delivery made before delivery ids were derived (a random id and a
// "webhook-delivery-keys" row) still keeps a later fan-out of its event from
// making a second one.
func TestFanOutFindsADeliveryOfTheOldKind(t *testing.T) {
	e, tn, rcv, sub := oneSubscriber(t, options{allowPrivate: true})
	ev := e.event(tn, "message.sent", []string{tn.Root}, "msg_1")
	old := e.ids.New(ids.Delivery)
	key, _ := json.Marshal(adapters.DeliveryKeyRow{DeliveryID: old})
	if err := e.store.Commit(context.Background(), &eventstore.Commit{TenantID: tn.ID, Records: []eventstore.Record{{
		Collection: adapters.CollectionDeliveryKeys, Key: adapters.DeliveryKey(sub.SubscriptionID, ev.ID), Data: key,
	}}}); err != nil {
		t.Fatal(err)
	}
	e.publish(ev)
	e.drain()
	if ds := e.deliveries(tn, sub.SubscriptionID); len(ds) != 0 {
		t.Fatalf("deliveries = %v, want none: the old key row names one", ds)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("receiver got %d requests", n)
	}
}

// The fan-out makes a delivery's first attempt and records it in the commit
// that creates the delivery: a success leaves no attempt item behind
// (ADR 0008: no work item, acknowledgement or second commit per webhook).
func TestFanOutMakesTheFirstAttempt(t *testing.T) {
	e, tn, rcv, out := oneSubscriber(t, options{allowPrivate: true})
	ev := e.event(tn, "message.sent", []string{tn.Root}, "msg_1")
	e.publish(ev)
	pub := e.pending(work.PublishType)
	if err := e.exec.Handle(context.Background(), pub[0]); err != nil {
		t.Fatal(err)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("receiver got %d requests during the fan-out, want 1", n)
	}
	if next := e.pending(app.WorkDeliver); len(next) != 0 {
		t.Fatalf("attempt items after a successful first attempt: %+v", next)
	}
	dl := e.deliveries(tn, out.SubscriptionID)
	if len(dl) != 1 || dl[0]["status"] != "succeeded" || dl[0]["attempts"] != float64(1) {
		t.Fatalf("deliveries = %+v", dl)
	}
	var types []string
	for _, x := range e.stream(tn.ID, "delivery-"+dl[0]["deliveryId"].(string)) {
		types = append(types, x.Type)
	}
	if got := strings.Join(types, " "); got != "webhooks.delivery-created" {
		t.Fatalf("delivery stream = %s (the creation carries the first attempt)", got)
	}
}

// panickingTransport panics for requests to path, and makes the others.
type panickingTransport struct{ path string }

func (p panickingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == p.path {
		panic("transport exploded")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// failingSealer fails the first opening of a subscription secret.
type failingSealer struct {
	secrets.Sealer
	failed atomic.Bool
}

func (f *failingSealer) Open(ctx context.Context, tenantID, purpose string, sealed []byte) ([]byte, error) {
	if purpose == app.PurposeSubscriptionSecret && f.failed.CompareAndSwap(false, true) {
		return nil, errors.New("key service unavailable")
	}
	return f.Sealer.Open(ctx, tenantID, purpose, sealed)
}

// A first attempt that cannot be made (its key does not open, it panics)
// holds back neither the other deliveries of the fan-out nor their records:
// its delivery is created with an attempt item of its own, which the work
// path runs.
func TestFirstAttemptThatFailsRunsAsAnItem(t *testing.T) {
	for _, c := range []struct {
		name string
		o    options
		bad  string // the path of the receiver whose attempt fails, "" when either may
	}{
		{"panic", options{allowPrivate: true, transport: panickingTransport{path: "/boom"}}, "/boom"},
		{"key service", options{allowPrivate: true, wrapSealer: func(s secrets.Sealer) secrets.Sealer { return &failingSealer{Sealer: s} }}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.o)
			tn := e.onboard("Acme")
			rcv := newReceiver(t)
			subs := map[string]string{} // path -> subscription id
			for _, path := range []string{"/ok", "/boom"} {
				out := e.subscribe(tn, tn.Root, rcv.URL+path, "*")
				subs[path] = out.SubscriptionID
			}
			e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_1"))
			pub := e.pending(work.PublishType)
			if err := e.exec.Handle(context.Background(), pub[0]); err != nil {
				t.Fatalf("the fan-out failed: %v", err)
			}
			_ = e.store.AckOutbox(context.Background(), pub)
			if n := len(rcv.requests()); n != 1 {
				t.Fatalf("receiver got %d requests, want 1 (the attempt that could be made)", n)
			}
			items := e.pending(app.WorkDeliver)
			if len(items) != 1 {
				t.Fatalf("attempt items = %+v, want one for the attempt not made", items)
			}
			var p app.DeliverPayload
			_ = json.Unmarshal(items[0].Payload, &p)
			if p.Attempt != 1 || p.Body == "" {
				t.Fatalf("attempt item = %+v", p)
			}
			pending := 0
			for path, subID := range subs {
				ds := e.deliveries(tn, subID)
				if len(ds) != 1 {
					t.Fatalf("%s: deliveries = %v", path, ds)
				}
				switch {
				case ds[0]["status"] == "pending" && ds[0]["attempts"] == 0.0 && (c.bad == "" || path == c.bad):
					pending++
				case ds[0]["status"] == "succeeded" && ds[0]["attempts"] == 1.0 && path != c.bad:
				default:
					t.Fatalf("%s: delivery = %v", path, ds[0])
				}
			}
			if pending != 1 {
				t.Fatalf("%d deliveries wait for their first attempt, want 1", pending)
			}
			if c.bad != "" {
				return // the transport panics on every attempt of it: the item is retried, then parked
			}
			// The item makes the attempt (the key service is back).
			if err := e.exec.Handle(context.Background(), items[0]); err != nil {
				t.Fatal(err)
			}
			for path, subID := range subs {
				if ds := e.deliveries(tn, subID); ds[0]["status"] != "succeeded" || ds[0]["attempts"] != 1.0 {
					t.Fatalf("%s: after the item, delivery = %v", path, ds[0])
				}
			}
			if n := len(rcv.requests()); n != 2 {
				t.Fatalf("receiver got %d requests, want 2", n)
			}
		})
	}
}

// A retry item that runs again after its attempt was recorded does not call
// the receiver again.
func TestAttemptItemRunTwiceCallsOnce(t *testing.T) {
	e, tn, rcv, _ := oneSubscriber(t, options{allowPrivate: true})
	rcv.respond = func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	}
	e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_1"))
	pub := e.pending(work.PublishType)
	if err := e.exec.Handle(context.Background(), pub[0]); err != nil {
		t.Fatal(err)
	}
	_ = e.store.AckOutbox(context.Background(), pub)
	attempt := e.pending(app.WorkDeliver)
	if len(attempt) != 1 {
		t.Fatalf("pending attempts = %+v", attempt)
	}
	for i := 0; i < 3; i++ {
		if err := e.exec.Handle(context.Background(), attempt[0]); err != nil {
			t.Fatal(err)
		}
	}
	// Even as a new work item (a requeue with another id), the recorded
	// attempt is not made again.
	again := attempt[0]
	again.ID = e.ids.New("wrk")
	if err := e.work.Handle(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if n := len(rcv.requests()); n != 2 {
		t.Fatalf("receiver got %d requests, want 2 (the failed first attempt and one retry)", n)
	}
}

// More subscriptions than one commit takes continue in a fan-out item; each
// gets the event once.
func TestLargeFanOutContinues(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	n := 2*app.MaxDeliveriesPerCommit + 3
	secrets := map[string]string{}
	for i := 0; i < n; i++ {
		out := e.subscribe(tn, tn.Root, fmt.Sprintf("%s/s%02d", rcv.URL, i), "*")
		secrets[fmt.Sprintf("/s%02d", i)] = out.Secret
	}
	ev := e.event(tn, "message.delivered", []string{tn.Root}, "msg_1")
	pub := e.publish(ev)
	if err := e.exec.Handle(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	_ = e.store.AckOutbox(context.Background(), []eventstore.OutboxEntry{pub})
	if got := len(rcv.requests()); got != app.MaxDeliveriesPerCommit {
		t.Fatalf("first commit attempted %d deliveries, want %d", got, app.MaxDeliveriesPerCommit)
	}
	cont := e.pending(app.WorkFanOut)
	if len(cont) != 1 {
		t.Fatalf("continuations = %+v", cont)
	}
	var p app.FanOutPayload
	_ = json.Unmarshal(cont[0].Payload, &p)
	if p.EventID != ev.ID || len(p.SubscriptionIDs) != n-app.MaxDeliveriesPerCommit {
		t.Fatalf("continuation payload = %+v", p)
	}
	// A redelivered continuation changes nothing.
	if err := e.work.Handle(context.Background(), cont[0]); err != nil {
		t.Fatal(err)
	}
	e.drain()
	reqs := rcv.requests()
	if len(reqs) != n {
		t.Fatalf("receiver got %d requests, want %d", len(reqs), n)
	}
	seen := map[string]bool{}
	for _, rq := range reqs {
		if seen[rq.Path] {
			t.Fatalf("%s got the event twice", rq.Path)
		}
		seen[rq.Path] = true
		if rq.Header.Get("webhook-id") != ev.ID {
			t.Fatalf("webhook-id %s", rq.Header.Get("webhook-id"))
		}
		if err := verify(secrets[rq.Path], rq); err != nil {
			t.Fatalf("%s: %v", rq.Path, err)
		}
	}
}

// A continuation of an event whose body is in a payload row (larger than
// InlineBodyMax) reads the row and makes its first attempts with the same
// bytes as the first batch.
func TestLargeBodyContinuationReadsItsRow(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	n := app.MaxDeliveriesPerCommit + 2
	secrets := map[string]string{}
	for i := 0; i < n; i++ {
		out := e.subscribe(tn, tn.Root, fmt.Sprintf("%s/s%02d", rcv.URL, i), "*")
		secrets[fmt.Sprintf("/s%02d", i)] = out.Secret
	}
	ev := e.event(tn, "message.delivered", []string{tn.Root}, "msg_1")
	var detail map[string]any
	_ = json.Unmarshal(ev.Detail, &detail)
	detail["data"].(map[string]any)["content"] = map[string]string{"text": strings.Repeat("<p>long & rich</p>", 1200)}
	ev.Detail, _ = json.Marshal(detail)
	e.publish(ev)
	e.drain()
	if cont := e.pending(app.WorkFanOut); len(cont) != 0 {
		t.Fatalf("continuations left: %+v", cont)
	}
	reqs := rcv.requests()
	if len(reqs) != n {
		t.Fatalf("receiver got %d requests, want %d", len(reqs), n)
	}
	for _, rq := range reqs {
		if len(rq.Body) <= app.InlineBodyMax || !bytes.Equal(rq.Body, reqs[0].Body) {
			t.Fatalf("%s got %d bytes, want the %d of the first", rq.Path, len(rq.Body), len(reqs[0].Body))
		}
		if err := verify(secrets[rq.Path], rq); err != nil {
			t.Fatalf("%s: %v", rq.Path, err)
		}
	}
}

// Events that cannot be delivered are dropped without an error (retrying
// would not help) and without a delivery.
func TestUndeliverableEventsAreDropped(t *testing.T) {
	e, tn, rcv, sub := oneSubscriber(t, options{allowPrivate: true})
	good := e.event(tn, "message.sent", []string{tn.Root}, "msg_1")
	cases := map[string]func(ev *work.IntegrationEvent){
		"detail not JSON":      func(ev *work.IntegrationEvent) { ev.Detail = json.RawMessage(`nope`) },
		"detail not an object": func(ev *work.IntegrationEvent) { ev.Detail = json.RawMessage(`[1]`) },
		"no scope path":        func(ev *work.IntegrationEvent) { ev.Detail = json.RawMessage(`{"data":{}}`) },
		"bad scope id":         func(ev *work.IntegrationEvent) { ev.Detail = json.RawMessage(`{"scopePath":["x"],"data":{}}`) },
		"data not an object": func(ev *work.IntegrationEvent) {
			ev.Detail = json.RawMessage(`{"scopePath":["` + tn.Root + `"],"data":"x"}`)
		},
		"no data": func(ev *work.IntegrationEvent) { ev.Detail = json.RawMessage(`{"scopePath":["` + tn.Root + `"]}`) },
		"no tenant": func(ev *work.IntegrationEvent) {
			ev.TenantID = ""
			ev.Detail = json.RawMessage(`{"scopePath":["` + tn.Root + `"],"data":{}}`)
		},
		"detail of other tenant": func(ev *work.IntegrationEvent) {
			ev.Detail = json.RawMessage(`{"tenantId":"tnt_01JQ0000000000000000000000","scopePath":["` + tn.Root + `"],"data":{}}`)
		},
		"no event id": func(ev *work.IntegrationEvent) { ev.ID = "" },
	}
	for name, mutate := range cases {
		ev := good
		mutate(&ev)
		if err := e.mod.App().FanOut.Handle(context.Background(), ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	e.drain()
	if n := len(e.deliveries(tn, sub.SubscriptionID)); n != 0 || len(rcv.requests()) != 0 {
		t.Fatalf("%d deliveries of undeliverable events", n)
	}
	// Work items with payloads that do not decode fail (and are retried, then parked).
	for _, typ := range []string{app.WorkDeliver, app.WorkFanOut, app.WorkSubscriptionHealth} {
		if err := e.work.Handle(context.Background(), work.Item{ID: "wrk_x", Type: typ, TenantID: tn.ID, Payload: json.RawMessage(`[`)}); err == nil {
			t.Fatalf("%s: a bad payload was accepted", typ)
		}
		if err := e.work.Handle(context.Background(), work.Item{ID: "wrk_x", Type: typ, Payload: json.RawMessage(`{}`)}); err == nil {
			t.Fatalf("%s: an item without a tenant was accepted", typ)
		}
	}
	// A delivery that does not exist (any more) is nothing to do.
	if err := e.work.Handle(context.Background(), work.Item{ID: "wrk_y", Type: app.WorkDeliver, TenantID: tn.ID,
		Payload: json.RawMessage(`{"deliveryId":"dlv_01JQ0000000000000000000000","attempt":1}`)}); err != nil {
		t.Fatal(err)
	}
}

// A scope path that names a scope twice still makes one delivery.
func TestRepeatedScopeInPathDeliversOnce(t *testing.T) {
	e, tn, rcv, sub := oneSubscriber(t, options{allowPrivate: true})
	e.publish(e.event(tn, "message.sent", []string{tn.Root, tn.Root}, "msg_1"))
	e.drain()
	if n := len(e.deliveries(tn, sub.SubscriptionID)); n != 1 || len(rcv.requests()) != 1 {
		t.Fatalf("%d deliveries", n)
	}
}

// A delivery names the message its event is about (acceptance finding:
// list-deliveries named only the event, so a failed delivery could not be
// traced to its message without the receiver's log), also when the
// fan-out continues in work items.
func TestDeliveriesNameTheirMessage(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	var subs []string
	for range app.MaxDeliveriesPerCommit + 2 { // beyond one commit: a continuation
		subs = append(subs, e.subscribe(tn, tn.Root, rcv.URL, "*").SubscriptionID)
	}
	e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_01JQ00000000000000000000M7"))
	e.drain()
	for _, sub := range subs {
		dl := e.deliveries(tn, sub)
		if len(dl) != 1 || dl[0]["messageId"] != "msg_01JQ00000000000000000000M7" {
			t.Fatalf("deliveries of %s: %v", sub, dl)
		}
	}
}
