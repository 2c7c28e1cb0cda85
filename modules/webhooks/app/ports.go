package app

import (
	"context"
	"net/url"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// PurposeSubscriptionSecret is the purpose of the encryption port
// (secrets.Sealer) for subscription signing keys: bound into each ciphertext,
// so a sealed key opens for nothing else. Persisted.
const PurposeSubscriptionSecret = "webhooks.subscription-secret"

// Work types of the webhooks context. Persisted.
const (
	// WorkDeliver makes one attempt of a delivery: payload DeliverPayload.
	WorkDeliver = "webhooks.deliver"
	// WorkFanOut continues the fan-out of one event to more subscriptions:
	// payload FanOutPayload.
	WorkFanOut = "webhooks.fan-out"
	// WorkSubscriptionHealth applies one attempt's outcome to its
	// subscription's health: payload SubscriptionHealthPayload.
	WorkSubscriptionHealth = "webhooks.subscription-health"
)

// Scopes is tenancy's small exported interface: where a scope sits.
type Scopes interface {
	// ScopePath returns root..scopeID, or errs.NotFound("scope") (also for
	// a scope of another tenant).
	ScopePath(ctx context.Context, tenantID, scopeID string) ([]string, error)
	// RootScopeID returns the tenant's root scope, or errs.NotFound("tenant").
	RootScopeID(ctx context.Context, tenantID string) (string, error)
}

// Targets decides whether a subscription URL may be called at all, before it
// is accepted.
type Targets interface {
	// Check resolves u's host and returns domain.ErrTargetForbidden (400 on
	// "url") when the host is, or resolves to, an address subscriber
	// webhooks may not reach. A host that does not resolve now is accepted:
	// every delivery checks the address it connects to.
	Check(ctx context.Context, u *url.URL) error
}

// Attempt is one POST of a delivery.
type Attempt struct {
	URL       string
	WebhookID string    // the event id: the same on every attempt
	Timestamp time.Time // this attempt (webhook-timestamp)
	Body      []byte
	Secret    []byte // the opened signing key (the decoded whsec_ secret)
	// Correlation of the invocation that caused the event.
	InvocationID string
	TraceID      string
}

// Sender makes attempts: signs them (Standard Webhooks) and POSTs them. The
// fan-out calls it from several goroutines at once (one per delivery).
type Sender interface {
	// Send returns the attempt's result: a status code (0 when no response
	// came) and, when it is not a 2xx, a short error. It never fails
	// otherwise; the result's At is the attempt's Timestamp.
	Send(ctx context.Context, a Attempt) domain.AttemptResult
}

// Work is asynchronous work caused by a write, committed with it.
type Work struct {
	Type    string
	Payload any
	DueAt   time.Time
}

// SubscriptionChange is the new events of one subscription. Before is the
// subscription as read (nil for a new one): its Version is the stream's
// expected version, and the repository derives the rows from it and the
// events.
type SubscriptionChange struct {
	Before *domain.Subscription
	Events []domain.Event
}

// DeliveryChange is the new events of one delivery (Before nil for a new one).
type DeliveryChange struct {
	Before *domain.Delivery
	Events []domain.Event
}

// Payload is the body of every attempt of one event's deliveries, stored
// once per event.
type Payload struct {
	EventID string
	Body    []byte
}

// Changes is everything one handler writes, in one commit.
type Changes struct {
	TenantID      string // never empty
	Subscriptions []SubscriptionChange
	Deliveries    []DeliveryChange
	Payloads      []Payload
	Work          []Work
}

// ErrConcurrency is returned by Repository.Save (wrapping the store's error)
// when another writer moved a stream first or a delivery of the same
// (subscription, event) exists. The unit of work re-runs the handler.
var ErrConcurrency = errs.Conflict(errs.CodeConcurrency)

// ErrInvalidCursor is returned by list reads for a cursor they did not issue.
var ErrInvalidCursor = errs.Invalid(errs.FieldError{Field: "cursor", Code: CodeInvalidCursor})

// CodeInvalidCursor is the field error code of a bad list cursor.
const CodeInvalidCursor = "errors.validation.cursor"

// Repository loads aggregates and saves changes with the rows, work and
// integration events derived from them.
type Repository interface {
	// Subscription returns a subscription of the tenant, or
	// errs.NotFound("subscription") (also for another tenant's).
	Subscription(ctx context.Context, tenantID, subscriptionID string) (*domain.Subscription, error)
	// EnabledSubscriptions returns every enabled subscription created at
	// scopeID, each as Subscription loads it (the same rows, read strongly
	// consistent): the fan-out attempts with them and reads none of them
	// again. A subscription whose creation committed before the call is in
	// the answer (the scope's set is read strongly consistent, not through a
	// lagging index); Save keeps that set with every creation and
	// disabling.
	EnabledSubscriptions(ctx context.Context, tenantID, scopeID string) ([]*domain.Subscription, error)
	// Delivery rebuilds a delivery of the tenant from its stream, or
	// errs.NotFound("delivery").
	Delivery(ctx context.Context, tenantID, deliveryID string) (*domain.Delivery, error)
	// DeliveryExists reports whether the subscription has a delivery of the
	// event: the delivery deliveryID (its derived id, DeliveryID), or one
	// made before delivery ids were derived (found by its key row).
	DeliveryExists(ctx context.Context, tenantID, subscriptionID, eventID, deliveryID string) (bool, error)
	// Payload returns the body stored for an event, or errs.NotFound("payload").
	Payload(ctx context.Context, tenantID, eventID string) ([]byte, error)
	// Save writes the changes atomically: the events; the read-model rows
	// derived from them (a delivery's (subscription, event) key row if
	// absent); the payloads; the work; and an integration event
	// "webhooks.subscription-disabled" when a subscription is disabled.
	// Inside a unit of work the write is staged, else committed at once.
	// Errors: ErrConcurrency, internal.
	Save(ctx context.Context, c Changes) error
}

// SubscriptionView is a subscription as lists show it (never its secret).
type SubscriptionView struct {
	SubscriptionID string
	ScopeID        string
	ScopePath      []string
	URL            string
	EventTypes     []string
	Status         domain.SubscriptionStatus
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// DeliveryView is a delivery as lists show it.
type DeliveryView struct {
	DeliveryID     string
	SubscriptionID string
	EventID        string
	EventType      string
	MessageID      string // "" for deliveries made before it was recorded
	Status         domain.DeliveryStatus
	Attempts       int
	LastStatusCode int
	LastError      string
	NextAttemptAt  *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ReadModel answers queries from the read models, with keyed list queries only.
type ReadModel interface {
	// ListSubscriptions pages the tenant's subscriptions (those created at
	// scopeID when it is set), newest first. A cursor it did not issue is
	// ErrInvalidCursor.
	ListSubscriptions(ctx context.Context, tenantID, scopeID string, limit int, cursor string) ([]SubscriptionView, string, error)
	// ListDeliveries pages a subscription's deliveries, newest first.
	ListDeliveries(ctx context.Context, tenantID, subscriptionID string, limit int, cursor string) ([]DeliveryView, string, error)
}
