package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/events"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// TestContractsEndToEnd drives messages through every outcome of the sandbox
// with the production wiring, and validates everything the platform emits
// about them against the JSON Schemas of events/contracts (the contract of
// events/contracts/messaging.md):
//
//   - every integration event published for them (a capturing subscriber on
//     App.Events next to the production ones),
//   - every subscriber webhook delivery (a subscription with ["*"] at the
//     root scope, for messages in a child scope): body, headers, signature,
//     webhook-id = the integration event id, the same on a retry,
//   - every sandbox provider webhook (receipts, and the inbound message the
//     test posts) as it reaches SWITCHBOARD_PUBLIC_URL,
//   - each message's stream (get-message-history), get-message and
//     list-messages, and the channel's stream (no secret in clear).
func TestContractsEndToEnd(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) { contractsEndToEnd(t, store) })
	}
}

// publicTypes are the integration event (and webhook) types of messages.
var publicTypes = []string{"message.queued", "message.sent", "message.delivered", "message.undelivered",
	"message.failed", "message.canceled", "message.received"}

// failOnceType is the webhook type whose first delivery attempt the test's
// receiver answers 503: its retry must come with the same webhook-id and body.
const failOnceType = "message.canceled"

// domainTypeOf maps an integration event type to the domain event types that publish it.
var domainTypeOf = map[string][]string{
	"message.queued":      {"messaging.message-accepted", "messaging.message-released"},
	"message.sent":        {"messaging.message-sent"},
	"message.delivered":   {"messaging.message-delivered"},
	"message.undelivered": {"messaging.message-undelivered"},
	"message.failed":      {"messaging.message-failed"},
	"message.canceled":    {"messaging.message-canceled"},
	"message.received":    {"messaging.message-received"},
}

// captured is one HTTP request a test server received.
type captured struct {
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
	Status int // the app's answer (provider webhooks)
}

// statusWriter records the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// summary lists provider webhooks as "type/status -> answer", for failure messages.
func summary(hooks []captured) string {
	var parts []string
	for _, h := range hooks {
		var b struct{ Type, Status string }
		_ = json.Unmarshal(h.Body, &b)
		parts = append(parts, fmt.Sprintf("%s/%s->%d", b.Type, b.Status, h.Status))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// recorder keeps what the test's servers and subscribers received.
type recorder struct {
	mu       sync.Mutex
	events   []work.IntegrationEvent
	hooks    []captured // subscriber webhook deliveries (every attempt)
	provider []captured // provider webhooks reaching the public URL
	failOnce map[string]bool
}

func (r *recorder) integration() []work.IntegrationEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]work.IntegrationEvent(nil), r.events...)
}

func (r *recorder) webhooks() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.hooks...)
}

func (r *recorder) providerHooks() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.provider...)
}

// outcome is what one message of the scenario must come to.
type outcome struct {
	name     string
	status   string   // final status
	public   []string // its integration event types, sorted
	history  []string // its stream's event types, in order
	attempts int
	reason   string // final statusReason, "" for null
}

