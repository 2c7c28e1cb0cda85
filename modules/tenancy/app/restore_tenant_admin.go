package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// RestoredAdminName is the name of the service account restore-tenant-admin makes.
const RestoredAdminName = "restored-admin"

// RestoreTenantAdminInput is the body of restore-tenant-admin.
type RestoreTenantAdminInput struct {
	TenantID string `json:"tenantId" validate:"required,max=64"`
}

// RestoreTenantAdminOutput is its answer. APIKey is shown only here, once.
type RestoreTenantAdminOutput struct {
	TenantID         string `json:"tenantId"`
	ServiceAccountID string `json:"serviceAccountId"`
	APIKeyID         string `json:"apiKeyId"`
	APIKey           string `json:"apiKey"`
}

// RestoreTenantAdminHandler runs restore-tenant-admin (operator only): the
// way back into a tenant that locked itself out (it revoked its last root
// admin, or that admin's last key, or lost them). It creates a service
// account "restored-admin" with role admin at the tenant's root scope and an
// API key of it, in one commit of the tenant's streams, like onboarding:
// the tenant's history shows who did it (the operator's invocation), and
// the operator's audit log records the call.
type RestoreTenantAdminHandler struct {
	repo  Repository
	ids   ids.Generator
	clock clock.Clock
	log   *slog.Logger
}

// Handle implements the command. Errors: 403 for a caller that is not the
// operator; 404 for a tenant that is malformed or does not exist.
func (h RestoreTenantAdminHandler) Handle(ctx context.Context, in RestoreTenantAdminInput) (RestoreTenantAdminOutput, error) {
	if invocation.From(ctx).Principal.Kind != invocation.KindOperator {
		return RestoreTenantAdminOutput{}, errs.New(errs.KindForbidden, errs.CodeForbidden)
	}
	if !ids.Valid(ids.Tenant, in.TenantID) {
		return RestoreTenantAdminOutput{}, errs.NotFound("tenant")
	}
	t, err := h.repo.Tenant(ctx, in.TenantID)
	if err != nil {
		return RestoreTenantAdminOutput{}, fmt.Errorf("restore tenant admin %s: %w", in.TenantID, err)
	}
	svaID, keyID := h.ids.New(ids.ServiceAccount), h.ids.New(ids.APIKey)
	created, err := domain.CreateServiceAccount(svaID, t.RootScopeID, RestoredAdminName, string(domain.RoleAdmin))
	if err != nil {
		return RestoreTenantAdminOutput{}, err
	}
	sva := &domain.ServiceAccount{}
	if err := sva.Apply(domain.Recorded{Event: created, Version: 1, OccurredAt: h.clock.Now()}); err != nil {
		return RestoreTenantAdminOutput{}, err
	}
	secret := auth.NewSecret()
	issued, err := sva.IssueAPIKey(keyID, auth.HashSecret(secret), "")
	if err != nil {
		return RestoreTenantAdminOutput{}, err
	}
	if err := h.repo.Save(ctx, Changes{TenantID: t.ID, Aggregates: []Change{{Events: []domain.Event{created, issued}}}}); err != nil {
		return RestoreTenantAdminOutput{}, fmt.Errorf("restore tenant admin %s: %w", t.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.WarnContext(ctx, "tenant admin restored by the operator",
			slog.String("tenantId", t.ID), slog.String("serviceAccountId", svaID), slog.String("apiKeyId", keyID))
	})
	return RestoreTenantAdminOutput{TenantID: t.ID, ServiceAccountID: svaID, APIKeyID: keyID, APIKey: auth.FormatAPIKey(keyID, secret)}, nil
}
