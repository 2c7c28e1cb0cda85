package smoke

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// fake is a minimal deployment of the public API for the calls the smoke
// test makes. Messages reach their sandbox outcome at once; webhooks are
// posted from a goroutine, retried after 50 ms. A fault makes it misbehave
// the way a broken deployment would.
type fake struct {
	t     *testing.T
	srv   *httptest.Server
	fault string // "", "bad-signature", "wrong-status", "new-id-on-retry", "foreign-webhook", "keep-key"

	mu         sync.Mutex
	seq        int
	key        []byte // the subscription's secret
	subURL     string
	msgs       map[string]map[string]any
	history    map[string][]string // message id -> event ids
	deliveries []map[string]any
	replays    map[string][]byte
	revoked    bool
	wg         sync.WaitGroup
}

func newFake(t *testing.T, fault string) *fake {
	f := &fake{t: t, fault: fault, msgs: map[string]map[string]any{}, history: map[string][]string{}, replays: map[string][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() { f.srv.Close(); f.wg.Wait() })
	return f
}

func (f *fake) id(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s_%026d", prefix, f.seq)
}

func problem(w http.ResponseWriter, status int, code, field string) {
	w.Header().Set("Content-Type", ProblemContentType)
	w.WriteHeader(status)
	p := map[string]any{"status": status, "code": code, "title": code, "invocationId": "inv_fake"}
	if field != "" {
		p["errors"] = []map[string]string{{"field": field, "code": "errors.validation.e164"}}
	}
	json.NewEncoder(w).Encode(p)
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Invocation-Id", "inv_fake")
	w.Header().Set("X-Trace-Id", "0123456789abcdef0123456789abcdef")
	if r.URL.Path == "/healthz" {
		w.Write([]byte(`{"status":"ok"}`))
		return
	}
	var in map[string]any
	json.NewDecoder(r.Body).Decode(&in)
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	if name == "onboard-tenant" {
		if auth != "sbo_fake" {
			problem(w, 401, "errors.auth.unauthenticated", "")
			return
		}
	} else if auth != "sbk_key_fake_secret" || (f.revoked && f.fault != "keep-key") {
		problem(w, 401, "errors.auth.unauthenticated", "")
		return
	}
	idem := r.Header.Get("Idempotency-Key")
	if b, ok := f.replays[idem]; ok && idem != "" {
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(http.StatusAccepted)
		w.Write(b)
		return
	}
	reply := func(status int, v any) {
		b, _ := json.Marshal(v)
		if idem != "" && name == "send-message" {
			f.replays[idem] = b
		}
		w.WriteHeader(status)
		w.Write(b)
	}
	switch name {
	case "onboard-tenant":
		reply(200, map[string]string{"tenantId": "tnt_1", "rootScopeId": "scp_1", "serviceAccountId": "sva_1", "apiKeyId": "key_1", "apiKey": "sbk_key_fake_secret"})
	case "get-tenant":
		reply(200, map[string]string{"tenantId": "tnt_1", "status": "active"})
	case "create-channel":
		id := f.id("chn")
		reply(200, map[string]string{"channelId": id, "inboundWebhookUrl": f.srv.URL + "/webhooks/sandbox/" + id, "inboundSecret": "whsec_c2VjcmV0"})
	case "create-subscription":
		f.key = []byte("0123456789abcdef0123456789abcdef")
		f.subURL = in["url"].(string)
		reply(200, map[string]string{"subscriptionId": "sub_1", "secret": "whsec_" + base64.StdEncoding.EncodeToString(f.key)})
	case "send-message":
		to := in["to"].(string)
		var c *Case
		for i := range Cases {
			if Cases[i].To == to {
				c = &Cases[i]
			}
		}
		if c == nil {
			problem(w, 400, "errors.validation.failed", "to")
			return
		}
		id := f.id("msg")
		m := map[string]any{"messageId": id, "channelId": in["channelId"], "scopeId": "scp_1", "direction": "outbound", "to": to,
			"status": c.Status, "statusReason": nil, "attempts": c.Attempts, "metadata": in["metadata"]}
		if c.Reason != "" {
			m["statusReason"] = c.Reason
		}
		if f.fault == "wrong-status" && c.Status == "undelivered" {
			m["status"] = "delivered"
		}
		f.msgs[id] = m
		for _, typ := range c.Webhooks {
			evt := f.id("evt")
			f.history[id] = append(f.history[id], evt)
			data := map[string]any{}
			for k, v := range m {
				data[k] = v
			}
			data["status"] = strings.TrimPrefix(typ, "message.")
			body, _ := json.Marshal(map[string]any{"type": typ, "timestamp": "2025-01-01T00:00:00.000Z", "data": data})
			d := map[string]any{"deliveryId": f.id("dlv"), "eventId": evt, "eventType": typ, "status": "pending", "attempts": 0}
			f.deliveries = append(f.deliveries, d)
			f.wg.Add(1)
			go f.deliver(d, evt, body)
		}
		if f.fault == "foreign-webhook" {
			body, _ := json.Marshal(map[string]any{"type": "message.sent", "data": map[string]any{"messageId": "msg_another_tenant", "status": "sent"}})
			f.wg.Add(1)
			go f.deliver(map[string]any{}, "evt_foreign", body)
		}
		reply(202, map[string]string{"messageId": id, "status": "queued"})
	case "get-message":
		m := f.msgs[in["messageId"].(string)]
		if m == nil {
			problem(w, 404, "errors.resource.not_found", "")
			return
		}
		reply(200, m)
	case "get-message-history":
		var evs []map[string]string
		for _, id := range f.history[in["messageId"].(string)] {
			evs = append(evs, map[string]string{"eventId": id})
		}
		reply(200, map[string]any{"events": evs})
	case "list-deliveries":
		reply(200, map[string]any{"items": f.deliveries, "nextCursor": nil})
	case "list-api-keys":
		reply(200, map[string]any{"items": []map[string]any{{"apiKeyId": "key_1", "revoked": f.revoked}}, "nextCursor": nil})
	case "revoke-api-key":
		f.revoked = true
		reply(200, map[string]any{"apiKeyId": "key_1", "revoked": true})
	default:
		problem(w, 404, "errors.not_found", "")
	}
}

// deliver posts one event to the subscription until a 2xx (at most 5 attempts).
func (f *fake) deliver(d map[string]any, evt string, body []byte) {
	defer f.wg.Done()
	f.mu.Lock()
	key, url := f.key, f.subURL
	f.mu.Unlock()
	if f.fault == "bad-signature" {
		key = []byte("not the subscription's secret!!!")
	}
	wh, _ := standardwebhooks.NewWebhookRaw(key)
	for attempt := 1; attempt <= 5; attempt++ {
		id := evt
		if f.fault == "new-id-on-retry" && attempt > 1 {
			id = evt + "-" + strconv.Itoa(attempt)
		}
		now := time.Now()
		sig, _ := wh.Sign(id, now, body)
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		req.Header.Set("X-Invocation-Id", "inv_fake")
		resp, err := http.DefaultClient.Do(req)
		code := 0
		if err == nil {
			resp.Body.Close()
			code = resp.StatusCode
		}
		f.mu.Lock()
		d["attempts"], d["lastStatusCode"] = attempt, code
		if code/100 == 2 {
			d["status"] = "succeeded"
		} else {
			d["lastError"] = "status " + strconv.Itoa(code)
		}
		f.mu.Unlock()
		if code/100 == 2 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fake) run(t *testing.T) (Result, string) {
	var out bytes.Buffer
	res := Run(context.Background(), Config{BaseURL: f.srv.URL, OperatorKey: "sbo_fake", Timeout: 3 * time.Second, Out: &out})
	t.Logf("%s", out.String())
	return res, out.String()
}

// TestRunAgainstFake: a deployment that behaves passes; one that signs
// with another key, ends a message in the wrong status, changes the
// webhook-id on a retry, leaks another tenant's event or keeps a revoked key
// working fails, naming what is wrong.
func TestRunAgainstFake(t *testing.T) {
	defer func(d time.Duration) { RevocationWait = d }(RevocationWait)
	RevocationWait = time.Second
	res, out := newFake(t, "").run(t)
	if !res.Passed || !strings.Contains(out, "\nPASS smoke test of ") || res.RetriedWebhook == "" || res.Events != 14 {
		t.Fatalf("a good deployment: passed %v, %v", res.Passed, res.Err)
	}
	for fault, want := range map[string]string{
		"bad-signature":   "the signature does not verify with the subscription's secret",
		"wrong-status":    "email bounced (msg_",
		"new-id-on-retry": "webhook-id must stay the same on every retry",
		"foreign-webhook": "not one of this run's",
		"keep-key":        "is not refused with 401",
	} {
		t.Run(fault, func(t *testing.T) {
			res, out := newFake(t, fault).run(t)
			if res.Passed || res.Err == nil || !strings.Contains(res.Err.Error(), want) || !strings.Contains(out, "\nFAIL smoke test of ") {
				t.Fatalf("passed %v, err %v; want a FAIL saying %q", res.Passed, res.Err, want)
			}
			if fault != "keep-key" && len(res.Revoked) != 1 {
				t.Fatalf("the cleanup did not run after the failure: revoked %v", res.Revoked)
			}
		})
	}
}
