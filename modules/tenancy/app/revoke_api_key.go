package app

import (
	"context"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// RevokeAPIKeyInput is the body of revoke-api-key.
type RevokeAPIKeyInput struct {
	APIKeyID string `json:"apiKeyId" validate:"required,max=64"`
}

// RevokeAPIKeyOutput is the answer of revoke-api-key.
type RevokeAPIKeyOutput struct {
	APIKeyID         string `json:"apiKeyId"`
	ServiceAccountID string `json:"serviceAccountId"`
	Revoked          bool   `json:"revoked"` // always true
}

// RevokeAPIKeyHandler runs revoke-api-key: the key never authenticates again.
// Its lookup row is marked revoked in the same commit; the instance that
// served the call stops accepting it at once (its key cache takes the new
// row), other instances within their cache's TTL (auth.DefaultKeyCacheTTL).
type RevokeAPIKeyHandler struct {
	repo  Repository
	reads ReadModel
	log   *slog.Logger
}

// Handle implements the command. It decides on the key's service account
// (in its own scope). Revoking a revoked key writes nothing and answers 200.
// A caller may revoke the key it called with (the call itself completes).
// Errors: 404 errs.NotFound("api_key") for a malformed, missing or another
// tenant's id.
func (h RevokeAPIKeyHandler) Handle(ctx context.Context, in RevokeAPIKeyInput) (RevokeAPIKeyOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return RevokeAPIKeyOutput{}, err
	}
	if !ids.Valid(ids.APIKey, in.APIKeyID) {
		return RevokeAPIKeyOutput{}, errs.NotFound("api_key")
	}
	owner, err := h.reads.APIKeyOwner(ctx, tenantID, in.APIKeyID)
	if err != nil {
		return RevokeAPIKeyOutput{}, fmt.Errorf("revoke api key %s: %w", in.APIKeyID, err)
	}
	sva, err := requireServiceAccount(ctx, h.repo, tenantID, owner)
	if err != nil {
		return RevokeAPIKeyOutput{}, fmt.Errorf("revoke api key %s: %w", in.APIKeyID, err)
	}
	if err := requireCanHold(ctx, h.repo, tenantID, sva); err != nil {
		return RevokeAPIKeyOutput{}, fmt.Errorf("revoke api key %s: %w", in.APIKeyID, err)
	}
	events, err := sva.RevokeAPIKey(in.APIKeyID)
	if err != nil {
		return RevokeAPIKeyOutput{}, err
	}
	out := RevokeAPIKeyOutput{APIKeyID: in.APIKeyID, ServiceAccountID: sva.ID, Revoked: true}
	if len(events) == 0 {
		return out, nil
	}
	if err := h.repo.Save(ctx, Changes{TenantID: tenantID, Aggregates: []Change{{Base: sva.Version, Events: events}}}); err != nil {
		return RevokeAPIKeyOutput{}, fmt.Errorf("revoke api key %s: %w", in.APIKeyID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.InfoContext(ctx, "api key revoked", slog.String("apiKeyId", in.APIKeyID), slog.String("serviceAccountId", sva.ID))
	})
	return out, nil
}
