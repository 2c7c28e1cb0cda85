package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

var wt0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const (
	wTenant    = "tnt_01JQ00000000000000000000T1"
	wChannel   = "chn_01JQ0000000000000000000001"
	wScope     = "scp_01JQ0000000000000000000001"
	wSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	wPublicURL = "http://127.0.0.1:9999/"
)

type workEnv struct {
	clock    *clock.Fixed
	ids      ids.Generator
	repo     *memRepo
	sealer   secrets.Sealer
	sandbox  *sandbox.Provider
	scripted *scriptedProvider
	dispatch app.DispatchHandler
	hooks    app.ProviderWebhookHandler
}

func newWorkEnv(t *testing.T) *workEnv {
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
	e := &workEnv{clock: clock.NewFixed(wt0), ids: ids.NewULIDs(), sealer: secrets.NewEnvelope(keyring), scripted: &scriptedProvider{}}
	e.repo = newMemRepo(e.clock)
	e.sandbox = sandbox.New(sandbox.Deps{Store: store, Runner: &uow.Runner{Store: store}, Sealer: e.sealer, IDs: e.ids, Clock: e.clock})
	e.dispatch = app.DispatchHandler{
		Repo: e.repo, Runner: &uow.Runner{Store: store}, Providers: app.Providers{"sandbox": e.sandbox, "scripted": e.scripted}, Sealer: e.sealer,
		Clock: e.clock, PublicURL: wPublicURL, RetryBase: 10 * time.Millisecond,
	}
	e.hooks = app.ProviderWebhookHandler{Repo: e.repo, Reads: e.repo, IDs: e.ids, Clock: e.clock}
	return e
}

// addChannel stores a channel of the provider with sealed credentials and
// inbound secret.
func (e *workEnv) addChannel(t *testing.T, id, provider string, ct domain.ChannelType) {
	t.Helper()
	ctx := context.Background()
	creds, err := e.sealer.Seal(ctx, wTenant, app.PurposeCredentials, []byte(`{"apiKey":"k1"}`))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := e.sealer.Seal(ctx, wTenant, app.PurposeInboundSecret, []byte(wSecret))
	if err != nil {
		t.Fatal(err)
	}
	from := "+15550000000"
	if ct == domain.ChannelEmail {
		from = "noreply@example.com"
	}
	err = e.repo.SaveChannel(ctx, wTenant, app.Change{Events: []domain.Event{domain.ChannelCreated{
		ChannelID: id, ScopeID: wScope, ScopePath: []string{"scp_root", wScope}, Name: "c", Type: ct,
		Provider: provider, From: from, Config: map[string]string{"region": "eu"},
		SealedCredentials: creds, SealedInboundSecret: sec,
	}}})
	if err != nil {
		t.Fatal(err)
	}
}

