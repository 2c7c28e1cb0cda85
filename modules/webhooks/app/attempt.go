package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// attempter makes one attempt of a delivery and says what to record: the
// fan-out makes every first attempt (in the commit that creates the
// delivery: ADR 0008), DeliverHandler every retry.
type attempter struct {
	Repo   Repository
	Sender Sender
	Sealer secrets.Sealer
	Clock  clock.Clock
	Retry  domain.RetryPolicy
	Rand   func() float64 // the jitter draw, in [0, 1)
	Logger *slog.Logger
	// Gate bounds each subscription's attempts in flight (nil: unbounded).
	Gate *EndpointGate
}

// outcome is what one attempt (or its abandonment) records: the delivery's
// events, the work it causes (the next attempt, a subscription health
// change) and what to log once it is committed.
type outcome struct {
	events []domain.Event
	work   []Work
	log    func(ctx context.Context)
}

// attempt makes attempt n (due) of delivery d: it reads the subscription
// (unless sub is it, read by the caller a moment before), abandons the
// delivery when the subscription is gone or disabled (no call),
// else signs and POSTs body (nil: the event's payload row) and records the
// result with the next attempt on the retry schedule. inline is the body as
// the next attempt's item carries it ("" when it is in a payload row).
// Errors are the store's and the key service's: nothing is recorded, and the
// caller's work item is retried (the attempt is then made again, with the
// same webhook-id: receivers dedupe by it).
func (a attempter) attempt(ctx context.Context, tenantID string, d *domain.Delivery, sub *domain.Subscription, n int, body []byte, inline string) (outcome, error) {
	var err error
	if sub == nil || sub.ID != d.SubscriptionID {
		sub, err = a.Repo.Subscription(ctx, tenantID, d.SubscriptionID)
	}
	switch {
	case errs.KindOf(err) == errs.KindNotFound:
		return a.abandon(d, domain.AbandonedSubscriptionMissing), nil
	case err != nil:
		return outcome{}, fmt.Errorf("deliver %s: %w", d.ID, err)
	case sub.Status != domain.Enabled:
		return a.abandon(d, domain.AbandonedSubscriptionDisabled), nil
	}
	now := a.Clock.Now()
	res, err := a.send(ctx, tenantID, d, sub, body, now)
	if err != nil {
		return outcome{}, err
	}
	res.At, res.EndedAt = now, a.Clock.Now()
	attempted, err := d.RecordAttempt(n, res, a.Retry, a.Rand())
	if err != nil {
		return outcome{}, fmt.Errorf("deliver %s: %w", d.ID, err)
	}
	o := outcome{events: []domain.Event{attempted}}
	if attempted.NextAttemptAt != nil {
		o.work = append(o.work, Work{Type: WorkDeliver, DueAt: *attempted.NextAttemptAt,
			Payload: DeliverPayload{DeliveryID: d.ID, Attempt: n + 1, Body: inline}})
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
		o.work = append(o.work, Work{Type: WorkSubscriptionHealth, DueAt: now,
			Payload: SubscriptionHealthPayload{SubscriptionID: sub.ID, Succeeded: attempted.Succeeded, At: now}})
	}
	o.log = func(ctx context.Context) {
		attrs := []any{slog.String("deliveryId", d.ID), slog.String("subscriptionId", sub.ID), slog.String("eventId", d.EventID),
			slog.Int("attempt", n), slog.Int("statusCode", attempted.StatusCode), slog.Int64("durationMs", attempted.DurationMs)}
		if res.Detail != "" {
			attrs = append(attrs, slog.String("detail", res.Detail))
		}
		switch {
		case attempted.Succeeded:
			a.Logger.InfoContext(ctx, "webhook delivered", attrs...)
		case attempted.NextAttemptAt != nil:
			a.Logger.InfoContext(ctx, "webhook attempt failed; will retry", append(attrs,
				slog.String("error", attempted.Error), slog.Time("nextAttemptAt", *attempted.NextAttemptAt))...)
		default:
			a.Logger.WarnContext(ctx, "webhook delivery failed after the last attempt", append(attrs, slog.String("error", attempted.Error))...)
		}
	}
	return o, nil
}

// send makes the call of an attempt, if the gate admits it: body (nil: the
// event's payload row, read only then) signed with the subscription's
// secret. An attempt the gate refuses is a result without a call ("endpoint
// busy"), not an error.
func (a attempter) send(ctx context.Context, tenantID string, d *domain.Delivery, sub *domain.Subscription, body []byte, now time.Time) (domain.AttemptResult, error) {
	leave, busy := a.Gate.enter(tenantID + "/" + sub.ID)
	if busy != "" {
		return domain.AttemptResult{Error: busy}, nil
	}
	defer leave()
	if body == nil {
		var err error
		if body, err = a.Repo.Payload(ctx, tenantID, d.EventID); err != nil {
			return domain.AttemptResult{}, fmt.Errorf("deliver %s: %w", d.ID, err)
		}
	}
	key, err := a.Sealer.Open(ctx, tenantID, PurposeSubscriptionSecret, sub.SealedSecret)
	if err != nil {
		return domain.AttemptResult{}, fmt.Errorf("deliver %s: open the secret of %s: %w", d.ID, sub.ID, err)
	}
	defer clear(key)
	ic := invocation.From(ctx)
	return a.Sender.Send(ctx, Attempt{
		URL: sub.URL, WebhookID: d.EventID, Timestamp: now, Body: body, Secret: key,
		InvocationID: ic.InvocationID, TraceID: ic.TraceID,
	}), nil
}

// abandon fails a pending delivery whose subscription no longer receives
// deliveries (nothing for a finished one).
func (a attempter) abandon(d *domain.Delivery, reason string) outcome {
	evs := d.Abandon(reason)
	if len(evs) == 0 {
		return outcome{}
	}
	return outcome{events: evs, log: func(ctx context.Context) {
		a.Logger.InfoContext(ctx, "delivery abandoned", slog.String("deliveryId", d.ID),
			slog.String("subscriptionId", d.SubscriptionID), slog.String("reason", reason))
	}}
}
