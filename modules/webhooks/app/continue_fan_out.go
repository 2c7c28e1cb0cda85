package app

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// ContinueFanOutHandler runs WorkFanOut: the deliveries of an event beyond
// the first MaxDeliveriesPerCommit, in batches of that size.
type ContinueFanOutHandler struct {
	attempter
}

// Handle creates the next batch of deliveries of p (idempotent as the
// subscriber is). Disabled subscriptions are not skipped here: their
// deliveries are abandoned at their attempt. Errors are the store's, or an
// internal error for a payload that names no event.
func (h ContinueFanOutHandler) Handle(ctx context.Context, p FanOutPayload) error {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return fmt.Errorf("continue fan-out: %w", err)
	}
	if p.EventID == "" || !domain.KnownEventType(p.EventType) {
		return fmt.Errorf("continue fan-out: event %q of type %q", p.EventID, p.EventType)
	}
	if len(p.SubscriptionIDs) == 0 {
		return nil
	}
	var body []byte // nil: the first batch stored it in a payload row
	if p.Body != "" {
		body = []byte(p.Body)
	}
	return deliveryMaker{h.attempter}.Make(ctx, tenantID, p.EventID, p.EventType, p.MessageID, p.EventTime, body, p.SubscriptionIDs, nil)
}
