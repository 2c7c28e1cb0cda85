package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const (
	tenantID = "tnt_01JQ00000000000000000000T1"
	secret   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

type env struct {
	store    *boltstore.Store
	clock    *clock.Fixed
	sealer   secrets.Sealer
	provider *sandbox.Provider
	registry *work.Registry
	client   *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keyring, err := secrets.NewLocalKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, clock: clock.NewFixed(t0), sealer: secrets.NewEnvelope(keyring), registry: work.NewRegistry(),
		client: &http.Client{Timeout: 5 * time.Second}}
	e.provider = sandbox.New(sandbox.Deps{
		Store: store, Runner: &uow.Runner{Store: store, MaxAttempts: 200}, Sealer: e.sealer,
		IDs: ids.NewULIDs(), Clock: e.clock, HTTPClient: e.client,
	})
	e.provider.RegisterWork(e.registry)
	return e
}

func workerCtx() context.Context {
	return invocation.With(context.Background(), &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000001", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Trigger: "worker",
		Principal: invocation.Principal{Kind: invocation.KindSystem, ID: "system", TenantID: tenantID},
	})
}

func request(key string, t domain.ChannelType, to string, attempt int) app.SendRequest {
	return app.SendRequest{
		IdempotencyKey: key, Attempt: attempt, TenantID: tenantID, ChannelID: "chn_01JQ0000000000000000000001",
		ChannelType: t, From: "+15550000000", To: to, Content: domain.Content{Text: "hi"},
		InboundWebhookURL: "http://127.0.0.1:1/webhooks/sandbox/chn_01JQ0000000000000000000001", InboundSecret: secret,
	}
}

type receipt struct {
	WebhookID         string `json:"webhookId"`
	URL               string `json:"url"`
	ProviderMessageID string `json:"providerMessageId"`
	Status            string `json:"status"`
	Reason            string `json:"reason"`
	SealedSecret      []byte `json:"sealedSecret"`
}

