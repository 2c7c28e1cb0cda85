package webhooks_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/webhooks/adapters"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// A message event in a child scope reaches a subscription at the root as a
// signed POST that a Standard Webhooks receiver verifies, with the contract's
// headers and body.
func TestDeliverySignedVerifiedAndShaped(t *testing.T) {
	e := newEnv(t, options{now: time.Now().UTC().Truncate(time.Second), allowPrivate: true})
	tn := e.onboard("Acme")
	eu := e.scope(tn, tn.Root, "EU")
	rcv := newReceiver(t)
	rcv.strictTS = true // the clock is the real time: verify the timestamp too
	sub := e.subscribe(tn, tn.Root, rcv.URL+"/hooks?token=abc", "*")
	rcv.setSecret(sub.Secret)
	if !strings.HasPrefix(sub.Secret, "whsec_") || !ids.Valid(ids.Subscription, sub.SubscriptionID) {
		t.Fatalf("create-subscription = %+v", sub)
	}

	ev := e.event(tn, "message.delivered", []string{tn.Root, eu}, "msg_01JQ00000000000000000000M1")
	e.publish(ev)
	e.drain()

	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.VerifyErr != nil {
		t.Fatalf("signature does not verify: %v", r.VerifyErr)
	}
	if r.Path != "/hooks" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("webhook-id") != ev.ID {
		t.Fatalf("request: path %s headers %v", r.Path, r.Header)
	}
	if r.Header.Get("webhook-timestamp") != strconv.FormatInt(e.clock.Now().Unix(), 10) {
		t.Fatalf("webhook-timestamp %s, want %d", r.Header.Get("webhook-timestamp"), e.clock.Now().Unix())
	}
	sig := r.Header.Get("webhook-signature")
	secret, _ := decodeSecret(sub.Secret)
	want, _ := adapters.Sign(secret, ev.ID, e.clock.Now(), r.Body)
	if sig != want || !strings.HasPrefix(sig, "v1,") {
		t.Fatalf("webhook-signature %q, want %q", sig, want)
	}
	// Correlation of the invocation that caused the message event.
	if r.Header.Get("X-Trace-Id") != traceID || !strings.HasPrefix(r.Header.Get("traceparent"), "00-"+traceID+"-") ||
		r.Header.Get("X-Invocation-Id") != "inv_01JQ00000000000000000000MS" {
		t.Fatalf("correlation headers: %v", r.Header)
	}
	var body struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	if body.Type != "message.delivered" || body.Timestamp != ev.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00") {
		t.Fatalf("body = %s", r.Body)
	}
	var data, sent map[string]any
	_ = json.Unmarshal(body.Data, &data)
	var detail struct{ Data map[string]any }
	_ = json.Unmarshal(ev.Detail, &detail)
	sent = detail.Data
	if fmt.Sprint(data) != fmt.Sprint(sent) || data["messageId"] != "msg_01JQ00000000000000000000M1" {
		t.Fatalf("data = %v, want the message %v", data, sent)
	}

	// The delivery is listed as succeeded.
	dl := e.deliveries(tn, sub.SubscriptionID)
	if len(dl) != 1 {
		t.Fatalf("deliveries = %v", dl)
	}
	d := dl[0]
	if d["status"] != "succeeded" || d["attempts"] != 1.0 || d["lastStatusCode"] != 204.0 || d["lastError"] != nil ||
		d["nextAttemptAt"] != nil || d["eventId"] != ev.ID || d["eventType"] != "message.delivered" || d["subscriptionId"] != sub.SubscriptionID ||
		!ids.Valid(ids.Delivery, d["deliveryId"].(string)) {
		t.Fatalf("delivery = %v", d)
	}
	// Its history is in its stream (one event: the creation carries the
	// first attempt); the events carry the message's invocation.
	evs := e.stream(tn.ID, adapters.DeliveryStream(d["deliveryId"].(string)))
	if len(evs) != 1 || evs[0].Type != domain.TypeDeliveryCreated {
		t.Fatalf("delivery stream = %+v", evs)
	}
	var created domain.DeliveryCreated
	if err := json.Unmarshal(evs[0].Data, &created); err != nil || created.FirstAttempt == nil ||
		created.FirstAttempt.Attempt != 1 || created.FirstAttempt.StatusCode != 204 || !created.FirstAttempt.Succeeded {
		t.Fatalf("delivery created = %s (%v)", evs[0].Data, err)
	}
	if evs[0].Invocation.InvocationID != "inv_01JQ00000000000000000000MS" || evs[0].Invocation.TraceID != traceID || evs[0].Invocation.Principal != "system" {
		t.Fatalf("delivery invocation = %+v", evs[0].Invocation)
	}
}

