package ports_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
	"github.com/switchboard-dev/switchboard/modules/messaging/ports"
)

var hookT0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const (
	hookTenant  = "tnt_01JQ00000000000000000000T1"
	hookChannel = "chn_01JQ0000000000000000000001"
	hookOther   = "chn_01JQ0000000000000000000002" // a channel of another provider
	hookEmail   = "chn_01JQ0000000000000000000003" // an email channel
	hookSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// hookChannels is the part of app.ReadModel and app.Repository the route
// reads: the channel route (id -> tenant) and the channel.
type hookChannels struct {
	app.ReadModel  // nil: other reads are not used
	app.Repository // nil: other reads and writes are not used
	channels       map[string]*domain.Channel
	fail           error
}

func (h *hookChannels) ChannelTenant(_ context.Context, channelID string) (string, error) {
	if h.fail != nil {
		return "", h.fail
	}
	if c, ok := h.channels[channelID]; ok {
		return c.TenantID, nil
	}
	return "", errs.NotFound("channel")
}

func (h *hookChannels) Channel(_ context.Context, tenantID, channelID string) (*domain.Channel, error) {
	if c, ok := h.channels[channelID]; ok && c.TenantID == tenantID {
		cp := *c
		return &cp, nil
	}
	return nil, errs.NotFound("channel")
}

type hookEnv struct {
	store    *boltstore.Store
	clock    *clock.Fixed
	channels *hookChannels
	srv      *httptest.Server
}

func newHookEnv(t *testing.T, appender eventstore.Appender) *hookEnv {
	t.Helper()
	clk := clock.NewFixed(hookT0)
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "x.db"), boltstore.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keyring, err := secrets.NewLocalKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealer := secrets.NewEnvelope(keyring)
	sealed, err := sealer.Seal(context.Background(), hookTenant, app.PurposeInboundSecret, []byte(hookSecret))
	if err != nil {
		t.Fatal(err)
	}
	e := &hookEnv{store: store, clock: clk, channels: &hookChannels{channels: map[string]*domain.Channel{
		hookChannel: {ID: hookChannel, TenantID: hookTenant, Provider: "sandbox", Type: domain.ChannelSMS, SealedInboundSecret: sealed},
		hookOther:   {ID: hookOther, TenantID: hookTenant, Provider: "other", Type: domain.ChannelSMS, SealedInboundSecret: sealed},
		hookEmail:   {ID: hookEmail, TenantID: hookTenant, Provider: "sandbox", Type: domain.ChannelEmail, SealedInboundSecret: sealed},
	}}}
	if appender == nil {
		appender = store
	}
	runner := &uow.Runner{Store: appender}
	gen := ids.NewULIDs()
	provider := sandbox.New(sandbox.Deps{Store: store, Runner: runner, Sealer: sealer, IDs: gen, Clock: e.clock})
	server := rpc.NewServer(rpc.Config{Store: store, Runner: runner, IDs: gen, Clock: e.clock})
	server.Handle(ports.WebhookPattern, ports.WebhookRoute(ports.WebhookDeps{
		Reads: e.channels, Repo: e.channels, Providers: app.Providers{"sandbox": provider, "other": provider},
		Sealer: sealer, Runner: runner, IDs: gen, Clock: e.clock,
	}))
	e.srv = httptest.NewServer(server)
	t.Cleanup(e.srv.Close)
	return e
}

type hookReply struct {
	status int
	ctype  string
	code   string
	fields []string // the problem's field errors
}

