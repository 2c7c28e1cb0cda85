package app

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/paging"
)

// ListAPIKeysInput is the body of list-api-keys.
type ListAPIKeysInput struct {
	ServiceAccountID string `json:"serviceAccountId" validate:"omitempty,max=64"`
	Limit            *int   `json:"limit" validate:"omitempty,min=1,max=100"`
	Cursor           string `json:"cursor" validate:"omitempty,max=1024"`
}

// APIKeyItem is one API key in a list: never its secret or hash.
type APIKeyItem struct {
	APIKeyID         string  `json:"apiKeyId"`
	Name             *string `json:"name"` // null when issued without one
	ServiceAccountID string  `json:"serviceAccountId"`
	CreatedAt        string  `json:"createdAt"`
	Revoked          bool    `json:"revoked"`
	RevokedAt        *string `json:"revokedAt"`
	// LastUsedAt is when the key last authenticated a call, to within an
	// hour (a use is recorded at most once per key per hour per instance);
	// null when no use was recorded.
	LastUsedAt *string `json:"lastUsedAt"`
}

// ListAPIKeysOutput is one page of API keys.
type ListAPIKeysOutput struct {
	Items      []APIKeyItem `json:"items"`
	NextCursor *string      `json:"nextCursor"` // null on the last page
}

// ListAPIKeysHandler runs list-api-keys: the API keys of one service account,
// or of the whole tenant, revoked ones included, newest first.
type ListAPIKeysHandler struct {
	repo  Repository
	reads ReadModel
}

// Handle implements the query. With serviceAccountId it decides on that
// account (in its own scope; 404 when it is malformed, missing or of another
// tenant), else on the tenant (its root scope). Errors: 400 for a limit
// outside 1..100 or a cursor this list did not issue.
func (h ListAPIKeysHandler) Handle(ctx context.Context, in ListAPIKeysInput) (ListAPIKeysOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return ListAPIKeysOutput{}, err
	}
	limit, err := paging.Limit(in.Limit)
	if err != nil {
		return ListAPIKeysOutput{}, err
	}
	if in.ServiceAccountID != "" {
		if _, err := requireServiceAccount(ctx, h.repo, tenantID, in.ServiceAccountID); err != nil {
			return ListAPIKeysOutput{}, fmt.Errorf("list api keys: %w", err)
		}
	} else {
		t, err := h.repo.Tenant(ctx, tenantID)
		if err != nil {
			return ListAPIKeysOutput{}, fmt.Errorf("list api keys: %w", err)
		}
		if err := authz.Require(ctx, authz.Tenant(tenantID, t.RootScopeID)); err != nil {
			return ListAPIKeysOutput{}, err
		}
	}
	views, next, err := h.reads.ListAPIKeys(ctx, tenantID, in.ServiceAccountID, limit, in.Cursor)
	if err != nil {
		return ListAPIKeysOutput{}, fmt.Errorf("list api keys: %w", err)
	}
	out := ListAPIKeysOutput{Items: make([]APIKeyItem, 0, len(views))}
	for _, v := range views {
		it := APIKeyItem{APIKeyID: v.APIKeyID, ServiceAccountID: v.ServiceAccountID, CreatedAt: formatTime(v.CreatedAt), Revoked: !v.RevokedAt.IsZero()}
		if v.Name != "" {
			name := v.Name
			it.Name = &name
		}
		it.RevokedAt = optionalTime(v.RevokedAt)
		it.LastUsedAt = optionalTime(v.LastUsedAt)
		out.Items = append(out.Items, it)
	}
	if next != "" {
		out.NextCursor = &next
	}
	return out, nil
}
