package domain

import (
	"fmt"
	"time"
)

// Status is a tenant's lifecycle state: provisioning -> active.
type Status string

// Statuses. Persisted in views.
const (
	StatusProvisioning Status = "provisioning"
	StatusActive       Status = "active"
)

// RootScopeName is the name of every tenant's root scope.
const RootScopeName = "root"

// Tenant is the tenancy aggregate root: one per tenant id.
type Tenant struct {
	ID          string
	Name        string
	Tier        Tier
	Status      Status
	RootScopeID string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Version is the version of the last applied event (0: no events).
	Version int64
}

// OnboardTenant checks a new tenant and returns its first event. name is
// trimmed; tier must be pooled or siloed. The ids are made by the caller.
func OnboardTenant(tenantID, rootScopeID, name, tier string) (TenantOnboarded, error) {
	if err := requireID("tenantId", tenantID); err != nil {
		return TenantOnboarded{}, err
	}
	if err := requireID("rootScopeId", rootScopeID); err != nil {
		return TenantOnboarded{}, err
	}
	n, err := NormalizeName("name", name)
	if err != nil {
		return TenantOnboarded{}, err
	}
	t, err := ParseTier(tier)
	if err != nil {
		return TenantOnboarded{}, err
	}
	return TenantOnboarded{TenantID: tenantID, Name: n, Tier: t, RootScopeID: rootScopeID}, nil
}

// ReplayTenant rebuilds a tenant from its stream, oldest first. It returns
// (nil, nil) for an empty history: the tenant does not exist.
func ReplayTenant(history []Recorded) (*Tenant, error) {
	if len(history) == 0 {
		return nil, nil
	}
	t := &Tenant{}
	for _, r := range history {
		if err := t.Apply(r); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Apply moves the tenant forward by one recorded event.
func (t *Tenant) Apply(r Recorded) error {
	switch e := r.Event.(type) {
	case TenantOnboarded:
		if t.Version != 0 {
			return errCorrupt(fmt.Sprintf("tenant %s onboarded at version %d", e.TenantID, r.Version))
		}
		t.ID, t.Name, t.Tier, t.RootScopeID = e.TenantID, e.Name, e.Tier, e.RootScopeID
		t.Status = StatusProvisioning
		t.CreatedAt = r.OccurredAt
	case TenantProvisioned:
		if t.Version == 0 {
			return errCorrupt("tenant provisioned before it was onboarded")
		}
		t.Status = StatusActive // a repeated provisioning changes nothing else
	default:
		return errCorrupt(fmt.Sprintf("event %T in a tenant stream", r.Event))
	}
	t.Version = r.Version
	t.UpdatedAt = r.OccurredAt
	return nil
}

// Provision marks the tenant active. It is idempotent: an active tenant
// returns no events and no error.
func (t *Tenant) Provision() []Event {
	if t.Status == StatusActive {
		return nil
	}
	return []Event{TenantProvisioned{TenantID: t.ID}}
}