// receipts returns the pending receipt items of the store.
func (e *env) receipts(t *testing.T) []work.Item {
	t.Helper()
	items, err := e.store.PendingOutbox(context.Background(), t0.Add(24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []work.Item
	for _, it := range items {
		if it.Type == sandbox.WorkPostReceipt {
			out = append(out, it)
		}
	}
	return out
}

func decodeReceipt(t *testing.T, it work.Item) receipt {
	t.Helper()
	var r receipt
	if err := json.Unmarshal(it.Payload, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func sendErr(err error) *app.SendError {
	var se *app.SendError
	if errors.As(err, &se) {
		return se
	}
	return nil
}

// TestOutcomes drives every row of the recipient table (contract section 7)
// for sms and email, attempt by attempt as the dispatcher does.
func TestOutcomes(t *testing.T) {
	type want struct {
		attempts  int    // attempt of the final answer
		accepted  bool   // else refused for good
		reason    string // of the refusal
		receipt   string // "" for none
		rcptWhy   string
		transient int // transient answers before
	}
	rows := []struct {
		name, smsTo, emailTo string
		want                 want
	}{
		{"fail", "+15550100001", "fail@example.com", want{attempts: 1, reason: sandbox.ReasonInvalidNumber}},
		{"retry", "+15550100002", "retry@example.com", want{attempts: 3, accepted: true, receipt: "delivered", transient: 2}},
		{"silent", "+15550100003", "silent@example.com", want{attempts: 1, accepted: true}},
		{"bounce", "+15550100004", "bounce@example.com", want{attempts: 1, accepted: true, receipt: "undelivered", rcptWhy: sandbox.ReasonCarrierRejected}},
		{"deliver", "+15550100005", "someone@example.com", want{attempts: 1, accepted: true, receipt: "delivered"}},
		{"deliver-case", "+15550100000", "Fail.Not@example.com", want{attempts: 1, accepted: true, receipt: "delivered"}},
		{"email-case", "+4915550100004", "BOUNCE@example.com", want{attempts: 1, accepted: true, receipt: "undelivered", rcptWhy: sandbox.ReasonCarrierRejected}},
	}
	for _, row := range rows {
		for _, ct := range []domain.ChannelType{domain.ChannelSMS, domain.ChannelEmail} {
			to := row.smsTo
			if ct == domain.ChannelEmail {
				to = row.emailTo
			}
			t.Run(row.name+"/"+string(ct), func(t *testing.T) {
				e := newEnv(t)
				ctx := workerCtx()
				key := ids.NewULIDs().New(ids.Message)
				var (
					res       app.SendResult
					err       error
					attempt   int
					transient int
				)
				for attempt = 1; attempt <= 5; attempt++ {
					res, err = e.provider.Send(ctx, request(key, ct, to, attempt))
					if se := sendErr(err); se != nil && se.Transient {
						if se.Reason != sandbox.ReasonUnavailable || !app.IsTransient(err) {
							t.Fatalf("transient error %v", err)
						}
						transient++
						continue
					}
					break
				}
				w := row.want
				if attempt != w.attempts || transient != w.transient {
					t.Fatalf("final answer at attempt %d after %d transient errors, want %d after %d", attempt, transient, w.attempts, w.transient)
				}
				accepted, calls, serr := e.provider.Sends(ctx, tenantID, key)
				if serr != nil {
					t.Fatal(serr)
				}
				if calls != w.attempts {
					t.Fatalf("calls = %d, want %d", calls, w.attempts)
				}
				if !w.accepted {
					se := sendErr(err)
					if se == nil || se.Transient || se.Reason != w.reason || app.IsTransient(err) {
						t.Fatalf("err = %v, want a permanent %s", err, w.reason)
					}
					if accepted != 0 || len(e.receipts(t)) != 0 {
						t.Fatalf("refused send: accepted %d, receipts %d", accepted, len(e.receipts(t)))
					}
					return
				}
				if err != nil || !strings.HasPrefix(res.ProviderMessageID, "sbx_") || accepted != 1 {
					t.Fatalf("Send = %+v, %v (accepted %d), want accepted", res, err, accepted)
				}
				rs := e.receipts(t)
				if w.receipt == "" {
					if len(rs) != 0 {
						t.Fatalf("%d receipts, want none", len(rs))
					}
					return
				}
				if len(rs) != 1 {
					t.Fatalf("%d receipts, want 1", len(rs))
				}
				r := decodeReceipt(t, rs[0])
				if r.Status != w.receipt || r.Reason != w.rcptWhy || r.ProviderMessageID != res.ProviderMessageID ||
					!strings.HasPrefix(r.WebhookID, "rcpt_") || rs[0].TenantID != tenantID {
					t.Fatalf("receipt %+v, want %s %q of %s", r, w.receipt, w.rcptWhy, res.ProviderMessageID)
				}
				if !rs[0].DueAt.Equal(t0.Add(sandbox.DefaultReceiptDelay)) {
					t.Fatalf("receipt due %s, want %s", rs[0].DueAt, t0.Add(sandbox.DefaultReceiptDelay))
				}
				if strings.Contains(string(rs[0].Payload), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") {
					t.Fatal("the inbound secret is in the outbox in clear")
				}
				if rs[0].Invocation.InvocationID != "inv_01JQ0000000000000000000001" {
					t.Fatalf("receipt invocation %+v", rs[0].Invocation)
				}
			})
		}
	}
}

// TestSendIsIdempotent: after acceptance, a repeated key answers the same
// provider message id and sends nothing new.
func TestSendIsIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := workerCtx()
	key := "msg_01JQ0000000000000000000001"
	first, err := e.provider.Send(ctx, request(key, domain.ChannelSMS, "+15550100005", 1))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		again, err := e.provider.Send(ctx, request(key, domain.ChannelSMS, "+15550100005", 1))
		if err != nil || again != first {
			t.Fatalf("repeat %d: %+v, %v, want %+v", i, again, err, first)
		}
	}
	accepted, calls, err := e.provider.Sends(ctx, tenantID, key)
	if err != nil || accepted != 1 || calls != 4 {
		t.Fatalf("Sends = %d accepted, %d calls, %v; want 1, 4", accepted, calls, err)
	}
	if n := len(e.receipts(t)); n != 1 {
		t.Fatalf("%d receipts, want 1", n)
	}
	// Another tenant's key of the same name is another send.
	other := request(key, domain.ChannelSMS, "+15550100005", 1)
	other.TenantID = "tnt_01JQ00000000000000000000T2"
	res, err := e.provider.Send(ctx, other)
	if err != nil || res == first {
		t.Fatalf("other tenant: %+v, %v", res, err)
	}
	if a, c, _ := e.provider.Sends(ctx, tenantID, "msg_never"); a != 0 || c != 0 {
		t.Fatalf("unknown key: %d, %d", a, c)
	}
}

// TestConcurrentSendsAcceptOnce: concurrent calls with one key (redelivered
// work racing) are serialized by the store: one acceptance, one receipt, the
// same provider message id for all.
func TestConcurrentSendsAcceptOnce(t *testing.T) {
	for _, to := range []string{"+15550100005", "+15550100002"} {
		t.Run(to, func(t *testing.T) {
			e := newEnv(t)
			ctx := workerCtx()
			key := "msg_01JQ0000000000000000000002"
			const n = 12
			var wg sync.WaitGroup
			results := make([]app.SendResult, n)
			failures := make([]error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], failures[i] = e.provider.Send(ctx, request(key, domain.ChannelSMS, to, 3))
				}()
			}
			wg.Wait()
			pmid := ""
			ok := 0
			for i := range results {
				if failures[i] != nil {
					if se := sendErr(failures[i]); se == nil || !se.Transient {
						t.Fatalf("call %d: %v", i, failures[i])
					}
					continue
				}
				ok++
				if pmid == "" {
					pmid = results[i].ProviderMessageID
				}
				if results[i].ProviderMessageID != pmid {
					t.Fatalf("two provider message ids: %s, %s", pmid, results[i].ProviderMessageID)
				}
			}
			accepted, calls, err := e.provider.Sends(ctx, tenantID, key)
			if err != nil || accepted != 1 || calls != n || ok == 0 {
				t.Fatalf("Sends = %d accepted, %d calls, %v (%d ok); want 1, %d", accepted, calls, err, ok, n)
			}
			if r := e.receipts(t); len(r) != 1 {
				t.Fatalf("%d receipts, want 1", len(r))
			}
		})
	}
}

