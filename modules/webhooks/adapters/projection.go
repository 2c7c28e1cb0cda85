package adapters

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// Record collections. Persisted.
const (
	CollectionSubscriptions = "webhook-subscriptions"
	CollectionDeliveries    = "webhook-deliveries"
	// CollectionDeliveryKeys held the delivery of a (subscription, event)
	// while delivery ids were random; new deliveries have derived ids and
	// no key row (app.DeliveryID). Read for the deliveries made before.
	CollectionDeliveryKeys = "webhook-delivery-keys"
	CollectionPayloads     = "webhook-payloads"
	// CollectionScopeSubscriptions holds each scope's set of enabled
	// subscriptions (domain.ScopeSubscriptions), the head row of its stream:
	// the fan-out reads it strongly consistent.
	CollectionScopeSubscriptions = "webhook-scope-subscriptions"
)

// Lists. Persisted: changing one is a migration. Sorts are ULID ids, so
// descending order is newest first.
var (
	// SubscriptionsList: every subscription of the tenant (partition "").
	SubscriptionsList = eventstore.List{Name: "webhook-subscriptions", Slot: 1, Shards: 1}
	// SubscriptionsByScopeList: the subscriptions created at a scope (partition: the scope id).
	SubscriptionsByScopeList = eventstore.List{Name: "webhook-subscriptions-by-scope", Slot: 2, Shards: 1}
	// EnabledSubscriptionsList: the enabled subscriptions of a scope, which
	// the fan-out reads (a disabled subscription leaves it).
	EnabledSubscriptionsList = eventstore.List{Name: "webhook-enabled-subscriptions", Slot: 3, Shards: 1}
	// DeliveriesList: a subscription's deliveries (partition: the
	// subscription id), by their event's id (DeliverySort). A subscription at a tenant's root receives every
	// message event of the tenant (3 deliveries per message), so the list is
	// write-sharded: 32 shards take about 9,700 messages/s of one tenant
	// before a shard reaches 1,000 writes/s (ADR 0008). Raised from 16
	// before any table was deployed (no migration); on a table in use a
	// change of Shards is one.
	DeliveriesList = eventstore.List{Name: "webhook-deliveries", Slot: 1, Shards: 32}
)

