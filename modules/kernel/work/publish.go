package work

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// PublishType is the work type of an integration event published through the
// outbox: a context stages it with the events it derives from (one commit),
// and the work path delivers it to the in-process subscribers
// (Subscriptions) at least once, and with ForwardingPublishHandler also to
// the event bus (EventBus, through a BusType item). Subscribers are
// idempotent (they dedupe by the event id, or their writes are deduped by
// the work item's id). Where PublishType is registered with
// Registry.RegisterIdempotent (no forwarding to a bus: ADR 0017), every
// subscriber must be idempotent by the state it writes, as that method
// says: its writes are committed without the item's dedupe record.
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
func (s *Subscriptions) PublishHandler() Handler { return s.publishHandler(nil) }

// ForwardingPublishHandler is PublishHandler that also forwards every event
// to the event bus (Lambda mode with SWITCHBOARD_EVENT_BUS): once the
// subscribers succeeded (or the type has none), it stages a BusType item
// carrying the event (BusItem) in the same unit of work as the subscribers'
// writes. The Executor commits both with the publish item's dedupe record, so
// a publish item that runs again creates neither twice, and the bus put runs
// as a work item of its own (BusHandler): a failing bus is retried and parked
// alone and never runs the subscribers (webhooks) again. ADR 0016.
func (s *Subscriptions) ForwardingPublishHandler(f BusForward) Handler { return s.publishHandler(&f) }

func (s *Subscriptions) publishHandler(fwd *BusForward) Handler {
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
			err = nil
		}
		if err != nil || fwd == nil {
			return err
		}
		return fwd.stage(ctx, it)
	}
}

// BusType is the work type that puts one integration event on the EventBus
// (BusHandler). Its payload is the IntegrationEvent JSON, as PublishType's;
// its tenant and invocation are those of the publish item it comes from.
const BusType = "integration-event.put-on-bus"

// BusForward is what ForwardingPublishHandler needs to stage BusType items.
type BusForward struct {
	// Store commits the item when the handler runs outside a unit of work;
	// under the Executor the item is staged in its unit.
	Store eventstore.Appender
	IDs   ids.Generator
	Clock clock.Clock // nil: system clock
}

// stage writes (stages, under the Executor) the BusType item of the
// publish item it.
func (f *BusForward) stage(ctx context.Context, it Item) error {
	entry := BusItem(f.IDs.New(ids.Work), it, systemClock(f.Clock).Now())
	if err := eventstore.Write(ctx, f.Store, &eventstore.Commit{TenantID: it.TenantID, Outbox: []eventstore.OutboxEntry{entry}}); err != nil {
		return fmt.Errorf("%s %s: forward to the event bus: %w", it.Type, it.ID, err)
	}
	return nil
}

// BusItem builds the BusType outbox entry (id workID, due now) that puts the
// event of the publish item it on the bus: the same payload, tenant and
// invocation.
func BusItem(workID string, it Item, now time.Time) eventstore.OutboxEntry {
	return eventstore.OutboxEntry{ID: workID, TenantID: it.TenantID, Type: BusType, Payload: it.Payload, DueAt: now, Invocation: it.Invocation}
}

// ErrNoBus is wrapped by the error of a BusType item run where no event bus
// is configured: it is retried and parked (an operator replays it once a bus
// is configured), never dropped.
var ErrNoBus = errors.New("work: no event bus configured")

// BusHandler returns the work handler of BusType: it decodes the event and
// puts it on bus; the bus's error for it is the item's error (retried with
// backoff, parked after MaxAttempts). The handler writes nothing, so an item
// delivered twice may put its event twice: consumers dedupe by the event id.
// A nil bus fails every item with ErrNoBus.
func BusHandler(bus EventBus) Handler {
	return func(ctx context.Context, it Item) error {
		var ev IntegrationEvent
		if err := json.Unmarshal(it.Payload, &ev); err != nil {
			return fmt.Errorf("%s %s: decode: %w", it.Type, it.ID, err)
		}
		if ev.TenantID == "" {
			ev.TenantID = it.TenantID
		}
		if bus == nil {
			return fmt.Errorf("%s %s: event %s %q: %w", it.Type, it.ID, ev.ID, ev.Type, ErrNoBus)
		}
		results := bus.Put(ctx, []IntegrationEvent{ev})
		if len(results) != 1 {
			return fmt.Errorf("%s %s: event %s %q: the bus answered %d results for 1 event", it.Type, it.ID, ev.ID, ev.Type, len(results))
		}
		if err := results[0]; err != nil {
			return fmt.Errorf("%s %s: %w", it.Type, it.ID, err)
		}
		return nil
	}
}