// addMessage stores an accepted outbound message of a channel.
func (e *workEnv) addMessage(t *testing.T, ch string, ct domain.ChannelType, to string, sendAt *time.Time) string {
	t.Helper()
	id := e.ids.New(ids.Message)
	status := domain.StatusQueued
	if sendAt != nil {
		status = domain.StatusScheduled
	}
	content := domain.Content{Text: "hello"}
	if ct == domain.ChannelEmail {
		content.Subject = "hi"
	}
	err := e.repo.SaveMessage(context.Background(), wTenant, nil, []domain.Event{domain.MessageAccepted{
		MessageID: id, ChannelID: ch, ScopeID: wScope, ScopePath: []string{"scp_root", wScope}, ChannelType: ct,
		To: to, From: "+15550000000", Content: content, SendAt: timestamp(sendAt), Status: status,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *workEnv) message(t *testing.T, id string) *domain.Message {
	t.Helper()
	m, err := e.repo.Message(context.Background(), wTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run dispatches a message and then every retry item it queues (advancing
// the clock to each item's due time), like the work path; it returns the
// statuses the message went through after each run.
func (e *workEnv) run(t *testing.T, id string) []domain.Status {
	t.Helper()
	ctx := asWorker(wTenant)
	var seen []domain.Status
	pending := []app.Work{{Type: app.WorkDispatch, Payload: app.DispatchPayload{MessageID: id}, DueAt: e.clock.Now()}}
	for len(pending) > 0 {
		if len(seen) > 10 {
			t.Fatal("too many dispatch runs")
		}
		w := pending[0]
		if w.Type != app.WorkDispatch || w.Payload.(app.DispatchPayload).MessageID != id {
			t.Fatalf("unexpected work %+v", w)
		}
		e.clock.Set(w.DueAt)
		if err := e.dispatch.Handle(ctx, w.Payload.(app.DispatchPayload)); err != nil {
			t.Fatalf("dispatch: %v", err)
		}
		seen = append(seen, e.message(t, id).Status)
		pending = append(pending[1:], e.repo.takeWork()...)
	}
	return seen
}

// TestDispatchSandboxOutcomes runs every row of the sandbox table through the
// dispatcher, for sms and email.
func TestDispatchSandboxOutcomes(t *testing.T) {
	rows := []struct {
		name, sms, email string
		statuses         []domain.Status
		attempts         int
		reason           string
		calls            int
	}{
		{"fail", "+15550100001", "fail@example.com", []domain.Status{domain.StatusFailed}, 1, sandbox.ReasonInvalidNumber, 1},
		{"retry", "+15550100002", "retry@example.com",
			[]domain.Status{domain.StatusSending, domain.StatusSending, domain.StatusSent}, 3, "", 3},
		{"silent", "+15550100003", "silent@example.com", []domain.Status{domain.StatusSent}, 1, "", 1},
		{"bounce", "+15550100004", "bounce@example.com", []domain.Status{domain.StatusSent}, 1, "", 1},
		{"deliver", "+15550100005", "someone@example.com", []domain.Status{domain.StatusSent}, 1, "", 1},
	}
	for _, row := range rows {
		for _, ct := range []domain.ChannelType{domain.ChannelSMS, domain.ChannelEmail} {
			t.Run(row.name+"/"+string(ct), func(t *testing.T) {
				e := newWorkEnv(t)
				e.addChannel(t, wChannel, "sandbox", ct)
				to := row.sms
				if ct == domain.ChannelEmail {
					to = row.email
				}
				id := e.addMessage(t, wChannel, ct, to, nil)
				seen := e.run(t, id)
				if strings.Join(statusList(seen), ",") != strings.Join(statusList(row.statuses), ",") {
					t.Fatalf("statuses %v, want %v", seen, row.statuses)
				}
				m := e.message(t, id)
				if m.Attempts != row.attempts || m.StatusReason != row.reason {
					t.Fatalf("attempts %d reason %q, want %d %q", m.Attempts, m.StatusReason, row.attempts, row.reason)
				}
				accepted, calls, err := e.sandbox.Sends(context.Background(), wTenant, id)
				if err != nil || calls != row.calls || accepted != map[bool]int{true: 1, false: 0}[m.Status == domain.StatusSent] {
					t.Fatalf("sandbox: %d accepted, %d calls, %v", accepted, calls, err)
				}
				if m.Status == domain.StatusSent && !strings.HasPrefix(m.ProviderMessageID, "sbx_") {
					t.Fatalf("provider message id %q", m.ProviderMessageID)
				}
			})
		}
	}
}

func statusList(s []domain.Status) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

// TestDispatchRequest: the provider gets the message, the channel's opened
// credentials and inbound secret, the inbound URL and the message id as key.
func TestDispatchRequest(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelEmail)
	e.scripted.answers = []scriptedAnswer{{pmid: "p1"}}
	id := e.addMessage(t, wChannel, domain.ChannelEmail, "a@example.com", nil)
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	req := e.scripted.calls[0]
	if req.IdempotencyKey != id || req.Attempt != 1 || req.TenantID != wTenant || req.ChannelID != wChannel ||
		req.ChannelType != domain.ChannelEmail || req.From != "noreply@example.com" || req.To != "a@example.com" ||
		req.Content.Subject != "hi" || req.Config["region"] != "eu" || req.Credentials["apiKey"] != "k1" ||
		req.InboundSecret != wSecret || req.InboundWebhookURL != "http://127.0.0.1:9999/webhooks/scripted/"+wChannel {
		t.Fatalf("request %+v", req)
	}
	if m := e.message(t, id); m.Status != domain.StatusSent || m.ProviderMessageID != "p1" || m.Attempts != 1 {
		t.Fatalf("message %+v", m)
	}
}

// TestDispatchRetryBackoff: each retry is due within RetryBase*2^(n-1)
// (full jitter), capped at MaxRetryDelay.
func TestDispatchRetryBackoff(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{err: &app.SendError{Transient: true, Reason: "x.busy"}}}
	e.dispatch.MaxAttempts = 8
	e.dispatch.RetryBase = time.Second
	e.dispatch.MaxRetryDelay = 10 * time.Second
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	ctx := asWorker(wTenant)
	for attempt := 1; attempt < 8; attempt++ {
		now := e.clock.Now()
		if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
			t.Fatal(err)
		}
		w := e.repo.takeWork()
		if len(w) != 1 || w[0].Type != app.WorkDispatch {
			t.Fatalf("attempt %d: work %+v", attempt, w)
		}
		ceiling := min(time.Second<<(attempt-1), 10*time.Second)
		if d := w[0].DueAt.Sub(now); d < 0 || d > ceiling {
			t.Fatalf("attempt %d: retry after %s, want 0..%s", attempt, d, ceiling)
		}
		m := e.message(t, id)
		if m.Status != domain.StatusSending || m.Attempts != attempt || m.StatusReason != "x.busy" {
			t.Fatalf("attempt %d: %+v", attempt, m)
		}
		e.clock.Set(w[0].DueAt)
	}
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	if w := e.repo.takeWork(); len(w) != 0 {
		t.Fatalf("work after the last attempt: %+v", w)
	}
	if m := e.message(t, id); m.Status != domain.StatusFailed || m.Attempts != 8 || m.StatusReason != "x.busy" {
		t.Fatalf("after 8 attempts: %+v", m)
	}
}

// TestDispatchRetriesExhausted: transient failures up to MaxAttempts fail the
// message with the provider's reason, or provider.unavailable without one.
func TestDispatchRetriesExhausted(t *testing.T) {
	for name, c := range map[string]struct {
		err    error
		reason string
	}{
		"send error":  {&app.SendError{Transient: true, Reason: "x.throttled"}, "x.throttled"},
		"plain error": {errors.New("connection reset"), app.ReasonProviderUnavailable},
		"no reason":   {&app.SendError{Transient: true}, app.ReasonProviderUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			e := newWorkEnv(t)
			e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
			e.scripted.answers = []scriptedAnswer{{err: c.err}}
			e.dispatch.MaxAttempts = 3
			id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
			seen := e.run(t, id)
			if got := strings.Join(statusList(seen), ","); got != "sending,sending,failed" {
				t.Fatalf("statuses %s", got)
			}
			m := e.message(t, id)
			if m.Attempts != 3 || m.StatusReason != c.reason || e.scripted.callCount() != 3 {
				t.Fatalf("message %+v after %d calls", m, e.scripted.callCount())
			}
			for i, req := range e.scripted.calls {
				if req.Attempt != i+1 || req.IdempotencyKey != id {
					t.Fatalf("call %d: attempt %d key %s", i, req.Attempt, req.IdempotencyKey)
				}
			}
		})
	}
	// The default is 5 attempts.
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{err: errors.New("timeout")}}
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	if seen := e.run(t, id); len(seen) != 5 || seen[4] != domain.StatusFailed {
		t.Fatalf("default attempts: %v", seen)
	}
}

// TestDispatchTransientThenSuccess: retries end when the provider accepts.
func TestDispatchTransientThenSuccess(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	busy := &app.SendError{Transient: true, Reason: "x.busy"}
	e.scripted.answers = []scriptedAnswer{{err: busy}, {err: errors.New("reset")}, {err: busy}, {pmid: "p9"}}
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	seen := e.run(t, id)
	if got := strings.Join(statusList(seen), ","); got != "sending,sending,sending,sent" {
		t.Fatalf("statuses %s", got)
	}
	if m := e.message(t, id); m.Attempts != 4 || m.StatusReason != "" || m.ProviderMessageID != "p9" {
		t.Fatalf("message %+v", m)
	}
}

// TestDispatchPermanentFailsAtOnce: a permanent refusal fails the message on
// the first attempt, with no retry.
func TestDispatchPermanentFailsAtOnce(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{err: &app.SendError{Reason: "x.blocked"}}}
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	if seen := e.run(t, id); len(seen) != 1 || seen[0] != domain.StatusFailed {
		t.Fatalf("statuses %v", seen)
	}
	if m := e.message(t, id); m.Attempts != 1 || m.StatusReason != "x.blocked" || e.scripted.callCount() != 1 {
		t.Fatalf("message %+v, %d calls", m, e.scripted.callCount())
	}
	// Without a reason of its own.
	e.scripted.answers = []scriptedAnswer{{err: &app.SendError{}}}
	id = e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	e.run(t, id)
	if m := e.message(t, id); m.Status != domain.StatusFailed || m.StatusReason != app.ReasonProviderRejected {
		t.Fatalf("message %+v", m)
	}
}

