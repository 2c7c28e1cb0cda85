package app

import (
	"context"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// DeliverHandler runs WorkDeliver: one attempt of a delivery.
type DeliverHandler struct {
	Repo   Repository
	Sender Sender
	Sealer secrets.Sealer
	Clock  clock.Clock
	Retry  domain.RetryPolicy
	Rand   func() float64 // the jitter draw, in [0, 1)
	Logger *slog.Logger
}

// Handle makes attempt p.Attempt of a delivery (when it is still due: a
// redelivered item of an attempt already recorded does nothing, so a
// receiver is not called twice for it), records it, and stages the next
// attempt on the retry schedule with its due time. A delivery whose
// subscription is disabled or gone is abandoned without a call. The outcome
// of the receiver never fails the item: only store and key failures are
// returned (the work path retries them).
func (h DeliverHandler) Handle(ctx context.Context, p DeliverPayload) error {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	d, err := h.Repo.Delivery(ctx, tenantID, p.DeliveryID)
	if errs.KindOf(err) == errs.KindNotFound {
		h.Logger.WarnContext(ctx, "delivery not found; nothing to deliver", slog.String("deliveryId", p.DeliveryID))
		return nil
	}
	if err != nil {
		return fmt.Errorf("deliver %s: %w", p.DeliveryID, err)
	}
	if !d.Due(p.Attempt) {
		h.Logger.DebugContext(ctx, "delivery attempt done already", slog.String("deliveryId", d.ID), slog.Int("attempt", p.Attempt))
		return nil
	}
	sub, err := h.Repo.Subscription(ctx, tenantID, d.SubscriptionID)
	switch {
	case errs.KindOf(err) == errs.KindNotFound:
		return h.abandon(ctx, tenantID, d, domain.AbandonedSubscriptionMissing)
	case err != nil:
		return fmt.Errorf("deliver %s: %w", d.ID, err)
	case sub.Status != domain.Enabled:
		return h.abandon(ctx, tenantID, d, domain.AbandonedSubscriptionDisabled)
	}
	body := []byte(p.Body) // carried by the item (InlineBodyMax), else the event's payload row
	if p.Body == "" {
		if body, err = h.Repo.Payload(ctx, tenantID, d.EventID); err != nil {
			return fmt.Errorf("deliver %s: %w", d.ID, err)
		}
	}
	key, err := h.Sealer.Open(ctx, tenantID, PurposeSubscriptionSecret, sub.SealedSecret)
	if err != nil {
		return fmt.Errorf("deliver %s: open the secret of %s: %w", d.ID, sub.ID, err)
	}
	ic := invocation.From(ctx)
	now := h.Clock.Now()
	res := h.Sender.Send(ctx, Attempt{
		URL: sub.URL, WebhookID: d.EventID, Timestamp: now, Body: body, Secret: key,
		InvocationID: ic.InvocationID, TraceID: ic.TraceID,
	})
	clear(key)
	res.At = now
	attempted, err := d.RecordAttempt(p.Attempt, res, h.Retry, h.Rand())
	if err != nil {
		return fmt.Errorf("deliver %s: %w", d.ID, err)
	}
	c := Changes{TenantID: tenantID, Deliveries: []DeliveryChange{{Before: d, Events: []domain.Event{attempted}}}}
	if attempted.NextAttemptAt != nil {
		c.Work = append(c.Work, Work{Type: WorkDeliver, DueAt: *attempted.NextAttemptAt,
			Payload: DeliverPayload{DeliveryID: d.ID, Attempt: p.Attempt + 1, Body: p.Body}})
	}
	// The subscription is written only when its health changes: its own work
	// item does it, so that concurrent deliveries never conflict here.
	var change []domain.Event
	if attempted.Succeeded {
		change = sub.RecordSuccess(now)
	} else {
		change = sub.RecordFailure(now)
	}
	if len(change) > 0 {
		c.Work = append(c.Work, Work{Type: WorkSubscriptionHealth, DueAt: now,
			Payload: SubscriptionHealthPayload{SubscriptionID: sub.ID, Succeeded: attempted.Succeeded, At: now}})
	}
	if err := h.Repo.Save(ctx, c); err != nil {
		return fmt.Errorf("deliver %s: %w", d.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		attrs := []any{slog.String("deliveryId", d.ID), slog.String("subscriptionId", sub.ID), slog.String("eventId", d.EventID),
			slog.Int("attempt", p.Attempt), slog.Int("statusCode", attempted.StatusCode), slog.Int64("durationMs", attempted.DurationMs)}
		switch {
		case attempted.Succeeded:
			h.Logger.InfoContext(ctx, "webhook delivered", attrs...)
		case attempted.NextAttemptAt != nil:
			h.Logger.InfoContext(ctx, "webhook attempt failed; will retry", append(attrs,
				slog.String("error", attempted.Error), slog.Time("nextAttemptAt", *attempted.NextAttemptAt))...)
		default:
			h.Logger.WarnContext(ctx, "webhook delivery failed after the last attempt", append(attrs, slog.String("error", attempted.Error))...)
		}
	})
	return nil
}

// abandon fails a delivery whose subscription no longer receives deliveries.
func (h DeliverHandler) abandon(ctx context.Context, tenantID string, d *domain.Delivery, reason string) error {
	evs := d.Abandon(reason)
	if len(evs) == 0 {
		return nil
	}
	err := h.Repo.Save(ctx, Changes{TenantID: tenantID, Deliveries: []DeliveryChange{{Before: d, Events: evs}}})
	if err != nil {
		return fmt.Errorf("deliver %s: abandon: %w", d.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.Logger.InfoContext(ctx, "delivery abandoned", slog.String("deliveryId", d.ID),
			slog.String("subscriptionId", d.SubscriptionID), slog.String("reason", reason))
	})
	return nil
}
