package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// WorkProvisionTenant is the work type queued by onboard-tenant. Persisted.
const WorkProvisionTenant = "tenancy.provision-tenant"

// ProvisionTenantPayload is the payload of WorkProvisionTenant.
type ProvisionTenantPayload struct {
	TenantID string `json:"tenantId"`
}

// ProvisionTenantHandler readies a tenant's resources and marks it active.
// Today every tier shares the platform's resources, so provisioning only
// records tenancy.tenant-provisioned; a siloed tier's dedicated resources plug
// in here.
//
// It is idempotent (work is delivered at least once): an active tenant is left
// as it is. The event is appended at the version the tenant was read at; when
// another writer moved the stream first, the unit of work runs it again.
type ProvisionTenantHandler struct {
	repo Repository
	log  *slog.Logger
}

// Handle provisions the invocation's tenant (invocation.From(ctx).TenantID(),
// set from the work item). A returned error asks the work path for a retry.
func (h ProvisionTenantHandler) Handle(ctx context.Context) error {
	tenantID, err := tenantOf(ctx)
	if err != nil {
		return fmt.Errorf("provision tenant: %w", err)
	}
	t, err := h.repo.Tenant(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("provision tenant %s: %w", tenantID, err)
	}
	events := t.Provision()
	if len(events) == 0 {
		h.log.DebugContext(ctx, "tenant already active", slog.String("tenantId", tenantID))
		return nil
	}
	if err := h.repo.Save(ctx, Changes{TenantID: tenantID, Aggregates: []Change{{Base: t.Version, Events: events}}}); err != nil {
		return fmt.Errorf("provision tenant %s: %w", tenantID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.InfoContext(ctx, "tenant provisioned", slog.String("tenantId", tenantID))
	})
	return nil
}
