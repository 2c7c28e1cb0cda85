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
	TypeAPIKeyRevoked         = "tenancy.api-key-revoked"
	TypeRoleGranted           = "tenancy.role-granted"
	TypeRoleRevoked           = "tenancy.role-revoked"
	TypeRoleCreated           = "tenancy.role-created"
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

// ServiceAccountCreated: a service account was created at a scope (its own
// scope: where it is visible and managed from) with a first role binding: Role
// at ScopeID. Stream "service-account-<serviceAccountId>".
type ServiceAccountCreated struct {
	ServiceAccountID string `json:"serviceAccountId"`
	ScopeID          string `json:"scopeId"`
	Name             string `json:"name"`
	Role             Role   `json:"role"`
}

// APIKeyIssued: an API key was issued to a service account. Only the hex
// SHA-256 of the secret is recorded, never the secret. Name is optional
// (absent in events written before keys had names).
// Stream "service-account-<serviceAccountId>".
type APIKeyIssued struct {
	APIKeyID         string `json:"apiKeyId"`
	ServiceAccountID string `json:"serviceAccountId"`
	SecretHash       string `json:"secretHash"`
	Name             string `json:"name,omitempty"`
}

// APIKeyRevoked: an API key was revoked; it never authenticates again.
// Stream "service-account-<serviceAccountId>".
type APIKeyRevoked struct {
	APIKeyID         string `json:"apiKeyId"`
	ServiceAccountID string `json:"serviceAccountId"`
}

// RoleGranted: a service account was granted Role at ScopeID (valid in that
// scope and every scope below it), in addition to the bindings it holds.
// Stream "service-account-<serviceAccountId>".
type RoleGranted struct {
	ServiceAccountID string `json:"serviceAccountId"`
	Role             Role   `json:"role"`
	ScopeID          string `json:"scopeId"`
}

// RoleRevoked: a service account's binding of Role at ScopeID was removed
// (exactly that binding; others, at other scopes, stay).
// Stream "service-account-<serviceAccountId>".
type RoleRevoked struct {
	ServiceAccountID string `json:"serviceAccountId"`
	Role             Role   `json:"role"`
	ScopeID          string `json:"scopeId"`
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

// EventType implements Event.
func (APIKeyRevoked) EventType() string { return TypeAPIKeyRevoked }

// EventType implements Event.
func (RoleGranted) EventType() string { return TypeRoleGranted }

// EventType implements Event.
func (RoleRevoked) EventType() string { return TypeRoleRevoked }

// RoleCreated: a tenant-defined role was created: a name unique in the
// tenant and actions of the catalogue (sorted, distinct). Bindings name it by
// RoleID. Stream "role-<roleId>".
type RoleCreated struct {
	RoleID  string   `json:"roleId"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// EventType implements Event.
func (RoleCreated) EventType() string { return TypeRoleCreated }
