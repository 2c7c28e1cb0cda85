package app

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/paging"
)

// ListSubscriptionsInput is the body of list-subscriptions.
type ListSubscriptionsInput struct {
	ScopeID string `json:"scopeId" validate:"omitempty,max=64"`
	Limit   *int   `json:"limit" validate:"omitempty,min=1,max=100"`
	Cursor  string `json:"cursor" validate:"omitempty,max=1024"`
}

// SubscriptionItem is one subscription in a list: never its secret.
type SubscriptionItem struct {
	SubscriptionID string   `json:"subscriptionId"`
	ScopeID        string   `json:"scopeId"`
	URL            string   `json:"url"`
	EventTypes     []string `json:"eventTypes"`
	Status         string   `json:"status"` // "enabled" | "disabled"
	CreatedAt      string   `json:"createdAt"`
	UpdatedAt      string   `json:"updatedAt"`
}

// ListSubscriptionsOutput is one page of subscriptions.
type ListSubscriptionsOutput struct {
	Items      []SubscriptionItem `json:"items"`
	NextCursor *string            `json:"nextCursor"` // null on the last page
}

// ListSubscriptionsHandler runs list-subscriptions: the subscriptions created
// at one scope (scopeId), or all of the tenant's the caller may see, newest first.
type ListSubscriptionsHandler struct {
	Reads  ReadModel
	Scopes Scopes
}

// ActionListSubscriptions is list-subscriptions' action; the handler also
// asks it of each subscription for a caller bound below the root.
const ActionListSubscriptions = "webhooks:list-subscriptions"

// Handle implements the query. It authorizes on the scope when one is given,
// else on the tenant (its root scope) or, for a caller bound below the root,
// on each subscription (the ones it may see). Errors: 404 for a scope that is missing or
// of another tenant; 403; 400 for a limit outside 1..100 or a cursor this
// list did not issue.
func (h ListSubscriptionsHandler) Handle(ctx context.Context, in ListSubscriptionsInput) (ListSubscriptionsOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return ListSubscriptionsOutput{}, err
	}
	limit, err := paging.Limit(in.Limit)
	if err != nil {
		return ListSubscriptionsOutput{}, err
	}
	whole := true
	if in.ScopeID != "" {
		if !ids.Valid(ids.Scope, in.ScopeID) {
			return ListSubscriptionsOutput{}, errs.NotFound("scope")
		}
		path, err := h.Scopes.ScopePath(ctx, tenantID, in.ScopeID)
		if err != nil {
			return ListSubscriptionsOutput{}, fmt.Errorf("list subscriptions: scope %s: %w", in.ScopeID, err)
		}
		if err := authz.Require(ctx, authz.Resource{Type: "scope", ID: in.ScopeID, ScopePath: path}); err != nil {
			return ListSubscriptionsOutput{}, err
		}
	} else {
		// Every subscription of the tenant for a caller who may list the
		// whole tenant (bound at its root scope); anyone else gets the
		// subscriptions it may see, each decided as a subscription: a page
		// may then hold fewer than the limit while a next cursor follows.
		// Subscriptions are few per tenant, so filtering the tenant's list
		// is bounded (list-messages cannot do this; see ADR 0009).
		root, err := h.Scopes.RootScopeID(ctx, tenantID)
		if err != nil {
			return ListSubscriptionsOutput{}, fmt.Errorf("list subscriptions: %w", err)
		}
		tenant := authz.Tenant(tenantID, root)
		if whole = authz.Can(ctx, ActionListSubscriptions, tenant); whole {
			if err := authz.Require(ctx, tenant); err != nil {
				return ListSubscriptionsOutput{}, err
			}
		} else {
			authz.Visible(ctx)
		}
	}
	fetch := func(n int, cursor string) ([]SubscriptionView, string, error) {
		return h.Reads.ListSubscriptions(ctx, tenantID, in.ScopeID, n, cursor)
	}
	var views []SubscriptionView
	var next string
	if whole {
		views, next, err = fetch(limit, in.Cursor)
	} else {
		views, next, err = authz.VisiblePage(limit, in.Cursor, fetch, func(v SubscriptionView) bool {
			return authz.Can(ctx, ActionListSubscriptions, authz.Resource{Type: authz.ResourceSubscription, ID: v.SubscriptionID, ScopePath: v.ScopePath})
		})
	}
	if err != nil {
		return ListSubscriptionsOutput{}, fmt.Errorf("list subscriptions: %w", err)
	}
	out := ListSubscriptionsOutput{Items: make([]SubscriptionItem, 0, len(views)), NextCursor: paging.Next(next)}
	for _, v := range views {
		out.Items = append(out.Items, SubscriptionItem{
			SubscriptionID: v.SubscriptionID, ScopeID: v.ScopeID, URL: v.URL, EventTypes: v.EventTypes,
			Status: string(v.Status), CreatedAt: formatTime(v.CreatedAt), UpdatedAt: formatTime(v.UpdatedAt),
		})
	}
	return out, nil
}
