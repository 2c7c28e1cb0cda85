package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/identity/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// IssueTokenInput is the body of issue-token: nothing (the caller is the subject).
type IssueTokenInput struct{}

// IssueTokenOutput is the answer of issue-token.
type IssueTokenOutput struct {
	AccessToken string `json:"accessToken"`
	TokenType   string `json:"tokenType"` // "Bearer"
	ExpiresIn   int    `json:"expiresIn"` // seconds
}

// IssueTokenHandler runs issue-token: the calling service account's
// credential (an API key, its session) for an access token carrying its
// tenant, its id, the session and its role bindings.
type IssueTokenHandler struct {
	ring     *KeyRing
	repo     Repository
	ids      ids.Generator
	clock    clock.Clock
	lifetime time.Duration
	log      *slog.Logger
}

// Handle implements the command. Any authenticated service account may
// call it (its access rule is the whole decision: no role is needed, the
// token grants nothing the caller does not hold). Called with an access
// token, it issues a new one for the same session whose bindings are those
// of the calling token the key still carries (never more). It records
// identity.access-token-issued (who, when, which key, which session; never
// the token). Errors: 403 for a caller that is not a service account.
func (h IssueTokenHandler) Handle(ctx context.Context, _ IssueTokenInput) (IssueTokenOutput, error) {
	p := invocation.From(ctx).Principal
	if p.Kind != invocation.KindServiceAccount || p.TenantID == "" || !ids.Valid(ids.APIKey, p.CredentialID) {
		return IssueTokenOutput{}, errs.New(errs.KindForbidden, errs.CodeForbidden)
	}
	if g, ok := authz.GuardFrom(ctx); ok {
		g.Allow()
	}
	kid, priv, err := h.ring.Signer(ctx)
	if err != nil {
		return IssueTokenOutput{}, errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(fmt.Errorf("issue token: %w", err))
	}
	now := h.clock.Now().UTC().Truncate(time.Second) // JWT times are whole seconds
	t := auth.AccessToken{
		ID: h.ids.New(ids.AccessToken), TenantID: p.TenantID, ServiceAccountID: p.ID, SessionID: p.CredentialID,
		Roles: p.Roles, IssuedAt: now, ExpiresAt: now.Add(h.lifetime),
	}
	raw, err := auth.SignAccessToken(t, kid, priv)
	if err != nil {
		return IssueTokenOutput{}, fmt.Errorf("issue token: %w", err)
	}
	ev := domain.AccessTokenIssued{
		TokenID: t.ID, ServiceAccountID: t.ServiceAccountID, SessionID: t.SessionID, SigningKeyID: kid,
		Roles: t.Roles, IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt,
	}
	if err := h.repo.SaveTokenIssued(ctx, p.TenantID, ev); err != nil {
		return IssueTokenOutput{}, fmt.Errorf("issue token: %w", err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.InfoContext(ctx, "access token issued", slog.String("tokenId", t.ID), slog.String("sessionId", t.SessionID),
			slog.String("signingKeyId", kid))
	})
	return IssueTokenOutput{AccessToken: raw, TokenType: "Bearer", ExpiresIn: int(h.lifetime / time.Second)}, nil
}
