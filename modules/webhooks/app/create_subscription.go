package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// SecretBytes is the size of a subscription's signing key (HMAC-SHA256 key).
const SecretBytes = 32

// SecretPrefix starts every secret in Standard Webhooks form.
const SecretPrefix = "whsec_"

// CreateSubscriptionInput is the body of create-subscription.
type CreateSubscriptionInput struct {
	ScopeID    string   `json:"scopeId" validate:"required,max=64"`
	URL        string   `json:"url" validate:"required,max=2048"`
	EventTypes []string `json:"eventTypes" validate:"required,min=1,max=7"`
}

// CreateSubscriptionOutput is the answer of create-subscription. Secret is
// shown only here, once; it is stored sealed.
type CreateSubscriptionOutput struct {
	SubscriptionID string `json:"subscriptionId"`
	Secret         string `json:"secret"` // "whsec_" + base64 of SecretBytes random bytes
}

// CreateSubscriptionHandler runs create-subscription: a new endpoint of a
// tenant app at a scope, receiving the events of the messages in that scope
// and every scope below it.
type CreateSubscriptionHandler struct {
	Repo    Repository
	Scopes  Scopes
	Targets Targets
	Sealer  secrets.Sealer
	IDs     ids.Generator
	Logger  *slog.Logger
}

// Handle implements the command. Errors: 404 errs.NotFound("scope") for a
// scope that is missing or of another tenant; 403; 400 for a bad URL
// (errors.webhook.invalid_url), event types
// (errors.webhook.invalid_event_types), or a URL whose host is or resolves
// to a forbidden address (errors.webhook.target_forbidden).
func (h CreateSubscriptionHandler) Handle(ctx context.Context, in CreateSubscriptionInput) (CreateSubscriptionOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return CreateSubscriptionOutput{}, err
	}
	if !ids.Valid(ids.Scope, in.ScopeID) {
		return CreateSubscriptionOutput{}, errs.NotFound("scope")
	}
	path, err := h.Scopes.ScopePath(ctx, tenantID, in.ScopeID)
	if err != nil {
		return CreateSubscriptionOutput{}, fmt.Errorf("create subscription: scope %s: %w", in.ScopeID, err)
	}
	// A subscription is created in its scope: decide on the scope, as loaded.
	if err := authz.Require(ctx, authz.Resource{Type: "scope", ID: in.ScopeID, ScopePath: path}); err != nil {
		return CreateSubscriptionOutput{}, err
	}
	u, err := domain.ParseTargetURL(in.URL)
	if err != nil {
		return CreateSubscriptionOutput{}, err
	}
	if _, err := domain.ParseEventTypes(in.EventTypes); err != nil {
		return CreateSubscriptionOutput{}, err
	}
	if err := h.Targets.Check(ctx, u); err != nil {
		return CreateSubscriptionOutput{}, err
	}
	key := make([]byte, SecretBytes)
	if _, err := rand.Read(key); err != nil {
		return CreateSubscriptionOutput{}, fmt.Errorf("create subscription: secret: %w", err)
	}
	defer clear(key)
	sealed, err := h.Sealer.Seal(ctx, tenantID, PurposeSubscriptionSecret, key)
	if err != nil {
		return CreateSubscriptionOutput{}, fmt.Errorf("create subscription: seal secret: %w", err)
	}
	created, err := domain.CreateSubscription(h.IDs.New(ids.Subscription), path, in.URL, in.EventTypes, sealed)
	if err != nil {
		return CreateSubscriptionOutput{}, err
	}
	err = h.Repo.Save(ctx, Changes{TenantID: tenantID, Subscriptions: []SubscriptionChange{{Events: []domain.Event{created}}}})
	if err != nil {
		return CreateSubscriptionOutput{}, fmt.Errorf("create subscription %s: %w", created.SubscriptionID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.Logger.InfoContext(ctx, "subscription created", slog.String("subscriptionId", created.SubscriptionID),
			slog.String("scopeId", created.ScopeID), slog.String("host", u.Hostname()), slog.Any("eventTypes", created.EventTypes))
	})
	return CreateSubscriptionOutput{
		SubscriptionID: created.SubscriptionID,
		Secret:         SecretPrefix + base64.StdEncoding.EncodeToString(key),
	}, nil
}
