// Package smoke is Switchboard's smoke test for any deployment (local mode,
// LocalStack, AWS), over the public API only (the contract,
// shared/contract/API.md): it onboards a test tenant with the operator key,
// creates sandbox sms and email channels in its root scope, subscribes to
// every event, sends sandbox messages with known outcomes (contract section
// 7: delivered sms and email, an sms the provider fails, one it accepts on
// the third attempt, an email that bounces), waits until each reaches its
// final status, checks the subscriber webhooks (signed with the
// subscription's secret, Standard Webhooks, one per status change, the
// webhook-id stable across a retry) and the subscription's deliveries, and
// cleans up what the contract lets it remove (the tenant's API keys).
//
// Where the deployment cannot reach a receiver (RECEIVER=none), the
// subscription points at an address nothing answers and the check is what
// list-deliveries shows: one delivery per event, attempted and failing.
//
// Run prints its progress step by step and ends with one PASS or FAIL line.
package smoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Defaults.
const (
	// DefaultTimeout bounds a run before its cleanup.
	DefaultTimeout = 60 * time.Second
	// CleanupTimeout bounds the cleanup (it runs after a failure or an
	// interrupt too). Revocation reaches every instance within 10 s.
	CleanupTimeout = 45 * time.Second
	// DefaultUnreachableURL is the subscription URL of RECEIVER=none: the
	// .invalid top-level domain never resolves (RFC 6761), and a host that
	// does not resolve is accepted at creation (it is checked at delivery).
	DefaultUnreachableURL = "https://switchboard-smoke.invalid/webhook"
	// DefaultURLListen is where the receiver listens for RECEIVER=url=...:
	// the user forwards the public URL there (a tunnel, an ingress).
	DefaultURLListen = "127.0.0.1:9099"
	// DefaultLocalListen is where the receiver listens for RECEIVER=local.
	DefaultLocalListen = "127.0.0.1:0"
)

// RevocationWait is how long the cleanup waits for the revoked admin key to
// be refused: at once on the instance that served the revocation, within
// 10 s on every other one (README), so 30 s leaves room.
var RevocationWait = 30 * time.Second

// ReceiverMode says how the deployment reaches the webhook receiver.
type ReceiverMode string

// Receiver modes.
const (
	// ReceiverLocal starts a receiver on a local port and subscribes
	// http://127.0.0.1:<port>/ (local mode; a Lambda deployment refuses it).
	ReceiverLocal ReceiverMode = "local"
	// ReceiverURL starts the receiver on a local address that the user
	// exposes at a public URL, and subscribes that URL.
	ReceiverURL ReceiverMode = "url"
	// ReceiverNone subscribes an unreachable URL and checks list-deliveries.
	ReceiverNone ReceiverMode = "none"
)

// ReceiverSpec is a parsed RECEIVER.
type ReceiverSpec struct {
	Mode ReceiverMode
	URL  string // the public URL for ReceiverURL
}

func (s ReceiverSpec) String() string {
	if s.Mode == ReceiverURL {
		return "url=" + s.URL
	}
	return string(s.Mode)
}

// ParseReceiver parses RECEIVER: "local" (also ""), "none", or
// "url=<absolute http(s) URL>".
func ParseReceiver(s string) (ReceiverSpec, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "local":
		return ReceiverSpec{Mode: ReceiverLocal}, nil
	case s == "none":
		return ReceiverSpec{Mode: ReceiverNone}, nil
	case strings.HasPrefix(s, "url="):
		u := strings.TrimPrefix(s, "url=")
		if err := checkHTTPURL(u); err != nil {
			return ReceiverSpec{}, fmt.Errorf("RECEIVER=url=%s: %w", u, err)
		}
		return ReceiverSpec{Mode: ReceiverURL, URL: u}, nil
	}
	return ReceiverSpec{}, fmt.Errorf("RECEIVER %q: use local, none or url=<public URL of the receiver>", s)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an absolute http or https URL")
	}
	return nil
}

// Config is one run.
type Config struct {
	BaseURL     string // the deployment's API, e.g. http://127.0.0.1:8080 or https://<api>.execute-api.<region>.amazonaws.com
	OperatorKey string
	Receiver    ReceiverSpec
	// Listen is the receiver's listen address ("": DefaultLocalListen for
	// local, DefaultURLListen for url=).
	Listen string
	// Timeout bounds the run before cleanup (0: DefaultTimeout).
	Timeout time.Duration
	// UnreachableURL is the subscription URL of RECEIVER=none (""
	// DefaultUnreachableURL).
	UnreachableURL string
	Client         *http.Client // nil: a client with a 30 s timeout
	Out            io.Writer    // progress; nil: io.Discard
	Now            func() time.Time
}

// Case is one message the smoke test sends and what must become of it
// (contract section 7).
type Case struct {
	Name     string
	Channel  string // "sms" | "email"
	To       string
	Status   string // the final status
	Reason   string // its statusReason ("" for null)
	Attempts int
	Webhooks []string // the event types its subscription receives
}

// Cases are the messages of a run.
var Cases = []Case{
	{"sms delivered", "sms", "+15551234567", "delivered", "", 1, []string{"message.queued", "message.sent", "message.delivered"}},
	{"email delivered", "email", "smoke@example.com", "delivered", "", 1, []string{"message.queued", "message.sent", "message.delivered"}},
	{"sms failed (0001)", "sms", "+15551230001", "failed", "sandbox.invalid_number", 1, []string{"message.queued", "message.failed"}},
	{"sms retried (0002)", "sms", "+15551230002", "delivered", "", 3, []string{"message.queued", "message.sent", "message.delivered"}},
	{"email bounced", "email", "bounce@example.com", "undelivered", "sandbox.carrier_rejected", 1, []string{"message.queued", "message.sent", "message.undelivered"}},
}

