package app

import (
	"context"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// SubscriptionHealthPayload is the payload of WorkSubscriptionHealth: the
// outcome of one attempt.
type SubscriptionHealthPayload struct {
	SubscriptionID string    `json:"subscriptionId"`
	Succeeded      bool      `json:"succeeded"`
	At             time.Time `json:"at"` // the attempt (its start)
	// Call is what became of the attempt's call, for the pause rule:
	// CallAnswered or CallTimedOut; "" when no call was made (the gate or
	// the pause refused it), as in items queued before the rule.
	Call    string    `json:"call,omitempty"`
	EndedAt time.Time `json:"endedAt,omitzero"` // when the call ended
}

// Calls of SubscriptionHealthPayload.Call. Persisted.
const (
	CallAnswered = "answered"
	CallTimedOut = "timed-out"
)

// healthChange is what one attempt's outcome changes of sub: the health
// rule's events, then the pause rule's.
func healthChange(sub *domain.Subscription, p SubscriptionHealthPayload) []domain.Event {
	var evs []domain.Event
	if p.Succeeded {
		evs = sub.RecordSuccess(p.At)
	} else {
		evs = sub.RecordFailure(p.At)
	}
	if disables(evs) {
		return evs
	}
	return append(evs, pauseChange(sub, p)...)
}

// pauseChange applies the pause rule (domain.Subscription.RecordTimeout and
// RecordAnswer) to one attempt's call.
func pauseChange(sub *domain.Subscription, p SubscriptionHealthPayload) []domain.Event {
	switch p.Call {
	case CallAnswered:
		return sub.RecordAnswer(p.At, p.EndedAt)
	case CallTimedOut:
		return sub.RecordTimeout(p.At, p.EndedAt)
	}
	return nil
}

// SubscriptionHealthHandler runs WorkSubscriptionHealth: the endpoint health
// rule (see domain.Subscription.RecordFailure and RecordSuccess) and the
// pause rule (RecordTimeout, RecordAnswer).
type SubscriptionHealthHandler struct {
	Repo Repository
	// Reads, when set, is read before a subscription is disabled: its
	// newest deliveries, for a success since it started failing that never
	// reached this handler (see successSince). Nil: no such check.
	Reads  ReadModel
	Logger *slog.Logger
}

// successCheckPages bounds the pages of deliveries read before disabling.
const successCheckPages = 3

// Handle applies one attempt's outcome to its subscription and writes only
// a change of state (failing, recovered, disabled; paused, resumed). It is idempotent and
// tolerates outcomes out of order (a success older than the failing state
// does not clear it). A version conflict re-runs it (no call is repeated).
func (h SubscriptionHealthHandler) Handle(ctx context.Context, p SubscriptionHealthPayload) error {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return fmt.Errorf("subscription health: %w", err)
	}
	sub, err := h.Repo.Subscription(ctx, tenantID, p.SubscriptionID)
	if errs.KindOf(err) == errs.KindNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("subscription health %s: %w", p.SubscriptionID, err)
	}
	evs := healthChange(sub, p)
	if len(evs) == 0 {
		return nil
	}
	if disables(evs) && h.Reads != nil {
		if evs, err = h.recheck(ctx, tenantID, sub, p.At, evs); err != nil {
			return fmt.Errorf("subscription health %s: %w", sub.ID, err)
		}
		if !disables(evs) {
			evs = append(evs, pauseChange(sub, p)...)
		}
	}
	if err := h.Repo.Save(ctx, Changes{TenantID: tenantID, Subscriptions: []SubscriptionChange{{Before: sub, Events: evs}}}); err != nil {
		return fmt.Errorf("subscription health %s: %w", sub.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		logPause(ctx, h.Logger, sub.ID, evs)
		for _, ev := range evs {
			switch e := ev.(type) {
			case domain.SubscriptionFailing:
				h.Logger.InfoContext(ctx, "subscription endpoint failing", slog.String("subscriptionId", sub.ID), slog.Time("since", e.Since))
			case domain.SubscriptionRecovered:
				h.Logger.InfoContext(ctx, "subscription endpoint recovered", slog.String("subscriptionId", sub.ID), slog.Time("failingSince", e.FailingSince))
			case domain.SubscriptionDisabled:
				h.Logger.WarnContext(ctx, "subscription disabled: its endpoint failed for 5 days", slog.String("subscriptionId", sub.ID),
					slog.Time("failingSince", e.FailingSince))
			}
		}
	})
	return nil
}

// disables reports whether evs disable the subscription.
func disables(evs []domain.Event) bool {
	for _, ev := range evs {
		if _, ok := ev.(domain.SubscriptionDisabled); ok {
			return true
		}
	}
	return false
}

// recheck runs before a disabling (evs, for the failed attempt at at): an
// attempt queues a health item only when the subscription it loaded would
// change state, so a success made while a failure's item was still on its
// way (it loaded the subscription as healthy) never reached this handler,
// and the endpoint would read as failing since before that success. When
// one of the subscription's newest deliveries succeeded since it started
// failing, the endpoint recovered then and fails from at: those events
// replace the disabling.
func (h SubscriptionHealthHandler) recheck(ctx context.Context, tenantID string, sub *domain.Subscription, at time.Time, evs []domain.Event) ([]domain.Event, error) {
	since := *sub.FailingSince
	success, ok, err := h.successSince(ctx, tenantID, sub.ID, since)
	if err != nil || !ok {
		return evs, err
	}
	cp := *sub
	recovered := cp.RecordSuccess(success)
	for i, ev := range recovered {
		if err := cp.Apply(domain.Recorded{Event: ev, Version: cp.Version + int64(i) + 1, OccurredAt: success}); err != nil {
			return nil, err
		}
	}
	h.Logger.InfoContext(ctx, "subscription not disabled: a delivery succeeded since it started failing",
		slog.String("subscriptionId", sub.ID), slog.Time("failingSince", since), slog.Time("succeededAt", success))
	return append(recovered, cp.RecordFailure(at)...), nil
}

// successSince returns the latest time one of the subscription's newest
// deliveries (at most successCheckPages pages) succeeded at or after since.
func (h SubscriptionHealthHandler) successSince(ctx context.Context, tenantID, subscriptionID string, since time.Time) (time.Time, bool, error) {
	var latest time.Time
	found := false
	cursor := ""
	for range successCheckPages {
		page, next, err := h.Reads.ListDeliveries(ctx, tenantID, subscriptionID, 100, cursor)
		if err != nil {
			return time.Time{}, false, err
		}
		for _, d := range page {
			if d.Status == domain.Succeeded && !d.UpdatedAt.Before(since) && (!found || d.UpdatedAt.After(latest)) {
				latest, found = d.UpdatedAt, true
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return latest, found, nil
}
