package ports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/problem"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// WebhookPattern is the route of provider webhooks (contract section 8).
const WebhookPattern = "POST /webhooks/{provider}/{channelId}"

// Limits of the webhook route.
const (
	// MaxWebhookBody bounds a webhook's body (413 beyond).
	MaxWebhookBody = 256 << 10
	// WebhookDedupeTTL is how long a webhook-id is remembered per channel.
	WebhookDedupeTTL = 7 * 24 * time.Hour
)

// WebhookDedupeKey is the idempotency key under which a channel's webhook
// with this id is recorded; a repeat commits nothing.
func WebhookDedupeKey(channelID, webhookID string) string {
	return "webhook:" + channelID + ":" + webhookID
}

// WebhookDeps are what the webhook route needs.
type WebhookDeps struct {
	Reads     app.ReadModel
	Repo      app.Repository
	Providers app.Providers
	Sealer    secrets.Sealer
	Runner    *uow.Runner // the edge's (rpc.Server.Runner): its AfterCommit hands the work to the relay
	IDs       ids.Generator
	Clock     clock.Clock
	Logger    *slog.Logger // nil: discard
}

// WebhookRoute serves WebhookPattern: a provider's receipt or inbound
// message, authenticated by the provider's own signature (never a bearer
// credential). Mount it on the rpc.Server (Server.Handle), which provides
// the invocation context, recovery and the access log.
//
// It checks, in order: the channel id (malformed, unknown, or of another
// provider: 404), the body size (413), the signature and timestamp with the
// channel's inbound secret (401), the body (400, only after a valid
// signature). It then commits, in one unit of work of the channel's tenant,
// a WorkProviderWebhook item with an idempotency record under
// WebhookDedupeKey, and answers 204 at once: processing is asynchronous. A
// repeated webhook-id answers 204 again and commits nothing.
func WebhookRoute(d WebhookDeps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := d.serve(w, r); err != nil {
			ctx := r.Context()
			ic := invocation.From(ctx)
			e := errs.As(err)
			if e.Kind == errs.KindInternal || e.Kind == errs.KindUnavailable {
				d.Logger.ErrorContext(ctx, "provider webhook failed", slog.String("code", e.Code), slog.String("error", err.Error()))
			} else {
				d.Logger.DebugContext(ctx, "provider webhook rejected", slog.String("code", e.Code), slog.String("error", err.Error()))
			}
			problem.Write(w, err, ic.Locale, ic.InvocationID)
		}
	})
}

var errChannelNotFound = errs.NotFound("channel")

func (d WebhookDeps) serve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	channelID, providerName := r.PathValue("channelId"), r.PathValue("provider")
	provider, err := d.Providers.Get(providerName)
	if err != nil || !ids.Valid(ids.Channel, channelID) {
		return errChannelNotFound
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.New(errs.KindTooLarge, errs.CodeTooLarge).With("limit", MaxWebhookBody)
		}
		return errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", "the body could not be read")
	}

	tenantID, err := d.Reads.ChannelTenant(ctx, channelID)
	if err != nil {
		return lookupError(err)
	}
	ch, err := d.Repo.Channel(ctx, tenantID, channelID)
	if err != nil {
		return lookupError(err)
	}
	if ch.Provider != providerName {
		return errChannelNotFound
	}
	var secret []byte
	if len(ch.SealedInboundSecret) > 0 {
		if secret, err = d.Sealer.Open(ctx, tenantID, app.PurposeInboundSecret, ch.SealedInboundSecret); err != nil {
			err = fmt.Errorf("webhook %s: open inbound secret: %w", channelID, err)
			if errors.Is(err, secrets.ErrDecrypt) {
				return err // a lost key: a bug, not the caller's (500)
			}
			return errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(err)
		}
	}
	webhookID, err := provider.VerifyWebhook(secret, r.Header, body, d.Clock.Now())
	if err != nil {
		if errs.KindOf(err) != errs.KindUnauthenticated {
			err = app.ErrBadSignature.Wrap(err)
		}
		return err
	}
	ev, err := provider.ParseWebhook(body)
	if err != nil {
		if errs.KindOf(err) != errs.KindInvalid {
			err = errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", "the body is not a webhook of this provider").Wrap(err)
		}
		return err
	}
	if ev.Kind == app.EventInbound {
		if err := domain.CheckInbound(ch.Type, ev.From, ev.To); err != nil {
			return err
		}
	}

	if err := d.accept(ctx, tenantID, channelID, webhookID, body, ev); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// accept commits the webhook's work item with its dedupe record. The
// request's invocation continues in the channel's tenant, as the system.
func (d WebhookDeps) accept(ctx context.Context, tenantID, channelID, webhookID string, body []byte, ev app.ProviderEvent) error {
	ic := *invocation.From(ctx)
	ic.Principal = invocation.Principal{Kind: invocation.KindSystem, ID: string(invocation.KindSystem), TenantID: tenantID}
	ctx = invocation.With(ctx, &ic)

	payload, err := eventstore.MarshalJSON(app.ProviderWebhookPayload{ChannelID: channelID, WebhookID: webhookID, Event: ev})
	if err != nil {
		return fmt.Errorf("webhook %s: encode payload: %w", webhookID, err)
	}
	now := d.Clock.Now()
	entry := eventstore.OutboxEntry{
		ID: d.IDs.New(ids.Work), TenantID: tenantID, Type: app.WorkProviderWebhook,
		Payload: payload, DueAt: now, Invocation: ic.Meta(),
	}
	sum := sha256.Sum256(body)
	err = d.Runner.Run(ctx, tenantID, func(ctx context.Context) error {
		return eventstore.Write(ctx, d.Runner.Store, &eventstore.Commit{TenantID: tenantID, Outbox: []eventstore.OutboxEntry{entry}})
	}, func(_ context.Context, c *eventstore.Commit) error {
		c.Idempotency = &eventstore.Idempotency{
			TenantID: tenantID, Key: WebhookDedupeKey(channelID, webhookID),
			Fingerprint: hex.EncodeToString(sum[:]), Status: http.StatusNoContent, Body: json.RawMessage(`{}`),
			CreatedAt: now, ExpiresAt: now.Add(WebhookDedupeTTL),
		}
		return nil
	})
	switch {
	case err == nil:
		d.Logger.InfoContext(ctx, "provider webhook accepted", slog.String("channelId", channelID),
			slog.String("webhookId", webhookID), slog.String("kind", ev.Kind), slog.String("workId", entry.ID))
		return nil
	case errors.Is(err, eventstore.ErrTooLarge):
		return errs.New(errs.KindTooLarge, errs.CodeTooLarge).With("limit", eventstore.MaxOutboxPayload).Wrap(err)
	case errors.Is(err, eventstore.ErrDuplicate):
		d.Logger.DebugContext(ctx, "provider webhook repeated; nothing to do", slog.String("channelId", channelID),
			slog.String("webhookId", webhookID))
		return nil
	default:
		return errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(fmt.Errorf("webhook %s: %w", webhookID, err))
	}
}

// lookupError maps a failed channel lookup: not found is 404, anything
// else a store failure (503).
func lookupError(err error) error {
	if errs.KindOf(err) == errs.KindNotFound {
		return errChannelNotFound
	}
	return errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(err)
}
