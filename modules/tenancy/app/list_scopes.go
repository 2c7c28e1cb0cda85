package app

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/paging"
)

// ActionListScopes is list-scopes' action; the handler also asks it of each
// scope for a caller bound below the root.
const ActionListScopes = "tenancy:list-scopes"

// ListScopesInput is the body of list-scopes.
type ListScopesInput struct {
	Limit  *int   `json:"limit" validate:"omitempty,min=1,max=100"`
	Cursor string `json:"cursor" validate:"omitempty,max=1024"`
}

// ScopeItem is one scope in a list.
type ScopeItem struct {
	ScopeID       string   `json:"scopeId"`
	ParentScopeID *string  `json:"parentScopeId"` // null for the root scope
	Name          string   `json:"name"`
	Path          []string `json:"path"`
	CreatedAt     string   `json:"createdAt"`
}

// ListScopesOutput is one page of scopes.
type ListScopesOutput struct {
	Items      []ScopeItem `json:"items"`
	NextCursor *string     `json:"nextCursor"` // null on the last page
}

// ListScopesHandler runs list-scopes: the caller's tenant's scopes, newest
// first, from the "scopes" read model.
type ListScopesHandler struct {
	repo  Repository
	reads ReadModel
}

// Handle implements the query. Errors: 400 for a limit outside 1..100 or a
// cursor that was not issued by this list.
func (h ListScopesHandler) Handle(ctx context.Context, in ListScopesInput) (ListScopesOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return ListScopesOutput{}, err
	}
	// A caller who may list the whole tenant (bound at its root scope) gets
	// every scope; anyone else gets the scopes it may see (those at or below
	// its bindings), each decided as a scope: so a page may hold fewer
	// scopes than the limit while a next cursor follows.
	t, err := h.repo.Tenant(ctx, tenantID)
	if err != nil {
		return ListScopesOutput{}, fmt.Errorf("list scopes: %w", err)
	}
	tenant := authz.Tenant(tenantID, t.RootScopeID)
	whole := authz.Can(ctx, ActionListScopes, tenant)
	if whole {
		if err := authz.Require(ctx, tenant); err != nil {
			return ListScopesOutput{}, err
		}
	} else {
		authz.Visible(ctx)
	}
	limit, err := paging.Limit(in.Limit)
	if err != nil {
		return ListScopesOutput{}, err
	}
	fetch := func(n int, cursor string) ([]ScopeView, string, error) {
		return h.reads.ListScopes(ctx, tenantID, n, cursor)
	}
	var views []ScopeView
	var next string
	if whole {
		views, next, err = fetch(limit, in.Cursor)
	} else {
		views, next, err = authz.VisiblePage(limit, in.Cursor, fetch, func(v ScopeView) bool {
			return authz.Can(ctx, ActionListScopes, authz.Resource{Type: authz.ResourceScope, ID: v.ScopeID, ScopePath: v.Path})
		})
	}
	if err != nil {
		return ListScopesOutput{}, fmt.Errorf("list scopes: %w", err)
	}
	out := ListScopesOutput{Items: make([]ScopeItem, 0, len(views))}
	for _, v := range views {
		it := ScopeItem{ScopeID: v.ScopeID, Name: v.Name, Path: v.Path, CreatedAt: formatTime(v.CreatedAt)}
		if v.ParentScopeID != "" {
			p := v.ParentScopeID
			it.ParentScopeID = &p
		}
		out.Items = append(out.Items, it)
	}
	if next != "" {
		out.NextCursor = &next
	}
	return out, nil
}