// TestDispatchRedelivered: an item redelivered after the provider accepted
// but before its outcome committed calls the provider with the same key and
// nothing is sent twice; once the outcome committed, a redelivery calls
// nothing.
func TestDispatchRedelivered(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "sandbox", domain.ChannelSMS)
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	ctx := asWorker(wTenant)
	e.repo.skipSaves, e.repo.failSaves = 1, 1 // the claim commits, the outcome does not
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); !errors.Is(err, errMemStore) {
		t.Fatalf("first run: err = %v, want the store's error (retry)", err)
	}
	if m := e.message(t, id); m.Status != domain.StatusSending || m.Attempts != 1 || !m.AttemptOpen {
		t.Fatalf("after a failed save: %s attempts %d open %v", m.Status, m.Attempts, m.AttemptOpen)
	}
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	m := e.message(t, id)
	accepted, calls, _ := e.sandbox.Sends(ctx, wTenant, id)
	if m.Status != domain.StatusSent || m.Attempts != 1 || accepted != 1 || calls != 2 {
		t.Fatalf("after the redelivery: %s attempts %d; sandbox %d accepted of %d calls", m.Status, m.Attempts, accepted, calls)
	}
	saves := e.repo.saveCount()
	for i := 0; i < 3; i++ {
		if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, calls2, _ := e.sandbox.Sends(ctx, wTenant, id); calls2 != calls || e.repo.saveCount() != saves {
		t.Fatalf("a redelivered item of a sent message called the provider (%d calls) or saved", calls2)
	}
	if after := e.message(t, id); after.ProviderMessageID != m.ProviderMessageID || after.Version != m.Version {
		t.Fatalf("message moved: %+v", after)
	}
}

