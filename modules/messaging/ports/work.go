package ports

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
)

// RegisterWork registers the messaging work types: WorkDispatch and
// WorkProviderWebhook. Both are idempotent by the message's state (ADR 0017):
// a dispatch item names its attempt and commits on the message's version (a
// run that finds the attempt done stages nothing); a receipt moves the
// message forward on its version or changes nothing; an inbound message is
// created with its provider-messages row IfAbsent. So their writes commit
// without a dedupe record of the item.
func RegisterWork(r *work.Registry, dispatch app.DispatchHandler, hooks app.ProviderWebhookHandler) {
	r.RegisterIdempotent(app.WorkDispatch, Dispatch(dispatch))
	r.RegisterIdempotent(app.WorkProviderWebhook, ProviderWebhook(hooks))
}

// Dispatch adapts a messaging.dispatch item to the application: it runs in
// the item's tenant, continuing the invocation that queued it (same
// invocation and trace ids, acting as the system).
func Dispatch(h app.DispatchHandler) work.Handler {
	return func(ctx context.Context, it work.Item) error {
		var p app.DispatchPayload
		if err := decodeItem(it, &p); err != nil {
			return err
		}
		if p.MessageID == "" {
			return fmt.Errorf("%s %s: payload without messageId", it.Type, it.ID)
		}
		return h.Handle(inTenant(ctx, it), p)
	}
}

// ProviderWebhook adapts a messaging.provider-webhook item to the application.
func ProviderWebhook(h app.ProviderWebhookHandler) work.Handler {
	return func(ctx context.Context, it work.Item) error {
		var p app.ProviderWebhookPayload
		if err := decodeItem(it, &p); err != nil {
			return err
		}
		if p.ChannelID == "" {
			return fmt.Errorf("%s %s: payload without channelId", it.Type, it.ID)
		}
		return h.Handle(inTenant(ctx, it), p)
	}
}

// decodeItem decodes an item's payload; an item without a tenant is refused
// (every messaging item is a tenant's).
func decodeItem(it work.Item, v any) error {
	if it.TenantID == "" {
		return fmt.Errorf("%s %s: no tenant", it.Type, it.ID)
	}
	if err := json.Unmarshal(it.Payload, v); err != nil {
		return fmt.Errorf("%s %s: decode payload: %w", it.Type, it.ID, err)
	}
	return nil
}

// inTenant continues the item's invocation in its tenant, as the system.
func inTenant(ctx context.Context, it work.Item) context.Context {
	trigger := invocation.From(ctx).Trigger
	if trigger == "" {
		trigger = work.TriggerWorker
	}
	return invocation.With(ctx, invocation.FromMeta(it.Invocation, trigger, it.TenantID))
}
