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
// next attempt on the retry schedule. A try the gate, the pause or
// another's probe refuses is put off (deferral), not recorded as an
// attempt. inline is the body as the next attempt's item carries it (""
// when it is in a payload row).
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
	var refused *refusal             // why no call was made
	var probing *domain.Subscription // sub with this attempt's claim of the probe
	if sub.Admit(now) == domain.Refuse {
		refused = pauseRefusal(sub.Pause)
	} else if res, refused, probing, err = a.send(ctx, tenantID, d, sub, body, now); err != nil {
		return outcome{}, err
	}
	if probing != nil {
		sub = probing
	}
	if refused != nil {
		return a.deferral(d, sub, n, *refused, now, inline)
	}
	res.At, res.EndedAt = now, a.Clock.Now()
	attempted, err := d.RecordAttempt(n, res, a.Retry, a.Rand())
	if err != nil {
		return outcome{}, fmt.Errorf("deliver %s: %w", d.ID, err)
	}
	o := outcome{events: []domain.Event{attempted}}
	if attempted.NextAttemptAt != nil {
		o.work = append(o.work, Work{Type: WorkDeliver, DueAt: *attempted.NextAttemptAt,
			Payload: DeliverPayload{DeliveryID: d.ID, Attempt: n + 1, Deferrals: d.Deferrals, Body: inline}})
	}
	// The subscription is written only when its health or its pause changes:
	// its own work item does it, so that concurrent deliveries never
	// conflict here. A probe's outcome is written at once as well (the item
	// may come after the probe's hold, too late to count).
	health := SubscriptionHealthPayload{SubscriptionID: sub.ID, Succeeded: attempted.Succeeded, At: now}
	if !res.Interrupted {
		health.Call, health.EndedAt = CallAnswered, res.EndedAt
		if res.TimedOut {
			health.Call = CallTimedOut
		}
		if probing != nil {
			a.recordProbe(ctx, tenantID, sub.ID, health)
		}
	}
	o.work = append(o.work, a.healthWork(sub, health)...)
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

// healthWork is the WorkSubscriptionHealth item of an attempt's outcome p,
// when it would change sub: the subscription is written only when its
// health or its pause changes, by its own item, so that concurrent
// deliveries never conflict on it.
func (a attempter) healthWork(sub *domain.Subscription, p SubscriptionHealthPayload) []Work {
	if len(healthChange(sub, p)) == 0 {
		return nil
	}
	return []Work{{Type: WorkSubscriptionHealth, DueAt: p.At, Payload: p}}
}

// refusal is why an attempt was not made: err, as the delivery records it,
// and until, when the endpoint is held back (zero: unknown); probe: only
// while another attempt probes it (its outcome is known by until).
type refusal struct {
	err   string
	until time.Time
	probe bool
}

// pauseRefusal is the refusal of an attempt while p holds its endpoint back.
func pauseRefusal(p *domain.Pause) *refusal {
	return &refusal{err: pausedError(p), until: p.Until, probe: p.Probe}
}

// resumeSpread is how long after a pause's end the tries put off until then
// come due: a tenth of the pause left (1 s at least, 1 min at most), so
// that they do not all come at one instant, and most come once the probe
// made at the pause's end has resumed the endpoint.
func resumeSpread(left time.Duration) time.Duration {
	return min(max(left/10, time.Second), time.Minute)
}

