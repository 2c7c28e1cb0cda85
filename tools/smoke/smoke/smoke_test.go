package smoke

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestParseReceiver(t *testing.T) {
	for in, want := range map[string]ReceiverSpec{
		"":                               {Mode: ReceiverLocal},
		"local":                          {Mode: ReceiverLocal},
		" none ":                         {Mode: ReceiverNone},
		"url=https://hook.example.com/x": {Mode: ReceiverURL, URL: "https://hook.example.com/x"},
	} {
		got, err := ParseReceiver(in)
		if err != nil || got != want {
			t.Errorf("ParseReceiver(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"url=", "url=ftp://x.example", "url=/relative", "public", "LOCAL"} {
		if got, err := ParseReceiver(in); err == nil {
			t.Errorf("ParseReceiver(%q) = %+v, want an error", in, got)
		}
	}
}

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"": DefaultTimeout, "90": 90 * time.Second, "2m": 2 * time.Minute, " 45s ": 45 * time.Second} {
		if got, err := ParseTimeout(in); err != nil || got != want {
			t.Errorf("ParseTimeout(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-5", "soon", "-1s"} {
		if _, err := ParseTimeout(in); err == nil {
			t.Errorf("ParseTimeout(%q): want an error", in)
		}
	}
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{"BASE_URL": "https://api.example.com", "OPERATOR_KEY": "sbo_env", "RECEIVER": "none", "TIMEOUT": "30", "RECEIVER_LISTEN": "127.0.0.1:9999"}
	cfg, err := ParseConfig(nil, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil || cfg.BaseURL != "https://api.example.com" || cfg.OperatorKey != "sbo_env" || cfg.Receiver.Mode != ReceiverNone ||
		cfg.Timeout != 30*time.Second || cfg.Listen != "127.0.0.1:9999" || cfg.UnreachableURL != DefaultUnreachableURL {
		t.Fatalf("from the environment: %+v, %v", cfg, err)
	}
	// Flags win over the environment.
	cfg, err = ParseConfig([]string{"-base-url", "http://127.0.0.1:8080", "-operator-key", "sbo_flag", "-receiver", "url=https://h.example/", "-timeout", "2m"},
		func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil || cfg.BaseURL != "http://127.0.0.1:8080" || cfg.OperatorKey != "sbo_flag" || cfg.Receiver.URL != "https://h.example/" || cfg.Timeout != 2*time.Minute {
		t.Fatalf("flags: %+v, %v", cfg, err)
	}
	env["RECEIVER"] = "somewhere"
	if _, err := ParseConfig(nil, func(k string) string { return env[k] }, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "RECEIVER") {
		t.Fatalf("a bad RECEIVER: %v", err)
	}
	var out bytes.Buffer
	if code, _ := Main(context.Background(), []string{"-h"}, func(string) string { return "" }, &out); code != ExitPass || !strings.Contains(out.String(), "make smoke BASE_URL=") {
		t.Fatalf("-h: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code, _ := Main(context.Background(), []string{"-timeout", "x"}, func(string) string { return "" }, &out); code != ExitConfig || !strings.HasPrefix(out.String(), "FAIL smoke test not started: TIMEOUT") {
		t.Fatalf("bad TIMEOUT: exit %d\n%s", code, out.String())
	}
}

// post sends a webhook to the receiver, signed with key (nil: unsigned).
func post(t *testing.T, url, id string, ts time.Time, body string, key []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	if key != nil {
		wh, _ := standardwebhooks.NewWebhookRaw(key)
		sig, _ := wh.Sign(id, ts, []byte(body))
		req.Header.Set("webhook-signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReceiver: the receiver verifies with the subscription's secret, answers
// 204, 401 for a bad or stale signature, 503 before it knows the secret and
// once on purpose with RejectFirst; it records what it got.
func TestReceiver(t *testing.T) {
	r, err := StartReceiver(DefaultLocalListen)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.RejectFirst = true
	url := "http://" + r.Addr() + "/"
	key := []byte("0123456789abcdef0123456789abcdef")
	body := `{"type":"message.sent","timestamp":"2025-01-01T00:00:00.000Z","data":{"messageId":"msg_1","status":"sent"}}`
	now := time.Now()

	if got := post(t, url, "evt_0", now, body, key); got != http.StatusServiceUnavailable {
		t.Fatalf("before the secret: %d, want 503", got)
	}
	if err := r.SetSecret("whsec_not*base64"); err == nil {
		t.Fatal("a secret that is not base64 was accepted")
	}
	if err := r.SetSecret("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		ts   time.Time
		key  []byte
		want int
	}{
		{"evt_1", now, key, http.StatusServiceUnavailable}, // the first verified one, refused on purpose
		{"evt_1", now, key, http.StatusNoContent},          // its retry
		{"evt_2", now, key, http.StatusNoContent},
		{"evt_3", now, []byte("another key, another signature!"), http.StatusUnauthorized},
		{"evt_4", now, nil, http.StatusUnauthorized},
		{"evt_5", now.Add(-10 * time.Minute), key, http.StatusUnauthorized}, // stale
	} {
		if got := post(t, url, c.id, c.ts, body, c.key); got != c.want {
			t.Fatalf("%s: %d, want %d", c.id, got, c.want)
		}
	}
	if resp, err := http.Get(url); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", resp, err)
	}
	got := r.Received()
	if len(got) != 7 || r.Rejected() != "evt_1" {
		t.Fatalf("%d recorded, rejected %q", len(got), r.Rejected())
	}
	if g := got[2]; !g.Verified || g.WebhookID != "evt_1" || g.Type != "message.sent" || g.MessageID != "msg_1" || g.Status != "sent" || g.Answered != 204 {
		t.Fatalf("the retry as recorded: %+v", g)
	}
	for _, g := range got[4:] {
		if g.Verified || g.VerifyError == "" || g.Answered != http.StatusUnauthorized {
			t.Fatalf("%s: %+v, want unverified with the reason", g.WebhookID, g)
		}
	}
	if !strings.Contains(got[6].VerifyError, "too old") {
		t.Fatalf("stale: %s", got[6].VerifyError)
	}
}

// TestClientErrors: problem+json is reported with its code, detail, fields
// and invocation id; anything else with its content type and first bytes;
// transport errors and 429s are retried with the same Idempotency-Key.
func TestClientErrors(t *testing.T) {
	var calls atomic.Int32
	keys := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys <- r.Header.Get("Idempotency-Key")
		if r.Header.Get("Authorization") != "Bearer sbk_x" {
			t.Errorf("Authorization %q", r.Header.Get("Authorization"))
		}
		switch r.URL.Path {
		case "/commands/problem":
			w.Header().Set("Content-Type", ProblemContentType)
			w.WriteHeader(400)
			w.Write([]byte(`{"status":400,"code":"errors.validation.failed","title":"Invalid","detail":"One or more fields are invalid.","invocationId":"inv_1","errors":[{"field":"to","code":"errors.validation.e164"}]}`))
		case "/commands/gateway":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(403)
			w.Write([]byte("<html>\n<body>Forbidden</body></html>"))
		case "/commands/create-subscription":
			w.Header().Set("Content-Type", ProblemContentType)
			w.WriteHeader(400)
			w.Write([]byte(`{"status":400,"code":"errors.webhook.target_forbidden","detail":"no"}`))
		case "/commands/busy":
			if calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				w.Header().Set("Content-Type", ProblemContentType)
				w.WriteHeader(429)
				w.Write([]byte(`{"status":429,"code":"errors.auth.throttled"}`))
				return
			}
			w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	var log bytes.Buffer
	c := &client{http: srv.Client(), base: srv.URL, log: func(f string, a ...any) { log.WriteString(f + "\n") }}
	ctx := context.Background()

	_, err := c.call(ctx, "/commands/problem", "sbk_x", "k1", map[string]any{}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "errors.validation.failed" || ae.InvocationID != "inv_1" || len(ae.Fields) != 1 ||
		err.Error() != "POST /commands/problem: 400 errors.validation.failed: One or more fields are invalid. [to: errors.validation.e164] (invocation inv_1)" {
		t.Fatalf("problem: %v", err)
	}
	_, err = c.call(ctx, "/commands/gateway", "sbk_x", "k2", map[string]any{}, nil)
	if !errors.As(err, &ae) || ae.Code != "" || !strings.Contains(err.Error(), `403 Forbidden, answered with "text/html", not application/problem+json: <html> <body>Forbidden</body></html>`) ||
		!strings.Contains(err.Error(), "what to do: the answer is not Switchboard's: check BASE_URL") {
		t.Fatalf("not a problem: %v", err)
	}
	_, err = c.call(ctx, "/commands/create-subscription", "sbk_x", "k3", map[string]any{}, nil)
	if err == nil || !strings.Contains(err.Error(), "RECEIVER=url=") {
		t.Fatalf("target forbidden: %v", err)
	}
	var out struct{ OK bool }
	if _, err := c.call(ctx, "/commands/busy", "sbk_x", "k4", map[string]any{}, &out); err != nil || !out.OK || calls.Load() != 2 ||
		!strings.Contains(log.String(), "retrying") {
		t.Fatalf("429 then 200: %v, %v, %d calls, log %q", err, out, calls.Load(), log.String())
	}
	close(keys)
	var got []string
	for k := range keys {
		got = append(got, k)
	}
	if strings.Join(got, ",") != "k1,k2,k3,k4,k4" {
		t.Fatalf("Idempotency-Keys sent: %v", got)
	}

	// No server: the call is retried, then reported without an answer.
	defer func(d time.Duration) { retryWait = d }(retryWait)
	retryWait = 10 * time.Millisecond
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	log.Reset()
	c = &client{http: dead.Client(), base: dead.URL, log: func(f string, a ...any) { log.WriteString(f + "\n") }}
	if _, err := c.call(ctx, "/queries/get-tenant", "sbk_x", "", map[string]any{}, nil); !errors.As(err, &ae) || ae.Status != 0 ||
		!strings.Contains(err.Error(), "no answer") || strings.Count(log.String(), "retrying") != maxRetries {
		t.Fatalf("no server: %v, log %q", err, log.String())
	}
}
