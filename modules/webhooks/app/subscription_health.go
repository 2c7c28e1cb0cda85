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
	At             time.Time `json:"at"` // the attempt
}

// SubscriptionHealthHandler runs WorkSubscriptionHealth: the endpoint health
// rule (see domain.Subscription.RecordFailure and RecordSuccess).
type SubscriptionHealthHandler struct {
	Repo   Repository
	Logger *slog.Logger
}

// Handle applies one attempt's outcome to its subscription and writes only
// a change of state (failing, recovered, disabled). It is idempotent and
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
	var evs []domain.Event
	if p.Succeeded {
		evs = sub.RecordSuccess(p.At)
	} else {
		evs = sub.RecordFailure(p.At)
	}
	if len(evs) == 0 {
		return nil
	}
	if err := h.Repo.Save(ctx, Changes{TenantID: tenantID, Subscriptions: []SubscriptionChange{{Before: sub, Events: evs}}}); err != nil {
		return fmt.Errorf("subscription health %s: %w", sub.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
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
