package ports_test

import (
	"context"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

func operator(ctx context.Context) context.Context {
	return invocation.With(ctx, &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000001", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Principal: invocation.Principal{Kind: invocation.KindOperator, ID: "operator"},
	})
}

// tenant is a call of an admin bound at the tenant's root scope.
func tenant(ctx context.Context, tenantID, rootScopeID string) context.Context {
	ctx = invocation.With(ctx, &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000002", TraceID: "4bf92f3577b34da6a3ce929d0e0e4737",
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_x", TenantID: tenantID,
			Roles: []invocation.RoleBinding{{Role: "admin", ScopeID: rootScopeID}}},
	})
	// The guard the edge installs for every call.
	return authz.WithGuard(ctx, authz.NewGuard(authz.Roles{}, invocation.From(ctx).Principal, "tenancy:test"))
}