// Message is a sent Case and what became of it.
type Message struct {
	Case         Case
	MessageID    string
	InvocationID string // X-Invocation-Id of its send-message
	Status       string
	StatusReason string
	Attempts     int
	FinalAfter   time.Duration // from its send
	EventIDs     []string      // its event stream (get-message-history)
	sentAt       time.Time
}

// Result is what a run did and found.
type Result struct {
	Passed     bool
	Err        error  // why it failed
	FailedStep string // "2/9 onboard-tenant"
	Duration   time.Duration

	TenantName       string
	TenantID         string
	RootScopeID      string
	ServiceAccountID string
	APIKeyID         string
	// APIKey is the tenant admin's key, revoked by the cleanup (kept so a
	// caller can check that it no longer works).
	APIKey          string
	ChannelIDs      map[string]string // by type
	SubscriptionID  string
	SubscriptionURL string
	Messages        []*Message

	Webhooks       int    // verified webhook requests received
	Events         int    // distinct webhook-ids (events) received, or deliveries seen with RECEIVER=none
	RetriedWebhook string // the webhook-id refused once and received again
	Deliveries     int

	Revoked       []string // API key ids revoked by the cleanup
	RevokeChecked bool     // the admin key answered 401 after its revocation
	Leftovers     []string // what the contract gives no way to remove
	NotChecked    []string // what this run could not check
}

// steps is the number of numbered steps of a run, cleanup included.
const steps = 9

type runner struct {
	cfg      Config
	out      io.Writer
	api      *client
	res      *Result
	runID    string
	start    time.Time
	deadline time.Time
	step     int
	title    string
	recv     *Receiver
}

// Run runs the smoke test and returns what it found; Result.Passed is the
// verdict, Result.Err the reason of a failure. It writes progress and a
// final PASS or FAIL line to cfg.Out.
func Run(ctx context.Context, cfg Config) Result {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.UnreachableURL == "" {
		cfg.UnreachableURL = DefaultUnreachableURL
	}
	if cfg.Receiver.Mode == "" {
		cfg.Receiver.Mode = ReceiverLocal
	}
	cfg.BaseURL = strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	res := Result{ChannelIDs: map[string]string{}}
	r := &runner{cfg: cfg, out: cfg.Out, res: &res, start: time.Now()}
	r.api = &client{http: cfg.Client, base: cfg.BaseURL, log: r.printf}
	r.runID = cfg.Now().UTC().Format("20060102T150405Z") + "-" + randomHex(4)
	r.deadline = r.start.Add(cfg.Timeout)

	r.printf("Switchboard smoke test of %s (receiver %s, timeout %s, run %s)", cfg.BaseURL, cfg.Receiver, cfg.Timeout, r.runID)
	err := r.config()
	if err == nil {
		// A hard stop for a call that hangs; the waits end at r.deadline.
		runCtx, cancel := context.WithDeadline(ctx, r.deadline.Add(15*time.Second))
		err = r.main(runCtx)
		cancel()
	}
	if err != nil {
		res.Err, res.FailedStep = err, fmt.Sprintf("%d/%d %s", r.step, steps, r.title)
		r.printf("      FAIL: %s", indent(err.Error()))
	}
	// The cleanup runs whatever happened, also after an interrupt.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
	cerr := r.cleanup(cctx)
	cancel()
	if cerr != nil {
		r.printf("      FAIL: %s", indent(cerr.Error()))
		if res.Err == nil {
			res.Err, res.FailedStep = cerr, fmt.Sprintf("%d/%d %s", r.step, steps, r.title)
		}
	}
	res.Duration = time.Since(r.start)
	res.Passed = res.Err == nil
	if res.Passed {
		r.printf("PASS smoke test of %s in %.1f s: tenant %s, %d messages in their final statuses, %s; cleanup done",
			cfg.BaseURL, res.Duration.Seconds(), res.TenantID, len(res.Messages), r.webhookSummary())
	} else {
		r.printf("FAIL smoke test of %s in %.1f s, at step %s: %s", cfg.BaseURL, res.Duration.Seconds(), res.FailedStep, indent(res.Err.Error()))
	}
	return res
}

func (r *runner) webhookSummary() string {
	if r.cfg.Receiver.Mode == ReceiverNone {
		return fmt.Sprintf("%d deliveries attempted to an unreachable URL (signatures not checked: RECEIVER=none)", r.res.Deliveries)
	}
	s := fmt.Sprintf("%d events in %d verified webhooks", r.res.Events, r.res.Webhooks)
	if r.res.RetriedWebhook != "" {
		s += " (one retried with the same webhook-id)"
	}
	return s
}

func (r *runner) config() error {
	r.title = "configuration"
	switch {
	case r.cfg.BaseURL == "":
		return errors.New("BASE_URL is required (the deployment's API, e.g. http://127.0.0.1:8080 for `make run`)")
	case checkHTTPURL(r.cfg.BaseURL) != nil:
		return fmt.Errorf("BASE_URL %q: %v", r.cfg.BaseURL, checkHTTPURL(r.cfg.BaseURL))
	case strings.TrimSpace(r.cfg.OperatorKey) == "":
		return errors.New("OPERATOR_KEY is required (local mode prints it at start and keeps it in .data/operator.key)")
	}
	return nil
}

func (r *runner) main(ctx context.Context) error {
	for _, f := range []func(context.Context) error{
		r.healthz, r.onboard, r.channels, r.subscribe, r.send, r.statuses, r.webhooks, r.deliveries,
	} {
		if err := f(ctx); err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(err, errTimeout) && !strings.Contains(err.Error(), cause.Error()) {
				err = fmt.Errorf("%w (%v)", err, cause)
			}
			return err
		}
	}
	return nil
}

