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
	// ProviderCallTimeout bounds one provider call.
	ProviderCallTimeout = 20 * time.Second
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
// provider and records the outcome, in two phases so that no provider call
// is ever made for a message a client canceled, and no message the provider
// accepted can still be canceled:
//
//  1. The claim: in a unit of work of its own (Runner.Run, committed before
//     any provider call, even when Handle runs in the work Executor's unit),
//     the message is read again, released when it is a due scheduled message
//     (messaging.message-released) and moved to sending
//     (messaging.send-attempt-started, attempt n). A cancel-message that
//     commits first makes the claim conflict and run again: it then sees the
//     message canceled and nothing is called. Once the claim committed,
//     cancel-message answers 409 (status sending).
//
//  2. The call and its outcome: the provider is called outside any commit;
//     the outcome is staged in the Executor's unit (ctx), with the claimed
//     message as the base of the save.
//
//     - An item that runs before the message's sendAt is an error (the work
//     path retries it later).
//     - A message that is not dispatchable (canceled, already sent or failed)
//     is done: a redelivered item changes nothing.
//     - An open attempt (claimed, no outcome recorded: a crash, a store failure
//     or a conflict after the call) is resumed: the provider is called again
//     with the same attempt number and IdempotencyKey = the message id (the
//     same on every attempt and every redelivery), so a provider that
//     accepted once sends nothing new and answers the same provider message id.
//     - Accepted: messaging.message-sent. Refused for good: messaging.message-failed
//     at once. A transient failure: messaging.send-attempt-failed and a new
//     WorkDispatch item due after an exponential backoff (RetryBase *
//     2^(attempt-1), capped at MaxRetryDelay, full jitter), or
//     messaging.message-failed once MaxAttempts attempts failed.
//     - What fails before any provider call could be made (no channel, no
//     provider adapter, unreadable secrets) fails the message without a claim.
//
// Handle returns nil once the outcome is recorded (the item succeeded), and
// an error only when the store fails (or the item ran early), so that the
// work path retries the item.
type DispatchHandler struct {
	Repo Repository
	// Runner commits the claim (phase 1) in a unit of work of its own.
	// Required.
	Runner    *uow.Runner
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
	// CallTimeout bounds one provider call (default ProviderCallTimeout).
	CallTimeout time.Duration
	Logger      *slog.Logger // nil: discard
	// Metrics records MessagesSent with DispatchLatency, and MessagesFailed,
	// after the outcome's commit; nil: none.
	Metrics Metrics
}