func decodeSecret(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
}

// A receiver that always fails gets exactly 8 attempts on Svix's schedule
// (fake clock, no jitter), all with the same webhook-id, each signed; then
// the delivery is failed and listed so.
func TestRetryScheduleThenFailed(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true, noJitter: true})
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	rcv.respond = func(int) int { return http.StatusServiceUnavailable }
	sub := e.subscribe(tn, tn.Root, rcv.URL, "message.failed")
	rcv.setSecret(sub.Secret)
	ev := e.event(tn, "message.failed", []string{tn.Root}, "msg_01JQ00000000000000000000M1")
	e.publish(ev)

	// After the first attempt the delivery is pending, the next due in 5 s.
	e.drain()
	dl := e.deliveries(tn, sub.SubscriptionID)
	if len(dl) != 1 || dl[0]["status"] != "pending" || dl[0]["attempts"] != 1.0 || dl[0]["lastStatusCode"] != 503.0 ||
		dl[0]["nextAttemptAt"] != t0.Add(5*time.Second).Format("2006-01-02T15:04:05.000Z07:00") ||
		dl[0]["lastError"] != "status 503: Service Unavailable" {
		t.Fatalf("after attempt 1: %v", dl)
	}
	if next := e.pending(app.WorkDeliver); len(next) != 1 || !next[0].DueAt.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("next attempt = %+v", next)
	}

	e.runUntilIdle(t0.Add(7 * 24 * time.Hour))
	reqs := rcv.requests()
	if len(reqs) != domain.MaxAttempts {
		t.Fatalf("receiver got %d attempts, want %d", len(reqs), domain.MaxAttempts)
	}
	want := []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	prev := t0
	for i, r := range reqs {
		if r.VerifyErr != nil {
			t.Fatalf("attempt %d: %v", i+1, r.VerifyErr)
		}
		if r.Header.Get("webhook-id") != ev.ID {
			t.Fatalf("attempt %d: webhook-id %s, want %s on every retry", i+1, r.Header.Get("webhook-id"), ev.ID)
		}
		ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
		at := time.Unix(ts, 0).UTC()
		if got := at.Sub(prev); got != want[i] {
			t.Fatalf("attempt %d after %v, want %v", i+1, got, want[i])
		}
		prev = at
		if !bytes.Equal(r.Body, reqs[0].Body) {
			t.Fatalf("attempt %d has another body", i+1)
		}
	}
	dl = e.deliveries(tn, sub.SubscriptionID)
	if len(dl) != 1 || dl[0]["status"] != "failed" || dl[0]["attempts"] != 8.0 || dl[0]["nextAttemptAt"] != nil || dl[0]["lastStatusCode"] != 503.0 {
		t.Fatalf("after the schedule: %v", dl)
	}
	if len(e.pending(app.WorkDeliver)) != 0 {
		t.Fatal("no attempt after the last")
	}
	// 27.6 hours of failing do not disable the subscription.
	if s := e.subscriptions(tn, ""); s[0]["status"] != "enabled" {
		t.Fatalf("subscription = %v", s)
	}
}

