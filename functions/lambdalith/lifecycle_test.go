package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
)

// TestMessageLifecycle drives every row of the sandbox table (contract
// section 7) for sms and email through the production wiring, on both
// stores: send-message, the dispatch work, the sandbox's signed receipts
// posted over real HTTP to the channel's inbound webhook URL (the server
// listens on an httptest listener that SWITCHBOARD_PUBLIC_URL names), the
// webhook route and the receipt work. The worker and the outbox sweep run
// as in local mode (sweep every SWITCHBOARD_SWEEP_SECONDS, default 1 s).
// An inbound webhook makes a received message.
func TestMessageLifecycle(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb", EnginePebble} {
		t.Run(store, func(t *testing.T) { lifecycle(t, store) })
	}
}

// lateHandler serves the App's server once it is built (the public URL
// must be known before Build).
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

type lifecycleRow struct {
	name, sms, email string
	status           string
	reason           string // statusReason; "" for null
	attempts         int
	receipt          bool // a receipt changes the status after "sent"
}

var lifecycleRows = []lifecycleRow{
	{"fail", "+15550100001", "fail@example.com", "failed", "sandbox.invalid_number", 1, false},
	{"retry", "+15550100002", "retry@example.com", "delivered", "", 3, true},
	{"silent", "+15550100003", "silent@example.com", "sent", "", 1, false},
	{"bounce", "+15550100004", "bounce@example.com", "undelivered", "sandbox.carrier_rejected", 1, true},
	{"deliver", "+15550100005", "someone@example.com", "delivered", "", 1, true},
}