// errRanEarly is the error of an item that runs before its message's sendAt.
func errRanEarly(m *domain.Message) error {
	return fmt.Errorf("dispatch %s: scheduled for %s, ran early", m.ID, m.SendAt.UTC().Format(time.RFC3339Nano))
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
	if m.Status == domain.StatusScheduled && m.SendAt != nil && h.Clock.Now().Before(*m.SendAt) {
		return errRanEarly(m)
	}
	if m.Status != domain.StatusScheduled && !m.Dispatchable() {
		log.DebugContext(ctx, "message not dispatchable; nothing to do",
			slog.String("messageId", m.ID), slog.String("status", string(m.Status)))
		return nil
	}

	// What the call needs; what makes it impossible fails the message
	// without a claim (no provider call, nothing to race with).
	prepared, failed, err := h.prepare(ctx, tenantID, m)
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", m.ID, err)
	}
	if failed != "" {
		return h.failUncalled(ctx, log, tenantID, m, failed)
	}

	// Phase 1: the claim, committed before the call.
	if h.Runner == nil {
		return fmt.Errorf("dispatch %s: no unit-of-work runner", m.ID)
	}
	claimed, attempt, err := h.claim(ctx, tenantID, p.MessageID, p.Attempt)
	if err != nil {
		return err
	}
	if claimed == nil {
		log.DebugContext(ctx, "message not dispatchable; nothing to do", slog.String("messageId", m.ID))
		return nil
	}

	// Phase 2: the call, outside any commit; its outcome in ctx's unit.
	prepared.req.Attempt = attempt
	out := h.call(ctx, prepared)
	cur := *claimed
	now := h.Clock.Now()
	var ev domain.Event
	ok := false
	var work []Work
	switch {
	case out.sendErr == nil:
		ev, ok = cur.Sent(out.res.ProviderMessageID, attempt)
	case !IsTransient(out.sendErr):
		ev, ok = cur.Fail(sendReason(out.sendErr, ReasonProviderRejected), attempt)
	case attempt < h.maxAttempts():
		retryAt := now.Add(h.backoff(attempt))
		ev, ok = cur.AttemptFailed(attempt, sendReason(out.sendErr, ReasonProviderUnavailable), retryAt)
		work = append(work, Work{Type: WorkDispatch, Payload: DispatchPayload{MessageID: m.ID, Attempt: attempt + 1}, DueAt: retryAt})
	default:
		ev, ok = cur.Fail(sendReason(out.sendErr, ReasonProviderUnavailable), attempt)
	}
	if !ok {
		return nil
	}
	cur.Apply(domain.Recorded{Event: ev, Version: cur.Version + 1, OccurredAt: now})
	events := []domain.Event{ev}
	outcome := cur // the message after the call's outcome (a receipt may follow in the same commit)
	if sent, isSent := ev.(domain.MessageSent); isSent && uow.Attempt(ctx) > 1 {
		// A receipt that came before this commit waits in the provider
		// id's lookup row (PendingReceipt): the send's commit, which writes
		// that row only if absent, then conflicts, and this run (a later
		// one of the unit of work) applies the receipt with the send. The
		// first run does not read the row: the race is rare, the read is not.
		waiting, err := h.Repo.PendingReceipt(ctx, tenantID, cur.ChannelID, sent.ProviderMessageID)
		if err != nil {
			return fmt.Errorf("dispatch %s: %w", m.ID, err)
		}
		if waiting != nil {
			if rev, ok := cur.Receipt(waiting.Status, waiting.Reason); ok {
				cur.Apply(domain.Recorded{Event: rev, Version: cur.Version + 1, OccurredAt: now})
				events = append(events, rev)
			}
		}
	}
	if err := h.Repo.SaveMessage(ctx, tenantID, claimed, events, work...); err != nil {
		return fmt.Errorf("dispatch %s: %w", m.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.logOutcome(ctx, log, &outcome, attempt, out.sendErr)
		h.recordOutcome(ctx, &outcome, now)
		if len(events) > 1 {
			log.InfoContext(ctx, "receipt recorded with the send (it came first)", slog.String("messageId", cur.ID),
				slog.String("status", string(cur.Status)))
			if cur.Status == domain.StatusDelivered {
				countMessage(ctx, h.Metrics, MetricMessagesDelivered, cur.ChannelType)
			}
		}
	})
	return nil
}

// claim commits phase 1 in a unit of work of its own: it reads the message
// again, releases it when it is a due scheduled message and starts (or
// resumes) an attempt. It returns the claimed message and the attempt
// number, or nil when the message is not dispatchable (canceled meanwhile).
func (h DispatchHandler) claim(ctx context.Context, tenantID, messageID string, want int) (*domain.Message, int, error) {
	var (
		claimed *domain.Message
		attempt int
	)
	err := h.Runner.Run(ctx, tenantID, func(ctx context.Context) error {
		claimed, attempt = nil, 0
		m, err := h.Repo.Message(ctx, tenantID, messageID)
		if errs.KindOf(err) == errs.KindNotFound {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dispatch %s: %w", messageID, err)
		}
		now := h.Clock.Now()
		cur := *m
		var events []domain.Event
		record := func(ev domain.Event) {
			events = append(events, ev)
			cur.Apply(domain.Recorded{Event: ev, Version: cur.Version + 1, OccurredAt: now})
		}
		if cur.Status == domain.StatusScheduled {
			if cur.SendAt != nil && now.Before(*cur.SendAt) {
				return errRanEarly(&cur)
			}
			if ev, ok := cur.Release(); ok {
				record(ev)
			}
		}
		ev, n, ok := cur.StartAttempt(want)
		if !ok {
			return nil
		}
		if ev != nil {
			record(ev)
		}
		if len(events) > 0 {
			if err := h.Repo.SaveMessage(ctx, tenantID, m, events); err != nil {
				return fmt.Errorf("dispatch %s: claim: %w", messageID, err)
			}
		}
		claimed, attempt = &cur, n
		return nil
	}, nil)
	if err != nil {
		return nil, 0, err
	}
	return claimed, attempt, nil
}

