package adapters

import (
	"encoding/json"
	"fmt"
	"slices"
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
	CollectionAPIKeys         = "api-keys" // global: the authenticator's lookup
	CollectionAPIKeyList      = "api-key-list"
	CollectionAPIKeyUsage     = "api-key-usage"
	CollectionRoles           = "roles"
	CollectionRoleNames       = "role-names"
)

// Lists. Persisted: changing one is a migration.
var (
	// ScopesList is the list of a tenant's scopes (one partition, "", sorted
	// by scope id: newest last).
	ScopesList = eventstore.List{Name: "scopes", Slot: 1, Shards: 1}
	// APIKeysList is the list of a tenant's API keys (one partition, "",
	// sorted by key id: newest last). Rows of CollectionAPIKeyList.
	APIKeysList = eventstore.List{Name: "api-keys", Slot: 1, Shards: 1}
	// APIKeysByServiceAccountList is the same rows, one partition per
	// service account id.
	APIKeysByServiceAccountList = eventstore.List{Name: "api-keys-by-service-account", Slot: 2, Shards: 1}
)

// RolesList is the list of a tenant's roles (one partition, "", sorted by
// role id: newest last). Rows of CollectionRoles.
var RolesList = eventstore.List{Name: "roles", Slot: 1, Shards: 1}

// RoleRow is a row of the "roles" read model: a tenant role as list-roles
// and the authorizer's role cache read it.
type RoleRow struct {
	RoleID    string    `json:"roleId"`
	Name      string    `json:"name"`
	Actions   []string  `json:"actions"`
	CreatedAt time.Time `json:"createdAt"`
}

// RoleNameRow is a row of "role-names": the role holding a name.
type RoleNameRow struct {
	RoleID string `json:"roleId"`
}

// ProjectRoleCreated returns the rows a new role writes: its "roles" row
// (in RolesList) and its name row (if absent: a taken name fails the commit
// with eventstore.ErrConflict).
func ProjectRoleCreated(e domain.RoleCreated, at time.Time) ([]eventstore.Record, error) {
	row, err := json.Marshal(RoleRow{RoleID: e.RoleID, Name: e.Name, Actions: e.Actions, CreatedAt: at})
	if err != nil {
		return nil, fmt.Errorf("project role %s: %w", e.RoleID, err)
	}
	name, err := json.Marshal(RoleNameRow{RoleID: e.RoleID})
	if err != nil {
		return nil, fmt.Errorf("project role name %s: %w", e.RoleID, err)
	}
	return []eventstore.Record{
		{Collection: CollectionRoles, Key: e.RoleID, Data: row,
			Lists: []eventstore.ListEntry{{List: RolesList, Partition: "", Sort: e.RoleID}}},
		{Collection: CollectionRoleNames, Key: domain.NameKey(e.Name), IfAbsent: true, Data: name},
	}, nil
}

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
	ServiceAccountID string                   `json:"serviceAccountId"`
	ScopeID          string                   `json:"scopeId"`
	Name             string                   `json:"name"`
	Bindings         []invocation.RoleBinding `json:"bindings"`
	APIKeyIDs        []string                 `json:"apiKeyIds"`
	CreatedAt        time.Time                `json:"createdAt"`
	UpdatedAt        time.Time                `json:"updatedAt"`
}

// APIKeyRow is a row of "api-key-list", the list-api-keys read model: what
// may be shown of a key (never its hash).
type APIKeyRow struct {
	APIKeyID         string    `json:"apiKeyId"`
	Name             string    `json:"name,omitempty"`
	ServiceAccountID string    `json:"serviceAccountId"`
	CreatedAt        time.Time `json:"createdAt"`
	RevokedAt        time.Time `json:"revokedAt,omitzero"`
}

// APIKeyUsageRow is a row of "api-key-usage": when the key last
// authenticated a call, to within an hour (see APIKeyResolver.RecordAPIKeyUse).
// It is not derived from events: it is the one row the projection never
// writes, so that recording a use never races a change of the key.
type APIKeyUsageRow struct {
	LastUsedAt time.Time `json:"lastUsedAt"`
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
// (sva is its state including them):
//
//   - its "service-accounts" row;
//   - the global "api-keys" lookup row (auth.APIKeyRecord) of every key issued
//     in newEvents (if absent), of every key revoked in newEvents (revoked, no
//     bindings), and, when newEvents change the bindings, of every active key
//     of the account (the new bindings: keys take role changes without being
//     reissued; MaxActiveAPIKeys bounds them);
//   - the "api-key-list" row of every key issued or revoked in newEvents.
func ProjectServiceAccount(tenantID string, sva *domain.ServiceAccount, newEvents []domain.Recorded) ([]eventstore.Record, error) {
	bindings := roleBindings(sva)
	row := ServiceAccountRow{
		ServiceAccountID: sva.ID, ScopeID: sva.ScopeID, Name: sva.Name, Bindings: bindings,
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

	var touched []string // key ids whose lookup row is written, in order, once each
	issued, listed := map[string]bool{}, map[string]bool{}
	touch := func(id string) {
		if !slices.Contains(touched, id) {
			touched = append(touched, id)
		}
	}
	rebind := false
	for _, e := range newEvents {
		switch ev := e.Event.(type) {
		case domain.APIKeyIssued:
			issued[ev.APIKeyID], listed[ev.APIKeyID] = true, true
			touch(ev.APIKeyID)
		case domain.APIKeyRevoked:
			listed[ev.APIKeyID] = true
			touch(ev.APIKeyID)
		case domain.RoleGranted, domain.RoleRevoked:
			rebind = true
		}
	}
	if rebind {
		for _, k := range sva.ActiveKeys() {
			touch(k.ID)
		}
	}
	for _, id := range touched {
		k, ok := sva.Key(id)
		if !ok {
			return nil, fmt.Errorf("project api key %s: not a key of %s", id, sva.ID)
		}
		rec := auth.APIKeyRecord{
			KeyID: k.ID, TenantID: tenantID, ServiceAccountID: sva.ID, SecretHash: k.SecretHash,
			Roles: bindings, Revoked: k.Revoked(),
		}
		if k.Revoked() {
			rec.Roles = []invocation.RoleBinding{} // a revoked key grants nothing, whatever reads it
		}
		key, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("project api key %s: %w", k.ID, err)
		}
		out = append(out, eventstore.Record{Collection: CollectionAPIKeys, Key: k.ID, Global: true, IfAbsent: issued[k.ID], Data: key})
		if !listed[k.ID] {
			continue
		}
		list, err := json.Marshal(APIKeyRow{APIKeyID: k.ID, Name: k.Name, ServiceAccountID: sva.ID, CreatedAt: k.IssuedAt, RevokedAt: k.RevokedAt})
		if err != nil {
			return nil, fmt.Errorf("project api key %s: %w", k.ID, err)
		}
		out = append(out, eventstore.Record{
			Collection: CollectionAPIKeyList, Key: k.ID, Data: list,
			Lists: []eventstore.ListEntry{
				{List: APIKeysList, Partition: "", Sort: k.ID},
				{List: APIKeysByServiceAccountList, Partition: sva.ID, Sort: k.ID},
			},
		})
	}
	return out, nil
}

// roleBindings is the bindings of sva as principals carry them (never nil).
func roleBindings(sva *domain.ServiceAccount) []invocation.RoleBinding {
	out := make([]invocation.RoleBinding, 0, len(sva.Bindings))
	for _, b := range sva.Bindings {
		out = append(out, invocation.RoleBinding{Role: string(b.Role), ScopeID: b.ScopeID})
	}
	return out
}
