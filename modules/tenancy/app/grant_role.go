package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// GrantRoleInput is the body of grant-role (and of revoke-role).
type GrantRoleInput struct {
	ServiceAccountID string `json:"serviceAccountId" validate:"required,max=64"`
	Role             string `json:"role" validate:"required,max=64"`
	ScopeID          string `json:"scopeId" validate:"required,max=64"`
}

// GrantRoleHandler runs grant-role: the service account holds role at the
// scope in addition to its other bindings. Its API keys carry the new
// bindings from the same commit on (no key is reissued).
type GrantRoleHandler struct {
	repo Repository
	log  *slog.Logger
}

// Handle implements the command. It decides on the service account (in its
// own scope: it must be visible to the caller) and on the scope of the
// binding (the caller grants only where it is allowed itself), and the caller
// must itself hold at that scope every action of the role (no escalation:
// requireCanGrant). The role is a built-in name or a tenant role's id.
// Granting a
// binding the account holds already writes nothing and answers 200 with the
// bindings, like any grant. Errors: 404 errs.NotFound("service_account") or
// errs.NotFound("scope") for malformed, missing or another tenant's ids; 400
// errors.tenancy.invalid_role; 404 errs.NotFound("role") for a "rol_..." that
// names no role of the tenant; 403 for a role beyond the caller; 409 errors.tenancy.too_many_role_bindings.
func (h GrantRoleHandler) Handle(ctx context.Context, in GrantRoleInput) (RoleBindingsOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return RoleBindingsOutput{}, err
	}
	sva, err := requireServiceAccount(ctx, h.repo, tenantID, in.ServiceAccountID)
	if err != nil {
		return RoleBindingsOutput{}, fmt.Errorf("grant role: %w", err)
	}
	scope, err := loadScope(ctx, h.repo, tenantID, in.ScopeID)
	if err != nil {
		return RoleBindingsOutput{}, fmt.Errorf("grant role: %w", err)
	}
	if err := authz.Require(ctx, scopeResource(scope)); err != nil {
		return RoleBindingsOutput{}, err
	}
	role, actions, err := resolveRole(ctx, h.repo, tenantID, in.Role)
	if err != nil {
		return RoleBindingsOutput{}, fmt.Errorf("grant role: %w", err)
	}
	if err := requireCanGrant(ctx, tenantID, scope, actions); err != nil {
		return RoleBindingsOutput{}, err
	}
	events, err := sva.GrantRole(string(role), scope.ID)
	if err != nil {
		return RoleBindingsOutput{}, err
	}
	out, err := saveBindings(ctx, h.repo, tenantID, sva, events)
	if err != nil {
		return RoleBindingsOutput{}, fmt.Errorf("grant role: %w", err)
	}
	if len(events) > 0 {
		uow.OnCommit(ctx, func(ctx context.Context) {
			h.log.InfoContext(ctx, "role granted", slog.String("serviceAccountId", sva.ID),
				slog.String("role", in.Role), slog.String("scopeId", scope.ID))
		})
	}
	return out, nil
}
