// Package ports exposes the webhooks application to the outside: its rpc
// endpoints (commands and queries), its work handlers and its subscriber of
// the message integration events. It only translates; every rule lives in
// app and domain.
package ports

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// Actions checked by the authorizer. Persisted in role definitions.
const (
	ActionCreateSubscription = "webhooks:create-subscription"
	ActionListSubscriptions  = "webhooks:list-subscriptions"
	ActionListDeliveries     = "webhooks:list-deliveries"
)

// Endpoints returns the webhooks commands and queries.
func Endpoints(a *app.Application) []rpc.Endpoint {
	return []rpc.Endpoint{
		rpc.Command("create-subscription", ActionCreateSubscription, a.Commands.CreateSubscription.Handle),
		rpc.Query("list-subscriptions", ActionListSubscriptions, a.Queries.ListSubscriptions.Handle),
		rpc.Query("list-deliveries", ActionListDeliveries, a.Queries.ListDeliveries.Handle),
	}
}

// RegisterWork registers the webhooks work types. Deliver and FanOut are
// idempotent by state (ADR 0017), so their writes commit without a dedupe
// record of the item: an attempt commits on its delivery's version, and a
// run that finds the attempt recorded stages nothing; a delivery has an id
// derived from its subscription and event and is created at version 0, and
// a run that finds it creates none. SubscriptionHealth is not: a failure
// redelivered after a later success would mark the subscription failing
// again, so the dedupe record keeps it to one run.
func RegisterWork(r *work.Registry, a *app.Application) {
	r.RegisterIdempotent(app.WorkDeliver, handler(a.Work.Deliver.Handle))
	r.RegisterIdempotent(app.WorkFanOut, handler(a.Work.ContinueFanOut.Handle))
	r.Register(app.WorkSubscriptionHealth, handler(a.Work.SubscriptionHealth.Handle))
}

// Subscribe subscribes the fan-out to every message event type. The fan-out
// is idempotent by state (derived delivery ids; subscriptions made after the
// event are not targets), as a subscriber of an idempotent PublishType must
// be (ADR 0017).
func Subscribe(s *work.Subscriptions, a *app.Application) {
	for _, t := range domain.EventTypes() {
		s.Subscribe(t, a.FanOut.Handle)
	}
}

// handler adapts a typed work handler: it decodes the payload and runs in
// the item's tenant, continuing the invocation that queued it (same
// invocation and trace ids, acting as the system).
func handler[P any](h func(context.Context, P) error) work.Handler {
	return func(ctx context.Context, it work.Item) error {
		var p P
		if err := json.Unmarshal(it.Payload, &p); err != nil {
			return fmt.Errorf("%s %s: decode payload: %w", it.Type, it.ID, err)
		}
		if it.TenantID == "" {
			return fmt.Errorf("%s %s: no tenant", it.Type, it.ID)
		}
		trigger := invocation.From(ctx).Trigger
		if trigger == "" {
			trigger = work.TriggerWorker
		}
		ctx = invocation.With(ctx, invocation.FromMeta(it.Invocation, trigger, it.TenantID))
		return h(ctx, p)
	}
}
