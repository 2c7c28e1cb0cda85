package messaging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
	"github.com/switchboard-dev/switchboard/modules/tenancy"
)

// Provider failures through the real work path: the messaging module as
// production wires it (store, unit of work, work executor, relay, local
// worker, rpc edge, system clock), with a scripted provider in place of the
// sandbox. The production Build registers only the sandbox, so this is where
// a provider that times out or answers 5xx can be put behind a channel.

// rsStep is what the scripted provider does with one call.
type rsStep int

const (
	rsAccept            rsStep = iota // accepted
	rsServerError                     // a 5xx: *app.SendError{Transient: true}
	rsTimeout                         // hangs past its client's deadline, then a timeout error (not a SendError)
	rsAcceptThenTimeout               // accepts, but the answer is lost: hangs past the deadline, then a timeout error
	rsHang                            // never answers: blocks until the caller's context ends
)

// rsCall is one call the provider got.
type rsCall struct {
	attempt    int
	start, end time.Time
	replayed   bool
}

// rsProvider is a provider whose calls follow a script per recipient (the
// last step repeats). Like a real provider (and the sandbox), it is
// idempotent by IdempotencyKey: a key it accepted is answered with the same
// provider message id and sent no more.
type rsProvider struct {
	timeout time.Duration // its own client deadline (rsTimeout, rsAcceptThenTimeout)
	mu      sync.Mutex
	script  map[string][]rsStep
	calls   map[string][]rsCall // by idempotency key (the message id)
	sent    map[string]string   // idempotency key -> provider message id
	sends   map[string]int      // idempotency key -> messages actually sent
	n       int
}

func (p *rsProvider) Name() string { return "scripted" }

func (p *rsProvider) CheckChannel(t domain.ChannelType, from string, _, _ map[string]string) error {
	if t != domain.ChannelSMS || from == "" {
		return errs.Invalid(errs.FieldError{Field: "type", Code: "errors.validation.one_of"})
	}
	return nil
}

func (p *rsProvider) VerifyWebhook([]byte, http.Header, []byte, time.Time) (string, error) {
	return "", app.ErrBadSignature
}

func (p *rsProvider) ParseWebhook([]byte) (app.ProviderEvent, error) {
	return app.ProviderEvent{}, errs.Invalid()
}

var errRSTimeout = fmt.Errorf("scripted: Post \"https://provider.example/send\": %w (Client.Timeout exceeded while awaiting headers)", context.DeadlineExceeded)

func (p *rsProvider) Send(ctx context.Context, req app.SendRequest) (app.SendResult, error) {
	start := time.Now()
	p.mu.Lock()
	i := len(p.calls[req.IdempotencyKey])
	p.calls[req.IdempotencyKey] = append(p.calls[req.IdempotencyKey], rsCall{attempt: req.Attempt, start: start})
	finish := func(replayed bool) {
		p.mu.Lock()
		c := p.calls[req.IdempotencyKey]
		c[i].end, c[i].replayed = time.Now(), replayed
		p.mu.Unlock()
	}
	if pmid, ok := p.sent[req.IdempotencyKey]; ok {
		p.mu.Unlock()
		finish(true)
		return app.SendResult{ProviderMessageID: pmid}, nil
	}
	steps := p.script[req.To]
	step := rsAccept
	if len(steps) > 0 {
		step = steps[min(i, len(steps)-1)]
	}
	accept := func() string {
		p.n++
		pmid := fmt.Sprintf("scr_%06d", p.n)
		p.sent[req.IdempotencyKey] = pmid
		p.sends[req.IdempotencyKey]++
		return pmid
	}
	switch step {
	case rsAccept:
		pmid := accept()
		p.mu.Unlock()
		finish(false)
		return app.SendResult{ProviderMessageID: pmid}, nil
	case rsAcceptThenTimeout:
		accept()
	}
	p.mu.Unlock()
	defer finish(false)
	switch step {
	case rsServerError:
		return app.SendResult{}, &app.SendError{Transient: true, Reason: "scripted.http_503", Err: errors.New("503 Service Unavailable")}
	case rsHang:
		<-ctx.Done()
		return app.SendResult{}, fmt.Errorf("scripted: %w", ctx.Err())
	default: // rsTimeout, rsAcceptThenTimeout
		select {
		case <-time.After(p.timeout):
			return app.SendResult{}, errRSTimeout
		case <-ctx.Done():
			return app.SendResult{}, fmt.Errorf("scripted: %w", ctx.Err())
		}
	}
}