func lifecycle(t *testing.T, store string) {
	front := &lateHandler{}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	a := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": "sbo_lifecycle", "SWITCHBOARD_PUBLIC_URL": srv.URL})
	var h http.Handler = a.Server
	front.h.Store(&h)

	a.Worker.Start()
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); a.sweepLoop(sweepCtx, time.Duration(a.Config.SweepEvery)*time.Second) }()
	t.Cleanup(func() {
		stopSweep()
		<-sweepDone
		a.Worker.Stop(context.Background())
	})

	c := &client{t: t, base: srv.URL}
	on := c.must(200, "/commands/onboard-tenant", "sbo_lifecycle", `{"name":"Lifecycle","tier":"pooled"}`)
	key, tenantID, root := str(on.Body["apiKey"]), str(on.Body["tenantId"]), str(on.Body["rootScopeId"])
	eventually(t, 10*time.Second, "tenant active", func() bool {
		return c.must(200, "/queries/get-tenant", key, `{}`).Body["status"] == "active"
	})

	type channel struct{ id, url, secret string }
	channels := map[string]channel{}
	for _, ct := range []struct{ typ, from string }{{"sms", "+15550000000"}, {"email", "noreply@example.com"}} {
		r := c.must(200, "/commands/create-channel", key, `{"scopeId":"`+root+`","name":"`+ct.typ+`","type":"`+ct.typ+
			`","provider":"sandbox","from":"`+ct.from+`","config":{},"credentials":{}}`)
		ch := channel{str(r.Body["channelId"]), str(r.Body["inboundWebhookUrl"]), str(r.Body["inboundSecret"])}
		if !strings.HasPrefix(ch.id, "chn_") || ch.url != srv.URL+"/webhooks/sandbox/"+ch.id || !strings.HasPrefix(ch.secret, "whsec_") {
			t.Fatalf("create-channel %s: %s", ct.typ, r.Raw)
		}
		channels[ct.typ] = ch
	}

	// Send one message per row and channel type.
	type sent struct {
		row lifecycleRow
		typ string
		id  string
	}
	var msgs []*sent
	for _, row := range lifecycleRows {
		for _, typ := range []string{"sms", "email"} {
			to, content := row.sms, `{"text":"hello"}`
			if typ == "email" {
				to, content = row.email, `{"subject":"Hi","text":"hello"}`
			}
			r := c.must(202, "/commands/send-message", key, `{"channelId":"`+channels[typ].id+`","to":"`+to+`","content":`+content+`}`)
			if r.Body["status"] != "queued" || !strings.HasPrefix(str(r.Body["messageId"]), "msg_") {
				t.Fatalf("send-message %s %s: %s", row.name, typ, r.Raw)
			}
			msgs = append(msgs, &sent{row: row, typ: typ, id: str(r.Body["messageId"])})
		}
	}

	// Every message reaches its final status (silent ones: sent).
	eventually(t, 30*time.Second, "every message in its final status", func() bool {
		for _, m := range msgs {
			r := c.call("/queries/get-message", key, `{"messageId":"`+m.id+`"}`)
			if r.Status != 200 || r.Body["status"] != m.row.status {
				return false
			}
		}
		return true
	})

	// A silent message never gets a receipt: it is still sent well after
	// every other receipt came.
	time.Sleep(2 * time.Second)

	// Receipts are due 200 ms after the acceptance; the local worker holds
	// them until due, so they do not wait for a sweep (measured: 0.2 s on the
	// embedded store, at most about 0.5 s on DynamoDB Local with -race).
	probe := sandbox.New(sandbox.Deps{Store: a.Store}) // reads the sandbox's send log
	for _, m := range msgs {
		what := m.row.name + "/" + m.typ
		r := c.must(200, "/queries/get-message", key, `{"messageId":"`+m.id+`"}`)
		reason, _ := r.Body["statusReason"].(string)
		if r.Body["status"] != m.row.status || reason != m.row.reason || r.Body["attempts"] != float64(m.row.attempts) ||
			r.Body["direction"] != "outbound" || r.Body["channelId"] != channels[m.typ].id {
			t.Errorf("%s: %s; want %s %q after %d attempts", what, r.Raw, m.row.status, m.row.reason, m.row.attempts)
		}
		if m.row.reason == "" && r.Body["statusReason"] != nil {
			t.Errorf("%s: statusReason %v, want null", what, r.Body["statusReason"])
		}

		// The stream tells the story, and the receipt came within 2 s of the acceptance.
		hist := c.must(200, "/queries/get-message-history", key, `{"messageId":"`+m.id+`"}`)
		events, _ := hist.Body["events"].([]any)
		var types []string
		at := map[string]time.Time{}
		for _, e := range events {
			ev := e.(map[string]any)
			typ := str(ev["type"])
			types = append(types, strings.TrimPrefix(typ, "messaging."))
			ts, err := time.Parse(time.RFC3339Nano, str(ev["occurredAt"]))
			if err != nil {
				t.Fatalf("%s: occurredAt %v", what, ev["occurredAt"])
			}
			at[typ] = ts
		}
		want := map[string]string{
			"fail":    "message-accepted,send-attempt-started,message-failed",
			"retry":   "message-accepted" + strings.Repeat(",send-attempt-started,send-attempt-failed", 2) + ",send-attempt-started,message-sent,message-delivered",
			"silent":  "message-accepted,send-attempt-started,message-sent",
			"bounce":  "message-accepted,send-attempt-started,message-sent,message-undelivered",
			"deliver": "message-accepted,send-attempt-started,message-sent,message-delivered",
		}[m.row.name]
		if got := strings.Join(types, ","); got != want {
			t.Errorf("%s: history %s, want %s", what, got, want)
		}
		if m.row.receipt {
			final := at["messaging.message-delivered"]
			if m.row.status == "undelivered" {
				final = at["messaging.message-undelivered"]
			}
			d := final.Sub(at["messaging.message-sent"])
			t.Logf("%s: receipt applied %s after sent", what, d)
			if d < 0 || d > 2*time.Second {
				t.Errorf("%s: receipt %s after sent, want within 2 s", what, d)
			}
		}

		// Exactly once at the provider.
		accepted, calls, err := probe.Sends(context.Background(), tenantID, m.id)
		wantAccepted := 1
		if m.row.status == "failed" {
			wantAccepted = 0
		}
		if err != nil || accepted != wantAccepted || calls != m.row.attempts {
			t.Errorf("%s: sandbox send log: %d accepted, %d calls, %v; want %d, %d", what, accepted, calls, err, wantAccepted, m.row.attempts)
		}
	}

	// An inbound message, posted as the sandbox would, becomes a received message.
	sms := channels["sms"]
	body := `{"type":"inbound","providerMessageId":"sbx_inbound_1","from":"+15550109999","to":"+15550000000","text":"hi there"}`
	post := func(webhookID, secret string) int {
		req, err := http.NewRequest(http.MethodPost, sms.url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		sig, err := sandbox.Sign([]byte(secret), webhookID, now, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", webhookID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post("wh_inbound_1", channels["email"].secret); s != http.StatusUnauthorized {
		t.Fatalf("inbound signed with another channel's secret: %d, want 401", s)
	}
	for i := 0; i < 2; i++ { // the provider retries: accepted again, one message
		if s := post("wh_inbound_1", sms.secret); s != http.StatusNoContent {
			t.Fatalf("inbound webhook: %d, want 204", s)
		}
	}
	var received map[string]any
	eventually(t, 10*time.Second, "received message", func() bool {
		r := c.must(200, "/queries/list-messages", key, `{"channelId":"`+sms.id+`","status":"received"}`)
		items, _ := r.Body["items"].([]any)
		if len(items) == 0 {
			return false
		}
		if len(items) > 1 {
			t.Fatalf("%d received messages, want 1: %s", len(items), r.Raw)
		}
		received = items[0].(map[string]any)
		return true
	})
	content, _ := received["content"].(map[string]any)
	if received["direction"] != "inbound" || received["status"] != "received" || received["from"] != "+15550109999" ||
		received["to"] != "+15550000000" || content["text"] != "hi there" || received["scopeId"] != root {
		t.Fatalf("received message: %v", received)
	}
	got := c.must(200, "/queries/get-message", key, `{"messageId":"`+str(received["messageId"])+`"}`)
	if got.Body["status"] != "received" {
		t.Fatalf("get-message of the received message: %s", got.Raw)
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would have been processed by now
	r := c.must(200, "/queries/list-messages", key, `{"channelId":"`+sms.id+`","status":"received"}`)
	if items, _ := r.Body["items"].([]any); len(items) != 1 {
		t.Fatalf("after the repeated webhook: %s", r.Raw)
	}

	// Unknown channels are 404, not 5xx.
	if s := func() int {
		resp, err := http.Post(srv.URL+"/webhooks/sandbox/chn_01JQ0000000000000000000009", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}(); s != http.StatusNotFound {
		t.Fatalf("unknown channel: %d", s)
	}
}
