package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/metrics"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// fakeMetrics records what the handlers record, as "Name{ChannelType}=value".
type fakeMetrics struct {
	mu     sync.Mutex
	values []string
}

var _ app.Metrics = (*fakeMetrics)(nil)

func (f *fakeMetrics) Count(_ context.Context, name string, dims metrics.Dimensions, n int64) {
	f.add(name, dims, fmt.Sprint(n))
}

func (f *fakeMetrics) Duration(_ context.Context, name string, dims metrics.Dimensions, d time.Duration) {
	f.add(name, dims, d.String())
}

func (f *fakeMetrics) add(name string, dims metrics.Dimensions, v string) {
	if len(dims) != 1 {
		v += fmt.Sprintf(" (dimensions %v)", dims)
	}
	f.mu.Lock()
	f.values = append(f.values, name+"{"+dims[app.DimensionChannelType]+"}="+v)
	f.mu.Unlock()
}

// take returns and forgets what was recorded.
func (f *fakeMetrics) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.values
	f.values = nil
	return v
}

func wantMetrics(t *testing.T, f *fakeMetrics, want ...string) {
	t.Helper()
	got := f.take()
	if !slices.Equal(got, want) {
		t.Fatalf("metrics %q, want %q", got, want)
	}
}

func newMetricsEnv(t *testing.T) (*workEnv, *fakeMetrics) {
	t.Helper()
	e := newWorkEnv(t)
	m := &fakeMetrics{}
	e.dispatch.Metrics = m
	e.hooks.Metrics = m
	return e, m
}

// A message the provider accepts counts MessagesSent and its dispatch
// latency: from acceptance to the provider's answer.
func TestDispatchRecordsSentAndLatency(t *testing.T) {
	e, m := newMetricsEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelEmail)
	e.scripted.answers = []scriptedAnswer{{pmid: "p1"}}
	id := e.addMessage(t, wChannel, domain.ChannelEmail, "a@example.com", nil)
	e.clock.Advance(1500 * time.Millisecond)
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, m, "MessagesSent{email}=1", "DispatchLatency{email}=1.5s")
	// A redelivered item changes nothing and records nothing.
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, m)
}

// Transient failures record nothing; the attempt that succeeds records the
// send, with the latency of every attempt.
func TestDispatchRetriesRecordOnlyTheOutcome(t *testing.T) {
	e, m := newMetricsEnv(t)
	e.addChannel(t, wChannel, "sandbox", domain.ChannelSMS)
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100002", nil) // transient twice, then accepted
	e.run(t, id)
	got := m.take()
	if len(got) != 2 || got[0] != "MessagesSent{sms}=1" || !strings.HasPrefix(got[1], "DispatchLatency{sms}=") {
		t.Fatalf("metrics %q, want one MessagesSent and one DispatchLatency", got)
	}
	msg := e.message(t, id)
	if want := "DispatchLatency{sms}=" + e.clock.Now().Sub(msg.CreatedAt).String(); got[1] != want {
		t.Fatalf("latency %q, want %q (acceptance to the last attempt)", got[1], want)
	}
}

// A scheduled message's latency runs from its sendAt, not its acceptance.
func TestDispatchLatencyOfAScheduledMessage(t *testing.T) {
	e, m := newMetricsEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{pmid: "p1"}}
	at := wt0.Add(time.Hour)
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", &at)
	e.clock.Set(at.Add(200 * time.Millisecond))
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, m, "MessagesSent{sms}=1", "DispatchLatency{sms}=200ms")
}

// Refused for good, out of attempts, or no call possible: MessagesFailed.
func TestDispatchRecordsFailures(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		e, m := newMetricsEnv(t)
		e.addChannel(t, wChannel, "sandbox", domain.ChannelEmail)
		e.run(t, e.addMessage(t, wChannel, domain.ChannelEmail, "fail@example.com", nil))
		wantMetrics(t, m, "MessagesFailed{email}=1")
	})
	t.Run("out of attempts", func(t *testing.T) {
		e, m := newMetricsEnv(t)
		e.dispatch.MaxAttempts = 2
		e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
		e.scripted.answers = []scriptedAnswer{{err: &app.SendError{Transient: true, Reason: "x.busy"}}}
		e.run(t, e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil))
		wantMetrics(t, m, "MessagesFailed{sms}=1")
	})
	t.Run("no channel", func(t *testing.T) {
		e, m := newMetricsEnv(t)
		id := e.addMessage(t, "chn_01JQ000000000000000000GONE", domain.ChannelSMS, "+15550100005", nil)
		if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); err != nil {
			t.Fatal(err)
		}
		if s := e.message(t, id).Status; s != domain.StatusFailed {
			t.Fatalf("status %s", s)
		}
		wantMetrics(t, m, "MessagesFailed{sms}=1")
	})
}