// begin starts the next numbered step: name is how a failure names it.
func (r *runner) begin(name, format string, args ...any) {
	r.step++
	r.title = name
	r.printf("[%d/%d] %s", r.step, steps, fmt.Sprintf(format, args...))
}

func (r *runner) printf(format string, args ...any) {
	fmt.Fprintf(r.out, format+"\n", args...)
}

func (r *runner) ok(format string, args ...any) {
	r.printf("      ok: "+format, args...)
}

// indent indents the continuation lines of a multi-line message.
func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n      ") }

// errTimeout marks a wait that reached the run's deadline.
var errTimeout = errors.New("timed out")

// wait polls check every interval until it reports done, fails, or the
// run's deadline passes; every 5 s it prints progress(). wake, when not nil,
// is selected on as well (the receiver's news).
func (r *runner) wait(ctx context.Context, what string, interval time.Duration, wake func() <-chan struct{},
	check func() (done bool, err error), progress func() string) error {
	lastNote := time.Now()
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if time.Now().After(r.deadline) {
			return fmt.Errorf("%w after %s (TIMEOUT) waiting for %s: %s", errTimeout, r.cfg.Timeout, what, progress())
		}
		if time.Since(lastNote) >= 5*time.Second {
			r.printf("      ... waiting for %s: %s", what, progress())
			lastNote = time.Now()
		}
		var woke <-chan struct{}
		if wake != nil {
			woke = wake()
		}
		t := time.NewTimer(min(interval, time.Until(r.deadline)+time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-woke:
			t.Stop()
		case <-t.C:
		}
	}
}

