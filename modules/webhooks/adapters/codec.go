package adapters

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// SchemaVersion is the schema version of every webhooks event written today.
const SchemaVersion = 1

// Stream id prefixes. Persisted.
const (
	subscriptionStreamPrefix = "subscription-"
	deliveryStreamPrefix     = "delivery-"
)

// SubscriptionStream is the stream of a subscription.
func SubscriptionStream(subscriptionID string) string {
	return subscriptionStreamPrefix + subscriptionID
}

// DeliveryStream is the stream of a delivery.
func DeliveryStream(deliveryID string) string { return deliveryStreamPrefix + deliveryID }

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
	case domain.DeliveryCreated:
		return DeliveryStream(e.DeliveryID), nil
	case domain.DeliveryAttempted:
		return DeliveryStream(e.DeliveryID), nil
	case domain.DeliveryAbandoned:
		return DeliveryStream(e.DeliveryID), nil
	}
	return "", fmt.Errorf("stream of %T: unknown event", ev)
}

// encode wraps a domain event in the store's envelope.
func encode(ctx context.Context, gen ids.Generator, ev domain.Event, now time.Time) (eventstore.Event, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
	}
	return eventstore.Event{
		ID:            gen.New(ids.Event),
		Type:          ev.EventType(),
		SchemaVersion: SchemaVersion,
		OccurredAt:    now,
		Invocation:    invocation.From(ctx).Meta(),
		Data:          data,
	}, nil
}

// decode turns a stored event back into a domain event. Unknown types and
// schema versions are errors: a reader older than the writer must not guess.
func decode(e eventstore.Event) (domain.Recorded, error) {
	if e.SchemaVersion != SchemaVersion {
		return domain.Recorded{}, fmt.Errorf("decode %s %s: unknown schema version %d", e.StreamID, e.Type, e.SchemaVersion)
	}
	var ev domain.Event
	var err error
	switch e.Type {
	case domain.TypeSubscriptionCreated:
		ev, err = unmarshal[domain.SubscriptionCreated](e.Data)
	case domain.TypeSubscriptionFailing:
		ev, err = unmarshal[domain.SubscriptionFailing](e.Data)
	case domain.TypeSubscriptionRecovered:
		ev, err = unmarshal[domain.SubscriptionRecovered](e.Data)
	case domain.TypeSubscriptionDisabled:
		ev, err = unmarshal[domain.SubscriptionDisabled](e.Data)
	case domain.TypeDeliveryCreated:
		ev, err = unmarshal[domain.DeliveryCreated](e.Data)
	case domain.TypeDeliveryAttempted:
		ev, err = unmarshal[domain.DeliveryAttempted](e.Data)
	case domain.TypeDeliveryAbandoned:
		ev, err = unmarshal[domain.DeliveryAbandoned](e.Data)
	default:
		return domain.Recorded{}, fmt.Errorf("decode %s v%d: unknown type %q", e.StreamID, e.Version, e.Type)
	}
	if err != nil {
		return domain.Recorded{}, fmt.Errorf("decode %s v%d %s: %w", e.StreamID, e.Version, e.Type, err)
	}
	return domain.Recorded{Event: ev, Version: e.Version, OccurredAt: e.OccurredAt}, nil
}

func unmarshal[T domain.Event](data []byte) (domain.Event, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}