// post sends a webhook signed with secret at the env's clock (no signature
// when secret is "").
func (e *hookEnv) post(t *testing.T, path, webhookID, secret, body string, edit ...func(http.Header)) hookReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	now := e.clock.Now()
	req.Header.Set("webhook-id", webhookID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	if secret != "" {
		sig, err := sandbox.Sign([]byte(secret), webhookID, now, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("webhook-signature", sig)
	}
	for _, f := range edit {
		f(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p struct {
		Code   string `json:"code"`
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(raw, &p)
	reply := hookReply{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), code: p.Code}
	for _, fe := range p.Errors {
		reply.fields = append(reply.fields, fe.Field)
	}
	return reply
}

func (e *hookEnv) outbox(t *testing.T) []eventstore.OutboxEntry {
	t.Helper()
	items, err := e.store.PendingOutbox(context.Background(), hookT0.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

const (
	hookPath    = "/webhooks/sandbox/" + hookChannel
	hookReceipt = `{"type":"receipt","providerMessageId":"sbx_1","status":"undelivered","reason":"sandbox.carrier_rejected"}`
)

func TestWebhookAccepted(t *testing.T) {
	e := newHookEnv(t, nil)
	if r := e.post(t, hookPath, "rcpt_1", hookSecret, hookReceipt); r.status != http.StatusNoContent {
		t.Fatalf("status %d %s", r.status, r.code)
	}
	items := e.outbox(t)
	if len(items) != 1 {
		t.Fatalf("%d outbox entries, want 1", len(items))
	}
	it := items[0]
	var p app.ProviderWebhookPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		t.Fatal(err)
	}
	want := app.ProviderWebhookPayload{ChannelID: hookChannel, WebhookID: "rcpt_1", Event: app.ProviderEvent{
		Kind: app.EventReceipt, ProviderMessageID: "sbx_1", Status: domain.StatusUndelivered, Reason: "sandbox.carrier_rejected"}}
	if it.Type != app.WorkProviderWebhook || it.TenantID != hookTenant || !it.DueAt.Equal(hookT0) || p != want {
		t.Fatalf("entry %+v payload %+v", it, p)
	}
	if it.Invocation.Principal != "system" || !strings.HasPrefix(it.Invocation.InvocationID, "inv_") {
		t.Fatalf("invocation %+v", it.Invocation)
	}
	rec, err := e.store.GetIdempotency(context.Background(), hookTenant, ports.WebhookDedupeKey(hookChannel, "rcpt_1"))
	if err != nil || rec.Status != http.StatusNoContent || !rec.ExpiresAt.Equal(hookT0.Add(ports.WebhookDedupeTTL)) {
		t.Fatalf("dedupe record %+v, %v", rec, err)
	}

	// The provider retries the same webhook-id later (new timestamp and
	// signature): accepted again, nothing new.
	e.clock.Advance(time.Minute)
	if r := e.post(t, hookPath, "rcpt_1", hookSecret, hookReceipt); r.status != http.StatusNoContent {
		t.Fatalf("repeat: status %d %s", r.status, r.code)
	}
	if n := len(e.outbox(t)); n != 1 {
		t.Fatalf("repeat: %d outbox entries, want 1", n)
	}
	// Another webhook-id is another webhook.
	inbound := `{"type":"inbound","providerMessageId":"sbx_9","from":"+15550100005","to":"+15550000000","text":"hi"}`
	if r := e.post(t, hookPath, "wh_2", hookSecret, inbound); r.status != http.StatusNoContent {
		t.Fatalf("inbound: status %d %s", r.status, r.code)
	}
	if n := len(e.outbox(t)); n != 2 {
		t.Fatalf("%d outbox entries, want 2", n)
	}
}

func TestWebhookUnauthenticated(t *testing.T) {
	e := newHookEnv(t, nil)
	cases := map[string]func(t *testing.T) hookReply{
		"missing signature": func(t *testing.T) hookReply { return e.post(t, hookPath, "a1", "", hookReceipt) },
		"bad signature": func(t *testing.T) hookReply {
			return e.post(t, hookPath, "a2", hookSecret, hookReceipt, func(h http.Header) {
				h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
			})
		},
		"wrong secret": func(t *testing.T) hookReply {
			return e.post(t, hookPath, "a3", "whsec_"+strings.Repeat("A", 32), hookReceipt)
		},
		"missing id": func(t *testing.T) hookReply {
			return e.post(t, hookPath, "a4", hookSecret, hookReceipt, func(h http.Header) { h.Del("webhook-id") })
		},
		"stale timestamp": func(t *testing.T) hookReply {
			return e.post(t, hookPath, "a5", hookSecret, hookReceipt, func(h http.Header) {
				old := hookT0.Add(-5*time.Minute - time.Second)
				sig, _ := sandbox.Sign([]byte(hookSecret), "a5", old, []byte(hookReceipt))
				h.Set("webhook-timestamp", strconv.FormatInt(old.Unix(), 10))
				h.Set("webhook-signature", sig)
			})
		},
		"future timestamp": func(t *testing.T) hookReply {
			return e.post(t, hookPath, "a6", hookSecret, hookReceipt, func(h http.Header) {
				ahead := hookT0.Add(6 * time.Minute)
				sig, _ := sandbox.Sign([]byte(hookSecret), "a6", ahead, []byte(hookReceipt))
				h.Set("webhook-timestamp", strconv.FormatInt(ahead.Unix(), 10))
				h.Set("webhook-signature", sig)
			})
		},
		// A malformed body without a valid signature is a 401, not a 400.
		"malformed body, bad signature": func(t *testing.T) hookReply {
			return e.post(t, hookPath, "a7", "", `{"type":`)
		},
	}
	for name, c := range cases {
		r := c(t)
		if r.status != http.StatusUnauthorized || r.ctype != "application/problem+json" || r.code != "errors.webhook.signature_invalid" {
			t.Errorf("%s: %+v, want 401 problem errors.webhook.signature_invalid", name, r)
		}
	}
	// Exactly five minutes off is still fine.
	if r := e.post(t, hookPath, "a8", hookSecret, hookReceipt, func(h http.Header) {
		old := hookT0.Add(-5 * time.Minute)
		sig, _ := sandbox.Sign([]byte(hookSecret), "a8", old, []byte(hookReceipt))
		h.Set("webhook-timestamp", strconv.FormatInt(old.Unix(), 10))
		h.Set("webhook-signature", sig)
	}); r.status != http.StatusNoContent {
		t.Fatalf("5 minutes old: %+v", r)
	}
	if n := len(e.outbox(t)); n != 1 {
		t.Fatalf("%d outbox entries, want only the valid one", n)
	}
}

func TestWebhookNotFound(t *testing.T) {
	e := newHookEnv(t, nil)
	for name, path := range map[string]string{
		"unknown channel":    "/webhooks/sandbox/chn_01JQ0000000000000000000009",
		"malformed id":       "/webhooks/sandbox/chn_nope",
		"lower-case id":      "/webhooks/sandbox/" + strings.ToLower(hookChannel),
		"not a channel id":   "/webhooks/sandbox/msg_01JQ0000000000000000000001",
		"unknown provider":   "/webhooks/twilio/" + hookChannel,
		"another provider's": "/webhooks/other/" + hookChannel,
		"other via sandbox":  "/webhooks/sandbox/" + hookOther,
	} {
		r := e.post(t, path, "n1", hookSecret, hookReceipt)
		if r.status != http.StatusNotFound || r.ctype != "application/problem+json" || r.code != errs.CodeNotFound {
			t.Errorf("%s: %+v, want 404 problem", name, r)
		}
	}
	if n := len(e.outbox(t)); n != 0 {
		t.Fatalf("%d outbox entries", n)
	}
}

func TestWebhookMalformedBody(t *testing.T) {
	e := newHookEnv(t, nil)
	for i, body := range []string{
		``, `{`, `[]`, `{"type":"receipt"}`, `{"type":"receipt","providerMessageId":"x","status":"sent"}`,
		`{"type":"unknown"}`, `{"type":"receipt","providerMessageId":"x","status":"delivered","extra":true}`,
		`{"type":"inbound","providerMessageId":"x","from":"a","to":"b","text":5}`,
	} {
		r := e.post(t, hookPath, "m"+strconv.Itoa(i), hookSecret, body)
		if r.status != http.StatusBadRequest || r.ctype != "application/problem+json" {
			t.Errorf("%q: %+v, want 400", body, r)
		}
	}
	if n := len(e.outbox(t)); n != 0 {
		t.Fatalf("%d outbox entries", n)
	}
}

// An inbound message's addresses are checked against its channel's type
// (acceptance finding: an email channel took a phone number as the sender).
func TestWebhookInboundAddressesMatchTheChannel(t *testing.T) {
	e := newHookEnv(t, nil)
	inbound := func(from, to string) string {
		return `{"type":"inbound","providerMessageId":"p","from":"` + from + `","to":"` + to + `","text":"hi"}`
	}
	emailPath := "/webhooks/sandbox/" + hookEmail
	for i, c := range []struct {
		path, body string
		fields     []string
	}{
		{emailPath, inbound("+15551234567", "support@example.com"), []string{"from"}},
		{emailPath, inbound("a@example.com", "+15550000000"), []string{"to"}},
		{emailPath, inbound("Alice <a@example.com>", "support@example.com"), []string{"from"}},
		{hookPath, inbound("a@example.com", "+15550000000"), []string{"from"}},
		{hookPath, inbound("+15550100005", "support@example.com"), []string{"to"}},
		{hookPath, inbound("Acme Bank Ltd", "+15550000000"), []string{"from"}}, // 13 characters: no sender id
	} {
		r := e.post(t, c.path, "bad"+strconv.Itoa(i), hookSecret, c.body)
		if r.status != http.StatusBadRequest || !reflect.DeepEqual(r.fields, c.fields) {
			t.Errorf("%s %s: %+v, want 400 on %v", c.path, c.body, r, c.fields)
		}
	}
	for i, c := range []struct{ path, body string }{
		{emailPath, inbound("a@example.com", "support@example.com")},
		{hookPath, inbound("+15550100005", "+15550000000")},
		{hookPath, inbound("12345", "+15550000000")},    // a short code
		{hookPath, inbound("AcmeBank", "+15550000000")}, // an alphanumeric sender id
	} {
		if r := e.post(t, c.path, "ok"+strconv.Itoa(i), hookSecret, c.body); r.status != http.StatusNoContent {
			t.Errorf("%s %s: %+v, want 204", c.path, c.body, r)
		}
	}
}

func TestWebhookTooLarge(t *testing.T) {
	e := newHookEnv(t, nil)
	big := `{"type":"receipt","providerMessageId":"x","status":"delivered","reason":"` + strings.Repeat("x", ports.MaxWebhookBody) + `"}`
	if r := e.post(t, hookPath, "big", hookSecret, big); r.status != http.StatusRequestEntityTooLarge || r.code != errs.CodeTooLarge {
		t.Fatalf("%+v, want 413", r)
	}
	// Exactly the limit is read (and then judged: a valid signature over a bad body is a 400).
	limit := `{"type":"receipt","pad":"` + strings.Repeat("x", ports.MaxWebhookBody-len(`{"type":"receipt","pad":""}`)) + `"}`
	if len(limit) != ports.MaxWebhookBody {
		t.Fatalf("len %d", len(limit))
	}
	if r := e.post(t, hookPath, "limit", hookSecret, limit); r.status != http.StatusBadRequest {
		t.Fatalf("%+v, want 400", r)
	}
}

// TestWebhookStoreFailures: a failing store is a 503, never a 204 (the
// provider retries).
func TestWebhookStoreFailures(t *testing.T) {
	e := newHookEnv(t, failingAppender{})
	if r := e.post(t, hookPath, "s1", hookSecret, hookReceipt); r.status != http.StatusServiceUnavailable {
		t.Fatalf("commit failure: %+v, want 503", r)
	}
	e.channels.fail = errors.New("table unreachable")
	if r := e.post(t, hookPath, "s2", hookSecret, hookReceipt); r.status != http.StatusServiceUnavailable {
		t.Fatalf("read failure: %+v, want 503", r)
	}
}

type failingAppender struct{}

func (failingAppender) Commit(context.Context, *eventstore.Commit) error {
	return errors.New("throttled")
}