// Metrics are recorded after the commit of the unit of work: a unit that
// fails records nothing.
func TestDispatchRecordsOnlyAfterTheCommit(t *testing.T) {
	e, m := newMetricsEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{pmid: "p1"}}
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	runner := e.dispatch.Runner
	boom := errors.New("the unit fails after the handler")
	err := runner.Run(asWorker(wTenant), wTenant, func(ctx context.Context) error {
		if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
			return err
		}
		wantMetrics(t, m) // staged, not committed: nothing yet
		return boom
	}, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("run: %v", err)
	}
	wantMetrics(t, m)

	// The same in a unit that commits: recorded once it did.
	e2, m2 := newMetricsEnv(t)
	e2.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e2.scripted.answers = []scriptedAnswer{{pmid: "p2"}}
	id2 := e2.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	err = e2.dispatch.Runner.Run(asWorker(wTenant), wTenant, func(ctx context.Context) error {
		return e2.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id2})
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, m2, "MessagesSent{sms}=1", "DispatchLatency{sms}=0s")
}

// A delivery receipt counts MessagesDelivered once; an undelivered receipt
// and a duplicate count nothing.
func TestReceiptRecordsDelivered(t *testing.T) {
	e, m := newMetricsEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{pmid: "p1"}, {pmid: "p2"}}
	delivered := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	bounced := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100006", nil)
	for _, id := range []string{delivered, bounced} {
		if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); err != nil {
			t.Fatal(err)
		}
	}
	m.take()
	receipt := func(webhookID, pmid string, status domain.Status) {
		t.Helper()
		err := e.hooks.Handle(asWorker(wTenant), app.ProviderWebhookPayload{ChannelID: wChannel, WebhookID: webhookID,
			Event: app.ProviderEvent{Kind: app.EventReceipt, ProviderMessageID: pmid, Status: status, Reason: "x"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	receipt("w1", "p1", domain.StatusDelivered)
	wantMetrics(t, m, "MessagesDelivered{sms}=1")
	receipt("w2", "p1", domain.StatusDelivered) // duplicate
	receipt("w3", "p2", domain.StatusUndelivered)
	wantMetrics(t, m)
}

// sendReads is a read model with one sms channel, for send-message.
type sendReads struct{ *memRepo }

func (r sendReads) ChannelByID(_ context.Context, _, id string) (app.ChannelView, error) {
	if id != wChannel {
		return app.ChannelView{}, errs.NotFound("channel")
	}
	return app.ChannelView{ChannelID: wChannel, ScopeID: wScope, ScopePath: []string{"scp_root", wScope}, Type: "sms",
		Provider: "sandbox", From: "+15550000000"}, nil
}

// send-message counts MessagesAccepted after its commit, and nothing for a
// message it refuses.
func TestSendMessageRecordsAccepted(t *testing.T) {
	e, m := newMetricsEnv(t)
	h := app.SendMessageHandler{Repo: e.repo, Reads: sendReads{memRepo: e.repo}, IDs: e.ids, Clock: e.clock,
		Logger: slog.New(slog.DiscardHandler), Metrics: m}
	at := wt0.Add(time.Hour).Format(time.RFC3339)
	for _, in := range []app.SendMessageInput{
		{ChannelID: wChannel, To: "+15550100005", Content: domain.Content{Text: "hi"}},
		{ChannelID: wChannel, To: "+15550100005", Content: domain.Content{Text: "later"}, SendAt: &at},
	} {
		if _, err := h.Handle(asWorker(wTenant), in); err != nil {
			t.Fatal(err)
		}
	}
	wantMetrics(t, m, "MessagesAccepted{sms}=1", "MessagesAccepted{sms}=1")
	if _, err := h.Handle(asWorker(wTenant), app.SendMessageInput{ChannelID: wChannel, To: "not a number", Content: domain.Content{Text: "hi"}}); err == nil {
		t.Fatal("a bad recipient was accepted")
	}
	wantMetrics(t, m)
	// Without a recorder nothing is recorded and nothing fails.
	h.Metrics = nil
	if _, err := h.Handle(asWorker(wTenant), app.SendMessageInput{ChannelID: wChannel, To: "+15550100005", Content: domain.Content{Text: "hi"}}); err != nil {
		t.Fatal(err)
	}
}

// The send-message unit of work commits before the value is recorded.
func TestSendMessageRecordsAfterTheCommit(t *testing.T) {
	e, m := newMetricsEnv(t)
	h := app.SendMessageHandler{Repo: e.repo, Reads: sendReads{memRepo: e.repo}, IDs: e.ids, Clock: e.clock,
		Logger: slog.New(slog.DiscardHandler), Metrics: m}
	boom := errors.New("commit failed")
	err := e.dispatch.Runner.Run(asWorker(wTenant), wTenant, func(ctx context.Context) error {
		if _, err := h.Handle(ctx, app.SendMessageInput{ChannelID: wChannel, To: "+15550100005", Content: domain.Content{Text: "hi"}}); err != nil {
			return err
		}
		return boom
	}, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("run: %v", err)
	}
	wantMetrics(t, m)
}