// TestDispatchCanceled: a canceled (or failed, or delivered) message is never
// sent: no provider call, nothing saved.
func TestDispatchCanceled(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{pmid: "p1"}}
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	m := e.message(t, id)
	ev, err := m.Cancel()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.repo.SaveMessage(context.Background(), wTenant, m, []domain.Event{ev}); err != nil {
		t.Fatal(err)
	}
	saves := e.repo.saveCount()
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	if e.scripted.callCount() != 0 || e.repo.saveCount() != saves || len(e.repo.takeWork()) != 0 {
		t.Fatalf("canceled message: %d provider calls, %d saves", e.scripted.callCount(), e.repo.saveCount()-saves)
	}
	if got := e.message(t, id).Status; got != domain.StatusCanceled {
		t.Fatalf("status %s", got)
	}
}

// TestDispatchScheduled: a due scheduled message is released and claimed in
// one save, before the call, and sent in a second; an item that runs early is
// an error and calls nothing.
func TestDispatchScheduled(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{pmid: "p1"}}
	sendAt := wt0.Add(time.Hour)
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", &sendAt)
	ctx := asWorker(wTenant)
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err == nil || e.scripted.callCount() != 0 {
		t.Fatalf("early run: err = %v, %d calls; want an error and no call", err, e.scripted.callCount())
	}
	if got := e.message(t, id).Status; got != domain.StatusScheduled {
		t.Fatalf("status %s after an early run", got)
	}
	e.clock.Set(sendAt)
	saves := e.repo.saveCount()
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	if e.repo.saveCount() != saves+2 {
		t.Fatalf("%d saves, want two", e.repo.saveCount()-saves)
	}
	claim, last := e.repo.saves[len(e.repo.saves)-2], e.repo.saves[len(e.repo.saves)-1]
	if len(claim) != 2 || claim[0].EventType() != domain.TypeMessageReleased || claim[1] != (domain.SendAttemptStarted{MessageID: id, Attempt: 1}) ||
		len(last) != 1 || last[0].EventType() != domain.TypeMessageSent {
		t.Fatalf("events %v then %v", claim, last)
	}
	if m := e.message(t, id); m.Status != domain.StatusSent || m.Version != 4 || m.AttemptOpen {
		t.Fatalf("message %+v", m)
	}
	// A scheduled message canceled before its time is never sent.
	id = e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", &sendAt)
	m := e.message(t, id)
	ev, _ := m.Cancel()
	if err := e.repo.SaveMessage(context.Background(), wTenant, m, []domain.Event{ev}); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(sendAt.Add(time.Minute))
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil || e.scripted.callCount() != 1 {
		t.Fatalf("canceled scheduled: %v, %d calls", err, e.scripted.callCount())
	}
}

