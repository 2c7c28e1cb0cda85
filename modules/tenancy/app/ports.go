package app

import (
	"context"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// Change is the new events of one aggregate.
type Change struct {
	// Base is the aggregate's version when it was read (its Version field); 0
	// creates the aggregate. The write fails with ErrConcurrency when the
	// aggregate's stream is no longer at Base.
	Base int64
	// Events are the new events, all of the same aggregate, in order; not empty.
	Events []domain.Event
}

// Work is asynchronous work caused by a write, handed to the work path after
// the write commits (at least once; see package work).
type Work struct {
	Type    string    // stable work type, e.g. WorkProvisionTenant
	Payload any       // JSON-encoded into the outbox entry
	DueAt   time.Time // not run before
}

// Changes is everything one command writes.
type Changes struct {
	TenantID   string // the tenant written to; never empty
	Aggregates []Change
	Work       []Work
}

// ErrConcurrency is returned by Repository.Save (wrapping the store's error)
// when another writer moved a stream first or a uniqueness row already exists.
// Re-read and decide again. Compare with errors.Is.
var ErrConcurrency = errs.Conflict(errs.CodeConcurrency)

// ErrInvalidCursor is returned by list reads for a cursor they did not issue.
var ErrInvalidCursor = errs.Invalid(errs.FieldError{Field: "cursor", Code: CodeInvalidCursor})

// CodeInvalidCursor is the field error code of a bad list cursor.
const CodeInvalidCursor = "errors.validation.cursor"

// Repository loads aggregates from their event streams and saves changes.
type Repository interface {
	// Tenant rebuilds the tenant from its stream, or returns errs.NotFound("tenant").
	Tenant(ctx context.Context, tenantID string) (*domain.Tenant, error)
	// Scope rebuilds a scope of the tenant, or returns errs.NotFound("scope"),
	// also for a scope of another tenant.
	Scope(ctx context.Context, tenantID, scopeID string) (*domain.Scope, error)
	// ServiceAccount rebuilds a service account of the tenant, or returns
	// errs.NotFound("service_account").
	ServiceAccount(ctx context.Context, tenantID, serviceAccountID string) (*domain.ServiceAccount, error)
	// Role rebuilds a tenant role of the tenant, or returns
	// errs.NotFound("role"), also for a role of another tenant.
	Role(ctx context.Context, tenantID, roleID string) (*domain.TenantRole, error)
	// Save writes the changes atomically: the events, the read-model and
	// lookup rows derived from them (uniqueness rows with if-absent semantics),
	// and the work. Inside an rpc unit of work the write is staged and
	// committed by the edge; otherwise it commits at once. Errors:
	// ErrConcurrency (see there), or an internal error.
	Save(ctx context.Context, c Changes) error
}

// ScopeView is one row of the "scopes" read model.
type ScopeView struct {
	ScopeID       string
	ParentScopeID string // "" for the root scope
	Name          string
	Path          []string
	CreatedAt     time.Time
}

// APIKeyView is one row of the "api-key-list" read model, with the key's
// last recorded use. Never a secret or a hash.
type APIKeyView struct {
	APIKeyID         string
	Name             string // "" when the key has none
	ServiceAccountID string
	CreatedAt        time.Time
	RevokedAt        time.Time // zero while active
	LastUsedAt       time.Time // zero when no use was recorded
}

// RoleView is one row of the "roles" read model.
type RoleView struct {
	RoleID    string
	Name      string
	Actions   []string
	CreatedAt time.Time
}

// ReadModel answers queries from read models.
type ReadModel interface {
	// RoleNameTaken reports whether the tenant has a role of name, compared
	// by domain.NameKey.
	RoleNameTaken(ctx context.Context, tenantID, name string) (bool, error)
	// ListRoles returns the tenant's roles, oldest first (eventually
	// consistent: a role created a moment ago may be missing).
	ListRoles(ctx context.Context, tenantID string) ([]RoleView, error)
	// ScopeNameTaken reports whether a child of parentScopeID already has
	// name, compared by domain.NameKey.
	ScopeNameTaken(ctx context.Context, tenantID, parentScopeID, name string) (bool, error)
	// ListScopes returns one page of the tenant's scopes, newest first, and the
	// cursor of the next page ("" for the last). limit is 1..100. A cursor it
	// did not issue is ErrInvalidCursor.
	ListScopes(ctx context.Context, tenantID string, limit int, cursor string) ([]ScopeView, string, error)
	// APIKeyOwner returns the service account of one of the tenant's API
	// keys (strongly consistent), or errs.NotFound("api_key"), also for a
	// key of another tenant.
	APIKeyOwner(ctx context.Context, tenantID, apiKeyID string) (string, error)
	// ListAPIKeys returns one page of the tenant's API keys, or of one
	// service account's when serviceAccountID is not "", newest first, and
	// the cursor of the next page ("" for the last). limit is 1..100. A
	// cursor it did not issue is ErrInvalidCursor.
	ListAPIKeys(ctx context.Context, tenantID, serviceAccountID string, limit int, cursor string) ([]APIKeyView, string, error)
}