// 1. healthz
func (r *runner) healthz(ctx context.Context) error {
	r.begin("healthz", "healthz: GET %s/healthz", r.cfg.BaseURL)
	t0 := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.BaseURL+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return &APIError{Call: "GET /healthz", Err: err, Hint: "is BASE_URL right and the deployment up? (local mode: `make run`)"}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var h struct{ Status string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Status != "ok" {
		return &APIError{Call: "GET /healthz", Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Excerpt: excerpt(body),
			Hint: `want 200 {"status":"ok"}: is BASE_URL a Switchboard API (a REST API stage needs its path, e.g. .../prod)?`}
	}
	r.ok(`200 {"status":"ok"} in %d ms`, time.Since(t0).Milliseconds())
	return nil
}

// 2. onboard-tenant, then wait until the tenant is active.
func (r *runner) onboard(ctx context.Context) error {
	r.res.TenantName = "smoke-" + r.cfg.Now().UTC().Format("20060102T150405Z")
	r.begin("onboard-tenant", "onboard-tenant %q (pooled) with the operator key", r.res.TenantName)
	var on struct {
		TenantID, RootScopeID, ServiceAccountID, APIKeyID, APIKey string
	}
	rep, err := r.api.call(ctx, "/commands/onboard-tenant", r.cfg.OperatorKey, r.idem("onboard-tenant"),
		map[string]any{"name": r.res.TenantName, "tier": "pooled"}, &on)
	if err != nil {
		return err
	}
	r.res.TenantID, r.res.RootScopeID, r.res.ServiceAccountID, r.res.APIKeyID, r.res.APIKey =
		on.TenantID, on.RootScopeID, on.ServiceAccountID, on.APIKeyID, on.APIKey
	if !strings.HasPrefix(on.TenantID, "tnt_") || !strings.HasPrefix(on.RootScopeID, "scp_") ||
		!strings.HasPrefix(on.ServiceAccountID, "sva_") || !strings.HasPrefix(on.APIKey, "sbk_") {
		return fmt.Errorf("onboard-tenant answered %s: want tenantId tnt_..., rootScopeId scp_..., serviceAccountId sva_..., apiKey sbk_...", redactKey(rep.Body, on.APIKey))
	}
	if rep.Header.Get("X-Invocation-Id") == "" || rep.Header.Get("X-Trace-Id") == "" {
		return errors.New("onboard-tenant's answer has no X-Invocation-Id or X-Trace-Id header (contract section 4): is a proxy dropping headers?")
	}
	r.printf("      tenant %s, root scope %s, admin service account %s, API key %s (invocation %s)",
		on.TenantID, on.RootScopeID, on.ServiceAccountID, firstNonEmpty(on.APIKeyID, "(id not given)"), rep.Header.Get("X-Invocation-Id"))

	status := ""
	err = r.wait(ctx, "the tenant to become active", 200*time.Millisecond, nil, func() (bool, error) {
		var t struct{ TenantID, Status string }
		if _, err := r.api.call(ctx, "/queries/get-tenant", r.res.APIKey, "", map[string]any{}, &t); err != nil {
			return false, err
		}
		if t.TenantID != on.TenantID {
			return false, fmt.Errorf("get-tenant with the new key answered tenant %q, want %s", t.TenantID, on.TenantID)
		}
		status = t.Status
		return status == "active", nil
	}, func() string {
		return fmt.Sprintf("status %q (provisioning runs on the work path: is its worker or queue running?)", status)
	})
	if err != nil {
		return err
	}
	r.ok("tenant %s active after %.1f s", on.TenantID, time.Since(r.start).Seconds())
	return nil
}

// 3. create-channel sms and email, provider sandbox, in the root scope.
func (r *runner) channels(ctx context.Context) error {
	r.begin("create-channel", "create-channel sms and email, provider sandbox, in the root scope")
	for _, c := range []struct{ typ, from string }{{"sms", "+15550000000"}, {"email", "smoke@example.com"}} {
		var ch struct{ ChannelID, InboundWebhookURL, InboundSecret string }
		_, err := r.api.call(ctx, "/commands/create-channel", r.res.APIKey, r.idem("channel-"+c.typ), map[string]any{
			"scopeId": r.res.RootScopeID, "name": "smoke " + c.typ, "type": c.typ, "provider": "sandbox", "from": c.from,
		}, &ch)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(ch.ChannelID, "chn_") || !strings.HasPrefix(ch.InboundSecret, "whsec_") || checkHTTPURL(ch.InboundWebhookURL) != nil {
			return fmt.Errorf("create-channel %s answered channelId %q, inboundWebhookUrl %q and an inboundSecret %s: want chn_..., a URL and whsec_...",
				c.typ, ch.ChannelID, ch.InboundWebhookURL, map[bool]string{true: "whsec_...", false: "missing or malformed"}[strings.HasPrefix(ch.InboundSecret, "whsec_")])
		}
		r.res.ChannelIDs[c.typ] = ch.ChannelID
		r.printf("      %-5s %s from %s; the sandbox's receipts come back to %s", c.typ, ch.ChannelID, c.from, ch.InboundWebhookURL)
	}
	r.ok("2 channels")
	return nil
}

// 4. The receiver (unless none) and create-subscription ["*"].
func (r *runner) subscribe(ctx context.Context) error {
	spec := r.cfg.Receiver
	switch spec.Mode {
	case ReceiverLocal, ReceiverURL:
		listen := r.cfg.Listen
		if listen == "" {
			listen = map[ReceiverMode]string{ReceiverLocal: DefaultLocalListen, ReceiverURL: DefaultURLListen}[spec.Mode]
		}
		r.begin("create-subscription", "webhook receiver, then create-subscription [\"*\"] at the root scope")
		recv, err := StartReceiver(listen)
		if err != nil {
			return fmt.Errorf("%w (set RECEIVER_LISTEN to another address)", err)
		}
		recv.RejectFirst = true
		r.recv = recv
		r.res.SubscriptionURL = "http://" + recv.Addr() + "/"
		if spec.Mode == ReceiverURL {
			r.res.SubscriptionURL = spec.URL
			r.printf("      receiver listening on %s; %s must forward there", recv.Addr(), spec.URL)
		} else {
			r.printf("      receiver listening on %s", recv.Addr())
		}
	case ReceiverNone:
		r.begin("create-subscription", "create-subscription [\"*\"] at the root scope to an unreachable URL (RECEIVER=none)")
		r.res.SubscriptionURL = r.cfg.UnreachableURL
	default:
		return fmt.Errorf("unknown receiver mode %q", spec.Mode)
	}
	var sub struct{ SubscriptionID, Secret string }
	if _, err := r.api.call(ctx, "/commands/create-subscription", r.res.APIKey, r.idem("subscription"), map[string]any{
		"scopeId": r.res.RootScopeID, "url": r.res.SubscriptionURL, "eventTypes": []string{"*"},
	}, &sub); err != nil {
		return err
	}
	if !strings.HasPrefix(sub.SubscriptionID, "sub_") || !strings.HasPrefix(sub.Secret, "whsec_") {
		return fmt.Errorf("create-subscription answered subscriptionId %q and a secret %s: want sub_... and whsec_<base64>", sub.SubscriptionID,
			map[bool]string{true: "whsec_...", false: "not in whsec_ form"}[strings.HasPrefix(sub.Secret, "whsec_")])
	}
	r.res.SubscriptionID = sub.SubscriptionID
	if r.recv != nil {
		if err := r.recv.SetSecret(sub.Secret); err != nil {
			return fmt.Errorf("create-subscription's secret is not Standard Webhooks' whsec_<base64>: %w", err)
		}
	}
	r.ok("subscription %s -> %s", sub.SubscriptionID, r.res.SubscriptionURL)
	return nil
}

// 5. send-message for every Case, one replay, one invalid send.
func (r *runner) send(ctx context.Context) error {
	r.begin("send-message", "send-message: %d sandbox messages with known outcomes (contract section 7)", len(Cases))
	bodyOf := func(c Case) map[string]any {
		content := map[string]string{"text": "Switchboard smoke test " + r.runID}
		if c.Channel == "email" {
			content["subject"] = "Switchboard smoke test"
		}
		return map[string]any{"channelId": r.res.ChannelIDs[c.Channel], "to": c.To, "content": content,
			"metadata": map[string]string{"smokeRun": r.runID, "case": c.Name}}
	}
	var first struct {
		idem string
		body map[string]any
		raw  []byte
	}
	for i, c := range Cases {
		var out struct{ MessageID, Status string }
		idem, body := r.idem(fmt.Sprintf("send-%d", i)), bodyOf(c)
		rep, err := r.api.call(ctx, "/commands/send-message", r.res.APIKey, idem, body, &out)
		if err != nil {
			return fmt.Errorf("%s to %s: %w", c.Name, c.To, err)
		}
		if rep.Status != http.StatusAccepted || !strings.HasPrefix(out.MessageID, "msg_") || out.Status != "queued" {
			return fmt.Errorf("send-message %s answered %d %s: want 202 {\"messageId\":\"msg_...\",\"status\":\"queued\"}", c.Name, rep.Status, excerpt(rep.Body))
		}
		m := &Message{Case: c, MessageID: out.MessageID, InvocationID: rep.Header.Get("X-Invocation-Id"), Status: out.Status, sentAt: time.Now()}
		r.res.Messages = append(r.res.Messages, m)
		r.printf("      %-20s to %-20s %s queued (invocation %s)", c.Name, c.To, m.MessageID, m.InvocationID)
		if i == 0 {
			first.idem, first.body, first.raw = idem, body, rep.Body
		}
	}
	// The same Idempotency-Key and body again: the first answer, replayed.
	rep, err := r.api.call(ctx, "/commands/send-message", r.res.APIKey, first.idem, first.body, nil)
	if err != nil {
		return fmt.Errorf("send-message again with the same Idempotency-Key: %w", err)
	}
	if rep.Status != http.StatusAccepted || string(rep.Body) != string(first.raw) || rep.Header.Get("Idempotent-Replayed") != "true" {
		return fmt.Errorf("send-message again with the same Idempotency-Key answered %d %s (Idempotent-Replayed %q): want the first answer %s replayed (contract section 4)",
			rep.Status, excerpt(rep.Body), rep.Header.Get("Idempotent-Replayed"), excerpt(first.raw))
	}
	r.printf("      the same Idempotency-Key again: the first answer replayed (Idempotent-Replayed: true), no new message")
	// An invalid send: a readable problem+json naming the field.
	bad := bodyOf(Cases[0])
	bad["to"] = "not-a-phone-number"
	_, err = r.api.call(ctx, "/commands/send-message", r.res.APIKey, r.idem("send-invalid"), bad, nil)
	var ae *APIError
	switch {
	case err == nil:
		return errors.New("send-message to \"not-a-phone-number\" was accepted: want 400 (an sms `to` is E.164)")
	case !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code == "" || !slices.ContainsFunc(ae.Fields, func(f FieldError) bool { return f.Field == "to" }):
		return fmt.Errorf("send-message to \"not-a-phone-number\": want 400 application/problem+json with a code and a field error on \"to\" (contract section 5), got: %w", err)
	}
	r.printf("      an invalid send: %d %s, field error on %q: %s", ae.Status, ae.Code, "to", firstNonEmpty(ae.Detail, ae.Title))
	r.ok("%d messages queued", len(Cases))
	return nil
}

var terminal = map[string]bool{"delivered": true, "undelivered": true, "failed": true, "canceled": true}

// 6. Poll get-message until every message has its final status.
func (r *runner) statuses(ctx context.Context) error {
	r.begin("final statuses", "get-message until each message has its final status")
	pending := slices.Clone(r.res.Messages)
	last := map[string]string{}
	err := r.wait(ctx, "the final statuses", 300*time.Millisecond, nil, func() (bool, error) {
		var still []*Message
		for _, m := range pending {
			var got struct {
				MessageID, ChannelID, ScopeID, Direction, To, Status string
				StatusReason                                         *string
				Attempts                                             int
				Metadata                                             map[string]string
			}
			_, err := r.api.call(ctx, "/queries/get-message", r.res.APIKey, "", map[string]any{"messageId": m.MessageID}, &got)
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				last[m.MessageID] = "not found yet (404)"
				still = append(still, m)
				continue
			}
			if err != nil {
				return false, err
			}
			m.Status, m.Attempts, m.StatusReason = got.Status, got.Attempts, ""
			if got.StatusReason != nil {
				m.StatusReason = *got.StatusReason
			}
			last[m.MessageID] = fmt.Sprintf("%s, attempts %d", got.Status, got.Attempts)
			if !terminal[got.Status] {
				still = append(still, m)
				continue
			}
			c := m.Case
			if got.Status != c.Status || m.StatusReason != c.Reason || got.Attempts != c.Attempts {
				return false, fmt.Errorf("%s (%s to %s) ended %s, statusReason %q, attempts %d: want %s, statusReason %q, attempts %d (contract section 7)",
					c.Name, m.MessageID, c.To, got.Status, m.StatusReason, got.Attempts, c.Status, c.Reason, c.Attempts)
			}
			if got.MessageID != m.MessageID || got.Direction != "outbound" || got.ChannelID != r.res.ChannelIDs[c.Channel] ||
				got.ScopeID != r.res.RootScopeID || got.To != c.To || got.Metadata["smokeRun"] != r.runID {
				return false, fmt.Errorf("get-message %s: messageId %q, direction %q, channelId %q, scopeId %q, to %q, metadata %v: not the message sent",
					m.MessageID, got.MessageID, got.Direction, got.ChannelID, got.ScopeID, got.To, got.Metadata)
			}
			m.FinalAfter = time.Since(m.sentAt)
			reason := ""
			if m.StatusReason != "" {
				reason = " (" + m.StatusReason + ")"
			}
			r.printf("      %-20s %s %s%s, attempts %d, after %.1f s", c.Name, m.MessageID, got.Status, reason, got.Attempts, m.FinalAfter.Seconds())
		}
		pending = still
		return len(pending) == 0, nil
	}, func() string {
		var parts []string
		receipts := false
		for _, m := range pending {
			parts = append(parts, fmt.Sprintf("%s %s (%s)", m.Case.Name, last[m.MessageID], m.MessageID))
			receipts = receipts || m.Status == "sent"
		}
		s := strings.Join(parts, "; ")
		if receipts {
			s += "\n  what to do: messages stay \"sent\" until the sandbox's receipt reaches the channel's inboundWebhookUrl (printed above): " +
				"that URL must reach this deployment (SWITCHBOARD_PUBLIC_URL)"
		} else {
			s += "\n  what to do: messages not yet sent wait for the work path: is its worker or queue running?"
		}
		return s
	})
	if err != nil {
		return err
	}
	// Each message's event stream: the ids that its webhooks must carry.
	for _, m := range r.res.Messages {
		var h struct {
			Events []struct{ EventID, Type string }
		}
		if _, err := r.api.call(ctx, "/queries/get-message-history", r.res.APIKey, "", map[string]any{"messageId": m.MessageID}, &h); err != nil {
			return err
		}
		for _, e := range h.Events {
			m.EventIDs = append(m.EventIDs, e.EventID)
		}
		if len(m.EventIDs) < len(m.Case.Webhooks) {
			return fmt.Errorf("get-message-history %s has %d events, fewer than its %d status changes", m.MessageID, len(m.EventIDs), len(m.Case.Webhooks))
		}
	}
	r.ok("every message in its final status; event streams read (get-message-history)")
	return nil
}