func (p *rsProvider) report(key string) (calls []rsCall, sends int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]rsCall(nil), p.calls[key]...), p.sends[key]
}

// rsEnv is the wiring: one bolt store, the tenancy and messaging modules,
// the work path of local mode and the rpc edge, on the system clock.
type rsEnv struct {
	server   *rpc.Server
	provider *rsProvider
	key      string // the tenant's API key
	channel  string
}

const rsOperatorKey = "sbo_resilience"

func newRSEnv(t *testing.T, provider *rsProvider, tune func(*app.DispatchHandler)) *rsEnv {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	keyring, err := secrets.NewLocalKeyring(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealer := secrets.NewEnvelope(keyring)
	gen, clk := ids.NewULIDs(), clock.System{}
	reg := work.NewRegistry()
	runner := &uow.Runner{Store: store}
	exec := &work.Executor{Handlers: reg, Runner: runner, Clock: clk}
	worker := &work.LocalWorker{Handler: exec, Store: store, Clock: clk, Workers: 4}
	relay := &work.Relay{Store: store, Clock: clk, Transport: worker}
	runner.AfterCommit = relay.AfterCommit
	ten := tenancy.New(tenancy.Deps{Store: store, IDs: gen, Clock: clk})
	ten.RegisterWork(reg)
	mod := messaging.New(messaging.Deps{
		Store: store, Runner: runner, Sealer: sealer, Scopes: ten,
		Providers: app.Providers{provider.Name(): provider},
		IDs:       gen, Clock: clk, PublicURL: "https://sb.example.com",
	})
	if tune != nil {
		tune(&mod.App().Work.Dispatch)
	}
	mod.RegisterWork(reg)
	e := &rsEnv{provider: provider}
	e.server = rpc.NewServer(rpc.Config{
		Auth:  &auth.Authenticator{OperatorKeyHash: auth.HashSecret(rsOperatorKey), Keys: ten.APIKeys()},
		Store: store, Sealer: sealer, Runner: runner, IDs: gen, Clock: clk,
	})
	e.server.Register(ten.Endpoints()...)
	e.server.Register(mod.Endpoints()...)
	worker.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		worker.Stop(ctx)
	})

	on := e.must(t, 200, "/commands/onboard-tenant", rsOperatorKey, `{"name":"Flaky","tier":"pooled"}`)
	e.key = str(on["apiKey"])
	rsEventually(t, 10*time.Second, "tenant active", func() bool {
		return e.must(t, 200, "/queries/get-tenant", e.key, `{}`)["status"] == "active"
	})
	e.channel = str(e.must(t, 200, "/commands/create-channel", e.key,
		`{"scopeId":"`+str(on["rootScopeId"])+`","name":"scripted","type":"sms","provider":"scripted","from":"+15550000000"}`)["channelId"])
	return e
}

func (e *rsEnv) must(t *testing.T, status int, path, token, body string) map[string]any {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	e.server.ServeHTTP(w, req)
	if w.Code != status {
		t.Fatalf("%s: %d %s, want %d", path, w.Code, w.Body.String(), status)
	}
	var m map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &m)
	return m
}

func (e *rsEnv) send(t *testing.T, to string) string {
	t.Helper()
	return str(e.must(t, 202, "/commands/send-message", e.key, `{"channelId":"`+e.channel+`","to":"`+to+`","content":{"text":"hello"}}`)["messageId"])
}

func (e *rsEnv) message(t *testing.T, id string) map[string]any {
	t.Helper()
	return e.must(t, 200, "/queries/get-message", e.key, `{"messageId":"`+id+`"}`)
}