// failUncalled fails a message no provider call can be made for (reason),
// in ctx's unit of work, with m as read as the base.
func (h DispatchHandler) failUncalled(ctx context.Context, log *slog.Logger, tenantID string, m *domain.Message, reason string) error {
	now := h.Clock.Now()
	cur := *m
	var events []domain.Event
	record := func(ev domain.Event) {
		events = append(events, ev)
		cur.Apply(domain.Recorded{Event: ev, Version: cur.Version + 1, OccurredAt: now})
	}
	if ev, ok := cur.Release(); ok {
		record(ev)
	}
	// attempts counts provider calls: none is made here (an open attempt,
	// claimed before a crash, is counted already).
	attempt := cur.Attempts
	ev, ok := cur.Fail(reason, attempt)
	if !ok {
		return nil
	}
	record(ev)
	if err := h.Repo.SaveMessage(ctx, tenantID, m, events); err != nil {
		return fmt.Errorf("dispatch %s: %w", m.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.logOutcome(ctx, log, &cur, attempt, nil)
		h.recordOutcome(ctx, &cur, now)
	})
	return nil
}

// logOutcome logs a recorded outcome (after its commit).
func (h DispatchHandler) logOutcome(ctx context.Context, log *slog.Logger, m *domain.Message, attempt int, sendErr error) {
	attrs := []any{slog.String("messageId", m.ID), slog.String("channelId", m.ChannelID),
		slog.String("status", string(m.Status)), slog.Int("attempt", attempt)}
	if m.StatusReason != "" {
		attrs = append(attrs, slog.String("reason", m.StatusReason))
	}
	if sendErr != nil {
		attrs = append(attrs, slog.String("error", sendErr.Error()))
	}
	switch m.Status {
	case domain.StatusSent:
		log.InfoContext(ctx, "message sent", append(attrs, slog.String("providerMessageId", m.ProviderMessageID))...)
	case domain.StatusSending:
		log.WarnContext(ctx, "send attempt failed; will retry", attrs...)
	default:
		log.InfoContext(ctx, "message dispatched", attrs...)
	}
}

// recordOutcome records the metrics of a committed outcome (at: when it was
// recorded, after the provider answered): a sent message with its dispatch
// latency, or a failed one. A retry to come records nothing.
func (h DispatchHandler) recordOutcome(ctx context.Context, m *domain.Message, at time.Time) {
	switch m.Status {
	case domain.StatusSent:
		recordSent(ctx, h.Metrics, m, at)
	case domain.StatusFailed:
		countMessage(ctx, h.Metrics, MetricMessagesFailed, m.ChannelType)
	}
}

// preparedCall is a provider call ready to be made (but its attempt number).
type preparedCall struct {
	provider Provider
	req      SendRequest
}

// sendOutcome is the result of one provider call.
type sendOutcome struct {
	res     SendResult
	sendErr error
}

// prepare reads the message's channel and opens its secrets. failed is the
// reason the message fails without a call; the error is an infrastructure
// failure (the key service did not answer): retry the item.
func (h DispatchHandler) prepare(ctx context.Context, tenantID string, m *domain.Message) (preparedCall, string, error) {
	ch, err := h.Repo.Channel(ctx, tenantID, m.ChannelID)
	if errs.KindOf(err) == errs.KindNotFound {
		return preparedCall{}, ReasonChannelNotFound, nil
	}
	if err != nil {
		return preparedCall{}, "", err
	}
	provider, err := h.Providers.Get(ch.Provider)
	if err != nil {
		return preparedCall{}, ReasonProviderNotConfigured, nil
	}
	creds, secret, err := h.openSecrets(ctx, tenantID, ch)
	if errors.Is(err, secrets.ErrDecrypt) {
		return preparedCall{}, ReasonChannelSecrets, nil
	}
	if err != nil {
		return preparedCall{}, "", err
	}
	return preparedCall{provider: provider, req: SendRequest{
		IdempotencyKey:    m.ID,
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
	}}, "", nil
}

// call makes one provider call.
func (h DispatchHandler) call(ctx context.Context, c preparedCall) sendOutcome {
	// A provider that never answers must not hold the message (and a worker)
	// forever: the call is bounded, and a timeout is a transient failure.
	timeout := h.CallTimeout
	if timeout <= 0 {
		timeout = ProviderCallTimeout
	}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, sendErr := c.provider.Send(callCtx, c.req)
	if sendErr == nil && res.ProviderMessageID == "" {
		sendErr = &SendError{Transient: true, Reason: ReasonProviderUnavailable, Err: errors.New("accepted without a provider message id")}
	}
	return sendOutcome{res: res, sendErr: sendErr}
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