type pair struct{ messageID, typ string }

// expected are the (message, event type) pairs the subscription receives.
func (r *runner) expected() map[pair]*Message {
	want := map[pair]*Message{}
	for _, m := range r.res.Messages {
		for _, t := range m.Case.Webhooks {
			want[pair{m.MessageID, t}] = m
		}
	}
	return want
}

// 7. The webhooks at the receiver (RECEIVER=none: what cannot be checked).
func (r *runner) webhooks(ctx context.Context) error {
	want := r.expected()
	if r.recv == nil {
		r.begin("webhooks", "webhooks: not received (RECEIVER=none)")
		r.res.NotChecked = append(r.res.NotChecked,
			"the webhooks' signatures, bodies and headers, and webhook-id on the wire: nothing reached a receiver of this test",
			"that the deployment can deliver to a reachable receiver at all (run with RECEIVER=url=<public URL> for that)")
		for _, s := range r.res.NotChecked {
			r.printf("      not checked: %s", s)
		}
		r.ok("the next step checks what list-deliveries shows instead")
		return nil
	}
	r.begin("webhooks", "webhooks: %d events, each signed with the subscription's secret (Standard Webhooks)", len(want))
	r.printf("      the receiver refuses the first webhook once (503) to check that its retry keeps the webhook-id")
	mine := map[string]*Message{}
	for _, m := range r.res.Messages {
		mine[m.MessageID] = m
	}
	var got []Received
	missing := func() []string {
		var out []string
		for p, m := range want {
			found := false
			for _, g := range got {
				if g.Verified && g.MessageID == p.messageID && g.Type == p.typ && g.Answered/100 == 2 {
					found = true
					break
				}
			}
			if !found {
				out = append(out, m.Case.Name+" "+p.typ)
			}
		}
		sort.Strings(out)
		return out
	}
	err := r.wait(ctx, "the webhooks", 500*time.Millisecond, r.recv.Changed, func() (bool, error) {
		got = r.recv.Received()
		for _, g := range got {
			if !g.Verified && g.Answered == http.StatusUnauthorized {
				return false, fmt.Errorf("webhook-id %q (timestamp %s): the signature does not verify with the subscription's secret: %s",
					g.WebhookID, g.Timestamp, g.VerifyError)
			}
		}
		rejected := r.recv.Rejected()
		retried := rejected == ""
		var first *Received
		for i, g := range got {
			switch {
			case g.WebhookID == rejected && first == nil:
				first = &got[i]
			case g.WebhookID == rejected && g.Verified && g.Answered/100 == 2:
				retried = true
			case first != nil && g.Verified && g.Type == first.Type && g.MessageID == first.MessageID && g.MessageID != "":
				return false, fmt.Errorf("%s of %s was refused once with webhook-id %s and came again with webhook-id %s: "+
					"webhook-id must stay the same on every retry (contract section 9)", g.Type, g.MessageID, rejected, g.WebhookID)
			}
		}
		return retried && len(missing()) == 0, nil
	}, func() string {
		miss := missing()
		s := fmt.Sprintf("%d requests so far; missing: %s", len(got), some(miss, 4))
		if len(miss) == len(want) {
			s = fmt.Sprintf("%d requests so far; none of the %d events arrived", len(got), len(want))
		}
		if rej := r.recv.Rejected(); rej != "" {
			s += "; the retry of " + rej + " (refused once on purpose; the second attempt comes about 5 s after the first)"
		}
		return s + r.deliveryDiagnosis(ctx)
	})
	if err != nil {
		return err
	}

	// Every verified request: one of ours, an expected type, the body's
	// status its type's; one webhook-id per event, the same body on every
	// attempt; the id is the event's id in the message's stream.
	byID := map[string][]Received{}
	idOf := map[pair]string{}
	verified := 0
	for _, g := range got {
		if !g.Verified {
			continue
		}
		verified++
		m := mine[g.MessageID]
		p := pair{g.MessageID, g.Type}
		switch {
		case g.VerifyError != "":
			return fmt.Errorf("webhook-id %s: %s", g.WebhookID, g.VerifyError)
		case m == nil:
			return fmt.Errorf("webhook-id %s is about message %q, not one of this run's: the subscription saw another tenant's message or a foreign event: %s",
				g.WebhookID, g.MessageID, excerpt(g.Body))
		case want[p] == nil:
			return fmt.Errorf("webhook-id %s: %s for %s (%s), which should only get %s: %s", g.WebhookID, g.Type, m.Case.Name, g.MessageID,
				strings.Join(m.Case.Webhooks, ", "), excerpt(g.Body))
		case "message."+g.Status != g.Type:
			return fmt.Errorf("webhook-id %s: type %s with data.status %q: the data must be the message at that event", g.WebhookID, g.Type, g.Status)
		case !slices.Contains(m.EventIDs, g.WebhookID):
			return fmt.Errorf("webhook-id %s (%s of %s) is not an event id of the message's history %v: webhook-id must be the event id (contract section 9)",
				g.WebhookID, g.Type, g.MessageID, m.EventIDs)
		}
		if prev, ok := idOf[p]; ok && prev != g.WebhookID {
			return fmt.Errorf("two events for %s of %s: webhook-ids %s and %s", g.Type, g.MessageID, prev, g.WebhookID)
		}
		idOf[p] = g.WebhookID
		if prev := byID[g.WebhookID]; len(prev) > 0 && string(prev[0].Body) != string(g.Body) {
			return fmt.Errorf("webhook-id %s came twice with different bodies:\n  %s\n  %s", g.WebhookID, excerpt(prev[0].Body), excerpt(g.Body))
		}
		byID[g.WebhookID] = append(byID[g.WebhookID], g)
		if g.Type == "message.queued" && m.InvocationID != "" && g.InvocationID != m.InvocationID {
			return fmt.Errorf("webhook-id %s (message.queued of %s) carries X-Invocation-Id %q, not %q of the send-message that caused it",
				g.WebhookID, g.MessageID, g.InvocationID, m.InvocationID)
		}
	}
	if rej := r.recv.Rejected(); rej != "" {
		atts := byID[rej]
		if len(atts) < 2 {
			return fmt.Errorf("webhook-id %s was refused once but not received again with the same webhook-id", rej)
		}
		r.res.RetriedWebhook = rej
		r.printf("      %s (%s) refused once with 503, retried %.1f s later with the same webhook-id and body, verified", rej, atts[0].Type,
			atts[len(atts)-1].At.Sub(atts[0].At).Seconds())
	}
	for _, m := range r.res.Messages {
		var ids []string
		for _, t := range m.Case.Webhooks {
			ids = append(ids, strings.TrimPrefix(t, "message.")+" "+idOf[pair{m.MessageID, t}])
		}
		r.printf("      %-20s %s", m.Case.Name, strings.Join(ids, ", "))
	}
	r.res.Webhooks, r.res.Events = verified, len(byID)
	r.ok("%d events in %d requests, every signature valid; message.queued carries its send-message's X-Invocation-Id", len(byID), verified)
	return nil
}

