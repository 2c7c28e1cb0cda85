package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// SchemaVersion is the schema version of every webhooks event written today.
const SchemaVersion = 1

// Stream id prefixes. Persisted.
const (
	subscriptionStreamPrefix       = "subscription-"
	deliveryStreamPrefix           = "delivery-"
	scopeSubscriptionsStreamPrefix = "scope-subscriptions-"
)

// SubscriptionStream is the stream of a subscription.
func SubscriptionStream(subscriptionID string) string {
	return subscriptionStreamPrefix + subscriptionID
}

// DeliveryStream is the stream of a delivery.
func DeliveryStream(deliveryID string) string { return deliveryStreamPrefix + deliveryID }

// ScopeSubscriptionsStream is the stream of a scope's set of enabled
// subscriptions (domain.ScopeSubscriptions).
func ScopeSubscriptionsStream(scopeID string) string { return scopeSubscriptionsStreamPrefix + scopeID }

// streamOf names the stream an event belongs to.
func streamOf(ev domain.Event) (string, error) {
	switch e := ev.(type) {
	case domain.SubscriptionCreated:
		return SubscriptionStream(e.SubscriptionID), nil
	case domain.SubscriptionFailing:
		return SubscriptionStream(e.SubscriptionID), nil
	case domain.SubscriptionRecovered:
		return SubscriptionStream(e.SubscriptionID), nil
	case domain.SubscriptionDisabled:
		return SubscriptionStream(e.SubscriptionID), nil
	case domain.SubscriptionPaused:
		return SubscriptionStream(e.SubscriptionID), nil
	case domain.SubscriptionResumed:
		return SubscriptionStream(e.SubscriptionID), nil
	case domain.DeliveryCreated:
		return DeliveryStream(e.DeliveryID), nil
	case domain.DeliveryAttempted:
		return DeliveryStream(e.DeliveryID), nil
	case domain.DeliveryAbandoned:
		return DeliveryStream(e.DeliveryID), nil
	case domain.DeliveryDeferred:
		return DeliveryStream(e.DeliveryID), nil
	case domain.ScopeSubscriptionAdded:
		return ScopeSubscriptionsStream(e.ScopeID), nil
	case domain.ScopeSubscriptionRemoved:
		return ScopeSubscriptionsStream(e.ScopeID), nil
	case domain.ScopeSubscriptionsStarted:
		return ScopeSubscriptionsStream(e.ScopeID), nil
	}
	return "", fmt.Errorf("stream of %T: unknown event", ev)
}

// codec encodes and decodes the module's events (every type, by a sample).
var codec = eventstore.NewCodec[domain.Event](SchemaVersion,
	domain.SubscriptionCreated{},
	domain.SubscriptionFailing{},
	domain.SubscriptionRecovered{},
	domain.SubscriptionDisabled{},
	domain.SubscriptionPaused{},
	domain.SubscriptionResumed{},
	domain.DeliveryCreated{},
	domain.DeliveryAttempted{},
	domain.DeliveryAbandoned{},
	domain.DeliveryDeferred{},
	domain.ScopeSubscriptionAdded{},
	domain.ScopeSubscriptionRemoved{},
	domain.ScopeSubscriptionsStarted{},
)

// encode wraps a domain event in the store's envelope.
func encode(ctx context.Context, gen ids.Generator, ev domain.Event, now time.Time) (eventstore.Event, error) {
	return codec.Encode(ctx, gen, ev, now)
}

// decode turns a stored event back into a recorded domain event.
func decode(e eventstore.Event) (domain.Recorded, error) {
	ev, err := codec.Decode(e)
	if err != nil {
		return domain.Recorded{}, err
	}
	return domain.Recorded{Event: ev, Version: e.Version, OccurredAt: e.OccurredAt}, nil
}