func contractsEndToEnd(t *testing.T, store string) {
	rec := &recorder{failOnce: map[string]bool{failOnceType: true}}

	// The public URL: provider webhooks are recorded, then served by the app.
	var handler atomic.Value // http.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _ := handler.Load().(http.Handler)
		if h == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/webhooks/") {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		rec.mu.Lock()
		rec.provider = append(rec.provider, captured{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now(), Status: sw.status})
		rec.mu.Unlock()
	}))
	t.Cleanup(front.Close)

	// The tenant app's webhook receiver. The first attempt of each type in
	// failOnce is answered 503, so its retry is seen too.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b struct{ Type string }
		_ = json.Unmarshal(body, &b)
		rec.mu.Lock()
		rec.hooks = append(rec.hooks, captured{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()})
		fail := rec.failOnce[b.Type]
		rec.failOnce[b.Type] = false
		rec.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)

	const operatorKey = "sbo_contracts"
	a := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": operatorKey, "SWITCHBOARD_PUBLIC_URL": front.URL})
	for _, typ := range publicTypes {
		a.Events.Subscribe(typ, func(_ context.Context, ev work.IntegrationEvent) error {
			rec.mu.Lock()
			rec.events = append(rec.events, ev)
			rec.mu.Unlock()
			return nil
		})
	}
	handler.Store(http.Handler(a.Server))
	// Local mode as main runs it: the worker, and the outbox sweep that
	// hands it the work due later (receipts, retries, scheduled messages).
	a.Worker.Start()
	t.Cleanup(func() { a.Worker.Stop(context.Background()) })
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	swept := make(chan struct{})
	go func() { defer close(swept); a.sweepLoop(sweepCtx, time.Duration(a.Config.SweepEvery)*time.Second) }()
	t.Cleanup(func() { stopSweep(); <-swept })
	c := &client{t: t, h: a.Server}

	// A tenant, a child scope, two channels in it, a subscription at the root.
	on := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"Contracts","tier":"pooled"}`)
	key, tenantID, root := str(on.Body["apiKey"]), str(on.Body["tenantId"]), str(on.Body["rootScopeId"])
	sva := str(on.Body["serviceAccountId"])
	waitFor(t, 20*time.Second, "tenant active", func() error {
		if r := c.must(200, "/queries/get-tenant", key, `{}`); r.Body["status"] != "active" {
			return fmt.Errorf("get-tenant: %s", r.Raw)
		}
		return nil
	})
	eu := str(c.must(200, "/commands/create-scope", key, `{"parentScopeId":"`+root+`","name":"eu"}`).Body["scopeId"])
	scopePath := []string{root, eu}

	const credential = "sandbox-cred-plaintext-7Q2Z"
	type channel struct{ id, url, secret string }
	createChannel := func(typ, from string) channel {
		r := mustOK(c, "/commands/create-channel", key, `{"scopeId":"`+eu+`","name":"Reminders `+typ+`","type":"`+typ+
			`","provider":"sandbox","from":"`+from+`","config":{},"credentials":{"apiToken":"`+credential+`"}}`)
		ch := channel{str(r.Body["channelId"]), str(r.Body["inboundWebhookUrl"]), str(r.Body["inboundSecret"])}
		if !ids.Valid(ids.Channel, ch.id) || ch.secret == "" || ch.url != front.URL+"/webhooks/sandbox/"+ch.id {
			t.Fatalf("create-channel answer: %s (public URL %s)", r.Raw, front.URL)
		}
		if strings.Contains(r.Raw, credential) {
			t.Errorf("create-channel answers the credentials: %s", r.Raw)
		}
		return ch
	}
	sms := createChannel("sms", "+4930901820")
	email := createChannel("email", "noreply@acme.example")

	sub := mustOK(c, "/commands/create-subscription", key, `{"scopeId":"`+root+`","url":"`+receiver.URL+`/hooks","eventTypes":["*"]}`)
	subSecret := str(sub.Body["secret"])
	if !ids.Valid(ids.Subscription, str(sub.Body["subscriptionId"])) || !strings.HasPrefix(subSecret, "whsec_") {
		t.Fatalf("create-subscription answer: %s", sub.Raw)
	}

	// The messages, one per outcome.
	type sent struct {
		id, invocationID, traceID, actionID string
	}
	send := func(body string, hdr ...string) sent {
		r := c.must(202, "/commands/send-message", key, body, hdr...)
		id := str(r.Body["messageId"])
		if !ids.Valid(ids.Message, id) || (r.Body["status"] != "queued" && r.Body["status"] != "scheduled") || len(r.Body) != 2 {
			t.Fatalf("send-message answer: %s", r.Raw)
		}
		s := sent{id: id, invocationID: r.Header.Get("X-Invocation-Id"), traceID: r.Header.Get("X-Trace-Id")}
		for i := 0; i+1 < len(hdr); i += 2 {
			if strings.EqualFold(hdr[i], "X-Action-Id") {
				s.actionID = hdr[i+1]
			}
		}
		return s
	}
	smsBody := func(to, extra string) string {
		return `{"channelId":"` + sms.id + `","to":"` + to + `","content":{"text":"Your appointment is confirmed."}` + extra + `}`
	}
	ms := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

	actionID := ids.NewULIDs().New("x")[2:]
	delivered := send(smsBody("+4915112345678", `,"metadata":{"case":"delivered","patientRef":"p-1"}`),
		"X-Action-Id", actionID, "Idempotency-Key", "contracts-delivered")
	failed := send(smsBody("+4915112340001", ""))
	undelivered := send(smsBody("+4915112340004", `,"metadata":{"case":"undelivered"}`))
	retried := send(smsBody("+4915112340002", ""))
	scheduled := send(smsBody("+4915112345679", `,"sendAt":"`+ms(time.Now().Add(3*time.Second))+`"`))
	toCancel := send(smsBody("+4915112345670", `,"sendAt":"`+ms(time.Now().Add(time.Hour))+`"`))
	mailed := send(`{"channelId":"` + email.id + `","to":"patient@example.com","content":{"subject":"Your results",` +
		`"text":"Your results are ready.","html":"<p>Your results are ready.</p>"},"metadata":{"case":"email"}}`)
	silent := send(smsBody("+4915112340003", `,"metadata":{"case":"silent"}`))
	mustOK(c, "/commands/cancel-message", key, `{"messageId":"`+toCancel.id+`"}`)

	// The silent recipient is sent and gets no receipt; the test posts one,
	// "undelivered" without a reason (reason is optional: contract section 8).
	var silentProviderID string
	waitFor(t, 30*time.Second, "the silent message sent", func() error {
		h := c.must(200, "/queries/get-message-history", key, `{"messageId":"`+silent.id+`"}`)
		var hist historyDoc
		if err := json.Unmarshal([]byte(h.Raw), &hist); err != nil {
			return err
		}
		for _, e := range hist.Events {
			if e.Type == "messaging.message-sent" {
				var d struct {
					ProviderMessageID string `json:"providerMessageId"`
				}
				if err := json.Unmarshal(e.Data, &d); err != nil {
					return err
				}
				silentProviderID = d.ProviderMessageID
				return nil
			}
		}
		return fmt.Errorf("history: %s", h.Raw)
	})
	receipt := `{"type":"receipt","providerMessageId":"` + silentProviderID + `","status":"undelivered"}`
	if status := postSigned(t, sms.url, sms.secret, "contracts-rcpt-"+ids.NewULIDs().New("x")[2:], receipt); status != http.StatusNoContent {
		t.Fatalf("receipt without reason: answered %d, want 204", status)
	}

	// An inbound message, signed as the sandbox signs, posted twice with one
	// webhook-id: the repeat is accepted and changes nothing.
	inbound := `{"type":"inbound","providerMessageId":"sbx_in_` + ids.NewULIDs().New("x")[2:] +
		`","from":"+4917655501234","to":"+4930901820","text":"STOP"}`
	inboundID := "contracts-in-" + ids.NewULIDs().New("x")[2:]
	for i := 0; i < 2; i++ {
		if status := postSigned(t, sms.url, sms.secret, inboundID, inbound); status != http.StatusNoContent {
			t.Fatalf("inbound webhook %d: answered %d, want 204", i+1, status)
		}
	}

	// What the provider webhook schemas reject, the route rejects too (400
	// with a valid signature); a bad signature is 401, an unknown channel 404.
	// Posted in-process: the public URL records only the scenario's webhooks.
	for _, bad := range []string{
		`{"type":"receipt","providerMessageId":"sbx_1","status":"bounced"}`,
		`{"type":"receipt","status":"delivered"}`,
		`{"type":"receipt","providerMessageId":"sbx_1","status":"delivered","messageId":"msg_1"}`,
		`{"type":"inbound","providerMessageId":"sbx_1","from":"+4917655501234","to":"+4930901820"}`,
		`{"type":"inbound","providerMessageId":"sbx_1","from":"+4917655501234","to":"+4930901820","text":7}`,
		`{"type":"status","providerMessageId":"sbx_1"}`,
	} {
		schema := "sandbox-receipt"
		if strings.Contains(bad, `"inbound"`) {
			schema = "sandbox-inbound"
		}
		if events.Validate(schema, []byte(bad)) == nil {
			t.Errorf("schema %s accepts %s", schema, bad)
		}
		if st := postInProcess(t, a.Server, "/webhooks/sandbox/"+sms.id, sms.secret, "contracts-bad-"+ids.NewULIDs().New("x")[2:], bad, true); st != http.StatusBadRequest {
			t.Errorf("provider webhook %s: answered %d, want 400", bad, st)
		}
	}
	good := `{"type":"receipt","providerMessageId":"sbx_unknown","status":"delivered"}`
	if st := postInProcess(t, a.Server, "/webhooks/sandbox/"+sms.id, sms.secret, "contracts-unsigned", good, false); st != http.StatusUnauthorized {
		t.Errorf("provider webhook with a bad signature: answered %d, want 401", st)
	}
	if st := postInProcess(t, a.Server, "/webhooks/sandbox/"+ids.NewULIDs().New(ids.Channel), sms.secret, "contracts-nochannel", good, true); st != http.StatusNotFound {
		t.Errorf("provider webhook to an unknown channel: answered %d, want 404", st)
	}

	outcomes := map[string]outcome{
		delivered.id: {name: "delivered", status: "delivered", attempts: 1,
			public:  []string{"message.delivered", "message.queued", "message.sent"},
			history: []string{"messaging.message-accepted", "messaging.send-attempt-started", "messaging.message-sent", "messaging.message-delivered"}},
		failed.id: {name: "failed", status: "failed", attempts: 1, reason: "sandbox.invalid_number",
			public:  []string{"message.failed", "message.queued"},
			history: []string{"messaging.message-accepted", "messaging.send-attempt-started", "messaging.message-failed"}},
		undelivered.id: {name: "undelivered", status: "undelivered", attempts: 1, reason: "sandbox.carrier_rejected",
			public:  []string{"message.queued", "message.sent", "message.undelivered"},
			history: []string{"messaging.message-accepted", "messaging.send-attempt-started", "messaging.message-sent", "messaging.message-undelivered"}},
		retried.id: {name: "retried", status: "delivered", attempts: 3,
			public: []string{"message.delivered", "message.queued", "message.sent"},
			history: []string{"messaging.message-accepted", "messaging.send-attempt-started", "messaging.send-attempt-failed",
				"messaging.send-attempt-started", "messaging.send-attempt-failed", "messaging.send-attempt-started",
				"messaging.message-sent", "messaging.message-delivered"}},
		scheduled.id: {name: "scheduled", status: "delivered", attempts: 1,
			public:  []string{"message.delivered", "message.queued", "message.sent"},
			history: []string{"messaging.message-accepted", "messaging.message-released", "messaging.send-attempt-started", "messaging.message-sent", "messaging.message-delivered"}},
		toCancel.id: {name: "canceled", status: "canceled", attempts: 0,
			public:  []string{"message.canceled"},
			history: []string{"messaging.message-accepted", "messaging.message-canceled"}},
		silent.id: {name: "silent, then a receipt without reason", status: "undelivered", attempts: 1,
			public:  []string{"message.queued", "message.sent", "message.undelivered"},
			history: []string{"messaging.message-accepted", "messaging.send-attempt-started", "messaging.message-sent", "messaging.message-undelivered"}},
		mailed.id: {name: "email", status: "delivered", attempts: 1,
			public:  []string{"message.delivered", "message.queued", "message.sent"},
			history: []string{"messaging.message-accepted", "messaging.send-attempt-started", "messaging.message-sent", "messaging.message-delivered"}},
	}

	// The received message is known from its integration event.
	var receivedID string
	waitFor(t, 30*time.Second, "the inbound message's message.received event", func() error {
		for _, ev := range rec.integration() {
			if ev.Type == "message.received" {
				var d struct{ Data struct{ MessageID string } }
				if err := json.Unmarshal(ev.Detail, &d); err != nil {
					return err
				}
				receivedID = d.Data.MessageID
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	outcomes[receivedID] = outcome{name: "received", status: "received", public: []string{"message.received"},
		history: []string{"messaging.message-received"}}

	// Wait until every message is final, every integration event was
	// published and every webhook delivered (the 503 one retried).
	waitFor(t, 90*time.Second, "every message final, published and delivered", func() error {
		for id, o := range outcomes {
			r := c.must(200, "/queries/get-message", key, `{"messageId":"`+id+`"}`)
			if r.Body["status"] != o.status {
				return fmt.Errorf("%s message %s: status %v (%s); provider webhooks so far: %s", o.name, id, r.Body["status"], r.Raw, summary(rec.providerHooks()))
			}
		}
		got := publishedTypes(t, rec.integration())
		hooks := deliveredTypes(t, rec.webhooks())
		for id, o := range outcomes {
			if !reflect.DeepEqual(got[id], o.public) {
				return fmt.Errorf("%s message %s: integration events %v, want %v", o.name, id, got[id], o.public)
			}
			if !reflect.DeepEqual(hooks[id], o.public) {
				return fmt.Errorf("%s message %s: webhooks delivered %v, want %v", o.name, id, hooks[id], o.public)
			}
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // late duplicates, if any, are checked too

	// (i) Integration events.
	byID := checkIntegrationEvents(t, rec.integration(), tenantID, scopePath, outcomes)
	if ev := findEvent(byID, delivered.id, "message.queued"); ev != nil {
		inv := detailOf(t, ev).Invocation
		if inv.InvocationID != delivered.invocationID || inv.TraceID != delivered.traceID || inv.ActionID != actionID ||
			inv.Principal != "service_account:"+sva {
			t.Errorf("message.queued invocation %+v, want the send-message invocation %s, trace %s, action %s, service_account:%s",
				inv, delivered.invocationID, delivered.traceID, actionID, sva)
		}
	}
	if ev := findEvent(byID, delivered.id, "message.sent"); ev != nil {
		if inv := detailOf(t, ev).Invocation; inv.InvocationID != delivered.invocationID || inv.TraceID != delivered.traceID {
			t.Errorf("message.sent invocation %+v: the dispatch continues the send-message invocation %s (trace %s)",
				inv, delivered.invocationID, delivered.traceID)
		}
	}

	// (ii) Subscriber webhooks.
	checkWebhooks(t, rec.webhooks(), subSecret, byID)

	// (iii) Message streams, get-message, list-messages.
	for id, o := range outcomes {
		checkMessage(t, c, key, id, o, byID)
	}
	var hist historyDoc
	h := c.must(200, "/queries/get-message-history", key, `{"messageId":"`+delivered.id+`"}`)
	if err := json.Unmarshal([]byte(h.Raw), &hist); err != nil || len(hist.Events) == 0 {
		t.Errorf("get-message-history: %v %s", err, h.Raw)
	} else if e := hist.Events[0]; e.InvocationID != delivered.invocationID || e.Principal != "service_account:"+sva {
		t.Errorf("message-accepted: invocation %s, principal %s; want %s, service_account:%s", e.InvocationID, e.Principal, delivered.invocationID, sva)
	}
	list := c.must(200, "/queries/list-messages", key, `{"limit":100}`)
	var page struct {
		Items      []json.RawMessage `json:"items"`
		NextCursor *string           `json:"nextCursor"`
	}
	if err := json.Unmarshal([]byte(list.Raw), &page); err != nil || len(page.Items) != len(outcomes) || page.NextCursor != nil || len(list.Body) != 2 {
		t.Errorf("list-messages: %d items (want %d), %v: %s", len(page.Items), len(outcomes), err, list.Raw)
	}
	for _, it := range page.Items {
		if err := events.Validate("message", it); err != nil {
			t.Errorf("list-messages item: %v", err)
		}
	}
	recv := c.must(200, "/queries/list-messages", key, `{"status":"received"}`)
	if items, _ := recv.Body["items"].([]any); len(items) != 1 {
		t.Errorf("the repeated inbound webhook made %d received messages: %s", len(items), recv.Raw)
	}

	// (iv) Provider webhooks as they reached the public URL.
	secrets := map[string]string{"/webhooks/sandbox/" + sms.id: sms.secret, "/webhooks/sandbox/" + email.id: email.secret}
	checkProviderWebhooks(t, rec.providerHooks(), secrets, map[string]int{"delivered": 4, "undelivered": 2, "inbound": 2})

	// (v) The channels' streams: schema, and no secret in clear.
	for _, ch := range []channel{sms, email} {
		evs, err := a.Store.ReadStream(context.Background(), tenantID, "channel-"+ch.id, 0, 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("channel stream %s: %d events, %v", ch.id, len(evs), err)
		}
		e := evs[0]
		if e.Type != "channels.channel-created" || e.SchemaVersion != 1 || e.Version != 1 || !ids.Valid(ids.Event, e.ID) {
			t.Errorf("channel event envelope: %s v%d schema %d %s", e.Type, e.Version, e.SchemaVersion, e.ID)
		}
		if err := events.Validate(e.Type, e.Data); err != nil {
			t.Errorf("channel %s: %v", ch.id, err)
		}
		secretKey := strings.TrimPrefix(ch.secret, "whsec_")
		for _, clear := range []string{credential, ch.secret, secretKey} {
			if clear != "" && bytes.Contains(e.Data, []byte(clear)) {
				t.Errorf("channel-created data holds %q in clear: %s", clear, e.Data)
			}
		}
		got := c.must(200, "/queries/get-channel", key, `{"channelId":"`+ch.id+`"}`)
		if strings.Contains(got.Raw, credential) || strings.Contains(got.Raw, secretKey) {
			t.Errorf("get-channel shows a secret: %s", got.Raw)
		}
	}
}

// mustOK calls and requires a 2xx answer.
func mustOK(c *client, path, token, body string) reply {
	c.t.Helper()
	r := c.call(path, token, body)
	if r.Status < 200 || r.Status > 299 {
		c.t.Fatalf("%s: want 2xx, got %d %s", path, r.Status, r.Raw)
	}
	return r
}

// waitFor polls f (every 100 ms) until it returns nil, or fails with its last error.
func waitFor(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", d, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// postSigned posts body to url signed with Standard Webhooks under secret.
func postSigned(t *testing.T, url, secret, webhookID, body string) int {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", webhookID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+signature(t, secret, webhookID, ts, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// postInProcess posts a provider webhook to the app in-process, signed under
// secret (or with a wrong signature), and returns the status.
func postInProcess(t *testing.T, h http.Handler, path, secret, webhookID, body string, signed bool) int {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", webhookID)
	req.Header.Set("webhook-timestamp", ts)
	sig := signature(t, secret, webhookID, ts, []byte(body))
	if !signed {
		sig = signature(t, secret, webhookID, ts, []byte(body+" "))
	}
	req.Header.Set("webhook-signature", "v1,"+sig)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

// signature is the base64 HMAC-SHA256 of "id.timestamp.body" keyed by the
// decoded whsec_ secret (Standard Webhooks).
func signature(t *testing.T, secret, id, ts string, body []byte) string {
	t.Helper()
	k, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		t.Fatalf("secret %q is not whsec_<base64>", secret)
	}
	key, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// verifySignature checks a request's Standard Webhooks headers under secret.
func verifySignature(t *testing.T, h http.Header, body []byte, secret string) error {
	t.Helper()
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers: id %q timestamp %q signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: not unix seconds", ts)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %q is %s off", ts, d)
	}
	want := signature(t, secret, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if v, sig, _ := strings.Cut(s, ","); v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("webhook-signature %q does not verify", sigs)
}

// eventDetail is the detail of a message integration event.
type eventDetail struct {
	TenantID   string `json:"tenantId"`
	Invocation struct {
		InvocationID string `json:"invocationId"`
		ActionID     string `json:"actionId"`
		TraceID      string `json:"traceId"`
		Principal    string `json:"principal"`
	} `json:"invocation"`
	ScopePath []string        `json:"scopePath"`
	Data      json.RawMessage `json:"data"`
}

func detailOf(t *testing.T, ev *work.IntegrationEvent) eventDetail {
	t.Helper()
	var d eventDetail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		t.Fatalf("%s %s: detail: %v", ev.Type, ev.ID, err)
	}
	return d
}

func messageIDOf(raw json.RawMessage) string {
	var m struct {
		MessageID string `json:"messageId"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.MessageID
}

// publishedTypes returns the distinct integration event types per message, sorted.
func publishedTypes(t *testing.T, evs []work.IntegrationEvent) map[string][]string {
	seen := map[string]map[string]bool{}
	for i := range evs {
		d := detailOf(t, &evs[i])
		id := messageIDOf(d.Data)
		if seen[id] == nil {
			seen[id] = map[string]bool{}
		}
		seen[id][evs[i].Type] = true
	}
	return sortedSets(seen)
}

// deliveredTypes returns the webhook types per message that got a 2xx
// (every delivery but the first attempt of a failOnce type), sorted.
func deliveredTypes(t *testing.T, hooks []captured) map[string][]string {
	seen := map[string]map[string]bool{}
	attempts := map[string]int{}
	for _, h := range hooks {
		var b struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(h.Body, &b); err != nil {
			continue
		}
		attempts[h.Header.Get("webhook-id")]++
		if b.Type == failOnceType && attempts[h.Header.Get("webhook-id")] < 2 {
			continue // answered 503: its retry must come
		}
		id := messageIDOf(b.Data)
		if seen[id] == nil {
			seen[id] = map[string]bool{}
		}
		seen[id][b.Type] = true
	}
	return sortedSets(seen)
}

func sortedSets(m map[string]map[string]bool) map[string][]string {
	out := map[string][]string{}
	for id, set := range m {
		for typ := range set {
			out[id] = append(out[id], typ)
		}
		sort.Strings(out[id])
	}
	return out
}

func findEvent(byID map[string]*work.IntegrationEvent, messageID, typ string) *work.IntegrationEvent {
	for _, ev := range byID {
		if ev.Type == typ && messageIDOf(detailData(ev)) == messageID {
			return ev
		}
	}
	return nil
}

func detailData(ev *work.IntegrationEvent) json.RawMessage {
	var d struct {
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(ev.Detail, &d)
	return d.Data
}

// checkIntegrationEvents validates every captured event against the schema
// of its type and checks what schemas cannot: the envelope's tenant is the
// detail's, the scope path ends in the message's scope, a redelivered event
// is identical. It returns the events by id.
func checkIntegrationEvents(t *testing.T, evs []work.IntegrationEvent, tenantID string, scopePath []string, outcomes map[string]outcome) map[string]*work.IntegrationEvent {
	t.Helper()
	byID := map[string]*work.IntegrationEvent{}
	for i := range evs {
		ev := &evs[i]
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := events.Validate(ev.Type, raw); err != nil {
			t.Errorf("integration event %s %s: %v\n%s", ev.Type, ev.ID, err, raw)
		}
		d := detailOf(t, ev)
		if ev.TenantID != tenantID || d.TenantID != tenantID {
			t.Errorf("%s %s: tenant %s / detail %s, want %s", ev.Type, ev.ID, ev.TenantID, d.TenantID, tenantID)
		}
		if !reflect.DeepEqual(d.ScopePath, scopePath) {
			t.Errorf("%s %s: scopePath %v, want %v", ev.Type, ev.ID, d.ScopePath, scopePath)
		}
		if _, ok := outcomes[messageIDOf(d.Data)]; !ok {
			t.Errorf("%s %s: of a message the test did not make: %s", ev.Type, ev.ID, d.Data)
		}
		if prev, ok := byID[ev.ID]; ok {
			a, _ := json.Marshal(prev)
			if !bytes.Equal(a, raw) {
				t.Errorf("event %s delivered twice with different content:\n%s\n%s", ev.ID, a, raw)
			}
			continue
		}
		byID[ev.ID] = ev
	}
	// One event per (message, type): the id is the change's, not the delivery's.
	perKey := map[string]string{}
	for id, ev := range byID {
		k := messageIDOf(detailData(ev)) + " " + ev.Type
		if other, ok := perKey[k]; ok {
			t.Errorf("%s published twice with different ids %s and %s", k, other, id)
		}
		perKey[k] = id
	}
	return byID
}

// checkWebhooks validates every delivery attempt: schema, headers,
// signature, webhook-id = the integration event id, data = its message,
// timestamp = its time, and every attempt of one event has the same body.
func checkWebhooks(t *testing.T, hooks []captured, secret string, byID map[string]*work.IntegrationEvent) {
	t.Helper()
	bodies := map[string][]byte{}
	attempts := map[string]int{}
	for _, h := range hooks {
		id := h.Header.Get("webhook-id")
		attempts[id]++
		if err := events.Validate("webhook", h.Body); err != nil {
			t.Errorf("webhook %s: %v\n%s", id, err, h.Body)
		}
		if ct := h.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("webhook %s: Content-Type %q", id, ct)
		}
		if err := verifySignature(t, h.Header, h.Body, secret); err != nil {
			t.Errorf("webhook %s: %v", id, err)
		}
		if prev, ok := bodies[id]; ok && !bytes.Equal(prev, h.Body) {
			t.Errorf("webhook %s: a retry has another body:\n%s\n%s", id, prev, h.Body)
		}
		bodies[id] = h.Body
		ev, ok := byID[id]
		if !ok {
			t.Errorf("webhook-id %s is no integration event id", id)
			continue
		}
		var b struct {
			Type      string          `json:"type"`
			Timestamp string          `json:"timestamp"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(h.Body, &b); err != nil {
			t.Errorf("webhook %s: %v", id, err)
			continue
		}
		if b.Type != ev.Type || !jsonSame(b.Data, detailData(ev)) {
			t.Errorf("webhook %s: type %s, data %s; the event is %s with %s", id, b.Type, b.Data, ev.Type, detailData(ev))
		}
		if want := ev.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"); b.Timestamp != want {
			t.Errorf("webhook %s: timestamp %s, want the event's time %s", id, b.Timestamp, want)
		}
	}
	retried := false
	for id, n := range attempts {
		if ev := byID[id]; ev != nil && ev.Type == failOnceType && n >= 2 {
			retried = true
		}
	}
	if !retried {
		t.Errorf("the %s delivery answered 503 was not retried with the same webhook-id", failOnceType)
	}
}

func jsonSame(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// historyDoc is a get-message-history answer.
type historyDoc struct {
	Events []struct {
		EventID      string          `json:"eventId"`
		Type         string          `json:"type"`
		Version      int64           `json:"version"`
		OccurredAt   string          `json:"occurredAt"`
		InvocationID string          `json:"invocationId"`
		Principal    string          `json:"principal"`
		Data         json.RawMessage `json:"data"`
	} `json:"events"`
}

// checkMessage validates a message's get-message and get-message-history
// answers and ties its integration events to its stream: each event's id is
// the id of the domain event that made the change, its time that event's.
func checkMessage(t *testing.T, c *client, key, id string, o outcome, byID map[string]*work.IntegrationEvent) {
	t.Helper()
	m := c.must(200, "/queries/get-message", key, `{"messageId":"`+id+`"}`)
	if err := events.Validate("message", []byte(m.Raw)); err != nil {
		t.Errorf("%s: get-message: %v\n%s", o.name, err, m.Raw)
	}
	if n, _ := m.Body["attempts"].(float64); int(n) != o.attempts {
		t.Errorf("%s: attempts %v, want %d", o.name, m.Body["attempts"], o.attempts)
	}
	if r, _ := m.Body["statusReason"].(string); r != o.reason {
		t.Errorf("%s: statusReason %v, want %q", o.name, m.Body["statusReason"], o.reason)
	}
	h := c.must(200, "/queries/get-message-history", key, `{"messageId":"`+id+`"}`)
	if err := events.Validate("message-history", []byte(h.Raw)); err != nil {
		t.Errorf("%s: get-message-history: %v\n%s", o.name, err, h.Raw)
	}
	var hist historyDoc
	if err := json.Unmarshal([]byte(h.Raw), &hist); err != nil {
		t.Fatal(err)
	}
	var types []string
	byEvent := map[string]int{}
	for i, e := range hist.Events {
		types = append(types, e.Type)
		byEvent[e.EventID] = i
		if e.Version != int64(i+1) {
			t.Errorf("%s: event %d has version %d", o.name, i, e.Version)
		}
		if messageIDOf(e.Data) != id {
			t.Errorf("%s: event %s is of message %s", o.name, e.EventID, messageIDOf(e.Data))
		}
	}
	if !reflect.DeepEqual(types, o.history) {
		t.Errorf("%s: stream %v, want %v", o.name, types, o.history)
	}
	for evID, ev := range byID {
		if messageIDOf(detailData(ev)) != id {
			continue
		}
		i, ok := byEvent[evID]
		if !ok {
			t.Errorf("%s: integration event %s %s is no event of the message's stream", o.name, ev.Type, evID)
			continue
		}
		he := hist.Events[i]
		if !contains(domainTypeOf[ev.Type], he.Type) {
			t.Errorf("%s: integration event %s has the id of a %s", o.name, ev.Type, he.Type)
		}
		if got := ev.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"); got != he.OccurredAt {
			t.Errorf("%s: %s time %s, its domain event occurred at %s", o.name, ev.Type, got, he.OccurredAt)
		}
		if d := detailOf(t, ev); d.Invocation.InvocationID != he.InvocationID || d.Invocation.Principal != he.Principal {
			t.Errorf("%s: %s invocation %s/%s, its domain event's %s/%s", o.name, ev.Type,
				d.Invocation.InvocationID, d.Invocation.Principal, he.InvocationID, he.Principal)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkProviderWebhooks validates the provider webhooks that reached the
// public URL: schema by body type, signature under the channel's inbound
// secret, and how many of each arrived (receipts at least once each).
func checkProviderWebhooks(t *testing.T, hooks []captured, secrets map[string]string, atLeast map[string]int) {
	t.Helper()
	counts := map[string]int{}
	webhookIDs := map[string]map[string]bool{}
	for _, h := range hooks {
		var b struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(h.Body, &b); err != nil {
			t.Errorf("provider webhook %s: not JSON: %s", h.Path, h.Body)
			continue
		}
		kind := b.Type
		switch b.Type {
		case "receipt":
			kind = b.Status
			if err := events.Validate("sandbox-receipt", h.Body); err != nil {
				t.Errorf("sandbox receipt: %v\n%s", err, h.Body)
			}
		case "inbound":
			if err := events.Validate("sandbox-inbound", h.Body); err != nil {
				t.Errorf("sandbox inbound: %v\n%s", err, h.Body)
			}
		default:
			t.Errorf("provider webhook of unknown type: %s", h.Body)
		}
		if webhookIDs[kind] == nil {
			webhookIDs[kind] = map[string]bool{}
		}
		webhookIDs[kind][h.Header.Get("webhook-id")] = true
		counts[kind]++
		if h.Status != http.StatusNoContent {
			t.Errorf("provider webhook %s %s: answered %d, want 204", kind, h.Header.Get("webhook-id"), h.Status)
		}
		secret, ok := secrets[h.Path]
		if !ok {
			t.Errorf("provider webhook to an unknown path %s", h.Path)
			continue
		}
		if err := verifySignature(t, h.Header, h.Body, secret); err != nil {
			t.Errorf("provider webhook %s: %v", h.Path, err)
		}
	}
	for kind, n := range atLeast {
		if counts[kind] < n {
			t.Errorf("%d %s provider webhooks reached the public URL, want at least %d (%v)", counts[kind], kind, n, counts)
		}
	}
	if n := len(webhookIDs["inbound"]); n != 1 {
		t.Errorf("the inbound webhook was posted with %d webhook-ids, want 1", n)
	}
}
