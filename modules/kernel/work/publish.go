package work

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// PublishType is the work type of an integration event published through the
// outbox: a context stages it with the events it derives from (one commit),
// and the work path delivers it to the in-process subscribers
// (Subscriptions) at least once. Subscribers are idempotent (they dedupe by
// the event id, or their writes are deduped by the work item's id).
const PublishType = "integration-event"

// Publication builds the outbox entry that publishes ev. workID is a new
// wrk_ id; ev.ID is the id subscribers and receivers dedupe by (for a domain
// event, its evt_ id).
func Publication(workID string, ev IntegrationEvent, now time.Time) (eventstore.OutboxEntry, error) {
	if ev.ID == "" || ev.Type == "" {
		return eventstore.OutboxEntry{}, fmt.Errorf("publish: event without id or type: %w", eventstore.ErrInvalid)
	}
	payload, err := eventstore.MarshalJSON(ev) // not HTML-escaped: content as written
	if err != nil {
		return eventstore.OutboxEntry{}, fmt.Errorf("publish %s %s: %w", ev.Type, ev.ID, err)
	}
	return eventstore.OutboxEntry{ID: workID, TenantID: ev.TenantID, Type: PublishType, Payload: payload, DueAt: now}, nil
}

// PublishHandler returns the work handler of PublishType: it decodes the
// event and delivers it to every subscriber of its type. An event nobody
// subscribed to is done (not an error).
func (s *Subscriptions) PublishHandler() Handler {
	return func(ctx context.Context, it Item) error {
		var ev IntegrationEvent
		if err := json.Unmarshal(it.Payload, &ev); err != nil {
			return fmt.Errorf("%s %s: decode: %w", it.Type, it.ID, err)
		}
		if ev.TenantID == "" {
			ev.TenantID = it.TenantID
		}
		err := s.Deliver(ctx, ev)
		if errors.Is(err, ErrNoSubscriber) {
			return nil
		}
		return err
	}
}
