package domain

import "time"

// Event types. Persisted and published: never rename one (a new shape of an
// event is a new schema version of the same type; a new meaning is a new type).
const (
	TypeTenantOnboarded       = "tenancy.tenant-onboarded"
	TypeTenantProvisioned     = "tenancy.tenant-provisioned"
	TypeScopeCreated          = "tenancy.scope-created"
	TypeServiceAccountCreated = "tenancy.service-account-created"
	TypeAPIKeyIssued          = "tenancy.api-key-issued"
)

// Event is a fact of the tenancy context. The JSON form of each event struct is
// its persisted data (schema version 1).
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

// TenantOnboarded: a tenant was created, with its root scope. Stream "tenant".
type TenantOnboarded struct {
	TenantID    string `json:"tenantId"`
	Name        string `json:"name"`
	Tier        Tier   `json:"tier"`
	RootScopeID string `json:"rootScopeId"`
}

// TenantProvisioned: the tenant's resources are ready; it is active. Stream "tenant".
type TenantProvisioned struct {
	TenantID string `json:"tenantId"`
}

// ScopeCreated: a scope was created under its parent (none for the root).
// Path is the ids from the root down to and including the scope; scopes never
// move, so it is fixed at creation. Stream "scope-<scopeId>".
type ScopeCreated struct {
	ScopeID       string   `json:"scopeId"`
	ParentScopeID string   `json:"parentScopeId,omitempty"` // "" for the root scope
	Name          string   `json:"name"`
	Path          []string `json:"path"`
}

// ServiceAccountCreated: a service account was created with a role at a scope.
// Stream "service-account-<serviceAccountId>".
type ServiceAccountCreated struct {
	ServiceAccountID string `json:"serviceAccountId"`
	ScopeID          string `json:"scopeId"`
	Name             string `json:"name"`
	Role             Role   `json:"role"`
}

// APIKeyIssued: an API key was issued to a service account. Only the hex
// SHA-256 of the secret is recorded, never the secret.
// Stream "service-account-<serviceAccountId>".
type APIKeyIssued struct {
	APIKeyID         string `json:"apiKeyId"`
	ServiceAccountID string `json:"serviceAccountId"`
	SecretHash       string `json:"secretHash"`
}

// EventType implements Event.
func (TenantOnboarded) EventType() string { return TypeTenantOnboarded }

// EventType implements Event.
func (TenantProvisioned) EventType() string { return TypeTenantProvisioned }

// EventType implements Event.
func (ScopeCreated) EventType() string { return TypeScopeCreated }

// EventType implements Event.
func (ServiceAccountCreated) EventType() string { return TypeServiceAccountCreated }

// EventType implements Event.
func (APIKeyIssued) EventType() string { return TypeAPIKeyIssued }
