package domain

import "time"

// Event types. Persisted: never rename one (a new shape of an event is a new
// schema version of the same type; a new meaning is a new type).
const (
	TypeSubscriptionCreated       = "webhooks.subscription-created"
	TypeSubscriptionFailing       = "webhooks.subscription-failing"
	TypeSubscriptionRecovered     = "webhooks.subscription-recovered"
	TypeSubscriptionDisabled      = "webhooks.subscription-disabled"
	TypeSubscriptionPaused        = "webhooks.subscription-paused"
	TypeSubscriptionResumed       = "webhooks.subscription-resumed"
	TypeDeliveryCreated           = "webhooks.delivery-created"
	TypeDeliveryAttempted         = "webhooks.delivery-attempted"
	TypeDeliveryAbandoned         = "webhooks.delivery-abandoned"
	TypeDeliveryDeferred          = "webhooks.delivery-deferred"
	TypeScopeSubscriptionAdded    = "webhooks.scope-subscription-added"
	TypeScopeSubscriptionRemoved  = "webhooks.scope-subscription-removed"
	TypeScopeSubscriptionsStarted = "webhooks.scope-subscriptions-started"
)

// Event is a fact of the webhooks context. The JSON form of each event struct
// is its persisted data (schema version 1).
type Event interface {
	// EventType is the event's stable type string.
	EventType() string
}

// Recorded is an event as read back from its stream: where it stands in the
// stream and when it happened (the store's envelope, not part of the fact).
type Recorded struct {
	Event      Event
	Version    int64     // 1, 2, 3, ... within the stream
	OccurredAt time.Time // when it was recorded
}

// SubscriptionCreated: create-subscription registered an endpoint of a
// tenant app. SealedSecret is the signing key sealed with the tenant's data
// key (purpose "webhooks.subscription-secret"); the plain secret is never
// recorded. Stream "subscription-<subscriptionId>".
type SubscriptionCreated struct {
	SubscriptionID string   `json:"subscriptionId"`
	ScopeID        string   `json:"scopeId"`
	ScopePath      []string `json:"scopePath"` // root .. scopeId; scopes never move
	URL            string   `json:"url"`
	EventTypes     []string `json:"eventTypes"` // canonical order, or ["*"]
	SealedSecret   []byte   `json:"sealedSecret"`
}

// SubscriptionFailing: a delivery attempt failed while the endpoint was
// healthy; it is failing since Since (the attempt's time) until a success.
// Stream "subscription-<subscriptionId>".
type SubscriptionFailing struct {
	SubscriptionID string    `json:"subscriptionId"`
	Since          time.Time `json:"since"`
}

// SubscriptionRecovered: an attempt succeeded while the endpoint was
// failing; the failing state is cleared. Stream "subscription-<subscriptionId>".
type SubscriptionRecovered struct {
	SubscriptionID string    `json:"subscriptionId"`
	FailingSince   time.Time `json:"failingSince"`
	At             time.Time `json:"at"` // the successful attempt
}

// SubscriptionDisabled: the endpoint failed continuously for DisableAfter
// (no success since FailingSince); no further deliveries are made.
// Stream "subscription-<subscriptionId>".
type SubscriptionDisabled struct {
	SubscriptionID string    `json:"subscriptionId"`
	Reason         string    `json:"reason"` // DisabledEndpointFailing
	FailingSince   time.Time `json:"failingSince"`
	At             time.Time `json:"at"` // the failed attempt that disabled it
}

// SubscriptionPaused: an attempt got no answer within its timeout (Probe
// false), or an attempt claimed the probe of a pause that had ended (Probe
// true): no other attempt is made before Until (the pause rule, pause.go).
// Stream "subscription-<subscriptionId>".
type SubscriptionPaused struct {
	SubscriptionID string    `json:"subscriptionId"`
	At             time.Time `json:"at"`
	Until          time.Time `json:"until"`
	Trips          int       `json:"trips"` // timeouts in a row
	Probe          bool      `json:"probe,omitempty"`
}

// SubscriptionResumed: an attempt made during a pause (its probe) got an
// answer; attempts are made again. Stream "subscription-<subscriptionId>".
type SubscriptionResumed struct {
	SubscriptionID string    `json:"subscriptionId"`
	PausedAt       time.Time `json:"pausedAt"`
	Trips          int       `json:"trips"`
	At             time.Time `json:"at"` // the end of the attempt that got the answer
}

// DeliveryCreated: an integration event matched a subscription; one delivery
// (of at most MaxAttempts attempts) was created. At most one delivery exists
// per (subscription, event). Stream "delivery-<deliveryId>".
type DeliveryCreated struct {
	DeliveryID     string `json:"deliveryId"`
	SubscriptionID string `json:"subscriptionId"`
	EventID        string `json:"eventId"` // the webhook-id
	// WebhookType is the integration event's type, e.g. "message.delivered".
	WebhookType string `json:"eventType"`
	// MessageID is the message the event is about (list-deliveries shows
	// it); "" in deliveries created before it was recorded.
	MessageID string `json:"messageId,omitempty"`
	// FirstAttempt is the first attempt when it was made before the delivery
	// was recorded (the fan-out makes it: FoldFirstAttempt), so that one
	// event records both; nil when the attempt follows as an event of its
	// own (deliveries created before, or abandoned at once).
	FirstAttempt *DeliveryAttempted `json:"firstAttempt,omitempty"`
	// FirstDeferral is the first try when it was put off before the
	// delivery was recorded (FoldFirstAttempt); never with FirstAttempt.
	FirstDeferral *DeliveryDeferred `json:"firstDeferral,omitempty"`
}