// deferral records the try of attempt n of d that was not made (refused): it
// is put off (domain.Delivery.RecordDeferral), not counted as an attempt,
// to the Schedule's next delay and at least until the refusal's end (to
// that end alone when only another attempt's probe refused it), and
// staged again with the same attempt number. It counts as a failure for
// the endpoint's health, as an attempt that got no answer does.
func (a attempter) deferral(d *domain.Delivery, sub *domain.Subscription, n int, refused refusal, now time.Time, inline string) (outcome, error) {
	r := a.Rand()
	notBefore := refused.until
	if !notBefore.IsZero() {
		notBefore = notBefore.Add(time.Duration(r * float64(resumeSpread(notBefore.Sub(now)))))
	}
	deferred, err := d.RecordDeferral(n, d.Deferrals, domain.AttemptResult{At: now, Error: refused.err},
		domain.Hold{NotBefore: notBefore, Probe: refused.probe}, a.Retry, r)
	if err != nil {
		return outcome{}, fmt.Errorf("deliver %s: %w", d.ID, err)
	}
	o := outcome{events: []domain.Event{deferred}}
	if deferred.NextAttemptAt != nil {
		o.work = append(o.work, Work{Type: WorkDeliver, DueAt: *deferred.NextAttemptAt,
			Payload: DeliverPayload{DeliveryID: d.ID, Attempt: n, Deferrals: deferred.Deferral, Body: inline}})
	}
	o.work = append(o.work, a.healthWork(sub, SubscriptionHealthPayload{SubscriptionID: sub.ID, At: now})...)
	o.log = func(ctx context.Context) {
		attrs := []any{slog.String("deliveryId", d.ID), slog.String("subscriptionId", sub.ID), slog.String("eventId", d.EventID),
			slog.Int("attempt", n), slog.Int("deferral", deferred.Deferral), slog.String("reason", deferred.Error)}
		if deferred.NextAttemptAt != nil {
			a.Logger.InfoContext(ctx, "webhook attempt put off", append(attrs, slog.Time("nextAttemptAt", *deferred.NextAttemptAt))...)
			return
		}
		a.Logger.WarnContext(ctx, "webhook delivery failed: its attempts were put off too many times", attrs...)
	}
	return o, nil
}

// errDisabled is the error of a try not made because its subscription was
// disabled while it claimed the probe (its next try abandons the delivery).
const errDisabled = "not attempted: subscription disabled"

// errProbing is the error of an attempt not made while another attempt
// probes the paused endpoint (its claim is held, or won the race for it).
const errProbing = "not attempted: endpoint paused (another attempt is testing it)"

// pausedError is the error of an attempt not made while p holds its
// endpoint back.
func pausedError(p *domain.Pause) string {
	if p.Probe {
		return errProbing
	}
	return fmt.Sprintf("not attempted: endpoint paused until %s (an attempt got no answer in time)", p.Until.UTC().Format(domain.TimeFormat))
}

// claimProbe commits the claim of the probe of sub's ended pause by the
// attempt started at now, at once and outside the caller's unit of work
// (every process must see it before the call), and returns the subscription
// with it. When another writer moved the subscription first, it reads it
// again (up to probeWrites times): another attempt's claim or a new pause
// refuses this one (refused, with the end of that hold); a resume admits
// it without a probe (the subscription as read, probe false); a write that
// left the pause ended (a health change) lets it claim again.
func (a attempter) claimProbe(ctx context.Context, tenantID string, sub *domain.Subscription, now time.Time) (claimed *domain.Subscription, probe bool, refused *refusal, err error) {
	for range probeWrites {
		claimed, err = a.claim(ctx, tenantID, sub, now)
		if err != nil || claimed != nil {
			return claimed, claimed != nil, nil, err
		}
		id := sub.ID
		if sub, err = a.Repo.Subscription(uow.WithoutUnit(ctx), tenantID, id); err != nil {
			return nil, false, nil, fmt.Errorf("claim the probe of %s: %w", id, err)
		}
		if sub.Status != domain.Enabled {
			// Disabled meanwhile: the next try abandons the delivery.
			return nil, false, &refusal{err: errDisabled}, nil
		}
		switch sub.Admit(now) {
		case domain.Admit:
			return sub, false, nil, nil
		case domain.Refuse:
			return nil, false, pauseRefusal(sub.Pause), nil
		}
	}
	return nil, false, &refusal{err: errProbing, until: now.Add(domain.ProbeHold), probe: true}, nil
}

