// Package ports exposes the tenancy application to the outside: its rpc
// endpoints (commands and queries) and its work handlers. It only translates;
// every rule lives in app and domain.
package ports

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
)

// Actions checked by the authorizer. Persisted in role definitions.
const (
	ActionOnboardTenant = "tenancy:onboard-tenant"
	// ActionRestoreTenantAdmin is the operator's way back into a locked-out tenant.
	ActionRestoreTenantAdmin = "tenancy:restore-tenant-admin"
	ActionGetTenant          = "tenancy:get-tenant"
	ActionCreateScope        = "tenancy:create-scope"
	ActionListScopes         = app.ActionListScopes
)

// Endpoints returns the tenancy commands and queries.
func Endpoints(a *app.Application) []rpc.Endpoint {
	return []rpc.Endpoint{
		rpc.Command("onboard-tenant", ActionOnboardTenant, a.Commands.OnboardTenant.Handle, rpc.OperatorOnly()),
		rpc.Command("restore-tenant-admin", ActionRestoreTenantAdmin, a.Commands.RestoreTenantAdmin.Handle, rpc.OperatorOnly()),
		rpc.Query("get-tenant", ActionGetTenant, a.Queries.GetTenant.Handle),
		rpc.Command("create-scope", ActionCreateScope, a.Commands.CreateScope.Handle),
		rpc.Query("list-scopes", ActionListScopes, a.Queries.ListScopes.Handle),
		rpc.Command("create-service-account", ActionCreateServiceAccount, a.Commands.CreateServiceAccount.Handle),
		rpc.Command("grant-role", ActionGrantRole, a.Commands.GrantRole.Handle),
		rpc.Command("revoke-role", ActionRevokeRole, a.Commands.RevokeRole.Handle),
		rpc.Command("issue-api-key", ActionIssueAPIKey, a.Commands.IssueAPIKey.Handle),
		rpc.Command("revoke-api-key", ActionRevokeAPIKey, a.Commands.RevokeAPIKey.Handle),
		rpc.Query("list-api-keys", ActionListAPIKeys, a.Queries.ListAPIKeys.Handle),
		rpc.Command("create-role", ActionCreateRole, a.Commands.CreateRole.Handle),
		rpc.Query("list-roles", ActionListRoles, a.Queries.ListRoles.Handle),
		rpc.Query("list-actions", ActionListActions, a.Queries.ListActions.Handle),
		rpc.Query("get-permissions", ActionGetPermissions, a.Queries.GetPermissions.Handle),
	}
}

// RegisterWork registers the tenancy work types.
func RegisterWork(r *work.Registry, a *app.Application) {
	r.Register(app.WorkProvisionTenant, ProvisionTenant(a))
}

// ProvisionTenant adapts a tenancy.provision-tenant item to the application:
// it runs in the item's tenant, continuing the invocation that queued it (same
// invocation and trace ids, acting as the system).
func ProvisionTenant(a *app.Application) work.Handler {
	return func(ctx context.Context, it work.Item) error {
		var p app.ProvisionTenantPayload
		if err := json.Unmarshal(it.Payload, &p); err != nil {
			return fmt.Errorf("%s %s: decode payload: %w", it.Type, it.ID, err)
		}
		tenantID := it.TenantID
		if tenantID == "" {
			tenantID = p.TenantID
		}
		if tenantID == "" || (p.TenantID != "" && p.TenantID != tenantID) {
			return fmt.Errorf("%s %s: tenant %q, payload tenant %q", it.Type, it.ID, it.TenantID, p.TenantID)
		}
		ctx = invocation.With(ctx, invocation.FromMeta(it.Invocation, "worker", tenantID))
		return a.Work.ProvisionTenant.Handle(ctx)
	}
}
