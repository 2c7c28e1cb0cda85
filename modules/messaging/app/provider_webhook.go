package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// ProviderWebhookHandler runs WorkProviderWebhook: one provider webhook that
// the webhook route verified, parsed and acknowledged. It runs in the work
// Executor's unit of work, in the channel's tenant.
//
//   - A receipt moves the message with that provider message id to
//     delivered or undelivered. A receipt for a provider message id that no
//     message has yet (it overtook the commit of messaging.message-sent, or
//     it is a stray one) waits in that id's lookup row
//     (Repository.SavePendingReceipt) and the item is done: the send's
//     commit applies it, however late; a stray one expires after
//     PendingReceiptTTL. A duplicate, late or out-of-order receipt changes
//     nothing: a message never moves back (of two receipts waiting for one
//     send, the first counts).
//   - An inbound message becomes a new message (messaging.message-received,
//     direction inbound, status received) in the channel's scope. One that
//     was already received (the same provider message id on the channel)
//     changes nothing.
type ProviderWebhookHandler struct {
	Repo   Repository
	Reads  ReadModel
	IDs    ids.Generator
	Clock  clock.Clock
	Logger *slog.Logger // nil: discard
	// Metrics records MessagesDelivered after a delivery receipt's commit;
	// nil: none.
	Metrics Metrics
}

// Handle processes one provider webhook. See ProviderWebhookHandler.
func (h ProviderWebhookHandler) Handle(ctx context.Context, p ProviderWebhookPayload) error {
	tenantID := invocation.From(ctx).TenantID()
	if tenantID == "" {
		return fmt.Errorf("provider webhook %s: no tenant in the invocation", p.WebhookID)
	}
	switch p.Event.Kind {
	case EventReceipt:
		return h.receipt(ctx, tenantID, p)
	case EventInbound:
		return h.inbound(ctx, tenantID, p)
	default:
		h.log().WarnContext(ctx, "provider webhook of an unknown kind; dropped",
			slog.String("webhookId", p.WebhookID), slog.String("kind", p.Event.Kind))
		return nil
	}
}

func (h ProviderWebhookHandler) receipt(ctx context.Context, tenantID string, p ProviderWebhookPayload) error {
	ev := p.Event
	messageID, err := h.Reads.MessageByProviderID(ctx, tenantID, p.ChannelID, ev.ProviderMessageID)
	if errs.KindOf(err) == errs.KindNotFound {
		return h.waitForSend(ctx, tenantID, p)
	}
	if err != nil {
		return fmt.Errorf("receipt %s: provider message %s: %w", p.WebhookID, ev.ProviderMessageID, err)
	}
	m, err := h.Repo.Message(ctx, tenantID, messageID)
	if err != nil {
		return fmt.Errorf("receipt %s: %w", p.WebhookID, err)
	}
	change, ok := m.Receipt(ev.Status, ev.Reason)
	if !ok {
		h.log().DebugContext(ctx, "receipt changes nothing", slog.String("webhookId", p.WebhookID),
			slog.String("messageId", m.ID), slog.String("status", string(m.Status)), slog.String("receipt", string(ev.Status)))
		return nil
	}
	if err := h.Repo.SaveMessage(ctx, tenantID, m, []domain.Event{change}); err != nil {
		return fmt.Errorf("receipt %s: %w", p.WebhookID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log().InfoContext(ctx, "receipt recorded", slog.String("webhookId", p.WebhookID),
			slog.String("messageId", m.ID), slog.String("status", string(ev.Status)))
		if _, delivered := change.(domain.MessageDelivered); delivered {
			countMessage(ctx, h.Metrics, MetricMessagesDelivered, m.ChannelType)
		}
	})
	return nil
}

// waitForSend keeps a receipt whose provider message id no message has yet
// (PendingReceipt). Its write fails if the send's commit recorded the id
// meanwhile: the unit of work then runs the receipt again, which finds the
// message.
func (h ProviderWebhookHandler) waitForSend(ctx context.Context, tenantID string, p ProviderWebhookPayload) error {
	ev := p.Event
	waiting, err := h.Repo.PendingReceipt(ctx, tenantID, p.ChannelID, ev.ProviderMessageID)
	if err != nil {
		return fmt.Errorf("receipt %s: %w", p.WebhookID, err)
	}
	if waiting != nil {
		h.log().InfoContext(ctx, "receipt for a provider message another receipt already waits for; it changes nothing",
			slog.String("webhookId", p.WebhookID), slog.String("waiting", waiting.WebhookID))
		return nil
	}
	err = h.Repo.SavePendingReceipt(ctx, tenantID, p.ChannelID, ev.ProviderMessageID,
		PendingReceipt{Status: ev.Status, Reason: ev.Reason, WebhookID: p.WebhookID, ReceivedAt: h.Clock.Now()})
	if err != nil {
		return fmt.Errorf("receipt %s: %w", p.WebhookID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log().InfoContext(ctx, "receipt waits for its message's send", slog.String("webhookId", p.WebhookID),
			slog.String("channelId", p.ChannelID), slog.String("providerMessageId", ev.ProviderMessageID))
	})
	return nil
}

func (h ProviderWebhookHandler) inbound(ctx context.Context, tenantID string, p ProviderWebhookPayload) error {
	ev := p.Event
	if ev.ProviderMessageID == "" {
		// The provider message id is what makes an inbound message once
		// (its provider-messages row, IfAbsent; ADR 0017): without one a
		// redelivered item would make another message. The routes refuse
		// such webhooks; an item that has none anyway is dropped.
		h.log().WarnContext(ctx, "inbound message without a provider message id; dropped", slog.String("webhookId", p.WebhookID))
		return nil
	}
	_, err := h.Reads.MessageByProviderID(ctx, tenantID, p.ChannelID, ev.ProviderMessageID)
	switch {
	case err == nil:
		h.log().DebugContext(ctx, "inbound message already received", slog.String("webhookId", p.WebhookID),
			slog.String("providerMessageId", ev.ProviderMessageID))
		return nil
	case errs.KindOf(err) != errs.KindNotFound:
		return fmt.Errorf("inbound %s: %w", p.WebhookID, err)
	}
	ch, err := h.Repo.Channel(ctx, tenantID, p.ChannelID)
	if errs.KindOf(err) == errs.KindNotFound {
		h.log().WarnContext(ctx, "inbound message for a channel that does not exist; dropped",
			slog.String("webhookId", p.WebhookID), slog.String("channelId", p.ChannelID))
		return nil
	}
	if err != nil {
		return fmt.Errorf("inbound %s: %w", p.WebhookID, err)
	}
	received := domain.MessageReceived{
		MessageID:         h.IDs.New(ids.Message),
		ChannelID:         ch.ID,
		ScopeID:           ch.ScopeID,
		ScopePath:         ch.ScopePath,
		ChannelType:       ch.Type,
		Provider:          ch.Provider,
		ProviderMessageID: ev.ProviderMessageID,
		To:                ev.To,
		From:              ev.From,
		Content:           domain.Content{Text: ev.Text},
	}
	if err := h.Repo.SaveMessage(ctx, tenantID, nil, []domain.Event{received}); err != nil {
		return fmt.Errorf("inbound %s: %w", p.WebhookID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log().InfoContext(ctx, "inbound message received", slog.String("webhookId", p.WebhookID),
			slog.String("messageId", received.MessageID), slog.String("channelId", ch.ID))
	})
	return nil
}

func (h ProviderWebhookHandler) log() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}