// SubscriptionRow is a row of "webhook-subscriptions": the subscription
// after its events, with the sealed secret (never shown by a query).
type SubscriptionRow struct {
	SubscriptionID string     `json:"subscriptionId"`
	ScopeID        string     `json:"scopeId"`
	ScopePath      []string   `json:"scopePath"`
	URL            string     `json:"url"`
	EventTypes     []string   `json:"eventTypes"`
	SealedSecret   []byte     `json:"sealedSecret"`
	Status         string     `json:"status"`
	FailingSince   *time.Time `json:"failingSince,omitempty"`
	DisabledAt     *time.Time `json:"disabledAt,omitempty"`
	Pause          *PauseRow  `json:"pause,omitempty"`
	ResumedAt      *time.Time `json:"resumedAt,omitempty"`
	RecoveredAt    *time.Time `json:"recoveredAt,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	Version        int64      `json:"version"` // of its stream, for the next append
}

// PauseRow is a subscription's pause (domain.Pause) in its row.
type PauseRow struct {
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
	Trips int       `json:"trips"`
	Probe bool      `json:"probe,omitempty"`
}

// DeliveryRow is a row of "webhook-deliveries".
type DeliveryRow struct {
	DeliveryID     string     `json:"deliveryId"`
	SubscriptionID string     `json:"subscriptionId"`
	EventID        string     `json:"eventId"`
	EventType      string     `json:"eventType"`
	MessageID      string     `json:"messageId,omitempty"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode int        `json:"lastStatusCode,omitempty"`
	LastError      string     `json:"lastError,omitempty"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	Version        int64      `json:"version"`
}

// ScopeSubscriptionsRow is a row of "webhook-scope-subscriptions": a scope's
// enabled subscriptions, sorted.
type ScopeSubscriptionsRow struct {
	ScopeID         string   `json:"scopeId"`
	SubscriptionIDs []string `json:"subscriptionIds"`
	Version         int64    `json:"version"` // of its stream, for the next append
}

// ProjectScopeSubscriptions returns the row of a scope's set s.
func ProjectScopeSubscriptions(s *domain.ScopeSubscriptions) (eventstore.Record, error) {
	ids := s.SubscriptionIDs
	if ids == nil {
		ids = []string{}
	}
	data, err := json.Marshal(ScopeSubscriptionsRow{ScopeID: s.ScopeID, SubscriptionIDs: ids, Version: s.Version})
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("project scope subscriptions %s: %w", s.ScopeID, err)
	}
	return eventstore.Record{Collection: CollectionScopeSubscriptions, Key: s.ScopeID, Data: data}, nil
}

// DeliveryKeyRow is a row of "webhook-delivery-keys": the delivery of a
// (subscription, event), made before delivery ids were derived.
type DeliveryKeyRow struct {
	DeliveryID string `json:"deliveryId"`
}

// DeliveryKey is the "webhook-delivery-keys" key of a (subscription, event).
func DeliveryKey(subscriptionID, eventID string) string { return subscriptionID + "/" + eventID }

// ProjectSubscription returns the row of a subscription in its state s
// (after its new events), with its list memberships.
func ProjectSubscription(s *domain.Subscription) (eventstore.Record, error) {
	data, err := json.Marshal(SubscriptionRow{
		SubscriptionID: s.ID, ScopeID: s.ScopeID, ScopePath: s.ScopePath, URL: s.URL, EventTypes: s.EventTypes,
		SealedSecret: s.SealedSecret, Status: string(s.Status), FailingSince: s.FailingSince, DisabledAt: s.DisabledAt,
		Pause: pauseRow(s.Pause), ResumedAt: s.ResumedAt, RecoveredAt: s.RecoveredAt, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Version: s.Version,
	})
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("project subscription %s: %w", s.ID, err)
	}
	lists := []eventstore.ListEntry{
		{List: SubscriptionsList, Partition: "", Sort: s.ID},
		{List: SubscriptionsByScopeList, Partition: s.ScopeID, Sort: s.ID},
	}
	if s.Status == domain.Enabled {
		lists = append(lists, eventstore.ListEntry{List: EnabledSubscriptionsList, Partition: s.ScopeID, Sort: s.ID})
	}
	return eventstore.Record{Collection: CollectionSubscriptions, Key: s.ID, Data: data, Lists: lists}, nil
}

// ProjectDelivery returns the row of a delivery in its state d, in
// DeliveriesList. A second delivery of the same event to the same
// subscription has the same derived id (app.DeliveryID): its stream exists,
// and its commit fails with eventstore.ErrConflict.
func ProjectDelivery(d *domain.Delivery) ([]eventstore.Record, error) {
	data, err := json.Marshal(DeliveryRow{
		DeliveryID: d.ID, SubscriptionID: d.SubscriptionID, EventID: d.EventID, EventType: d.EventType, MessageID: d.MessageID,
		Status: string(d.Status), Attempts: d.Attempts, LastStatusCode: d.LastStatusCode, LastError: d.LastError,
		NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, Version: d.Version,
	})
	if err != nil {
		return nil, fmt.Errorf("project delivery %s: %w", d.ID, err)
	}
	out := []eventstore.Record{{
		Collection: CollectionDeliveries, Key: d.ID, Data: data,
		Lists: []eventstore.ListEntry{{List: DeliveriesList, Partition: d.SubscriptionID, Sort: DeliverySort(d)}},
	}}
	return out, nil
}

// DeliverySort is a delivery's position in DeliveriesList: the ULID of its
// event's id when that is an evt_ id, else the ULID of its own id (derived
// from the event's time: app.DeliveryID); bare ULIDs, so both kinds sort by
// time together, newest first. Deliveries used to sort by their own random
// ULID made at the fan-out; derived ids no longer keep the order of events
// made in the same millisecond, and the event's id does. A row written
// before sorts by its whole delivery id ("dlv_..."), above every bare ULID,
// until its next write moves it.
func DeliverySort(d *domain.Delivery) string {
	id := d.ID
	if ids.Valid(ids.Event, d.EventID) {
		id = d.EventID
	}
	_, ulid, _ := strings.Cut(id, "_")
	return ulid
}

// subscriptionFromRow turns a row back into the aggregate (its snapshot).
func subscriptionFromRow(r SubscriptionRow) *domain.Subscription {
	return &domain.Subscription{
		ID: r.SubscriptionID, ScopeID: r.ScopeID, ScopePath: r.ScopePath, URL: r.URL, EventTypes: r.EventTypes,
		SealedSecret: r.SealedSecret, Status: domain.SubscriptionStatus(r.Status), FailingSince: r.FailingSince,
		DisabledAt: r.DisabledAt, Pause: r.Pause.pause(), ResumedAt: r.ResumedAt, RecoveredAt: r.RecoveredAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Version: r.Version,
	}
}

func pauseRow(p *domain.Pause) *PauseRow {
	if p == nil {
		return nil
	}
	return &PauseRow{At: p.At, Until: p.Until, Trips: p.Trips, Probe: p.Probe}
}

func (r *PauseRow) pause() *domain.Pause {
	if r == nil {
		return nil
	}
	return &domain.Pause{At: r.At, Until: r.Until, Trips: r.Trips, Probe: r.Probe}
}
