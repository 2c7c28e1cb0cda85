// Package sandbox is the sandbox provider: an adapter of app.Provider that
// behaves like an external messaging provider without sending anything, for
// test tenants and for every automated test (contract section 7).
//
// Outcomes are deterministic by recipient (sms: the last four digits of
// "to"; email: the local part, compared without case):
//
//	0001 / fail     refused for good: *app.SendError "sandbox.invalid_number"
//	0002 / retry    transient error on attempts 1 and 2, accepted on 3, then "delivered"
//	0003 / silent   accepted; no receipt ever
//	0004 / bounce   accepted, then "undelivered" with reason "sandbox.carrier_rejected"
//	anything else   accepted, then "delivered"
//
// # Like a real provider
//
// The sandbox keeps its own durable send log in the store, committed in a
// unit of work of its own (not the caller's: a provider's acceptance does not
// roll back with the caller's write):
//
//	stream "sandbox-send-<idempotencyKey>"  one event "sandbox.send-called" per call
//	record "sandbox-sends"/<idempotencyKey> the state of the key (calls, acceptance)
//
// Each call appends at the version it read, so concurrent calls with one key
// are serialized by the store (the loser's unit runs again): a key is accepted
// at most once, and every later call answers the same ProviderMessageID and
// sends nothing new (Sends reports it for tests).
//
// Receipts reach the system as a real provider's do: an accepted send commits,
// in the same sandbox unit, a work item "sandbox.post-receipt" due
// ReceiptDelay later, which POSTs a Standard Webhooks-signed body to the
// channel's inbound webhook URL over HTTP. Its webhook-id ("rcpt_<ULID>") is
// fixed when the item is made, so every retry of the post carries the same
// id; the timestamp and signature are those of each attempt. The channel's
// inbound secret travels in the item sealed (secrets.Sealer, purpose
// PurposeReceiptSecret), never in clear.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// Name is the provider's persisted name.
const Name = domain.ProviderSandbox

// Persisted names of the sandbox's own data and work. Never rename one.
const (
	// CollectionSends holds one row per idempotency key (sendRecord).
	CollectionSends = "sandbox-sends"
	// EventSendCalled is the event of each call, in stream SendStream(key).
	EventSendCalled = "sandbox.send-called"
	// WorkPostReceipt posts one signed receipt: payload receiptPayload.
	WorkPostReceipt = "sandbox.post-receipt"
	// PurposeReceiptSecret seals the channel's inbound secret in a receipt item.
	PurposeReceiptSecret = "sandbox.receipt-secret"
)

// Reasons the sandbox answers. Persisted and public (a message's statusReason).
const (
	ReasonInvalidNumber   = "sandbox.invalid_number"
	ReasonUnavailable     = "sandbox.temporarily_unavailable"
	ReasonCarrierRejected = "sandbox.carrier_rejected"
	ReasonUnsupported     = "sandbox.unsupported_channel_type"
	ReasonBadRequest      = "sandbox.invalid_request"
)

// Id prefixes of the sandbox (provider-side ids, not Switchboard resources).
const (
	prefixProviderMessage = "sbx"
	prefixReceipt         = "rcpt"
)

// DefaultReceiptDelay is how long after an acceptance the receipt is posted.
const DefaultReceiptDelay = 200 * time.Millisecond

// retryAcceptedAt is the attempt at which a "retry" recipient is accepted.
const retryAcceptedAt = 3

// SendStream is the stream of a key's send log.
func SendStream(idempotencyKey string) string { return "sandbox-send-" + idempotencyKey }

// Store is what the sandbox needs of the event store: its own rows and
// commits (through the runner's units).
type Store interface {
	eventstore.Appender
	eventstore.RecordReader
}

// Deps are the sandbox's dependencies.
type Deps struct {
	Store Store
	// Runner commits the sandbox's own units of work; its AfterCommit (the
	// work relay) hands the receipt items to the work path.
	Runner *uow.Runner
	Sealer secrets.Sealer // seals the inbound secret into receipt items
	IDs    ids.Generator
	Clock  clock.Clock
	// HTTPClient posts receipts (default: a client with a 15 s timeout).
	HTTPClient *http.Client
	// ReceiptDelay is the delay of receipts after acceptance (default DefaultReceiptDelay).
	ReceiptDelay time.Duration
	Logger       *slog.Logger // nil: discard
}

// Provider is the sandbox provider. It is safe for concurrent use.
type Provider struct {
	store        Store
	runner       *uow.Runner
	sealer       secrets.Sealer
	ids          ids.Generator
	clock        clock.Clock
	client       *http.Client
	receiptDelay time.Duration
	log          *slog.Logger
}

var _ app.Provider = (*Provider)(nil)

