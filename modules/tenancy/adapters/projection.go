package adapters

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// Record collections. Persisted.
const (
	CollectionScopes          = "scopes"
	CollectionScopeNames      = "scope-names"
	CollectionServiceAccounts = "service-accounts"
	CollectionAPIKeys         = "api-keys" // global
)

// ScopesList is the list of a tenant's scopes (one partition, "", sorted by
// scope id: newest last). Persisted: changing it is a migration.
var ScopesList = eventstore.List{Name: "scopes", Slot: 1, Shards: 1}

// ScopeRow is a row of the "scopes" read model.
type ScopeRow struct {
	ScopeID       string    `json:"scopeId"`
	ParentScopeID string    `json:"parentScopeId,omitempty"`
	Name          string    `json:"name"`
	Path          []string  `json:"path"`
	CreatedAt     time.Time `json:"createdAt"`
}

// ScopeNameRow is a row of "scope-names": the scope holding a sibling name.
type ScopeNameRow struct {
	ScopeID string `json:"scopeId"`
}

// ServiceAccountRow is a row of the "service-accounts" read model.
type ServiceAccountRow struct {
	ServiceAccountID string    `json:"serviceAccountId"`
	ScopeID          string    `json:"scopeId"`
	Name             string    `json:"name"`
	Role             string    `json:"role"`
	APIKeyIDs        []string  `json:"apiKeyIds"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

// ScopeNameKey is the "scope-names" key of a name under a parent.
func ScopeNameKey(parentScopeID, name string) string {
	return parentScopeID + "/" + domain.NameKey(name)
}

// ProjectScopeCreated returns the rows a new scope writes: its "scopes" row
// (in ScopesList) and, below the root, its sibling-name row (if absent: a
// taken name fails the commit with eventstore.ErrConflict).
func ProjectScopeCreated(e domain.ScopeCreated, at time.Time) ([]eventstore.Record, error) {
	row, err := json.Marshal(ScopeRow{ScopeID: e.ScopeID, ParentScopeID: e.ParentScopeID, Name: e.Name, Path: e.Path, CreatedAt: at})
	if err != nil {
		return nil, fmt.Errorf("project scope %s: %w", e.ScopeID, err)
	}
	out := []eventstore.Record{{
		Collection: CollectionScopes, Key: e.ScopeID, Data: row,
		Lists: []eventstore.ListEntry{{List: ScopesList, Partition: "", Sort: e.ScopeID}},
	}}
	if e.ParentScopeID != "" {
		name, err := json.Marshal(ScopeNameRow{ScopeID: e.ScopeID})
		if err != nil {
			return nil, fmt.Errorf("project scope name %s: %w", e.ScopeID, err)
		}
		out = append(out, eventstore.Record{
			Collection: CollectionScopeNames, Key: ScopeNameKey(e.ParentScopeID, e.Name),
			IfAbsent: true, Data: name,
		})
	}
	return out, nil
}

// ProjectServiceAccount returns the rows of a service account after newEvents
// (sva is its state including them): its "service-accounts" row, and one
// global "api-keys" lookup row (if absent) per key issued in newEvents.
func ProjectServiceAccount(tenantID string, sva *domain.ServiceAccount, newEvents []domain.Recorded) ([]eventstore.Record, error) {
	row := ServiceAccountRow{
		ServiceAccountID: sva.ID, ScopeID: sva.ScopeID, Name: sva.Name, Role: string(sva.Role),
		APIKeyIDs: make([]string, 0, len(sva.Keys)), CreatedAt: sva.CreatedAt, UpdatedAt: sva.UpdatedAt,
	}
	for _, k := range sva.Keys {
		row.APIKeyIDs = append(row.APIKeyIDs, k.ID)
	}
	data, err := json.Marshal(row)
	if err != nil {
		return nil, fmt.Errorf("project service account %s: %w", sva.ID, err)
	}
	out := []eventstore.Record{{Collection: CollectionServiceAccounts, Key: sva.ID, Data: data}}
	for _, e := range newEvents {
		issued, ok := e.Event.(domain.APIKeyIssued)
		if !ok {
			continue
		}
		key, err := json.Marshal(auth.APIKeyRecord{
			KeyID: issued.APIKeyID, TenantID: tenantID, ServiceAccountID: sva.ID, SecretHash: issued.SecretHash,
			Roles: []invocation.RoleBinding{{Role: string(sva.Role), ScopeID: sva.ScopeID}},
		})
		if err != nil {
			return nil, fmt.Errorf("project api key %s: %w", issued.APIKeyID, err)
		}
		out = append(out, eventstore.Record{Collection: CollectionAPIKeys, Key: issued.APIKeyID, Global: true, IfAbsent: true, Data: key})
	}
	return out, nil
}
