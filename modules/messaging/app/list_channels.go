package app

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/paging"
)

// ListChannelsInput is the body of list-channels.
type ListChannelsInput struct {
	ScopeID string `json:"scopeId" validate:"omitempty,max=64"`
	Limit   *int   `json:"limit" validate:"omitempty,min=1,max=100"`
	Cursor  string `json:"cursor" validate:"omitempty,max=1024"`
}

// ListChannelsOutput is one page of channels.
type ListChannelsOutput struct {
	Items      []ChannelView `json:"items"`
	NextCursor *string       `json:"nextCursor"` // null on the last page
}

// ListChannelsHandler runs list-channels: the channels of one scope (exactly
// that scope, not the scopes below it) or of the whole tenant, newest first.
type ListChannelsHandler struct {
	Reads  ReadModel
	Scopes Scopes
}

// Handle implements the query. It authorizes on the scope when one is given
// (404 when it does not exist), else on the tenant (its root scope). Errors:
// 400 for a limit outside 1..100 or a cursor this list did not issue.
func (h ListChannelsHandler) Handle(ctx context.Context, in ListChannelsInput) (ListChannelsOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return ListChannelsOutput{}, err
	}
	limit, err := paging.Limit(in.Limit)
	if err != nil {
		return ListChannelsOutput{}, err
	}
	// Without a scope, a caller who may not list the whole tenant (bound
	// below its root) gets the channels it may see, each decided as a
	// channel: a page may then hold fewer than the limit while a next
	// cursor follows.
	whole := true
	if in.ScopeID == "" {
		root, err := h.Scopes.RootScopeID(ctx, tenantID)
		if err != nil {
			return ListChannelsOutput{}, fmt.Errorf("list channels: %w", err)
		}
		if whole = authz.Can(ctx, ActionListChannels, authz.Tenant(tenantID, root)); !whole {
			authz.Visible(ctx)
		}
	}
	if whole {
		if err := requireScopeOrTenant(ctx, h.Scopes, tenantID, in.ScopeID); err != nil {
			return ListChannelsOutput{}, fmt.Errorf("list channels: %w", err)
		}
	}
	fetch := func(n int, cursor string) ([]ChannelView, string, error) {
		return h.Reads.ListChannels(ctx, tenantID, in.ScopeID, n, cursor)
	}
	var items []ChannelView
	var next string
	if whole {
		items, next, err = fetch(limit, in.Cursor)
	} else {
		items, next, err = authz.VisiblePage(limit, in.Cursor, fetch, func(v ChannelView) bool {
			return authz.Can(ctx, ActionListChannels, authz.Resource{Type: authz.ResourceChannel, ID: v.ChannelID, ScopePath: v.ScopePath})
		})
	}
	if err != nil {
		return ListChannelsOutput{}, fmt.Errorf("list channels: %w", err)
	}
	if items == nil {
		items = []ChannelView{}
	}
	return ListChannelsOutput{Items: items, NextCursor: paging.Next(next)}, nil
}

// ActionListChannels is list-channels' action; the handler also asks it of
// each channel for a caller bound below the root.
const ActionListChannels = "channels:list-channels"

// requireScopeOrTenant authorizes a list on the scope it filters by (404 for
// a scope that is malformed, missing or of another tenant), or on the whole
// tenant (its root scope) when there is no filter.
func requireScopeOrTenant(ctx context.Context, scopes Scopes, tenantID, scopeID string) error {
	if scopeID == "" {
		root, err := scopes.RootScopeID(ctx, tenantID)
		if err != nil {
			return err
		}
		return authz.Require(ctx, authz.Tenant(tenantID, root))
	}
	path, err := scopePath(ctx, scopes, tenantID, scopeID)
	if err != nil {
		return err
	}
	return authz.Require(ctx, authz.Resource{Type: "scope", ID: scopeID, ScopePath: path})
}

// scopePath returns a scope's path, or errs.NotFound("scope") also for a malformed id.
func scopePath(ctx context.Context, scopes Scopes, tenantID, scopeID string) ([]string, error) {
	if !ids.Valid(ids.Scope, scopeID) {
		return nil, errs.NotFound("scope")
	}
	return scopes.ScopePath(ctx, tenantID, scopeID)
}