// TestDispatchCannotSend: what no retry can fix fails the message at once.
func TestDispatchCannotSend(t *testing.T) {
	e := newWorkEnv(t)
	ctx := asWorker(wTenant)

	id := e.addMessage(t, "chn_01JQ00000000000000000MISSING", domain.ChannelSMS, "+15550100005", nil)
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	if m := e.message(t, id); m.Status != domain.StatusFailed || m.StatusReason != app.ReasonChannelNotFound || m.Attempts != 0 {
		t.Fatalf("no channel: %+v", m)
	}

	e.addChannel(t, "chn_01JQ0000000000000000000002", "twilio", domain.ChannelSMS)
	id = e.addMessage(t, "chn_01JQ0000000000000000000002", domain.ChannelSMS, "+15550100005", nil)
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	if m := e.message(t, id); m.Status != domain.StatusFailed || m.StatusReason != app.ReasonProviderNotConfigured || m.Attempts != 0 {
		t.Fatalf("no provider: %+v", m)
	}

	// Secrets sealed for another tenant never open here.
	other, _ := e.sealer.Seal(ctx, "tnt_other", app.PurposeInboundSecret, []byte(wSecret))
	_ = e.repo.SaveChannel(ctx, wTenant, app.Change{Events: []domain.Event{domain.ChannelCreated{
		ChannelID: "chn_01JQ0000000000000000000003", ScopeID: wScope, Type: domain.ChannelSMS, Provider: "scripted",
		From: "+1555", SealedInboundSecret: other,
	}}})
	id = e.addMessage(t, "chn_01JQ0000000000000000000003", domain.ChannelSMS, "+15550100005", nil)
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	if m := e.message(t, id); m.Status != domain.StatusFailed || m.StatusReason != app.ReasonChannelSecrets || e.scripted.callCount() != 0 {
		t.Fatalf("unreadable secrets: %+v", m)
	}
}

// TestDispatchInfrastructureErrors: store failures and a missing tenant are
// errors (the work path retries); a message that does not exist is done.
func TestDispatchInfrastructureErrors(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{pmid: "p1"}}
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)

	if err := e.dispatch.Handle(context.Background(), app.DispatchPayload{MessageID: id}); err == nil {
		t.Fatal("no tenant: want an error")
	}
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: "msg_01JQ000000000000000000NONE"}); err != nil {
		t.Fatalf("unknown message: %v", err)
	}
	if err := e.dispatch.Handle(asWorker("tnt_other"), app.DispatchPayload{MessageID: id}); err != nil || e.scripted.callCount() != 0 {
		t.Fatalf("another tenant's message: %v, %d calls", err, e.scripted.callCount())
	}
	e.repo.failReads = errMemStore
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); !errors.Is(err, errMemStore) {
		t.Fatalf("read failure: %v", err)
	}
	e.repo.failReads = nil
	e.repo.failSaves = 1
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); !errors.Is(err, errMemStore) {
		t.Fatalf("save failure: %v", err)
	}
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	if m := e.message(t, id); m.Status != domain.StatusSent {
		t.Fatalf("status %s", m.Status)
	}
}

