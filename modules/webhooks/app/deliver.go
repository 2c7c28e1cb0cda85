package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// DeliverHandler runs WorkDeliver: one retry of a delivery (attempt 2 and
// later, or a try put off; the fan-out makes the first attempt when it
// creates the delivery).
type DeliverHandler struct {
	attempter
}

// Handle makes attempt p.Attempt of a delivery (when it is still due,
// after p.Deferrals tries put off: a redelivered item of a try already
// recorded does nothing, so a receiver is not called twice for it), records
// it, and stages the next attempt on the retry schedule with its due time;
// a try the gate or the pause refuses is put off and staged again. A delivery whose
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
	if !d.Next(p.Attempt, p.Deferrals) {
		h.Logger.DebugContext(ctx, "delivery attempt done already", slog.String("deliveryId", d.ID), slog.Int("attempt", p.Attempt),
			slog.Int("deferrals", p.Deferrals))
		return nil
	}
	var body []byte // carried by the item (InlineBodyMax), else the event's payload row
	if p.Body != "" {
		body = []byte(p.Body)
	}
	o, err := h.attempt(ctx, tenantID, d, nil, p.Attempt, body, p.Body)
	if err != nil {
		return err
	}
	if len(o.events) == 0 {
		return nil
	}
	if err := h.Repo.Save(ctx, Changes{TenantID: tenantID, Deliveries: []DeliveryChange{{Before: d, Events: o.events}}, Work: o.work}); err != nil {
		return fmt.Errorf("deliver %s: %w", d.ID, err)
	}
	uow.OnCommit(ctx, o.log)
	return nil
}
