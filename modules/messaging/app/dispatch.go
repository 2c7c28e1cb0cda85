package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// Defaults of DispatchHandler.
const (
	DefaultDispatchAttempts = 5
	DefaultRetryBase        = time.Second
	DefaultMaxRetryDelay    = 5 * time.Minute
)

// Reasons the dispatcher records itself (a message's statusReason). Persisted
// and public. Providers' own reasons are theirs ("sandbox.invalid_number").
const (
	// ReasonProviderUnavailable: the provider failed without a reason of its
	// own (a transport error, a timeout).
	ReasonProviderUnavailable = "provider.unavailable"
	// ReasonProviderRejected: the provider refused for good without a reason.
	ReasonProviderRejected = "provider.rejected"
	// ReasonProviderNotConfigured: the channel's provider has no adapter in
	// this deployment.
	ReasonProviderNotConfigured = "provider.not_configured"
	// ReasonChannelNotFound: the message's channel does not exist.
	ReasonChannelNotFound = "channel.not_found"
	// ReasonChannelSecrets: the channel's sealed credentials or inbound
	// secret do not open (a lost key): no retry can help.
	ReasonChannelSecrets = "channel.secrets_unreadable"
)

// DispatchHandler runs WorkDispatch: it hands one message to its channel's
// provider and records the outcome. It runs in the work Executor's unit of
// work, in the item's tenant (invocation.From(ctx).TenantID()).
//
//   - A scheduled message is released (messaging.message-released) and sent
//     in the same save; an item that runs before the message's sendAt is an
//     error (the work path retries it later).
//   - A message that is not dispatchable (canceled, already sent or failed)
//     is done: a redelivered item changes nothing.
//   - The provider is called with IdempotencyKey = the message id, the same
//     on every attempt and every redelivery, so a provider that accepted
//     once sends nothing new and answers the same provider message id.
//   - Accepted: messaging.message-sent. Refused for good: messaging.message-failed
//     at once. A transient failure: messaging.send-attempt-failed and a new
//     WorkDispatch item due after an exponential backoff (RetryBase *
//     2^(attempt-1), capped at MaxRetryDelay, full jitter), or
//     messaging.message-failed once MaxAttempts attempts failed.
//
// Handle returns nil once the outcome is recorded (the item succeeded), and
// an error only when the store fails (or the item ran early), so that the
// work path retries the item.
type DispatchHandler struct {
	Repo      Repository
	Providers Providers
	Sealer    secrets.Sealer
	Clock     clock.Clock
	// PublicURL is the base of the channels' inbound webhook URLs (the
	// sandbox posts its receipts there).
	PublicURL string
	// MaxAttempts is how many provider calls a message gets (default DefaultDispatchAttempts).
	MaxAttempts int
	// RetryBase is the backoff of the first retry (default DefaultRetryBase).
	RetryBase time.Duration
	// MaxRetryDelay caps the backoff (default DefaultMaxRetryDelay).
	MaxRetryDelay time.Duration
	Logger        *slog.Logger // nil: discard
}

// Handle dispatches one message. See DispatchHandler.
func (h DispatchHandler) Handle(ctx context.Context, p DispatchPayload) error {
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tenantID := invocation.From(ctx).TenantID()
	if tenantID == "" {
		return fmt.Errorf("dispatch %s: no tenant in the invocation", p.MessageID)
	}
	m, err := h.Repo.Message(ctx, tenantID, p.MessageID)
	if errs.KindOf(err) == errs.KindNotFound {
		log.WarnContext(ctx, "dispatch of a message that does not exist; dropped", slog.String("messageId", p.MessageID))
		return nil
	}
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", p.MessageID, err)
	}
	now := h.Clock.Now()

	// cur is the message as the new events move it; m stays as read (the
	// base of the save).
	cur := *m
	var events []domain.Event
	record := func(ev domain.Event) {
		events = append(events, ev)
		cur.Apply(domain.Recorded{Event: ev, Version: cur.Version + 1, OccurredAt: now})
	}
	if m.Status == domain.StatusScheduled {
		if m.SendAt != nil && now.Before(*m.SendAt) {
			return fmt.Errorf("dispatch %s: scheduled for %s, ran early", m.ID, m.SendAt.UTC().Format(time.RFC3339Nano))
		}
		if ev, ok := cur.Release(); ok {
			record(ev)
		}
	}
	if !cur.Dispatchable() {
		log.DebugContext(ctx, "message not dispatchable; nothing to do",
			slog.String("messageId", m.ID), slog.String("status", string(m.Status)))
		return nil
	}
	attempt := cur.Attempts + 1

	out, err := h.send(ctx, tenantID, &cur, attempt)
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", m.ID, err)
	}
	var ev domain.Event
	ok := false
	var work []Work
	switch {
	case out.failed != "":
		ev, ok = cur.Fail(out.failed, attempt)
	case out.sendErr == nil:
		ev, ok = cur.Sent(out.res.ProviderMessageID, attempt)
	case !IsTransient(out.sendErr):
		ev, ok = cur.Fail(sendReason(out.sendErr, ReasonProviderRejected), attempt)
	case attempt < h.maxAttempts():
		retryAt := h.Clock.Now().Add(h.backoff(attempt))
		ev, ok = cur.AttemptFailed(attempt, sendReason(out.sendErr, ReasonProviderUnavailable), retryAt)
		work = append(work, Work{Type: WorkDispatch, Payload: DispatchPayload{MessageID: m.ID}, DueAt: retryAt})
	default:
		ev, ok = cur.Fail(sendReason(out.sendErr, ReasonProviderUnavailable), attempt)
	}
	if ok {
		record(ev)
	}
	if len(events) == 0 {
		return nil
	}
	if err := h.Repo.SaveMessage(ctx, tenantID, m, events, work...); err != nil {
		return fmt.Errorf("dispatch %s: %w", m.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		attrs := []any{slog.String("messageId", m.ID), slog.String("channelId", m.ChannelID),
			slog.String("status", string(cur.Status)), slog.Int("attempt", attempt)}
		if cur.StatusReason != "" {
			attrs = append(attrs, slog.String("reason", cur.StatusReason))
		}
		if out.sendErr != nil {
			attrs = append(attrs, slog.String("error", out.sendErr.Error()))
		}
		switch cur.Status {
		case domain.StatusSent:
			log.InfoContext(ctx, "message sent", append(attrs, slog.String("providerMessageId", cur.ProviderMessageID))...)
		case domain.StatusSending:
			log.WarnContext(ctx, "send attempt failed; will retry", attrs...)
		default:
			log.InfoContext(ctx, "message dispatched", attrs...)
		}
	})
	return nil
}

