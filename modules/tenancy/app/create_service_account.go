package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// CreateServiceAccountInput is the body of create-service-account. The role
// is checked by the domain (domain.ParseRole), the one place that knows roles.
type CreateServiceAccountInput struct {
	ScopeID string `json:"scopeId" validate:"required,max=64"`
	Name    string `json:"name" validate:"required,min=1,max=200"`
	Role    string `json:"role" validate:"required,max=64"`
}

// CreateServiceAccountOutput is the answer of create-service-account.
type CreateServiceAccountOutput struct {
	ServiceAccountID string `json:"serviceAccountId"`
}

// CreateServiceAccountHandler runs create-service-account: a service account
// of the caller's tenant at a scope, holding role at that scope. It has no
// key: issue-api-key issues them. Names need not be unique.
type CreateServiceAccountHandler struct {
	repo Repository
	ids  ids.Generator
	log  *slog.Logger
}

// Handle implements the command. It decides on the scope (the caller must be
// allowed there, so an admin can only create accounts in its own subtree).
// Errors: 404 errs.NotFound("scope") for a malformed id or a scope that is
// missing or of another tenant; 400 errors.tenancy.invalid_role or
// errors.tenancy.invalid_name; 404 errs.NotFound("role") for a "rol_..." that
// names no role of the tenant; 403 for a role the caller could not itself
// exercise at the scope (requireCanGrant).
func (h CreateServiceAccountHandler) Handle(ctx context.Context, in CreateServiceAccountInput) (CreateServiceAccountOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return CreateServiceAccountOutput{}, err
	}
	scope, err := loadScope(ctx, h.repo, tenantID, in.ScopeID)
	if err != nil {
		return CreateServiceAccountOutput{}, fmt.Errorf("create service account: %w", err)
	}
	if err := authz.Require(ctx, scopeResource(scope)); err != nil {
		return CreateServiceAccountOutput{}, err
	}
	role, actions, err := resolveRole(ctx, h.repo, tenantID, in.Role)
	if err != nil {
		return CreateServiceAccountOutput{}, fmt.Errorf("create service account: %w", err)
	}
	if err := requireCanGrant(ctx, tenantID, scope, actions); err != nil {
		return CreateServiceAccountOutput{}, err
	}
	created, err := domain.CreateServiceAccount(h.ids.New(ids.ServiceAccount), scope.ID, in.Name, string(role))
	if err != nil {
		return CreateServiceAccountOutput{}, err
	}
	err = h.repo.Save(ctx, Changes{TenantID: tenantID, Aggregates: []Change{{Events: []domain.Event{created}}}})
	if err != nil {
		return CreateServiceAccountOutput{}, fmt.Errorf("create service account %s: %w", created.ServiceAccountID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.InfoContext(ctx, "service account created", slog.String("serviceAccountId", created.ServiceAccountID),
			slog.String("scopeId", scope.ID), slog.String("role", string(created.Role)))
	})
	return CreateServiceAccountOutput{ServiceAccountID: created.ServiceAccountID}, nil
}
