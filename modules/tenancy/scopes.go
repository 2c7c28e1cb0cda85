package tenancy

import "context"

// TenantScopePaths returns the path (root first, the scope last) of every
// scope of the tenant, served from a per-instance cache refreshed every
// adapters.ScopeCacheTTL: lists of a caller bound below the root read the
// scopes it may see (messaging's list-messages).
func (m *Module) TenantScopePaths(ctx context.Context, tenantID string) ([][]string, error) {
	return m.scopes.Paths(ctx, tenantID)
}
