package work

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// IntegrationEvent is an event published between bounded contexts (and to other
// systems) over EventBridge: source "switchboard.<module>", detail-type = Type.
type IntegrationEvent struct {
	// ID is the id subscribers dedupe by: the evt_ id of an event published
	// through the outbox (on the event bus it travels inside the detail,
	// see EventBus), or the EventBridge id of an event the trigger router
	// received from EventBridge.
	ID       string          `json:"id"`
	Source   string          `json:"source"`
	Type     string          `json:"type"` // stable, e.g. "tenancy.tenant-onboarded"
	TenantID string          `json:"tenantId,omitempty"`
	Time     time.Time       `json:"time"`
	Detail   json.RawMessage `json:"detail"`
}

// Subscriber handles one integration event type. Subscribers are idempotent.
type Subscriber func(ctx context.Context, ev IntegrationEvent) error

// EventBus is the port to an event bus outside the process, on which the
// integration events published through the outbox are also put for other
// systems (EventBridge in Lambda mode: package work/ebpublisher). Events
// reach it through BusType work items (ForwardingPublishHandler, BusHandler),
// never from the commit that publishes them.
type EventBus interface {
	// Put puts evs on the bus and answers one result per event, in order
	// (len(results) == len(evs)): nil when the bus took the event. An event
	// with an error may still have been put (a lost answer): delivery is at
	// least once, and consumers dedupe by the event's ID, which the bus
	// carries inside the event.
	Put(ctx context.Context, evs []IntegrationEvent) []error
}

// Subscriptions maps integration event types to subscribers.
type Subscriptions struct {
	mu   sync.RWMutex
	subs map[string][]Subscriber
}

// NewSubscriptions returns an empty table.
func NewSubscriptions() *Subscriptions { return &Subscriptions{subs: map[string][]Subscriber{}} }

// Subscribe adds a subscriber of an event type.
func (s *Subscriptions) Subscribe(eventType string, sub Subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[eventType] = append(s.subs[eventType], sub)
}

// ErrNoSubscriber is returned for an event type nobody subscribed to.
var ErrNoSubscriber = fmt.Errorf("work: no subscriber")

// Deliver runs every subscriber of ev.Type; the first error is returned after all ran.
func (s *Subscriptions) Deliver(ctx context.Context, ev IntegrationEvent) error {
	s.mu.RLock()
	subs := s.subs[ev.Type]
	s.mu.RUnlock()
	if len(subs) == 0 {
		return fmt.Errorf("deliver %q: %w", ev.Type, ErrNoSubscriber)
	}
	var first error
	for _, sub := range subs {
		if err := sub(ctx, ev); err != nil && first == nil {
			first = fmt.Errorf("deliver %q: %w", ev.Type, err)
		}
	}
	return first
}
