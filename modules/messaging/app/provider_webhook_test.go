package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

func receiptFor(pmid string, status domain.Status, reason string) app.ProviderWebhookPayload {
	return app.ProviderWebhookPayload{ChannelID: wChannel, WebhookID: "rcpt_1",
		Event: app.ProviderEvent{Kind: app.EventReceipt, ProviderMessageID: pmid, Status: status, Reason: reason}}
}

// sentViaSandbox makes a message the sandbox accepted (status sent).
func sentViaSandbox(t *testing.T, e *workEnv, to string) *domain.Message {
	t.Helper()
	id := e.addMessage(t, wChannel, domain.ChannelSMS, to, nil)
	if err := e.dispatch.Handle(asWorker(wTenant), app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	m := e.message(t, id)
	if m.Status != domain.StatusSent {
		t.Fatalf("status %s", m.Status)
	}
	return m
}

func TestReceiptDelivered(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "sandbox", domain.ChannelSMS)
	m := sentViaSandbox(t, e, "+15550100005")
	ctx := asWorker(wTenant)
	if err := e.hooks.Handle(ctx, receiptFor(m.ProviderMessageID, domain.StatusDelivered, "")); err != nil {
		t.Fatal(err)
	}
	got := e.message(t, m.ID)
	if got.Status != domain.StatusDelivered || got.StatusReason != "" || got.Attempts != 1 {
		t.Fatalf("message %+v", got)
	}
	// Duplicate and late receipts never move it back, and save nothing.
	saves := e.repo.saveCount()
	for _, r := range []app.ProviderWebhookPayload{
		receiptFor(m.ProviderMessageID, domain.StatusDelivered, ""),
		receiptFor(m.ProviderMessageID, domain.StatusUndelivered, "late"),
	} {
		if err := e.hooks.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if after := e.message(t, m.ID); after.Status != domain.StatusDelivered || e.repo.saveCount() != saves {
		t.Fatalf("after duplicates: %s, %d saves", after.Status, e.repo.saveCount()-saves)
	}
}

func TestReceiptUndeliveredThenDelivered(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "sandbox", domain.ChannelSMS)
	m := sentViaSandbox(t, e, "+15550100004")
	ctx := asWorker(wTenant)
	if err := e.hooks.Handle(ctx, receiptFor(m.ProviderMessageID, domain.StatusUndelivered, "sandbox.carrier_rejected")); err != nil {
		t.Fatal(err)
	}
	// Out of order: a delivered receipt after undelivered changes nothing.
	if err := e.hooks.Handle(ctx, receiptFor(m.ProviderMessageID, domain.StatusDelivered, "")); err != nil {
		t.Fatal(err)
	}
	got := e.message(t, m.ID)
	if got.Status != domain.StatusUndelivered || got.StatusReason != "sandbox.carrier_rejected" {
		t.Fatalf("message %+v", got)
	}
}

// TestReceiptBeforeSent: a receipt that overtakes the commit of "sent"
// waits for it (a pending receipt in the provider id's lookup row) and its
// item is done; the send's commit applies it, however late (review finding:
// it used to be retried with the work path's backoff and parked after about
// two minutes, and a late send left the message "sent" for good).
func TestReceiptBeforeSent(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{pmid: "p-early"}}
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	ctx := asWorker(wTenant)
	if err := e.hooks.Handle(ctx, receiptFor("p-early", domain.StatusUndelivered, "carrier")); err != nil {
		t.Fatalf("early receipt: %v, want it kept", err)
	}
	// A second receipt for the same id while the first waits changes nothing.
	if err := e.hooks.Handle(ctx, receiptFor("p-early", domain.StatusDelivered, "")); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(3 * time.Hour) // the send commits much later
	// As the Executor runs it: in a unit of work that runs again after a
	// conflict. The first run's send conflicts on the waiting receipt; the
	// second applies it.
	runs := 0
	err := (&uow.Runner{}).Run(ctx, wTenant, func(ctx context.Context) error {
		runs++
		return e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id})
	}, nil)
	if err != nil || runs != 2 {
		t.Fatalf("dispatch: %v after %d runs, want 2", err, runs)
	}
	got := e.message(t, id)
	if got.Status != domain.StatusUndelivered || got.StatusReason != "carrier" || got.ProviderMessageID != "p-early" {
		t.Fatalf("message %+v, want the waiting receipt applied with the send", got)
	}
	if last := e.repo.saves[len(e.repo.saves)-1]; len(last) != 2 {
		t.Fatalf("the send's commit %v, want sent and the receipt together", last)
	}
	if p, _ := e.repo.PendingReceipt(ctx, wTenant, wChannel, "p-early"); p != nil {
		t.Fatalf("a receipt still waits: %+v", p)
	}
	// Later receipts find the message and change nothing (it is final).
	if err := e.hooks.Handle(ctx, receiptFor("p-early", domain.StatusDelivered, "")); err != nil {
		t.Fatal(err)
	}
	if got := e.message(t, id); got.Status != domain.StatusUndelivered {
		t.Fatalf("status %s", got.Status)
	}
}