// TestRetryRuleCountsAttempts: a redelivered call of an attempt does not
// skip an attempt: the lower of the calls and the caller's attempt decides.
func TestRetryRuleCountsAttempts(t *testing.T) {
	e := newEnv(t)
	ctx := workerCtx()
	key := "msg_01JQ0000000000000000000003"
	for i, attempt := range []int{1, 1, 2, 2} { // every call of attempts 1 and 2 is transient
		if _, err := e.provider.Send(ctx, request(key, domain.ChannelSMS, "+15550100002", attempt)); sendErr(err) == nil || !sendErr(err).Transient {
			t.Fatalf("call %d (attempt %d): %v, want transient", i+1, attempt, err)
		}
	}
	if _, err := e.provider.Send(ctx, request(key, domain.ChannelSMS, "+15550100002", 3)); err != nil {
		t.Fatalf("attempt 3: %v", err)
	}
	// Without an attempt number the calls count.
	key = "msg_01JQ0000000000000000000004"
	for i := 1; i <= 3; i++ {
		_, err := e.provider.Send(ctx, request(key, domain.ChannelEmail, "retry@example.com", 0))
		if (i < 3) != (err != nil) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

func TestSendRefusesBadRequests(t *testing.T) {
	e := newEnv(t)
	ctx := workerCtx()
	for name, req := range map[string]app.SendRequest{
		"no key": request("", domain.ChannelSMS, "+15550100005", 1),
		"no tenant": func() app.SendRequest {
			r := request("msg_x", domain.ChannelSMS, "+15550100005", 1)
			r.TenantID = ""
			return r
		}(),
		"push": request("msg_y", domain.ChannelType("push"), "+15550100005", 1),
	} {
		_, err := e.provider.Send(ctx, req)
		if se := sendErr(err); se == nil || se.Transient {
			t.Errorf("%s: %v, want a permanent SendError", name, err)
		}
	}
}

func TestCheckChannel(t *testing.T) {
	p := newEnv(t).provider
	if p.Name() != "sandbox" {
		t.Fatalf("Name = %q", p.Name())
	}
	for _, ok := range []struct {
		t    domain.ChannelType
		from string
	}{{domain.ChannelSMS, "+15550000000"}, {domain.ChannelEmail, "noreply@example.com"}} {
		if err := p.CheckChannel(ok.t, ok.from, map[string]string{"a": "b"}, map[string]string{"apiKey": "x"}); err != nil {
			t.Errorf("%s %s: %v", ok.t, ok.from, err)
		}
		if err := p.CheckChannel(ok.t, ok.from, nil, nil); err != nil {
			t.Errorf("%s %s without credentials: %v", ok.t, ok.from, err)
		}
	}
	err := p.CheckChannel("push", "  ", nil, nil)
	e := errs.As(err)
	if e.Kind != errs.KindInvalid || len(e.Fields) != 2 || e.Fields[0].Field != "type" || e.Fields[1].Field != "from" {
		t.Fatalf("CheckChannel(push, blank) = %#v", e)
	}
}

// receiver is an httptest server that records the receipts posted to it.
type receiver struct {
	mu     sync.Mutex
	status int
	got    []posted
	srv    *httptest.Server
}

type posted struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: http.StatusNoContent}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, posted{header: req.Header.Clone(), body: b})
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setStatus(s int) { r.mu.Lock(); r.status = s; r.mu.Unlock() }
func (r *receiver) posts() []posted {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]posted(nil), r.got...)
}