// claim writes the claim of the probe of sub's ended pause; nil when
// another writer moved the subscription first.
func (a attempter) claim(ctx context.Context, tenantID string, sub *domain.Subscription, now time.Time) (*domain.Subscription, error) {
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

// probeWrites bounds the tries of recordProbe when its write conflicts.
const probeWrites = 3

// recordProbe writes the pause rule's outcome of a probe at once, outside
// the caller's unit of work, on the subscription as it reads now: a
// timed-out probe pauses it again, an answered one resumes it. It does not
// wait for the attempt's health item, which in Lambda mode may run after
// the probe's hold ended and another attempt claimed the next probe (whose
// claim would make this outcome too old to count); nor does it depend on the
// caller's commit (a fan-out re-run would lose it). The health item still
// follows and then finds nothing to change. A failure is logged: the hold
// ends and the next attempt probes again.
func (a attempter) recordProbe(ctx context.Context, tenantID, subscriptionID string, p SubscriptionHealthPayload) {
	ctx = uow.WithoutUnit(ctx)
	for range probeWrites {
		sub, err := a.Repo.Subscription(ctx, tenantID, subscriptionID)
		if err != nil {
			a.Logger.WarnContext(ctx, "probe outcome not recorded", slog.String("subscriptionId", subscriptionID), slog.String("error", err.Error()))
			return
		}
		evs := pauseChange(sub, p)
		if len(evs) == 0 {
			return
		}
		err = a.Repo.Save(ctx, Changes{TenantID: tenantID, Subscriptions: []SubscriptionChange{{Before: sub, Events: evs}}})
		if errs.KindOf(err) == errs.KindConflict {
			continue
		}
		if err != nil {
			a.Logger.WarnContext(ctx, "probe outcome not recorded", slog.String("subscriptionId", subscriptionID), slog.String("error", err.Error()))
			return
		}
		logPause(ctx, a.Logger, subscriptionID, evs)
		return
	}
	a.Logger.WarnContext(ctx, "probe outcome not recorded: the subscription kept changing", slog.String("subscriptionId", subscriptionID))
}

// logPause logs the pause rule's events of a subscription once committed
// (a probe's claim is logged by claimProbe).
func logPause(ctx context.Context, log *slog.Logger, subscriptionID string, evs []domain.Event) {
	for _, ev := range evs {
		switch e := ev.(type) {
		case domain.SubscriptionPaused:
			if !e.Probe {
				log.WarnContext(ctx, "subscription endpoint paused: an attempt got no answer in time", slog.String("subscriptionId", subscriptionID),
					slog.Time("until", e.Until), slog.Int("trips", e.Trips))
			}
		case domain.SubscriptionResumed:
			log.InfoContext(ctx, "subscription endpoint resumed: an attempt got an answer", slog.String("subscriptionId", subscriptionID),
				slog.Time("pausedAt", e.PausedAt), slog.Int("trips", e.Trips))
		}
	}
}

// send makes the call of an attempt, if the gate admits it: body (nil: the
// event's payload row, read only then) signed with the subscription's
// secret. When sub's pause has ended, the attempt first claims the probe
// (after the gate, the body and the key, so that nothing but the call comes
// between the claim and the call) and returns sub with its claim (probing).
// An attempt the gate refuses, or whose claim another attempt won (or a
// pause made meanwhile), makes no call and says why (refused), not an
// error.
func (a attempter) send(ctx context.Context, tenantID string, d *domain.Delivery, sub *domain.Subscription, body []byte, now time.Time) (res domain.AttemptResult, refused *refusal, probing *domain.Subscription, err error) {
	leave, busy := a.Gate.enter(tenantID + "/" + sub.ID)
	if busy != "" {
		return domain.AttemptResult{}, &refusal{err: busy}, nil, nil
	}
	defer leave()
	if body == nil {
		if body, err = a.Repo.Payload(ctx, tenantID, d.EventID); err != nil {
			return domain.AttemptResult{}, nil, nil, fmt.Errorf("deliver %s: %w", d.ID, err)
		}
	}
	key, err := a.Sealer.Open(ctx, tenantID, PurposeSubscriptionSecret, sub.SealedSecret)
	if err != nil {
		return domain.AttemptResult{}, nil, nil, fmt.Errorf("deliver %s: open the secret of %s: %w", d.ID, sub.ID, err)
	}
	defer clear(key)
	if sub.Admit(now) == domain.ClaimProbe {
		var probe bool
		var refused *refusal
		if sub, probe, refused, err = a.claimProbe(ctx, tenantID, sub, now); err != nil {
			return domain.AttemptResult{}, nil, nil, fmt.Errorf("deliver %s: %w", d.ID, err)
		}
		if refused != nil {
			return domain.AttemptResult{}, refused, nil, nil
		}
		if probe {
			probing = sub
		}
	}
	ic := invocation.From(ctx)
	return a.Sender.Send(ctx, Attempt{
		URL: sub.URL, WebhookID: d.EventID, Timestamp: now, Body: body, Secret: key,
		InvocationID: ic.InvocationID, TraceID: ic.TraceID,
	}), nil, probing, nil
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
