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
	ID       string          `json:"id"` // the EventBridge event id (or evt_ id locally)
	Source   string          `json:"source"`
	Type     string          `json:"type"` // stable, e.g. "tenancy.tenant-onboarded"
	TenantID string          `json:"tenantId,omitempty"`
	Time     time.Time       `json:"time"`
	Detail   json.RawMessage `json:"detail"`
}

// Subscriber handles one integration event type. Subscribers are idempotent.
type Subscriber func(ctx context.Context, ev IntegrationEvent) error

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