// history returns a message's events as (type without "messaging.", data, occurredAt).
func (e *rsEnv) history(t *testing.T, id string) []rsEvent {
	t.Helper()
	evs, _ := e.must(t, 200, "/queries/get-message-history", e.key, `{"messageId":"`+id+`"}`)["events"].([]any)
	var out []rsEvent
	for _, x := range evs {
		ev := x.(map[string]any)
		at, err := time.Parse(time.RFC3339Nano, str(ev["occurredAt"]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rsEvent{typ: strings.TrimPrefix(str(ev["type"]), "messaging."), data: ev["data"].(map[string]any), at: at})
	}
	return out
}

type rsEvent struct {
	typ  string
	data map[string]any
	at   time.Time
}

func str(v any) string { s, _ := v.(string); return s }

func rsEventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *rsEnv) final(t *testing.T, id string, within time.Duration) map[string]any {
	t.Helper()
	var m map[string]any
	rsEventually(t, within, id+" final", func() bool {
		m = e.message(t, id)
		return domain.Status(str(m["status"])).Final() || m["status"] == "sent"
	})
	return m
}

// TestProviderTimeoutsAndTransientErrors: a provider that times out or
// answers 5xx is retried with exponential backoff (never before the retry
// time the dispatcher recorded, never later than the backoff's ceiling
// allows) and the message ends sent exactly once; a provider that accepted
// but whose answer was lost to a timeout is asked again with the same
// idempotency key and sends nothing new; retries that run out end "failed"
// with the provider's reason, or "provider.unavailable" for timeouts.
func TestProviderTimeoutsAndTransientErrors(t *testing.T) {
	const base = 200 * time.Millisecond
	p := &rsProvider{timeout: 300 * time.Millisecond, calls: map[string][]rsCall{}, sent: map[string]string{}, sends: map[string]int{},
		script: map[string][]rsStep{
			"+15550400001": {rsTimeout, rsServerError, rsAccept},
			"+15550400002": {rsAcceptThenTimeout},
			"+15550400003": {rsServerError},
			"+15550400004": {rsTimeout},
			"+15550400005": {rsServerError, rsServerError, rsServerError, rsServerError, rsAccept}, // the last attempt wins
		}}
	e := newRSEnv(t, p, func(h *app.DispatchHandler) { h.RetryBase = base })
	began := time.Now()
	mixed := e.send(t, "+15550400001")
	lostAnswer := e.send(t, "+15550400002")
	exhausted5xx := e.send(t, "+15550400003")
	exhaustedTimeout := e.send(t, "+15550400004")
	lastChance := e.send(t, "+15550400005")

	type want struct {
		id, status, reason string
		attempts, sends    int
		history            string
	}
	for _, w := range []want{
		{mixed, "sent", "", 3, 1, "message-accepted" + strings.Repeat(",send-attempt-started,send-attempt-failed", 2) + ",send-attempt-started,message-sent"},
		{lostAnswer, "sent", "", 2, 1, "message-accepted,send-attempt-started,send-attempt-failed,send-attempt-started,message-sent"},
		{exhausted5xx, "failed", "scripted.http_503", 5, 0, "message-accepted" + strings.Repeat(",send-attempt-started,send-attempt-failed", 4) + ",send-attempt-started,message-failed"},
		{exhaustedTimeout, "failed", app.ReasonProviderUnavailable, 5, 0, "message-accepted" + strings.Repeat(",send-attempt-started,send-attempt-failed", 4) + ",send-attempt-started,message-failed"},
		{lastChance, "sent", "", 5, 1, "message-accepted" + strings.Repeat(",send-attempt-started,send-attempt-failed", 4) + ",send-attempt-started,message-sent"},
	} {
		m := e.final(t, w.id, 20*time.Second)
		reason, _ := m["statusReason"].(string)
		if m["status"] != w.status || reason != w.reason || m["attempts"] != float64(w.attempts) {
			t.Errorf("%s: %v %q after %v attempts; want %s %q after %d", w.id, m["status"], reason, m["attempts"], w.status, w.reason, w.attempts)
		}
		calls, sends := p.report(w.id)
		if sends != w.sends {
			t.Errorf("%s: the provider sent it %d times, want %d", w.id, sends, w.sends)
		}
		if len(calls) != w.attempts {
			t.Errorf("%s: %d provider calls, want %d", w.id, len(calls), w.attempts)
		}
		hist := e.history(t, w.id)
		var types []string
		var failures []rsEvent
		claims := 0
		for _, ev := range hist {
			if ev.typ == "send-attempt-started" { // the claim of an attempt, before its call
				claims++
			}
			types = append(types, ev.typ)
			if ev.typ == "send-attempt-failed" {
				failures = append(failures, ev)
			}
		}
		if got := strings.Join(types, ","); got != w.history {
			t.Errorf("%s: history %s\nwant %s", w.id, got, w.history)
		}
		if claims != w.attempts {
			t.Errorf("%s: %d attempts claimed (send-attempt-started), want one per attempt (%d)", w.id, claims, w.attempts)
		}
		// Backoff: call n+1 comes at or after the retry time recorded for
		// attempt n, and within the ceiling base*2^(n-1) (full jitter) of
		// the end of call n, plus scheduling slack.
		for n, f := range failures {
			if n+1 >= len(calls) {
				break
			}
			if f.data["attempt"] != float64(n+1) {
				t.Errorf("%s: failure %d records attempt %v", w.id, n+1, f.data["attempt"])
			}
			retryAt, err := time.Parse(time.RFC3339Nano, str(f.data["retryAt"]))
			if err != nil {
				t.Fatalf("%s: retryAt %v", w.id, f.data["retryAt"])
			}
			next := calls[n+1]
			if next.start.Before(retryAt.Add(-2 * time.Millisecond)) {
				t.Errorf("%s: attempt %d at %s, before its retry time %s", w.id, n+2, next.start.Format(time.StampMilli), retryAt.Format(time.StampMilli))
			}
			ceiling := base << n
			if gap := next.start.Sub(calls[n].end); gap > ceiling+300*time.Millisecond {
				t.Errorf("%s: attempt %d came %s after attempt %d ended; backoff ceiling %s", w.id, n+2, gap, n+1, ceiling)
			}
			if next.attempt != n+2 {
				t.Errorf("%s: call %d carried attempt %d", w.id, n+2, next.attempt)
			}
		}
		if w.id == lostAnswer && (len(calls) != 2 || !calls[1].replayed) {
			t.Errorf("lost answer: calls %+v; want the second answered as a replay", calls)
		}
	}
	t.Logf("all outcomes in %s", time.Since(began).Round(time.Millisecond))
}