// TestDispatchConcurrentSave: when another writer moved the message between
// dispatch's read and its claim (cancel-message), the claim conflicts, the
// claim's unit of work runs again, sees the message canceled, and the
// provider is never called.
func TestDispatchConcurrentSave(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{pmid: "p1"}}
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	repo := &cancelingRepo{memRepo: e.repo}
	e.dispatch.Repo = repo
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatalf("err = %v", err)
	}
	if m := e.message(t, id); m.Status != domain.StatusCanceled || e.scripted.callCount() != 0 {
		t.Fatalf("status %s, %d provider calls", m.Status, e.scripted.callCount())
	}
}

// cancelingRepo cancels the message between the dispatcher's read and its
// first save (when the message can still be canceled).
type cancelingRepo struct{ *memRepo }

func (r *cancelingRepo) SaveMessage(ctx context.Context, wTenant string, before *domain.Message, events []domain.Event, work ...app.Work) error {
	m, _ := r.memRepo.Message(ctx, wTenant, before.ID)
	if ev, err := m.Cancel(); err == nil {
		if err := r.memRepo.SaveMessage(ctx, wTenant, m, []domain.Event{ev}); err != nil {
			return err
		}
	}
	return r.memRepo.SaveMessage(ctx, wTenant, before, events, work...)
}

// TestDispatchStaleItem: a work item redelivered after its attempt ended (the
// sweep handed it again just before its acknowledgement landed, or a queue
// delivered it twice) calls no provider and starts no attempt: before, it
// started the next attempt at once, skipping the backoff, and a stale item
// resumed the attempt another item had open (CI: 4 provider calls for 3
// attempts).
func TestDispatchStaleItem(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{err: &app.SendError{Transient: true, Reason: "x.busy"}}, {pmid: "p2"}}
	e.dispatch.MaxAttempts = 5
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	ctx := asWorker(wTenant)
	first := app.DispatchPayload{MessageID: id, Attempt: 1}
	if err := e.dispatch.Handle(ctx, first); err != nil {
		t.Fatal(err)
	}
	retry := e.repo.takeWork()
	if len(retry) != 1 || retry[0].Payload.(app.DispatchPayload) != (app.DispatchPayload{MessageID: id, Attempt: 2}) {
		t.Fatalf("retry work %+v, want attempt 2", retry)
	}

	// The first item again, before the retry is due: nothing happens.
	if err := e.dispatch.Handle(ctx, first); err != nil {
		t.Fatal(err)
	}
	if m := e.message(t, id); e.scripted.callCount() != 1 || m.Attempts != 1 || m.AttemptOpen || len(e.repo.takeWork()) != 0 {
		t.Fatalf("stale item ran: %d calls, message %+v", e.scripted.callCount(), m)
	}

	// Attempt 2 is claimed (open) when the first item comes once more: it
	// does not resume attempt 2, which belongs to the retry item.
	m := e.message(t, id)
	ev, n, ok := m.StartAttempt(2)
	if !ok || n != 2 {
		t.Fatalf("claim attempt 2: %v %d", ok, n)
	}
	if err := e.repo.SaveMessage(context.Background(), wTenant, m, []domain.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if err := e.dispatch.Handle(ctx, first); err != nil {
		t.Fatal(err)
	}
	if e.scripted.callCount() != 1 {
		t.Fatalf("stale item resumed attempt 2: %d calls", e.scripted.callCount())
	}

	// The retry item resumes its own open attempt and sends.
	e.clock.Set(retry[0].DueAt)
	if err := e.dispatch.Handle(ctx, retry[0].Payload.(app.DispatchPayload)); err != nil {
		t.Fatal(err)
	}
	if m := e.message(t, id); m.Status != domain.StatusSent || m.Attempts != 2 || e.scripted.callCount() != 2 {
		t.Fatalf("after the retry: %+v, %d calls", m, e.scripted.callCount())
	}
}

// timestamp is t as an event's time (nil for nil).
func timestamp(t *time.Time) *domain.Timestamp {
	if t == nil {
		return nil
	}
	return new(domain.At(*t))
}
