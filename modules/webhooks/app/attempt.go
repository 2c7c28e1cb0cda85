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
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
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
// delivery when the subscription is gone or disabled (no call), applies the
// pause rule (domain.Subscription.Admit: no call while the endpoint is
// paused; the probe claimed first when its pause has ended), else signs and
// POSTs body (nil: the event's payload row) and records the result with the
// next attempt on the retry schedule. inline is the body as the next
// attempt's item carries it ("" when it is in a payload row).
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
	var res domain.AttemptResult
	called := false
	switch sub.Admit(now) {
	case domain.Refuse:
		res.Error = pausedError(sub.Pause)
	case domain.ClaimProbe:
		probing, err := a.claimProbe(ctx, tenantID, sub, now)
		if err != nil {
			return outcome{}, fmt.Errorf("deliver %s: %w", d.ID, err)
		}
		if probing == nil {
			res.Error = "not attempted: endpoint paused (another attempt is testing it)"
			break
		}
		sub = probing
		fallthrough
	default:
		if res, called, err = a.send(ctx, tenantID, d, sub, body, now); err != nil {
			return outcome{}, err
		}
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
	// The subscription is written only when its health or its pause changes:
	// its own work item does it, so that concurrent deliveries never
	// conflict here.
	health := SubscriptionHealthPayload{SubscriptionID: sub.ID, Succeeded: attempted.Succeeded, At: now}
	if called {
		health.Call, health.EndedAt = CallAnswered, res.EndedAt
		if res.TimedOut {
			health.Call = CallTimedOut
		}
	}
	if change := healthChange(sub, health); len(change) > 0 {
		o.work = append(o.work, Work{Type: WorkSubscriptionHealth, DueAt: now, Payload: health})
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

// pausedError is the error of an attempt not made while p holds its
// endpoint back.
func pausedError(p *domain.Pause) string {
	if p.Probe {
		return "not attempted: endpoint paused (another attempt is testing it)"
	}
	return fmt.Sprintf("not attempted: endpoint paused until %s (an attempt got no answer in time)", p.Until.UTC().Format(time.RFC3339))
}

// claimProbe commits the claim of the probe of sub's ended pause at now, at
// once and outside the caller's unit of work (every process must see it
// before the call), and returns the subscription with it; nil when another
// writer moved the subscription first (another attempt claimed the probe).
func (a attempter) claimProbe(ctx context.Context, tenantID string, sub *domain.Subscription, now time.Time) (*domain.Subscription, error) {
	evs := sub.ClaimProbe(now)
	err := a.Repo.Save(uow.WithoutUnit(ctx), Changes{TenantID: tenantID, Subscriptions: []SubscriptionChange{{Before: sub, Events: evs}}})
	if errs.KindOf(err) == errs.KindConflict {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim the probe of %s: %w", sub.ID, err)
	}
	cp := *sub
	for i, ev := range evs {
		if err := cp.Apply(domain.Recorded{Event: ev, Version: sub.Version + int64(i) + 1, OccurredAt: now}); err != nil {
			return nil, fmt.Errorf("claim the probe of %s: %w", sub.ID, err)
		}
	}
	a.Logger.InfoContext(ctx, "paused subscription endpoint probed", slog.String("subscriptionId", sub.ID), slog.Int("trips", cp.Pause.Trips))
	return &cp, nil
}

// send makes the call of an attempt, if the gate admits it: body (nil: the
// event's payload row, read only then) signed with the subscription's
// secret. An attempt the gate refuses is a result without a call ("endpoint
// busy", called false), not an error.
func (a attempter) send(ctx context.Context, tenantID string, d *domain.Delivery, sub *domain.Subscription, body []byte, now time.Time) (res domain.AttemptResult, called bool, err error) {
	leave, busy := a.Gate.enter(tenantID + "/" + sub.ID)
	if busy != "" {
		return domain.AttemptResult{Error: busy}, false, nil
	}
	defer leave()
	if body == nil {
		if body, err = a.Repo.Payload(ctx, tenantID, d.EventID); err != nil {
			return domain.AttemptResult{}, false, fmt.Errorf("deliver %s: %w", d.ID, err)
		}
	}
	key, err := a.Sealer.Open(ctx, tenantID, PurposeSubscriptionSecret, sub.SealedSecret)
	if err != nil {
		return domain.AttemptResult{}, false, fmt.Errorf("deliver %s: open the secret of %s: %w", d.ID, sub.ID, err)
	}
	defer clear(key)
	ic := invocation.From(ctx)
	return a.Sender.Send(ctx, Attempt{
		URL: sub.URL, WebhookID: d.EventID, Timestamp: now, Body: body, Secret: key,
		InvocationID: ic.InvocationID, TraceID: ic.TraceID,
	}), true, nil
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
