package app

import (
	"context"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// IssueAPIKeyInput is the body of issue-api-key. Name is optional (an
// addition to the contract): a label shown by list-api-keys.
type IssueAPIKeyInput struct {
	ServiceAccountID string `json:"serviceAccountId" validate:"required,max=64"`
	Name             string `json:"name" validate:"omitempty,max=200"`
}

// IssueAPIKeyOutput is the answer of issue-api-key. APIKey is shown only
// here; only its hash is stored. (With an Idempotency-Key the edge keeps
// this answer for replay, encrypted with the tenant's data key.)
type IssueAPIKeyOutput struct {
	APIKeyID string `json:"apiKeyId"`
	APIKey   string `json:"apiKey"`
}

// IssueAPIKeyHandler runs issue-api-key: a new API key of a service account,
// carrying the account's role bindings.
type IssueAPIKeyHandler struct {
	repo Repository
	ids  ids.Generator
	log  *slog.Logger
}

// Handle implements the command. It decides on the service account (in its
// own scope) and on each of its bindings (requireCanHold: a key carries them
// all, so the caller must hold them). Errors: 403 for an account holding
// more than the caller; 404 errs.NotFound("service_account") for a malformed,
// missing or another tenant's id; 400 errors.tenancy.invalid_name; 409
// errors.tenancy.too_many_api_keys when the account has
// domain.MaxActiveAPIKeys active keys.
func (h IssueAPIKeyHandler) Handle(ctx context.Context, in IssueAPIKeyInput) (IssueAPIKeyOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return IssueAPIKeyOutput{}, err
	}
	sva, err := requireServiceAccount(ctx, h.repo, tenantID, in.ServiceAccountID)
	if err != nil {
		return IssueAPIKeyOutput{}, fmt.Errorf("issue api key: %w", err)
	}
	if err := requireCanHold(ctx, h.repo, tenantID, sva); err != nil {
		return IssueAPIKeyOutput{}, fmt.Errorf("issue api key: %w", err)
	}
	// A fresh id and secret on every run: a run again after a conflict
	// answers the key it committed.
	keyID, secret := h.ids.New(ids.APIKey), auth.NewSecret()
	issued, err := sva.IssueAPIKey(keyID, auth.HashSecret(secret), in.Name)
	if err != nil {
		return IssueAPIKeyOutput{}, err
	}
	err = h.repo.Save(ctx, Changes{TenantID: tenantID, Aggregates: []Change{{Base: sva.Version, Events: []domain.Event{issued}}}})
	if err != nil {
		return IssueAPIKeyOutput{}, fmt.Errorf("issue api key %s: %w", keyID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.InfoContext(ctx, "api key issued", slog.String("apiKeyId", keyID), slog.String("serviceAccountId", sva.ID))
	})
	return IssueAPIKeyOutput{APIKeyID: keyID, APIKey: auth.FormatAPIKey(keyID, secret)}, nil
}
