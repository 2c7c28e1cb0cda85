package app

import (
	"context"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
)

// GetTenantInput is the (empty) body of get-tenant: the tenant is the caller's.
type GetTenantInput struct{}

// TenantOutput is a tenant as queries show it.
type TenantOutput struct {
	TenantID    string `json:"tenantId"`
	Name        string `json:"name"`
	Tier        string `json:"tier"`
	Status      string `json:"status"` // "provisioning" | "active"
	RootScopeID string `json:"rootScopeId"`
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
}

// GetTenantHandler runs get-tenant: the caller's tenant, rebuilt from its stream.
type GetTenantHandler struct {
	repo Repository
}

// Handle implements the query. Errors: 404 when the tenant has no stream.
func (h GetTenantHandler) Handle(ctx context.Context, _ GetTenantInput) (TenantOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return TenantOutput{}, err
	}
	t, err := h.repo.Tenant(ctx, tenantID)
	if err != nil {
		return TenantOutput{}, fmt.Errorf("get tenant %s: %w", tenantID, err)
	}
	if err := authz.Require(ctx, authz.Tenant(tenantID, t.RootScopeID)); err != nil {
		return TenantOutput{}, err
	}
	return TenantOutput{
		TenantID: t.ID, Name: t.Name, Tier: string(t.Tier), Status: string(t.Status),
		RootScopeID: t.RootScopeID, CreatedAt: formatTime(t.CreatedAt), UpdatedAt: formatTime(t.UpdatedAt),
	}, nil
}
