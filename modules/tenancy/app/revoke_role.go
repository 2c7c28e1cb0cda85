package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// RevokeRoleInput is the body of revoke-role.
type RevokeRoleInput = GrantRoleInput

// RevokeRoleHandler runs revoke-role: the service account no longer holds
// role at the scope (exactly that binding; bindings at other scopes stay).
// Its API keys lose the binding from the same commit on.
type RevokeRoleHandler struct {
	repo Repository
	log  *slog.Logger
}

// Handle implements the command. It decides as grant-role does (on the
// service account and on the scope of the binding). Revoking a binding the
// account does not hold writes nothing and answers 200 with the bindings. An
// account may be left with no binding (it can then do nothing), also the
// caller's own. Errors: as grant-role's, without the 409.
func (h RevokeRoleHandler) Handle(ctx context.Context, in RevokeRoleInput) (RoleBindingsOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return RoleBindingsOutput{}, err
	}
	sva, err := requireServiceAccount(ctx, h.repo, tenantID, in.ServiceAccountID)
	if err != nil {
		return RoleBindingsOutput{}, fmt.Errorf("revoke role: %w", err)
	}
	scope, err := loadScope(ctx, h.repo, tenantID, in.ScopeID)
	if err != nil {
		return RoleBindingsOutput{}, fmt.Errorf("revoke role: %w", err)
	}
	if err := authz.Require(ctx, scopeResource(scope)); err != nil {
		return RoleBindingsOutput{}, err
	}
	role := in.Role
	if strings.HasPrefix(role, ids.Role+"_") { // a tenant role's id names a role of the tenant (404 otherwise)
		r, _, err := resolveRole(ctx, h.repo, tenantID, role)
		if err != nil {
			return RoleBindingsOutput{}, fmt.Errorf("revoke role: %w", err)
		}
		role = string(r)
	}
	events, err := sva.RevokeRole(role, scope.ID)
	if err != nil {
		return RoleBindingsOutput{}, err
	}
	out, err := saveBindings(ctx, h.repo, tenantID, sva, events)
	if err != nil {
		return RoleBindingsOutput{}, fmt.Errorf("revoke role: %w", err)
	}
	if len(events) > 0 {
		uow.OnCommit(ctx, func(ctx context.Context) {
			h.log.InfoContext(ctx, "role revoked", slog.String("serviceAccountId", sva.ID),
				slog.String("role", in.Role), slog.String("scopeId", scope.ID))
		})
	}
	return out, nil
}