// With jitter and a scaled schedule every delay stays within ±10% of the
// scaled Svix delay.
func TestRetryScaleAndJitter(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true, retryScale: 0.001})
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	rcv.respond = func(int) int { return 500 }
	sub := e.subscribe(tn, tn.Root, rcv.URL, "*")
	rcv.setSecret(sub.Secret)
	e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_1"))
	e.drain()
	at := e.clock.Now()
	for attempt := 2; attempt <= domain.MaxAttempts; attempt++ {
		next := e.pending(app.WorkDeliver)
		if len(next) != 1 {
			t.Fatalf("attempt %d: pending %+v", attempt, next)
		}
		d := next[0].DueAt.Sub(at)
		w := time.Duration(float64(domain.Schedule[attempt-1]) * 0.001)
		if d < w*9/10 || d > w*11/10 {
			t.Fatalf("delay before attempt %d = %v, want %v ±10%%", attempt, d, w)
		}
		e.clock.Set(next[0].DueAt)
		at = next[0].DueAt
		e.drain()
	}
	if n := len(rcv.requests()); n != 8 {
		t.Fatalf("%d attempts", n)
	}
}

// A receiver that is down for a while and then recovers receives every
// event; its subscription went failing and recovered.
func TestReceiverDownThenRecoveredGetsEverything(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true, noJitter: true})
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	recoverAt := t0.Add(40 * time.Minute)
	rcv.respond = func(int) int {
		if e.clock.Now().Before(recoverAt) {
			return http.StatusBadGateway
		}
		return http.StatusOK
	}
	sub := e.subscribe(tn, tn.Root, rcv.URL, "*")
	rcv.setSecret(sub.Secret)
	var sent []string
	for i, typ := range []string{"message.queued", "message.sent", "message.delivered"} {
		ev := e.event(tn, typ, []string{tn.Root}, fmt.Sprintf("msg_%d", i))
		sent = append(sent, ev.ID)
		e.publish(ev)
		e.drain()
		e.clock.Advance(time.Minute)
	}
	e.runUntilIdle(t0.Add(48 * time.Hour))

	got := map[string]int{}
	for _, r := range rcv.requests() {
		if r.VerifyErr != nil {
			t.Fatal(r.VerifyErr)
		}
		got[r.Header.Get("webhook-id")]++
	}
	for _, id := range sent {
		if got[id] < 2 {
			t.Fatalf("event %s attempted %d times; want retries until it got through", id, got[id])
		}
	}
	for _, d := range e.deliveries(tn, sub.SubscriptionID) {
		if d["status"] != "succeeded" || d["lastStatusCode"] != 200.0 || d["lastError"] != nil {
			t.Fatalf("delivery = %v", d)
		}
	}
	if got := streamTypes(e.stream(tn.ID, adapters.SubscriptionStream(sub.SubscriptionID))); got != "webhooks.subscription-created webhooks.subscription-failing webhooks.subscription-recovered" {
		t.Fatalf("subscription stream = %v", got)
	}
}

// streamTypes is the types of evs, space-separated.
func streamTypes(evs []eventstore.Event) string {
	types := make([]string, len(evs))
	for i, ev := range evs {
		types[i] = ev.Type
	}
	return strings.Join(types, " ")
}