// New returns the sandbox provider.
func New(d Deps) *Provider {
	p := &Provider{store: d.Store, runner: d.Runner, sealer: d.Sealer, ids: d.IDs, clock: d.Clock,
		client: d.HTTPClient, receiptDelay: d.ReceiptDelay, log: d.Logger}
	if p.client == nil {
		p.client = &http.Client{Timeout: 15 * time.Second}
	}
	if p.receiptDelay <= 0 {
		p.receiptDelay = DefaultReceiptDelay
	}
	if p.clock == nil {
		p.clock = clock.System{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With(slog.String("provider", Name))
	return p
}

// Name implements app.Provider.
func (p *Provider) Name() string { return Name }

// CheckChannel implements app.Provider: sms or email, a non-empty from. The
// sandbox needs no credentials and accepts any it is given.
func (p *Provider) CheckChannel(t domain.ChannelType, from string, _, _ map[string]string) error {
	var fields []errs.FieldError
	if t != domain.ChannelSMS && t != domain.ChannelEmail {
		fields = append(fields, errs.FieldError{Field: "type", Code: "errors.validation.one_of",
			Params: map[string]any{"allowed": "sms, email"}})
	}
	if strings.TrimSpace(from) == "" {
		fields = append(fields, errs.FieldError{Field: "from", Code: "errors.validation.required"})
	}
	if len(fields) > 0 {
		return errs.Invalid(fields...)
	}
	return nil
}

// outcome is what the sandbox does with a recipient. Persisted in the send log.
type outcome string

const (
	outcomeDeliver outcome = "deliver"
	outcomeFail    outcome = "fail"
	outcomeRetry   outcome = "retry"
	outcomeSilent  outcome = "silent"
	outcomeBounce  outcome = "bounce"
)

// outcomeOf applies the recipient table of contract section 7.
func outcomeOf(t domain.ChannelType, to string) outcome {
	var key string
	switch t {
	case domain.ChannelSMS:
		if len(to) >= 4 {
			key = to[len(to)-4:]
		}
	case domain.ChannelEmail:
		if i := strings.LastIndexByte(to, '@'); i >= 0 {
			key = strings.ToLower(to[:i])
		}
	}
	switch key {
	case "0001", "fail":
		return outcomeFail
	case "0002", "retry":
		return outcomeRetry
	case "0003", "silent":
		return outcomeSilent
	case "0004", "bounce":
		return outcomeBounce
	}
	return outcomeDeliver
}

// Results of one call. Persisted in the send log.
const (
	resultAccepted  = "accepted"  // accepted now (once per key)
	resultReplayed  = "replayed"  // accepted before: the same answer, nothing sent
	resultTransient = "transient" // a transient error (retry recipients)
	resultRejected  = "rejected"  // refused for good
)

// sendRecord is the row of one idempotency key in CollectionSends.
type sendRecord struct {
	IdempotencyKey    string    `json:"idempotencyKey"`
	ChannelID         string    `json:"channelId"`
	Outcome           outcome   `json:"outcome"`
	Calls             int       `json:"calls"`    // calls received; the stream's version
	Accepted          int       `json:"accepted"` // acceptances recorded (never more than 1)
	ProviderMessageID string    `json:"providerMessageId,omitempty"`
	FirstCallAt       time.Time `json:"firstCallAt"`
	LastCallAt        time.Time `json:"lastCallAt"`
}

// sendCalled is the data of EventSendCalled.
type sendCalled struct {
	Call              int    `json:"call"`
	Attempt           int    `json:"attempt"` // the caller's attempt number
	Result            string `json:"result"`
	ProviderMessageID string `json:"providerMessageId,omitempty"`
}

// Send implements app.Provider. It decides and records the call in one
// sandbox unit of work (with the receipt item when it accepts), then answers.
// A failure of the sandbox's own store is answered as a plain error (the
// provider is unavailable: transient for the caller).
func (p *Provider) Send(ctx context.Context, req app.SendRequest) (app.SendResult, error) {
	if req.TenantID == "" || req.IdempotencyKey == "" || strings.ContainsRune(req.IdempotencyKey, 0) {
		return app.SendResult{}, &app.SendError{Reason: ReasonBadRequest, Err: errors.New("tenant and idempotency key are required")}
	}
	if req.ChannelType != domain.ChannelSMS && req.ChannelType != domain.ChannelEmail {
		return app.SendResult{}, &app.SendError{Reason: ReasonUnsupported, Err: fmt.Errorf("channel type %q", req.ChannelType)}
	}
	var d decision
	err := p.runner.Run(ctx, req.TenantID, func(ctx context.Context) error {
		var err error
		d, err = p.call(ctx, req)
		return err
	}, nil)
	if err != nil {
		return app.SendResult{}, fmt.Errorf("sandbox send %s: %w", req.IdempotencyKey, err)
	}
	p.log.DebugContext(ctx, "sandbox call", slog.String("idempotencyKey", req.IdempotencyKey),
		slog.Int("attempt", req.Attempt), slog.String("result", d.result), slog.String("providerMessageId", d.res.ProviderMessageID))
	return d.res, d.err
}

// decision is the answer to one call.
type decision struct {
	res    app.SendResult
	err    error  // the provider's refusal (*app.SendError), nil when accepted
	result string // resultAccepted, ...
}

// call decides one call from the key's row and stages the call's event, the
// new row and, for a new acceptance, the receipt item.
func (p *Provider) call(ctx context.Context, req app.SendRequest) (decision, error) {
	now := p.clock.Now()
	rec, err := p.load(ctx, req.TenantID, req.IdempotencyKey)
	if err != nil {
		return decision{}, err
	}
	base := rec.Calls
	if base == 0 {
		rec = sendRecord{IdempotencyKey: req.IdempotencyKey, ChannelID: req.ChannelID,
			Outcome: outcomeOf(req.ChannelType, req.To), FirstCallAt: now}
	}
	rec.Calls++
	rec.LastCallAt = now

	var (
		d      decision
		outbox []eventstore.OutboxEntry
	)
	switch {
	case rec.ProviderMessageID != "":
		d.result, d.res.ProviderMessageID = resultReplayed, rec.ProviderMessageID
	case rec.Outcome == outcomeFail:
		d.result, d.err = resultRejected, &app.SendError{Reason: ReasonInvalidNumber}
	case rec.Outcome == outcomeRetry && effectiveAttempt(rec.Calls, req.Attempt) < retryAcceptedAt:
		d.result, d.err = resultTransient, &app.SendError{Transient: true, Reason: ReasonUnavailable}
	default:
		d.result = resultAccepted
		rec.Accepted++
		rec.ProviderMessageID = p.ids.New(prefixProviderMessage)
		d.res.ProviderMessageID = rec.ProviderMessageID
		entry, ok, err := p.receipt(ctx, req, rec, now)
		if err != nil {
			return decision{}, err
		}
		if ok {
			outbox = append(outbox, entry)
		}
	}

	data, err := json.Marshal(sendCalled{Call: rec.Calls, Attempt: req.Attempt, Result: d.result, ProviderMessageID: d.res.ProviderMessageID})
	if err != nil {
		return decision{}, fmt.Errorf("encode call: %w", err)
	}
	row, err := json.Marshal(rec)
	if err != nil {
		return decision{}, fmt.Errorf("encode row: %w", err)
	}
	c := &eventstore.Commit{
		TenantID: req.TenantID,
		Appends: []eventstore.StreamAppend{{
			StreamID:        SendStream(req.IdempotencyKey),
			ExpectedVersion: int64(base),
			Events: []eventstore.Event{{
				ID: p.ids.New(ids.Event), Type: EventSendCalled, SchemaVersion: 1, OccurredAt: now,
				Invocation: invocation.From(ctx).Meta(), Data: data,
			}},
			// The row, written with every call, keeps the stream's version.
			HeadRecord: &eventstore.RecordRef{Collection: CollectionSends, Key: req.IdempotencyKey},
		}},
		Records: []eventstore.Record{{Collection: CollectionSends, Key: req.IdempotencyKey, Data: row}},
		Outbox:  outbox,
	}
	if err := eventstore.Write(ctx, p.store, c); err != nil {
		return decision{}, fmt.Errorf("record call: %w", err)
	}
	return d, nil
}

// effectiveAttempt is the attempt a call counts as for the retry rule: the
// calls the sandbox got for the key, or the caller's attempt number when it
// is lower (a redelivered or re-run call of one attempt does not skip one).
func effectiveAttempt(calls, attempt int) int {
	if attempt > 0 && attempt < calls {
		return attempt
	}
	return calls
}

// load reads a key's row (zero when the key was never called).
func (p *Provider) load(ctx context.Context, tenantID, key string) (sendRecord, error) {
	r, err := p.store.GetRecord(ctx, tenantID, CollectionSends, key)
	if errors.Is(err, eventstore.ErrNotFound) {
		return sendRecord{}, nil
	}
	if err != nil {
		return sendRecord{}, fmt.Errorf("read send log: %w", err)
	}
	var rec sendRecord
	if err := json.Unmarshal(r.Data, &rec); err != nil {
		return sendRecord{}, fmt.Errorf("decode send log row %s: %w", key, err)
	}
	return rec, nil
}

// Sends reports a key's send log: how many times it was accepted (at most
// once, however often it was sent) and how many calls the sandbox got.
func (p *Provider) Sends(ctx context.Context, tenantID, idempotencyKey string) (acceptedCount int, calls int, err error) {
	rec, err := p.load(ctx, tenantID, idempotencyKey)
	if err != nil {
		return 0, 0, fmt.Errorf("sandbox sends %s: %w", idempotencyKey, err)
	}
	return rec.Accepted, rec.Calls, nil
}