// Delivery is one item of list-deliveries.
type Delivery struct {
	DeliveryID     string  `json:"deliveryId"`
	EventID        string  `json:"eventId"`
	EventType      string  `json:"eventType"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	LastStatusCode *int    `json:"lastStatusCode"`
	LastError      *string `json:"lastError"`
	NextAttemptAt  *string `json:"nextAttemptAt"`
}

func (r *runner) listDeliveries(ctx context.Context) ([]Delivery, error) {
	var all []Delivery
	cursor := ""
	for range 20 {
		in := map[string]any{"subscriptionId": r.res.SubscriptionID, "limit": 100}
		if cursor != "" {
			in["cursor"] = cursor
		}
		var page struct {
			Items      []Delivery
			NextCursor *string
		}
		if _, err := r.api.call(ctx, "/queries/list-deliveries", r.res.APIKey, "", in, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			break
		}
		cursor = *page.NextCursor
	}
	return all, nil
}

// deliveryDiagnosis summarizes list-deliveries for a wait's progress line:
// why webhooks do not arrive.
func (r *runner) deliveryDiagnosis(ctx context.Context) string {
	ds, err := r.listDeliveries(ctx)
	if err != nil {
		return "; list-deliveries: " + err.Error()
	}
	status, errs := map[string]int{}, map[string]int{}
	for _, d := range ds {
		status[d.Status]++
		if d.LastError != nil {
			errs[*d.LastError]++
		}
	}
	s := fmt.Sprintf("; list-deliveries: %d deliveries, %s", len(ds), counts(status))
	if len(errs) > 0 {
		s += fmt.Sprintf(", last errors %s (can the deployment reach %s?)", counts(errs), r.res.SubscriptionURL)
	}
	return s
}

// 8. list-deliveries: one delivery per event; succeeded (receiver), or
// attempted and failing (none).
func (r *runner) deliveries(ctx context.Context) error {
	none := r.recv == nil
	want := r.expected()
	r.begin("list-deliveries", "list-deliveries %s: one delivery per event", r.res.SubscriptionID)
	owner := map[string]*Message{}
	for _, m := range r.res.Messages {
		for _, id := range m.EventIDs {
			owner[id] = m
		}
	}
	var ds []Delivery
	var problems []string
	err := r.wait(ctx, "the deliveries", 500*time.Millisecond, nil, func() (bool, error) {
		var err error
		if ds, err = r.listDeliveries(ctx); err != nil {
			return false, err
		}
		problems = problems[:0]
		seen := map[pair]string{}
		for _, d := range ds {
			m := owner[d.EventID]
			if m == nil {
				return false, fmt.Errorf("delivery %s of event %s (%s) is of no message of this run: the subscription saw a foreign event", d.DeliveryID, d.EventID, d.EventType)
			}
			p := pair{m.MessageID, d.EventType}
			if want[p] == nil {
				return false, fmt.Errorf("delivery %s: %s for %s (%s), which should only get %s", d.DeliveryID, d.EventType, m.Case.Name, m.MessageID, strings.Join(m.Case.Webhooks, ", "))
			}
			if prev, ok := seen[p]; ok {
				return false, fmt.Errorf("two deliveries (%s, %s) of %s for %s: the subscription must get one delivery per event", prev, d.DeliveryID, d.EventType, m.MessageID)
			}
			seen[p] = d.DeliveryID
			if r.recv != nil && d.EventID == r.res.RetriedWebhook && d.Status == "succeeded" && d.Attempts < 2 {
				return false, fmt.Errorf("delivery %s of %s: attempts %d, but the receiver refused its first attempt", d.DeliveryID, d.EventID, d.Attempts)
			}
			switch {
			case none && d.Status == "succeeded":
				return false, fmt.Errorf("delivery %s to %s succeeded: that URL was meant to be unreachable", d.DeliveryID, r.res.SubscriptionURL)
			case none && (d.Attempts < 1 || d.LastError == nil):
				problems = append(problems, fmt.Sprintf("%s %s not attempted yet", m.Case.Name, d.EventType))
			case !none && d.Status != "succeeded":
				problems = append(problems, fmt.Sprintf("%s %s %s (attempts %d)", m.Case.Name, d.EventType, d.Status, d.Attempts))
			}
		}
		for p, m := range want {
			if seen[p] == "" {
				problems = append(problems, fmt.Sprintf("%s %s has no delivery", m.Case.Name, p.typ))
			}
		}
		sort.Strings(problems)
		return len(problems) == 0, nil
	}, func() string { return some(problems, 4) })
	if err != nil {
		return err
	}
	r.res.Deliveries = len(ds)
	if !none {
		r.ok("%d deliveries, all succeeded", len(ds))
		return nil
	}
	errs := map[string]int{}
	for _, d := range ds {
		errs[*d.LastError]++
	}
	r.res.Events = len(ds)
	r.printf("      each event's delivery was attempted and failed as intended; last errors: %s", counts(errs))
	r.printf("      (the event ids match the messages' histories, so webhook-id would be the event id; the signature itself is not visible here)")
	r.ok("%d deliveries, one per event, attempted", len(ds))
	return nil
}

// 9. Cleanup: revoke the tenant's API keys; say what stays.
func (r *runner) cleanup(ctx context.Context) error {
	r.step = steps - 1
	r.begin("cleanup", "cleanup")
	if r.recv != nil {
		_ = r.recv.Close()
		r.printf("      webhook receiver stopped")
	}
	if r.res.APIKey == "" {
		r.ok("nothing to clean up: no tenant was onboarded")
		return nil
	}
	key := r.res.APIKey
	// Every active key of the tenant (all were issued by this run): the
	// others first, the admin's own key last (a key may revoke itself).
	ids := []string{}
	var lerr error
	cursor := ""
	for range 10 {
		in := map[string]any{"limit": 100}
		if cursor != "" {
			in["cursor"] = cursor
		}
		var page struct {
			Items []struct {
				APIKeyID string
				Revoked  bool
			}
			NextCursor *string
		}
		if _, lerr = r.api.call(ctx, "/queries/list-api-keys", key, "", in, &page); lerr != nil {
			break
		}
		for _, k := range page.Items {
			if !k.Revoked && k.APIKeyID != r.res.APIKeyID {
				ids = append(ids, k.APIKeyID)
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			break
		}
		cursor = *page.NextCursor
	}
	if lerr != nil {
		r.printf("      list-api-keys failed (%s); revoking the admin key only", indent(lerr.Error()))
	}
	if r.res.APIKeyID != "" {
		ids = append(ids, r.res.APIKeyID)
	}
	var failed []string
	for _, id := range ids {
		var out struct {
			APIKeyID string
			Revoked  bool
		}
		if _, err := r.api.call(ctx, "/commands/revoke-api-key", key, r.idem("revoke-"+id), map[string]any{"apiKeyId": id}, &out); err != nil || !out.Revoked {
			failed = append(failed, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		r.res.Revoked = append(r.res.Revoked, id)
		r.printf("      revoke-api-key %s: revoked", id)
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not revoke API keys of tenant %s: %s\n  what to do: revoke them with revoke-api-key", r.res.TenantID, strings.Join(failed, "; "))
	}
	if r.res.APIKeyID == "" {
		return fmt.Errorf("onboard-tenant gave no apiKeyId: the admin key of tenant %s could not be revoked", r.res.TenantID)
	}
	// The revoked key must stop working: at once on the instance that
	// served the revocation, within 10 s on every other.
	t0 := time.Now()
	for {
		_, err := r.api.call(ctx, "/queries/list-api-keys", key, "", map[string]any{"limit": 1}, nil)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			r.res.RevokeChecked = true
			r.printf("      the revoked admin key answers 401 (after %.1f s)", time.Since(t0).Seconds())
			break
		}
		if time.Since(t0) > RevocationWait || ctx.Err() != nil {
			last := "it is still accepted"
			if err != nil {
				last = "last answer: " + err.Error()
			}
			return fmt.Errorf("the revoked admin key %s is not refused with 401 %.0f s after its revocation (%s)", r.res.APIKeyID, time.Since(t0).Seconds(), last)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// What the contract gives no way to remove.
	r.res.Leftovers = append(r.res.Leftovers,
		fmt.Sprintf("tenant %s %q (there is no delete-tenant), its root scope %s and admin service account %s (now without a usable key)",
			r.res.TenantID, r.res.TenantName, r.res.RootScopeID, r.res.ServiceAccountID))
	if len(r.res.ChannelIDs) > 0 {
		var chs []string
		for _, t := range []string{"sms", "email"} {
			if id := r.res.ChannelIDs[t]; id != "" {
				chs = append(chs, id)
			}
		}
		r.res.Leftovers = append(r.res.Leftovers, "channels "+strings.Join(chs, ", ")+" (no delete-channel)")
	}
	if r.res.SubscriptionID != "" {
		s := "subscription " + r.res.SubscriptionID + " (no delete or disable command; with every key revoked nothing can send, so it gets no new events)"
		if r.recv == nil {
			s += "; its failing deliveries keep retrying on the deployment's schedule (about 27 h) and then fail"
		}
		r.res.Leftovers = append(r.res.Leftovers, s)
	}
	if len(r.res.Messages) > 0 {
		r.res.Leftovers = append(r.res.Leftovers, fmt.Sprintf("%d messages with their event history and their deliveries (history is kept by design)", len(r.res.Messages)))
	}
	for _, l := range r.res.Leftovers {
		r.printf("      stays: %s", l)
	}
	r.ok("%d API key(s) revoked", len(r.res.Revoked))
	return nil
}

// idem is a command's Idempotency-Key: unique to the run and the entity, so
// that a retried call replays instead of acting twice.
func (r *runner) idem(what string) string { return "smoke-" + r.runID + "-" + what }

// redactKey hides a shown-once secret in an answer quoted in an error.
func redactKey(body []byte, key string) string {
	s := excerpt(body)
	if key != "" {
		s = strings.ReplaceAll(s, key, "sbk_...(redacted)")
	}
	return s
}

// some lists the first n items and how many more there are.
func some(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// counts renders a tally: "connection refused" ×14, "status 500" ×1.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%q ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