// DeliveryAttempted: one POST to the endpoint was made. StatusCode is 0 when
// no response came (Error says why). NextAttemptAt is set when another
// attempt follows; a failed attempt without it failed the delivery.
// Stream "delivery-<deliveryId>".
type DeliveryAttempted struct {
	DeliveryID    string     `json:"deliveryId"`
	Attempt       int        `json:"attempt"` // 1..MaxAttempts
	AttemptedAt   time.Time  `json:"attemptedAt"`
	StatusCode    int        `json:"statusCode,omitempty"`
	Error         string     `json:"error,omitempty"`
	Succeeded     bool       `json:"succeeded"`
	DurationMs    int64      `json:"durationMs"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
}

// DeliveryDeferred: an attempt was not made (its endpoint was paused, being
// probed, or busy: Error says which) and is put off to NextAttemptAt; it is
// not one of the delivery's attempts. Deferral numbers the delivery's
// deferrals (1, 2, ...). Held: it was put off only until another attempt's
// probe of the endpoint ended (Delivery.RecordDeferral): it counts neither
// toward MaxDeferrals nor the Schedule's pace. Without NextAttemptAt the
// delivery failed: it was put off MaxDeferrals times, held tries aside (so
// Deferral may exceed MaxDeferrals). Stream
// "delivery-<deliveryId>".
type DeliveryDeferred struct {
	DeliveryID    string     `json:"deliveryId"`
	Attempt       int        `json:"attempt"` // the attempt not made
	Deferral      int        `json:"deferral"`
	At            time.Time  `json:"at"`
	Error         string     `json:"error"`
	Held          bool       `json:"held,omitempty"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
}

// DeliveryAbandoned: a pending delivery was given up without an attempt
// because its subscription was disabled (or is gone); it is failed.
// Stream "delivery-<deliveryId>".
type DeliveryAbandoned struct {
	DeliveryID string `json:"deliveryId"`
	Reason     string `json:"reason"` // AbandonedSubscriptionDisabled, AbandonedSubscriptionMissing
}

// ScopeSubscriptionAdded: a subscription created at ScopeID joined the
// scope's set of enabled subscriptions (in the commit of its creation).
// Stream "scope-subscriptions-<scopeId>".
type ScopeSubscriptionAdded struct {
	ScopeID        string `json:"scopeId"`
	SubscriptionID string `json:"subscriptionId"`
}

// ScopeSubscriptionRemoved: a subscription left its scope's set (in the
// commit that disabled it). Stream "scope-subscriptions-<scopeId>".
type ScopeSubscriptionRemoved struct {
	ScopeID        string `json:"scopeId"`
	SubscriptionID string `json:"subscriptionId"`
}

// ScopeSubscriptionsStarted: the set of a scope whose subscriptions were
// made before the sets existed starts with those (the enabled ones its list
// held), in one event however many they are. Only the first event of its
// stream. Stream "scope-subscriptions-<scopeId>".
type ScopeSubscriptionsStarted struct {
	ScopeID         string   `json:"scopeId"`
	SubscriptionIDs []string `json:"subscriptionIds"`
}

// EventType implements Event.
func (SubscriptionCreated) EventType() string { return TypeSubscriptionCreated }

// EventType implements Event.
func (SubscriptionFailing) EventType() string { return TypeSubscriptionFailing }

// EventType implements Event.
func (SubscriptionRecovered) EventType() string { return TypeSubscriptionRecovered }

// EventType implements Event.
func (SubscriptionDisabled) EventType() string { return TypeSubscriptionDisabled }

// EventType implements Event.
func (SubscriptionPaused) EventType() string { return TypeSubscriptionPaused }

// EventType implements Event.
func (SubscriptionResumed) EventType() string { return TypeSubscriptionResumed }

// EventType implements Event.
func (DeliveryCreated) EventType() string { return TypeDeliveryCreated }

// EventType implements Event.
func (DeliveryAttempted) EventType() string { return TypeDeliveryAttempted }

// EventType implements Event.
func (DeliveryAbandoned) EventType() string { return TypeDeliveryAbandoned }

// EventType implements Event.
func (DeliveryDeferred) EventType() string { return TypeDeliveryDeferred }

// EventType implements Event.
func (ScopeSubscriptionAdded) EventType() string { return TypeScopeSubscriptionAdded }

// EventType implements Event.
func (ScopeSubscriptionRemoved) EventType() string { return TypeScopeSubscriptionRemoved }

// EventType implements Event.
func (ScopeSubscriptionsStarted) EventType() string { return TypeScopeSubscriptionsStarted }