// TestStrayReceiptWaitsWithoutFailing: a receipt no send ever claims is kept
// (and expires) instead of failing its work item until it is parked.
func TestStrayReceiptWaitsWithoutFailing(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "sandbox", domain.ChannelSMS)
	ctx := asWorker(wTenant)
	if err := e.hooks.Handle(ctx, receiptFor("sbx_unknown", domain.StatusDelivered, "")); err != nil {
		t.Fatalf("stray receipt: %v", err)
	}
	p, err := e.repo.PendingReceipt(ctx, wTenant, wChannel, "sbx_unknown")
	if err != nil || p == nil || p.Status != domain.StatusDelivered || p.WebhookID == "" {
		t.Fatalf("pending %+v %v", p, err)
	}
}

// TestReceiptOnFinalMessage: a receipt for a message that failed or was
// canceled (a provider confused) changes nothing.
func TestReceiptOnFinalMessage(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "sandbox", domain.ChannelSMS)
	m := sentViaSandbox(t, e, "+15550100005")
	// Force a final status other than a receipt's.
	_ = e.repo.SaveMessage(context.Background(), wTenant, m, []domain.Event{domain.MessageUndelivered{MessageID: m.ID, Reason: "x"}})
	if err := e.hooks.Handle(asWorker(wTenant), receiptFor(m.ProviderMessageID, domain.StatusDelivered, "")); err != nil {
		t.Fatal(err)
	}
	if got := e.message(t, m.ID); got.Status != domain.StatusUndelivered || got.StatusReason != "x" {
		t.Fatalf("message %+v", got)
	}
}

func TestReceiptStoreErrors(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "sandbox", domain.ChannelSMS)
	m := sentViaSandbox(t, e, "+15550100005")
	e.repo.failSaves = 1
	ctx := asWorker(wTenant)
	if err := e.hooks.Handle(ctx, receiptFor(m.ProviderMessageID, domain.StatusDelivered, "")); !errors.Is(err, errMemStore) {
		t.Fatalf("err = %v", err)
	}
	if err := e.hooks.Handle(ctx, receiptFor(m.ProviderMessageID, domain.StatusDelivered, "")); err != nil {
		t.Fatal(err)
	}
	if err := e.hooks.Handle(context.Background(), receiptFor(m.ProviderMessageID, domain.StatusDelivered, "")); err == nil {
		t.Fatal("no tenant: want an error")
	}
}

func TestInboundMessage(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "sandbox", domain.ChannelSMS)
	ctx := asWorker(wTenant)
	in := app.ProviderWebhookPayload{ChannelID: wChannel, WebhookID: "wh_1", Event: app.ProviderEvent{
		Kind: app.EventInbound, ProviderMessageID: "sbx_in_1", From: "+15550100005", To: "+15550000000", Text: "hello back"}}
	if err := e.hooks.Handle(ctx, in); err != nil {
		t.Fatal(err)
	}
	id, err := e.repo.MessageByProviderID(ctx, wTenant, wChannel, "sbx_in_1")
	if err != nil {
		t.Fatal(err)
	}
	m := e.message(t, id)
	if m.Direction != domain.Inbound || m.Status != domain.StatusReceived || m.ChannelID != wChannel || m.ScopeID != wScope ||
		len(m.ScopePath) != 2 || m.From != "+15550100005" || m.To != "+15550000000" || m.Content.Text != "hello back" ||
		m.ChannelType != domain.ChannelSMS || m.Provider != "sandbox" || m.ProviderMessageID != "sbx_in_1" || m.Version != 1 {
		t.Fatalf("message %+v", m)
	}
	// The same inbound message again (another webhook id) is not a second message.
	saves := e.repo.saveCount()
	in.WebhookID = "wh_2"
	if err := e.hooks.Handle(ctx, in); err != nil {
		t.Fatal(err)
	}
	if e.repo.saveCount() != saves {
		t.Fatal("a repeated inbound message was saved again")
	}
	// Without a provider message id (nothing would make it once): dropped.
	noID := in
	noID.WebhookID, noID.Event.ProviderMessageID = "wh_3", ""
	if err := e.hooks.Handle(ctx, noID); err != nil || e.repo.saveCount() != saves {
		t.Fatalf("inbound without a provider message id: %v, saves %d -> %d", err, saves, e.repo.saveCount())
	}
	// Of a channel that does not exist: dropped.
	in.ChannelID, in.Event.ProviderMessageID = "chn_01JQ0000000000000000000009", "sbx_in_2"
	if err := e.hooks.Handle(ctx, in); err != nil || e.repo.saveCount() != saves {
		t.Fatalf("unknown channel: %v", err)
	}
	// A store failure is retried.
	in.ChannelID = wChannel
	e.repo.failSaves = 1
	if err := e.hooks.Handle(ctx, in); !errors.Is(err, errMemStore) {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownWebhookKind(t *testing.T) {
	e := newWorkEnv(t)
	if err := e.hooks.Handle(asWorker(wTenant), app.ProviderWebhookPayload{ChannelID: wChannel, Event: app.ProviderEvent{Kind: "status"}}); err != nil {
		t.Fatal(err)
	}
}