// An endpoint failing continuously for 5 days is disabled, with an event,
// and gets no further deliveries; its pending deliveries are abandoned.
func TestDisabledAfterFiveDaysOfFailures(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true, noJitter: true})
	tn := e.onboard("Acme")
	down := newReceiver(t)
	down.respond = func(int) int { return 500 }
	sub := e.subscribe(tn, tn.Root, down.URL, "*")
	down.setSecret(sub.Secret)
	healthy := newReceiver(t)
	other := e.subscribe(tn, tn.Root, healthy.URL, "*")
	healthy.setSecret(other.Secret)

	// Failing from t0; a new event every day keeps it failing.
	for day := 0; day < 5; day++ {
		e.clock.Set(t0.Add(time.Duration(day) * 24 * time.Hour))
		e.publish(e.event(tn, "message.sent", []string{tn.Root}, fmt.Sprintf("msg_%d", day)))
		e.runUntilIdle(t0.Add(time.Duration(day)*24*time.Hour + 23*time.Hour))
	}
	if s := e.subscription(tn, sub.SubscriptionID); s["status"] != "enabled" {
		t.Fatalf("disabled before 5 days: %v", s)
	}
	// The subscription row was written only when its state changed: once
	// at creation, once when it started failing.
	if evs := e.stream(tn.ID, adapters.SubscriptionStream(sub.SubscriptionID)); len(evs) != 2 || evs[1].Type != domain.TypeSubscriptionFailing {
		t.Fatalf("subscription stream = %+v", evs)
	}
	var published []work.IntegrationEvent
	e.events.Subscribe(domain.TypeSubscriptionDisabled, func(_ context.Context, ev work.IntegrationEvent) error {
		published = append(published, ev)
		return nil
	})
	// Day 5: the first failure 5 days after the first one disables it. Its
	// retries are due later; so is another event's delivery.
	e.clock.Set(t0.Add(5 * 24 * time.Hour))
	e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_5"))
	e.drain()
	before := len(down.requests())

	evs := e.stream(tn.ID, adapters.SubscriptionStream(sub.SubscriptionID))
	last := evs[len(evs)-1]
	if last.Type != domain.TypeSubscriptionDisabled {
		t.Fatalf("last subscription event %s, want disabled", last.Type)
	}
	var disabled domain.SubscriptionDisabled
	_ = json.Unmarshal(last.Data, &disabled)
	if !disabled.FailingSince.Equal(t0) || !disabled.At.Equal(t0.Add(5*24*time.Hour)) || disabled.Reason != "endpoint_failing" {
		t.Fatalf("disabled = %+v", disabled)
	}
	if s := e.subscription(tn, sub.SubscriptionID); s["status"] != "disabled" {
		t.Fatalf("subscription = %v", s)
	}
	// The integration event was published for other contexts.
	if len(published) != 1 || published[0].ID != last.ID || published[0].TenantID != tn.ID || published[0].Source != "switchboard.webhooks" {
		t.Fatalf("published = %+v, want the disabled event %s", published, last.ID)
	}
	var detail struct {
		TenantID  string
		ScopePath []string
		Data      adapters.DisabledData
	}
	_ = json.Unmarshal(published[0].Detail, &detail)
	if detail.TenantID != tn.ID || len(detail.ScopePath) != 1 || detail.Data.SubscriptionID != sub.SubscriptionID ||
		detail.Data.Status != "disabled" || !detail.Data.FailingSince.Equal(t0) || bytes.Contains(published[0].Detail, []byte(`"url"`)) {
		t.Fatalf("detail = %s", published[0].Detail)
	}

	// No further deliveries: new events skip it; pending retries are abandoned.
	e.publish(e.event(tn, "message.delivered", []string{tn.Root}, "msg_6"))
	e.runUntilIdle(t0.Add(9 * 24 * time.Hour))
	if n := len(down.requests()); n != before {
		t.Fatalf("a disabled subscription got %d more requests", n-before)
	}
	dl := e.deliveries(tn, sub.SubscriptionID)
	if len(dl) != 6 {
		t.Fatalf("%d deliveries, want 6 (none for the event after disabling)", len(dl))
	}
	for _, d := range dl {
		if d["status"] != "failed" {
			t.Fatalf("delivery = %v", d)
		}
	}
	if dl[0]["lastError"] != "abandoned: subscription_disabled" {
		t.Fatalf("newest delivery = %v, want abandoned", dl[0])
	}
	// It left its scope's set in the commit that disabled it.
	if row := e.scopeSet(tn.ID, tn.Root); strings.Join(row.SubscriptionIDs, " ") != other.SubscriptionID || row.Version != 3 {
		t.Fatalf("scope set %+v, want the healthy subscription alone", row)
	}
	// The healthy subscription got everything.
	if n := len(e.deliveries(tn, other.SubscriptionID)); n != 7 || len(healthy.requests()) != 7 {
		t.Fatalf("healthy subscription: %d deliveries, %d requests", n, len(healthy.requests()))
	}
}