// TestReceiptPosted: the receipt item posts a Standard Webhooks-signed body
// over HTTP that the sandbox's own verification accepts; a failed post is an
// error (the work path retries) and the retry carries the same webhook-id.
func TestReceiptPosted(t *testing.T) {
	for _, c := range []struct {
		to, status, reason string
	}{{"+15550100005", "delivered", ""}, {"+15550100004", "undelivered", sandbox.ReasonCarrierRejected}} {
		t.Run(c.status, func(t *testing.T) {
			e := newEnv(t)
			rcv := newReceiver(t)
			ctx := workerCtx()
			req := request("msg_01JQ0000000000000000000005", domain.ChannelSMS, c.to, 1)
			req.InboundWebhookURL = rcv.srv.URL + "/webhooks/sandbox/" + req.ChannelID
			res, err := e.provider.Send(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			items := e.receipts(t)
			if len(items) != 1 {
				t.Fatalf("%d receipts", len(items))
			}
			it := items[0]
			e.clock.Advance(time.Second)

			rcv.setStatus(http.StatusInternalServerError)
			if err := e.registry.Handle(ctx, it); err == nil || !strings.Contains(err.Error(), "500") {
				t.Fatalf("post answered 500: err = %v, want an error", err)
			}
			rcv.setStatus(http.StatusNoContent)
			e.clock.Advance(time.Minute)
			if err := e.registry.Handle(ctx, it); err != nil {
				t.Fatalf("post: %v", err)
			}
			posts := rcv.posts()
			if len(posts) != 2 {
				t.Fatalf("%d posts", len(posts))
			}
			id := posts[0].header.Get("webhook-id")
			if !strings.HasPrefix(id, "rcpt_") || posts[1].header.Get("webhook-id") != id {
				t.Fatalf("webhook-ids %q, %q: want one rcpt_ id on every retry", id, posts[1].header.Get("webhook-id"))
			}
			last := posts[1]
			if last.header.Get("Content-Type") != "application/json" || last.header.Get("webhook-timestamp") != strconv.FormatInt(e.clock.Now().Unix(), 10) ||
				!strings.HasPrefix(last.header.Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
				t.Fatalf("headers %v", last.header)
			}
			gotID, err := e.provider.VerifyWebhook([]byte(secret), last.header, last.body, e.clock.Now())
			if err != nil || gotID != id {
				t.Fatalf("verify own receipt: %q, %v", gotID, err)
			}
			ev, err := e.provider.ParseWebhook(last.body)
			if err != nil {
				t.Fatal(err)
			}
			want := app.ProviderEvent{Kind: app.EventReceipt, ProviderMessageID: res.ProviderMessageID, Status: domain.Status(c.status), Reason: c.reason}
			if ev != want {
				t.Fatalf("parsed %+v, want %+v", ev, want)
			}
			var body map[string]any
			_ = json.Unmarshal(last.body, &body)
			if _, has := body["reason"]; has != (c.reason != "") {
				t.Fatalf("body %s", last.body)
			}
		})
	}
}

func TestReceiptTransportError(t *testing.T) {
	e := newEnv(t)
	ctx := workerCtx()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	req := request("msg_01JQ0000000000000000000006", domain.ChannelEmail, "a@example.com", 1)
	req.InboundWebhookURL = url + "/webhooks/sandbox/" + req.ChannelID
	if _, err := e.provider.Send(ctx, req); err != nil {
		t.Fatal(err)
	}
	items := e.receipts(t)
	if len(items) != 1 {
		t.Fatalf("%d receipts", len(items))
	}
	if err := e.registry.Handle(ctx, items[0]); err == nil {
		t.Fatal("post to a closed server succeeded")
	}
}

// TestNoReceiptWithoutSecret: a channel without an inbound URL or secret
// cannot be signed for: accepted, no receipt.
func TestNoReceiptWithoutSecret(t *testing.T) {
	e := newEnv(t)
	req := request("msg_01JQ0000000000000000000007", domain.ChannelSMS, "+15550100005", 1)
	req.InboundSecret = ""
	if _, err := e.provider.Send(workerCtx(), req); err != nil {
		t.Fatal(err)
	}
	if n := len(e.receipts(t)); n != 0 {
		t.Fatalf("%d receipts", n)
	}
}
