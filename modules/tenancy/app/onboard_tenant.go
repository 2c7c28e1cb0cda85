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

// AdminServiceAccountName is the name of the service account made at onboarding.
const AdminServiceAccountName = "admin"

// OnboardTenantInput is the body of onboard-tenant.
type OnboardTenantInput struct {
	Name string `json:"name" validate:"required,min=1,max=200"`
	Tier string `json:"tier" validate:"required,oneof=pooled siloed"`
}

// OnboardTenantOutput is the answer of onboard-tenant. APIKey is shown only
// here, once; only its hash is stored.
type OnboardTenantOutput struct {
	TenantID         string `json:"tenantId"`
	RootScopeID      string `json:"rootScopeId"`
	ServiceAccountID string `json:"serviceAccountId"`
	APIKeyID         string `json:"apiKeyId"`
	APIKey           string `json:"apiKey"`
}

// OnboardTenantHandler runs onboard-tenant (operator only): it creates a new
// tenant, its root scope, an "admin" service account with role admin at the
// root scope, and an API key of that account, and queues
// WorkProvisionTenant, all in one commit. The tenant starts "provisioning".
type OnboardTenantHandler struct {
	repo  Repository
	ids   ids.Generator
	clock clock.Clock
	log   *slog.Logger
}

// Handle implements the command. Errors: 403 for a caller that is neither
// the operator nor the system; 400 for a bad name or tier.
func (h OnboardTenantHandler) Handle(ctx context.Context, in OnboardTenantInput) (OnboardTenantOutput, error) {
	switch invocation.From(ctx).Principal.Kind {
	case invocation.KindOperator, invocation.KindSystem:
	default:
		return OnboardTenantOutput{}, errs.New(errs.KindForbidden, errs.CodeForbidden)
	}
	tenantID, rootID := h.ids.New(ids.Tenant), h.ids.New(ids.Scope)
	svaID, keyID := h.ids.New(ids.ServiceAccount), h.ids.New(ids.APIKey)

	onboarded, err := domain.OnboardTenant(tenantID, rootID, in.Name, in.Tier)
	if err != nil {
		return OnboardTenantOutput{}, err
	}
	root, err := domain.CreateRootScope(rootID)
	if err != nil {
		return OnboardTenantOutput{}, err
	}
	created, err := domain.CreateServiceAccount(svaID, rootID, AdminServiceAccountName, string(domain.RoleAdmin))
	if err != nil {
		return OnboardTenantOutput{}, err
	}
	now := h.clock.Now()
	sva := &domain.ServiceAccount{}
	if err := sva.Apply(domain.Recorded{Event: created, Version: 1, OccurredAt: now}); err != nil {
		return OnboardTenantOutput{}, err
	}
	secret := auth.NewSecret()
	issued, err := sva.IssueAPIKey(keyID, auth.HashSecret(secret), "")
	if err != nil {
		return OnboardTenantOutput{}, err
	}

	err = h.repo.Save(ctx, Changes{
		TenantID: tenantID,
		Aggregates: []Change{
			{Events: []domain.Event{onboarded}},
			{Events: []domain.Event{root}},
			{Events: []domain.Event{created, issued}},
		},
		Work: []Work{{Type: WorkProvisionTenant, Payload: ProvisionTenantPayload{TenantID: tenantID}, DueAt: now}},
	})
	if err != nil {
		return OnboardTenantOutput{}, fmt.Errorf("onboard tenant %s: %w", tenantID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.InfoContext(ctx, "tenant onboarded",
			slog.String("tenantId", tenantID), slog.String("tier", string(onboarded.Tier)),
			slog.String("rootScopeId", rootID), slog.String("serviceAccountId", svaID), slog.String("apiKeyId", keyID))
	})
	return OnboardTenantOutput{
		TenantID: tenantID, RootScopeID: rootID, ServiceAccountID: svaID,
		APIKeyID: keyID, APIKey: auth.FormatAPIKey(keyID, secret),
	}, nil
}
