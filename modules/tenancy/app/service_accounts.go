package app

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// What the handlers of service accounts, role bindings and API keys share:
// loading the resources they decide on.

// scopeResource is a scope as the authorizer sees it.
func scopeResource(s *domain.Scope) authz.Resource {
	return authz.Resource{Type: authz.ResourceScope, ID: s.ID, ScopePath: s.Path}
}

// loadScope reads a scope of the tenant: errs.NotFound("scope") for a
// malformed id, a missing scope or one of another tenant.
func loadScope(ctx context.Context, repo Repository, tenantID, scopeID string) (*domain.Scope, error) {
	if !ids.Valid(ids.Scope, scopeID) {
		return nil, errs.NotFound("scope")
	}
	s, err := repo.Scope(ctx, tenantID, scopeID)
	if err != nil {
		return nil, fmt.Errorf("read scope %s: %w", scopeID, err)
	}
	return s, nil
}

// requireServiceAccount reads a service account of the tenant and decides on
// it, in its own scope (where it was created): the caller acts on an account
// only when the account is visible to it. Errors:
// errs.NotFound("service_account") for a malformed id, a missing account or
// one of another tenant; 403 when the caller may not act on it.
func requireServiceAccount(ctx context.Context, repo Repository, tenantID, serviceAccountID string) (*domain.ServiceAccount, error) {
	if !ids.Valid(ids.ServiceAccount, serviceAccountID) {
		return nil, errs.NotFound("service_account")
	}
	sva, err := repo.ServiceAccount(ctx, tenantID, serviceAccountID)
	if err != nil {
		return nil, fmt.Errorf("read service account %s: %w", serviceAccountID, err)
	}
	home, err := repo.Scope(ctx, tenantID, sva.ScopeID)
	if err != nil {
		return nil, fmt.Errorf("read scope %s of service account %s: %w", sva.ScopeID, sva.ID, err)
	}
	res := authz.Resource{Type: authz.ResourceServiceAccount, ID: sva.ID, ScopePath: home.Path}
	if err := authz.Require(ctx, res); err != nil {
		return nil, err
	}
	return sva, nil
}

// requireCanHold decides that the caller may act with or against all of an
// account's rights: at each binding's scope it must hold every action the
// binding's role grants (requireCanGrant). A key carries every binding of
// its account, so issuing one grants them, and revoking one cuts off an
// account that may be more powerful than the caller; both need it. A
// binding whose scope or tenant role no longer exists grants nothing.
func requireCanHold(ctx context.Context, repo Repository, tenantID string, sva *domain.ServiceAccount) error {
	for _, b := range sva.Bindings {
		scope, err := loadScope(ctx, repo, tenantID, b.ScopeID)
		if errs.KindOf(err) == errs.KindNotFound {
			continue
		}
		if err != nil {
			return err
		}
		_, actions, err := resolveRole(ctx, repo, tenantID, string(b.Role))
		if errs.KindOf(err) == errs.KindNotFound {
			continue
		}
		if err != nil {
			return err
		}
		if err := requireCanGrant(ctx, tenantID, scope, actions); err != nil {
			return err
		}
	}
	return nil
}

// RoleBindingItem is a role binding as answers show it.
type RoleBindingItem struct {
	Role    string `json:"role"`
	ScopeID string `json:"scopeId"`
}

// RoleBindingsOutput is the answer of grant-role and revoke-role: the
// account's bindings after the call, in grant order.
type RoleBindingsOutput struct {
	ServiceAccountID string            `json:"serviceAccountId"`
	Bindings         []RoleBindingItem `json:"bindings"`
}

func bindingsOutput(sva *domain.ServiceAccount) RoleBindingsOutput {
	out := RoleBindingsOutput{ServiceAccountID: sva.ID, Bindings: make([]RoleBindingItem, 0, len(sva.Bindings))}
	for _, b := range sva.Bindings {
		out.Bindings = append(out.Bindings, RoleBindingItem{Role: string(b.Role), ScopeID: b.ScopeID})
	}
	return out
}

// saveBindings saves the events of a grant or revocation (none: the binding
// was already as asked, nothing is written) and answers the bindings after
// them.
func saveBindings(ctx context.Context, repo Repository, tenantID string, sva *domain.ServiceAccount, events []domain.Event) (RoleBindingsOutput, error) {
	if len(events) == 0 {
		return bindingsOutput(sva), nil
	}
	if err := repo.Save(ctx, Changes{TenantID: tenantID, Aggregates: []Change{{Base: sva.Version, Events: events}}}); err != nil {
		return RoleBindingsOutput{}, fmt.Errorf("save service account %s: %w", sva.ID, err)
	}
	base := sva.Version
	for i, ev := range events {
		if err := sva.Apply(domain.Recorded{Event: ev, Version: base + int64(i) + 1}); err != nil {
			return RoleBindingsOutput{}, err
		}
	}
	return bindingsOutput(sva), nil
}