// A provider that never answers must not stop local work: each call ends at
// the dispatcher's CallTimeout as a transient failure, retried with backoff,
// and while calls hang, the worker's other items go on (work.LocalWorker
// gives a slot held past SlowAfter to a new goroutine). Before, as many hung
// calls as the worker has goroutines held all of them, and every other
// message, receipt and webhook waited (a defect found by review, kept
// failing under a build tag until fixed).
func TestHungProviderCallsDoNotHoldTheWorker(t *testing.T) {
	p := &rsProvider{timeout: time.Second, calls: map[string][]rsCall{}, sent: map[string]string{}, sends: map[string]int{},
		script: map[string][]rsStep{"+15550400009": {rsHang, rsAccept}}}
	e := newRSEnv(t, p, func(h *app.DispatchHandler) {
		h.RetryBase = 100 * time.Millisecond
		h.CallTimeout = 4 * time.Second
	})
	var hung []string
	for range 4 { // as many as the worker has goroutines
		hung = append(hung, e.send(t, "+15550400009"))
	}
	time.Sleep(200 * time.Millisecond)
	ordinary := e.send(t, "+15550400010")
	start := time.Now()
	rsEventually(t, 3*time.Second, "the ordinary message sent while 4 provider calls hang", func() bool {
		return e.message(t, ordinary)["status"] == "sent"
	})
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("the ordinary message was sent %v after it was accepted; want well before the hung calls' 4 s deadline", d)
	}
	for _, id := range hung {
		rsEventually(t, 10*time.Second, id+" sent on its second attempt", func() bool {
			return e.message(t, id)["status"] == "sent"
		})
		if m := e.message(t, id); m["attempts"] != 2.0 {
			calls, _ := p.report(id)
			t.Errorf("%s: sent after %v attempts (%d provider calls, the first never answered); want 2", id, m["attempts"], len(calls))
		}
	}
}
