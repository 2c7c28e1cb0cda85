package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// CreateChannelInput is the body of create-channel. Every rule is checked by
// the handler (domain.CheckChannel and the provider), so that one answer
// names every invalid field.
type CreateChannelInput struct {
	ScopeID     string            `json:"scopeId" validate:"required,max=64"`
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Provider    string            `json:"provider"`
	From        string            `json:"from"`
	Config      map[string]string `json:"config"`
	Credentials map[string]string `json:"credentials"`
}

// CreateChannelOutput is the answer of create-channel. InboundSecret (the
// sandbox's Standard Webhooks signing secret) is shown only here, once.
type CreateChannelOutput struct {
	ChannelID         string `json:"channelId"`
	InboundWebhookURL string `json:"inboundWebhookUrl"`
	InboundSecret     string `json:"inboundSecret,omitempty"`
}

// InboundSecretPrefix starts an inbound secret in Standard Webhooks form:
// "whsec_" and the base64 of 24 random bytes.
const InboundSecretPrefix = "whsec_"

// CreateChannelHandler runs create-channel [admin]: a channel of a scope of
// the caller's tenant. Credentials (JSON-encoded) and the inbound secret are
// sealed with the tenant's data key (purposes PurposeCredentials,
// PurposeInboundSecret) before anything is stored; no query returns them.
type CreateChannelHandler struct {
	Repo      Repository
	Scopes    Scopes
	Sealer    secrets.Sealer
	Providers Providers
	IDs       ids.Generator
	PublicURL string
	Logger    *slog.Logger
}

// Handle implements the command. Errors: 404 errs.NotFound("scope") for a
// scope that is missing, malformed or of another tenant; 400 with every
// invalid field (name, type, provider, from, config.<key>, credentials.<key>).
func (h CreateChannelHandler) Handle(ctx context.Context, in CreateChannelInput) (CreateChannelOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return CreateChannelOutput{}, err
	}
	if !ids.Valid(ids.Scope, in.ScopeID) {
		return CreateChannelOutput{}, errs.NotFound("scope")
	}
	path, err := h.Scopes.ScopePath(ctx, tenantID, in.ScopeID)
	if err != nil {
		return CreateChannelOutput{}, fmt.Errorf("create channel: scope %s: %w", in.ScopeID, err)
	}
	// A channel is created in its scope: decide on the scope, as loaded.
	if err := authz.Require(ctx, authz.Resource{Type: "scope", ID: in.ScopeID, ScopePath: path}); err != nil {
		return CreateChannelOutput{}, err
	}
	nc := domain.NewChannel{
		ChannelID: h.IDs.New(ids.Channel), ScopeID: in.ScopeID, ScopePath: path, Name: in.Name,
		Type: domain.ChannelType(in.Type), Provider: in.Provider, From: in.From, Config: in.Config, Credentials: in.Credentials,
	}
	name, err := h.check(nc)
	if err != nil {
		return CreateChannelOutput{}, err
	}
	var sealedCreds, sealedSecret []byte
	if len(in.Credentials) > 0 {
		plain, err := json.Marshal(in.Credentials)
		if err != nil {
			return CreateChannelOutput{}, fmt.Errorf("create channel %s: encode credentials: %w", nc.ChannelID, err)
		}
		if sealedCreds, err = h.Sealer.Seal(ctx, tenantID, PurposeCredentials, plain); err != nil {
			return CreateChannelOutput{}, fmt.Errorf("create channel %s: seal credentials: %w", nc.ChannelID, err)
		}
	}
	var secret string
	if nc.Provider == domain.ProviderSandbox {
		if secret, err = newInboundSecret(); err != nil {
			return CreateChannelOutput{}, fmt.Errorf("create channel %s: %w", nc.ChannelID, err)
		}
		if sealedSecret, err = h.Sealer.Seal(ctx, tenantID, PurposeInboundSecret, []byte(secret)); err != nil {
			return CreateChannelOutput{}, fmt.Errorf("create channel %s: seal inbound secret: %w", nc.ChannelID, err)
		}
	}
	created := domain.CreateChannel(nc, name, sealedCreds, sealedSecret)
	if err := h.Repo.SaveChannel(ctx, tenantID, Change{Events: []domain.Event{created}}); err != nil {
		return CreateChannelOutput{}, fmt.Errorf("create channel %s: %w", nc.ChannelID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.Logger.InfoContext(ctx, "channel created", slog.String("channelId", created.ChannelID),
			slog.String("scopeId", created.ScopeID), slog.String("type", string(created.Type)), slog.String("provider", created.Provider))
	})
	return CreateChannelOutput{
		ChannelID:         created.ChannelID,
		InboundWebhookURL: InboundWebhookURL(h.PublicURL, created.Provider, created.ChannelID),
		InboundSecret:     secret,
	}, nil
}

// check runs the domain's rules and the provider's, and answers every
// invalid field at once.
func (h CreateChannelHandler) check(nc domain.NewChannel) (string, error) {
	name, err := domain.CheckChannel(nc)
	var fields []errs.FieldError
	if err != nil {
		fields = errs.As(err).Fields
	}
	p, perr := h.Providers.Get(nc.Provider)
	switch {
	case nc.Provider == "":
		fields = append(fields, errs.FieldError{Field: "provider", Code: domain.CodeRequired})
	case perr != nil:
		fields = append(fields, errs.As(perr).Fields...)
	case len(fields) == 0:
		// The provider's own rules, on a channel that passed the common ones.
		if err := p.CheckChannel(nc.Type, nc.From, nc.Config, nc.Credentials); err != nil {
			e := errs.As(err)
			if e.Kind != errs.KindInvalid {
				return "", fmt.Errorf("create channel: provider %s: %w", nc.Provider, err)
			}
			fields = append(fields, e.Fields...)
			if len(e.Fields) == 0 {
				return "", e
			}
		}
	}
	if len(fields) > 0 {
		return "", errs.Invalid(fields...)
	}
	return name, nil
}

// newInboundSecret returns a new Standard Webhooks secret: "whsec_" and the
// standard base64 of 24 random bytes.
func newInboundSecret() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("inbound secret: %w", err)
	}
	return InboundSecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}
