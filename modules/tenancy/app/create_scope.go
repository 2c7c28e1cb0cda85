package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// CreateScopeInput is the body of create-scope.
type CreateScopeInput struct {
	ParentScopeID string `json:"parentScopeId" validate:"required,max=64"`
	Name          string `json:"name" validate:"required,min=1,max=200"`
}

// CreateScopeOutput is the answer of create-scope.
type CreateScopeOutput struct {
	ScopeID string `json:"scopeId"`
}

// CreateScopeHandler runs create-scope: a new scope under a parent of the
// caller's tenant, its name unique among its siblings case-insensitively.
type CreateScopeHandler struct {
	repo  Repository
	reads ReadModel
	ids   ids.Generator
	log   *slog.Logger
}

// Handle implements the command. Errors: 404 errs.NotFound("scope") when the
// parent is missing or of another tenant; 409 domain.ErrScopeNameTaken; 400
// for a bad name.
func (h CreateScopeHandler) Handle(ctx context.Context, in CreateScopeInput) (CreateScopeOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return CreateScopeOutput{}, err
	}
	if !ids.Valid(ids.Scope, in.ParentScopeID) {
		return CreateScopeOutput{}, errs.NotFound("scope")
	}
	parent, err := h.repo.Scope(ctx, tenantID, in.ParentScopeID)
	if err != nil {
		return CreateScopeOutput{}, fmt.Errorf("create scope: read parent %s: %w", in.ParentScopeID, err)
	}
	// A scope is created in its parent: decide on the parent, as loaded.
	if err := authz.Require(ctx, authz.Resource{Type: "scope", ID: parent.ID, ScopePath: parent.Path}); err != nil {
		return CreateScopeOutput{}, err
	}
	created, err := parent.CreateChild(h.ids.New(ids.Scope), in.Name)
	if err != nil {
		return CreateScopeOutput{}, err
	}
	taken, err := h.reads.ScopeNameTaken(ctx, tenantID, parent.ID, created.Name)
	if err != nil {
		return CreateScopeOutput{}, fmt.Errorf("create scope: check name: %w", err)
	}
	if taken {
		return CreateScopeOutput{}, domain.ErrScopeNameTaken
	}
	// A concurrent create-scope that takes the name first makes this commit
	// conflict on the sibling-name row; the unit of work runs the handler
	// again, which then answers ErrScopeNameTaken.
	err = h.repo.Save(ctx, Changes{TenantID: tenantID, Aggregates: []Change{{Events: []domain.Event{created}}}})
	if err != nil {
		return CreateScopeOutput{}, fmt.Errorf("create scope %s: %w", created.ScopeID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.InfoContext(ctx, "scope created", slog.String("scopeId", created.ScopeID), slog.String("parentScopeId", parent.ID))
	})
	return CreateScopeOutput{ScopeID: created.ScopeID}, nil
}