// A success whose attempt loaded the subscription before a failure's health
// item was applied queues no item of its own (the subscription looked
// healthy), so the health rule never hears of it; before disabling, the
// handler reads the newest deliveries and finds it: the endpoint recovered
// then and fails from now (review finding: a healthy endpoint was disabled
// by its first failure 5 days later).
func TestSuccessUnseenByTheHealthRuleKeepsTheSubscription(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true, noJitter: true})
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	rcv.respond = func(n int) int { // the second request (event B's first attempt) succeeds, every other fails
		if n == 2 {
			return 204
		}
		return 500
	}
	sub := e.subscribe(tn, tn.Root, rcv.URL, "*")
	rcv.setSecret(sub.Secret)
	// A fails, then B succeeds before A's health item is applied.
	e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_a"))
	e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_b"))
	e.drain()
	if s := e.subscription(tn, sub.SubscriptionID); s["status"] != "enabled" {
		t.Fatalf("subscription %v", s)
	}
	if evs := e.stream(tn.ID, adapters.SubscriptionStream(sub.SubscriptionID)); len(evs) != 2 || evs[1].Type != domain.TypeSubscriptionFailing {
		t.Fatalf("subscription stream %+v: want it failing (B's success unseen)", evs)
	}
	e.runUntilIdle(t0.Add(4 * 24 * time.Hour)) // A's retries, all failed
	// Five days on, one failed attempt: not disabled, failing from now.
	e.clock.Set(t0.Add(5 * 24 * time.Hour))
	e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_c"))
	e.drain()
	if s := e.subscription(tn, sub.SubscriptionID); s["status"] != "enabled" {
		t.Fatalf("disabled though a delivery succeeded since it started failing: %v", s)
	}
	evs := e.stream(tn.ID, adapters.SubscriptionStream(sub.SubscriptionID))
	if got := streamTypes(evs); got != "webhooks.subscription-created webhooks.subscription-failing webhooks.subscription-recovered webhooks.subscription-failing" {
		t.Fatalf("subscription stream = %v", got)
	}
	var failing domain.SubscriptionFailing
	_ = json.Unmarshal(evs[3].Data, &failing)
	if !failing.Since.Equal(t0.Add(5 * 24 * time.Hour)) {
		t.Fatalf("failing since %v, want the new failure", failing.Since)
	}
}

// A success clears the failing state: failures on both sides of a success
// never add up to 5 days.
func TestSuccessClearsTheFailingState(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true, noJitter: true})
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	var today atomic.Int32 // the receiver is up on day 3 only
	rcv.respond = func(int) int {
		if today.Load() == 3 {
			return 200
		}
		return 500
	}
	sub := e.subscribe(tn, tn.Root, rcv.URL, "*")
	rcv.setSecret(sub.Secret)
	for day := 0; day < 8; day++ {
		today.Store(int32(day))
		e.clock.Set(t0.Add(time.Duration(day) * 24 * time.Hour))
		e.publish(e.event(tn, "message.sent", []string{tn.Root}, fmt.Sprintf("msg_%d", day)))
		e.runUntilIdle(t0.Add(time.Duration(day)*24*time.Hour + 23*time.Hour))
	}
	if s := e.subscription(tn, sub.SubscriptionID); s["status"] != "enabled" {
		t.Fatalf("subscription = %v; failing since day 4 is less than 5 days", s)
	}
	var types []string
	for _, ev := range e.stream(tn.ID, adapters.SubscriptionStream(sub.SubscriptionID)) {
		types = append(types, strings.TrimPrefix(ev.Type, "webhooks.subscription-"))
	}
	if strings.Join(types, " ") != "created failing recovered failing" {
		t.Fatalf("subscription stream = %v", types)
	}
}

