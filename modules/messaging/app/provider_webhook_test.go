package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
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

// TestReceiptBeforeSent: a receipt that overtakes the commit of "sent" is an
// error, so the work path retries it; once sent, the retry applies it.
func TestReceiptBeforeSent(t *testing.T) {
	e := newWorkEnv(t)
	e.addChannel(t, wChannel, "scripted", domain.ChannelSMS)
	e.scripted.answers = []scriptedAnswer{{pmid: "p-early"}}
	id := e.addMessage(t, wChannel, domain.ChannelSMS, "+15550100005", nil)
	ctx := asWorker(wTenant)
	err := e.hooks.Handle(ctx, receiptFor("p-early", domain.StatusDelivered, ""))
	if err == nil || errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("err = %v, want a not-found error (retry)", err)
	}
	if err := e.dispatch.Handle(ctx, app.DispatchPayload{MessageID: id}); err != nil {
		t.Fatal(err)
	}
	if err := e.hooks.Handle(ctx, receiptFor("p-early", domain.StatusDelivered, "")); err != nil {
		t.Fatal(err)
	}
	if got := e.message(t, id).Status; got != domain.StatusDelivered {
		t.Fatalf("status %s", got)
	}
	// A receipt of another channel's provider id is not this message's.
	other := receiptFor("p-early", domain.StatusDelivered, "")
	other.ChannelID = "chn_01JQ0000000000000000000009"
	if err := e.hooks.Handle(ctx, other); err == nil {
		t.Fatal("receipt of another channel applied")
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