// sendOutcome is the result of one provider call, or the reason the message
// fails without one (failed).
type sendOutcome struct {
	res     SendResult
	sendErr error
	failed  string
}

// send prepares and makes the provider call of one attempt. Its error is an
// infrastructure failure (the key service did not answer): retry the item.
func (h DispatchHandler) send(ctx context.Context, tenantID string, m *domain.Message, attempt int) (sendOutcome, error) {
	ch, err := h.Repo.Channel(ctx, tenantID, m.ChannelID)
	if errs.KindOf(err) == errs.KindNotFound {
		return sendOutcome{failed: ReasonChannelNotFound}, nil
	}
	if err != nil {
		return sendOutcome{}, err
	}
	provider, err := h.Providers.Get(ch.Provider)
	if err != nil {
		return sendOutcome{failed: ReasonProviderNotConfigured}, nil
	}
	creds, secret, err := h.openSecrets(ctx, tenantID, ch)
	if errors.Is(err, secrets.ErrDecrypt) {
		return sendOutcome{failed: ReasonChannelSecrets}, nil
	}
	if err != nil {
		return sendOutcome{}, err
	}
	res, sendErr := provider.Send(ctx, SendRequest{
		IdempotencyKey:    m.ID,
		Attempt:           attempt,
		TenantID:          tenantID,
		ChannelID:         ch.ID,
		ChannelType:       ch.Type,
		From:              ch.From,
		To:                m.To,
		Content:           m.Content,
		Config:            ch.Config,
		Credentials:       creds,
		InboundWebhookURL: InboundWebhookURL(h.PublicURL, ch.Provider, ch.ID),
		InboundSecret:     secret,
	})
	if sendErr == nil && res.ProviderMessageID == "" {
		sendErr = &SendError{Transient: true, Reason: ReasonProviderUnavailable, Err: errors.New("accepted without a provider message id")}
	}
	return sendOutcome{res: res, sendErr: sendErr}, nil
}

// openSecrets opens a channel's sealed credentials (a JSON object of
// strings) and inbound secret. Errors wrapping secrets.ErrDecrypt never go
// away; others may.
func (h DispatchHandler) openSecrets(ctx context.Context, tenantID string, ch *domain.Channel) (map[string]string, string, error) {
	var creds map[string]string
	if len(ch.SealedCredentials) > 0 {
		plain, err := h.Sealer.Open(ctx, tenantID, PurposeCredentials, ch.SealedCredentials)
		if err != nil {
			return nil, "", fmt.Errorf("open credentials of %s: %w", ch.ID, err)
		}
		if err := json.Unmarshal(plain, &creds); err != nil {
			return nil, "", fmt.Errorf("decode credentials of %s: %w", ch.ID, errors.Join(secrets.ErrDecrypt, err))
		}
	}
	var secret string
	if len(ch.SealedInboundSecret) > 0 {
		plain, err := h.Sealer.Open(ctx, tenantID, PurposeInboundSecret, ch.SealedInboundSecret)
		if err != nil {
			return nil, "", fmt.Errorf("open inbound secret of %s: %w", ch.ID, err)
		}
		secret = string(plain)
	}
	return creds, secret, nil
}

func (h DispatchHandler) maxAttempts() int {
	if h.MaxAttempts <= 0 {
		return DefaultDispatchAttempts
	}
	return h.MaxAttempts
}

// backoff is the delay before the attempt after attempt: RetryBase *
// 2^(attempt-1), capped at MaxRetryDelay, with full jitter (0..delay).
func (h DispatchHandler) backoff(attempt int) time.Duration {
	base, ceiling := h.RetryBase, h.MaxRetryDelay
	if base <= 0 {
		base = DefaultRetryBase
	}
	if ceiling <= 0 {
		ceiling = DefaultMaxRetryDelay
	}
	d := ceiling
	if shift := max(attempt-1, 0); shift < 32 {
		if b := base << shift; b > 0 && b < ceiling {
			d = b
		}
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// sendReason is the statusReason of a provider error: its own reason, or def.
func sendReason(err error, def string) string {
	var se *SendError
	if errors.As(err, &se) && se.Reason != "" {
		return se.Reason
	}
	return def
}