// subscriptions lists a tenant's subscriptions through the edge (one page).
func (e *env) subscriptions(tn tenant, scopeID string) []map[string]any {
	e.t.Helper()
	in := map[string]any{}
	if scopeID != "" {
		in["scopeId"] = scopeID
	}
	status, body, raw := e.call("queries", "list-subscriptions", tn.Token, in)
	if status != 200 {
		e.t.Fatalf("list-subscriptions: %d %s", status, raw)
	}
	var out []map[string]any
	for _, it := range body["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

func (e *env) subscription(tn tenant, id string) map[string]any {
	e.t.Helper()
	for _, s := range e.subscriptions(tn, "") {
		if s["subscriptionId"] == id {
			return s
		}
	}
	e.t.Fatalf("subscription %s not listed", id)
	return nil
}

// A webhook body of at most app.InlineBodyMax bytes travels in the attempt
// items (no "webhook-payloads" row); a larger one is stored once in a row.
// Either way every attempt, retries included, sends the same bytes, HTML
// characters as built (not re-escaped).
func TestBodyInlineOrInAPayloadRow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		text   string
		inline bool
	}{
		{"small body inline", "hi <b>&", true},
		{"large body in a row", strings.Repeat("<p>long & rich</p>", 1200), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, options{allowPrivate: true, noJitter: true})
			tn := e.onboard("Acme")
			rcv := newReceiver(t)
			rcv.respond = func(n int) int {
				if n == 1 {
					return http.StatusServiceUnavailable
				}
				return http.StatusNoContent
			}
			sub := e.subscribe(tn, tn.Root, rcv.URL, "*")
			rcv.setSecret(sub.Secret)
			ev := e.event(tn, "message.sent", []string{tn.Root}, "msg_01JQ00000000000000000000M1")
			var detail map[string]any
			if err := json.Unmarshal(ev.Detail, &detail); err != nil {
				t.Fatal(err)
			}
			detail["data"].(map[string]any)["content"] = map[string]string{"text": tc.text}
			ev.Detail, _ = json.Marshal(detail)
			e.publish(ev)
			e.drain() // the fan-out and attempt 1 (503)

			retry := e.pending(app.WorkDeliver)
			if len(retry) != 1 {
				t.Fatalf("pending attempts = %d, want the retry", len(retry))
			}
			var p app.DeliverPayload
			if err := json.Unmarshal(retry[0].Payload, &p); err != nil {
				t.Fatal(err)
			}
			_, rowErr := e.store.GetRecord(context.Background(), tn.ID, adapters.CollectionPayloads, ev.ID)
			if tc.inline && (p.Body == "" || !errors.Is(rowErr, eventstore.ErrNotFound)) {
				t.Fatalf("inline: retry item body %d bytes, payload row err %v; want the body in the item and no row", len(p.Body), rowErr)
			}
			if !tc.inline && (p.Body != "" || rowErr != nil) {
				t.Fatalf("large: retry item body %d bytes, payload row err %v; want the row and no body in the item", len(p.Body), rowErr)
			}

			e.runUntilIdle(t0.Add(time.Hour))
			reqs := rcv.requests()
			if len(reqs) != 2 {
				t.Fatalf("receiver got %d requests, want 2", len(reqs))
			}
			for i, r := range reqs {
				if r.VerifyErr != nil {
					t.Fatalf("attempt %d: %v", i+1, r.VerifyErr)
				}
			}
			if !bytes.Equal(reqs[0].Body, reqs[1].Body) {
				t.Fatalf("the retry sent other bytes:\n%s\n%s", reqs[0].Body, reqs[1].Body)
			}
			// The text exactly as the event's detail carried it (this test
			// encodes the detail with encoding/json, which escapes HTML).
			enc, _ := json.Marshal(tc.text)
			if want := append([]byte(`"text":`), enc...); !bytes.Contains(reqs[0].Body, want) {
				t.Fatalf("body does not hold the text as the event carried it: %.200s", reqs[0].Body)
			}
		})
	}
}
