// Package app is the messaging context's application layer: one file per
// command, query and work type, each handler declaring the ports it needs.
// The ports are declared here; adapters implement them.
//
// Handlers read the caller's tenant from the invocation context, never from
// input, and decide authorization with authz.Require on the resource they
// load (a scope, a channel, a message, or the tenant for tenant-wide lists).
// Writes go through the Repository, which stages them in the invocation's
// unit of work.
//
// # Read models
//
// Queries read rows derived from the events and written in the same commit
// (channels, messages, provider lookups); the streams stay the source of
// truth. rebuild-read-models (RebuildReadModels) re-derives the rows of
// given channels and messages from their streams. Rebuilding every row of a
// collection needs the stream ids: the store has no scans, by design.
package app

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/metrics"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// Purposes of the encryption port (secrets.Sealer): bound into each ciphertext
// as associated data, so a blob sealed for one use never opens for another.
// Persisted.
const (
	PurposeCredentials   = "messaging.channel-credentials"
	PurposeInboundSecret = "messaging.channel-inbound-secret"
)

// Work types of the messaging context. Persisted.
const (
	// WorkDispatch sends (or releases, at its sendAt) one message: payload DispatchPayload.
	WorkDispatch = "messaging.dispatch"
	// WorkProviderWebhook processes one verified provider webhook: payload ProviderWebhookPayload.
	WorkProviderWebhook = "messaging.provider-webhook"
)

// DispatchPayload is the payload of WorkDispatch.
type DispatchPayload struct {
	MessageID string `json:"messageId"`
	// Attempt is the provider call the item makes: 1 for the item
	// send-message writes, n+1 for the retry after attempt n failed. An item
	// delivered again after its attempt ended does nothing. 0 (items written
	// before this field): the next attempt, whichever it is.
	Attempt int `json:"attempt,omitempty"`
}

// ProviderWebhookPayload is the payload of WorkProviderWebhook: the
// provider's event, already verified and parsed by the webhook route.
type ProviderWebhookPayload struct {
	ChannelID string        `json:"channelId"`
	WebhookID string        `json:"webhookId"`
	Event     ProviderEvent `json:"event"`
}

// InboundWebhookURL is where a channel's provider posts receipts and inbound
// messages: <public URL>/webhooks/<provider>/<channelId>.
func InboundWebhookURL(publicURL, provider, channelID string) string {
	return strings.TrimRight(publicURL, "/") + "/webhooks/" + provider + "/" + channelID
}

// Providers are the provider adapters by name.
type Providers map[string]Provider

// Get returns the named provider, or errs.Invalid on field "provider".
func (p Providers) Get(name string) (Provider, error) {
	if pr, ok := p[name]; ok {
		return pr, nil
	}
	return nil, errs.Invalid(errs.FieldError{Field: "provider", Code: "errors.validation.one_of", Params: map[string]any{"allowed": p.names()}})
}

// names lists the providers' names, sorted, for validation messages.
func (p Providers) names() string {
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Change is the new events of one aggregate.
type Change struct {
	// Base is the aggregate's version when read; 0 creates it. The write
	// fails with ErrConcurrency when the stream moved meanwhile.
	Base   int64
	Events []domain.Event
}

// Work is asynchronous work caused by a write, committed with it.
type Work struct {
	Type    string
	Payload any
	DueAt   time.Time
}

// ErrConcurrency: another writer moved a stream first, or a uniqueness row
// exists. The unit of work re-runs the handler. Compare with errors.Is.
var ErrConcurrency = errs.Conflict(errs.CodeConcurrency)

// ErrInvalidCursor is returned by list reads for a cursor they did not issue.
var ErrInvalidCursor = errs.Invalid(errs.FieldError{Field: "cursor", Code: "errors.validation.cursor"})

// Repository loads aggregates from their streams and saves changes with the
// read-model rows and integration events derived from them.
type Repository interface {
	// Channel rebuilds a channel of the tenant, or errs.NotFound("channel")
	// (also for another tenant's channel).
	Channel(ctx context.Context, tenantID, channelID string) (*domain.Channel, error)
	// Message rebuilds a message of the tenant, or errs.NotFound("message").
	Message(ctx context.Context, tenantID, messageID string) (*domain.Message, error)
	// MessageHistory returns a message's whole stream, oldest first, as
	// stored (ids, versions, invocation), or errs.NotFound("message").
	MessageHistory(ctx context.Context, tenantID, messageID string) ([]HistoryEvent, error)
	// SaveChannel writes a channel's events, its read-model row and the
	// global route row (channel id -> tenant) used by provider webhooks.
	SaveChannel(ctx context.Context, tenantID string, c Change) error
	// SaveMessage appends events to a message's stream (before is the
	// message as read, nil for a new one: its Version is the expected stream
	// version) and writes with them: the read-model row of the message after
	// the events (with its list memberships), the provider-message lookup row
	// once it has a provider message id, one integration event per public
	// status change (message.queued, .sent, ...: work.Publication, detail
	// {"tenantId","invocation","scopePath","data":MessageView}), and work.
	// Inside a unit of work the write is staged; else committed at once.
	// The lookup row of an outbound message is written only if absent,
	// unless the events apply the receipt that waited in it
	// (PendingReceipt): a receipt that came first makes the send's commit
	// conflict, and its re-run finds and applies that receipt.
	// Errors: ErrConcurrency, internal.
	SaveMessage(ctx context.Context, tenantID string, before *domain.Message, events []domain.Event, work ...Work) error
	// PendingReceipt returns the receipt waiting under a provider message id
	// of a channel (SavePendingReceipt), or nil when none waits (a message
	// has that id, none has it, or the receipt expired).
	PendingReceipt(ctx context.Context, tenantID, channelID, providerMessageID string) (*PendingReceipt, error)
	// SavePendingReceipt keeps a receipt for a provider message id that no
	// message has yet in that id's lookup row, for PendingReceiptTTL. The
	// row must be absent: a send that recorded the id meanwhile, or another
	// receipt waiting there, makes it ErrConcurrency (staged in a unit of
	// work: the unit's commit conflicts and runs again).
	SavePendingReceipt(ctx context.Context, tenantID, channelID, providerMessageID string, r PendingReceipt) error
}

// PendingReceipt is a provider's receipt that came before the commit of the
// send that learned its provider message id (a provider may post a receipt
// before its own answer to the send reached us, and a send's commit may be
// late: a crash after the provider call, a throttled store). It waits in
// the id's lookup row; the send's commit applies it with the send, in the
// same commit. One that no send ever claims (a stray receipt) expires.
type PendingReceipt struct {
	Status     domain.Status // delivered or undelivered
	Reason     string
	WebhookID  string
	ReceivedAt time.Time
}

// PendingReceiptTTL is how long a receipt waits for its send.
const PendingReceiptTTL = 7 * 24 * time.Hour

// HistoryEvent is one stored event of a stream, as get-message-history shows it.
type HistoryEvent struct {
	EventID      string
	Type         string
	Version      int64
	OccurredAt   time.Time
	InvocationID string
	Principal    string
	Data         []byte // the event's JSON data
}

// MessageFilter selects the messages of list-messages.
type MessageFilter struct {
	ScopeID   string        // "" for every scope
	ChannelID string        // "" for every channel
	Status    domain.Status // "" for every status
}

// ReadModel answers queries from read models (projections of the streams).
type ReadModel interface {
	// ChannelByID returns the channel's row (no secrets), or errs.NotFound("channel").
	ChannelByID(ctx context.Context, tenantID, channelID string) (ChannelView, error)
	// ChannelTenant resolves the tenant of a channel from the global route
	// row (provider webhooks know only the channel id), or errs.NotFound("channel").
	ChannelTenant(ctx context.Context, channelID string) (string, error)
	// ListChannels pages the tenant's channels (of one scope when scopeID is
	// set), newest first.
	ListChannels(ctx context.Context, tenantID, scopeID string, limit int, cursor string) ([]ChannelView, string, error)
	// MessageByID returns the message's row, or errs.NotFound("message").
	MessageByID(ctx context.Context, tenantID, messageID string) (MessageView, error)
	// MessageByProviderID resolves a provider message id of a channel to a
	// message id, or errs.NotFound("message").
	MessageByProviderID(ctx context.Context, tenantID, channelID, providerMessageID string) (string, error)
	// ListMessages pages the tenant's messages matching f, newest first, with
	// keyed queries only. A cursor it did not issue is ErrInvalidCursor.
	ListMessages(ctx context.Context, tenantID string, f MessageFilter, limit int, cursor string) ([]MessageView, string, error)
}

// ChannelView is a channel as queries return it: never its secrets.
type ChannelView struct {
	ChannelID         string            `json:"channelId"`
	ScopeID           string            `json:"scopeId"`
	ScopePath         []string          `json:"-"`
	Name              string            `json:"name"`
	Type              string            `json:"type"`
	Provider          string            `json:"provider"`
	From              string            `json:"from"`
	Config            map[string]string `json:"config"`
	InboundWebhookURL string            `json:"inboundWebhookUrl"`
	CreatedAt         string            `json:"createdAt"`
}

// MessageView is a message as the contract shows it (section 6), and the
// "data" of its integration events and subscriber webhooks.
type MessageView struct {
	// ScopePath is the message's scope and its ancestors, root first (for
	// authorization; not part of the contract's message).
	ScopePath    []string          `json:"-"`
	MessageID    string            `json:"messageId"`
	ChannelID    string            `json:"channelId"`
	ScopeID      string            `json:"scopeId"`
	Direction    string            `json:"direction"`
	To           string            `json:"to"`
	From         string            `json:"from"`
	Content      domain.Content    `json:"content"`
	Status       string            `json:"status"`
	StatusReason *string           `json:"statusReason"`
	Attempts     int               `json:"attempts"`
	Metadata     map[string]string `json:"metadata"`
	SendAt       *string           `json:"sendAt"`
	CreatedAt    string            `json:"createdAt"`
	UpdatedAt    string            `json:"updatedAt"`
}

// Metric names and dimension of the messaging context (CloudWatch namespace
// "Switchboard"; the dashboard uses exactly these: never rename one).
const (
	// MetricMessagesAccepted counts outbound messages send-message accepted.
	MetricMessagesAccepted = "MessagesAccepted"
	// MetricMessagesSent counts messages a provider accepted (status sent).
	MetricMessagesSent = "MessagesSent"
	// MetricMessagesDelivered counts delivery receipts (status delivered).
	MetricMessagesDelivered = "MessagesDelivered"
	// MetricMessagesFailed counts messages that failed for good (status
	// failed: refused, out of attempts, or no call possible). Undelivered
	// receipts are not failures of sending and are not counted.
	MetricMessagesFailed = "MessagesFailed"
	// MetricDispatchLatency is the time from a message's acceptance (its
	// sendAt for a scheduled message) to the provider's acceptance, in
	// milliseconds, recorded with MessagesSent.
	MetricDispatchLatency = "DispatchLatency"
	// DimensionChannelType is the one dimension of every messaging metric:
	// the channel's type, sms or email.
	DimensionChannelType = "ChannelType"
)

// Metrics is the port to business metrics (kernel metrics.Recorder: CloudWatch
// EMF in Lambda mode, nothing in local mode). Handlers record after their
// commit (uow.OnCommit), so a unit of work that fails or runs again counts
// nothing; a value is counted once per commit that made the change (at least
// once: a commit whose invocation crashes before OnCommit counts nothing). A
// nil Metrics records nothing. Recording never fails or blocks for long.
type Metrics interface {
	Count(ctx context.Context, name string, dims metrics.Dimensions, n int64)
	Duration(ctx context.Context, name string, dims metrics.Dimensions, d time.Duration)
}

// countMessage adds one to a messaging metric of channel type ct.
func countMessage(ctx context.Context, m Metrics, name string, ct domain.ChannelType) {
	if m == nil {
		return
	}
	m.Count(ctx, name, metrics.Dimensions{DimensionChannelType: string(ct)}, 1)
}

// recordSent counts a sent message and its dispatch latency: from its
// acceptance (or its sendAt, when later: a scheduled message is not late
// while it waits for its time) to sentAt.
func recordSent(ctx context.Context, m Metrics, msg *domain.Message, sentAt time.Time) {
	if m == nil {
		return
	}
	countMessage(ctx, m, MetricMessagesSent, msg.ChannelType)
	from := msg.CreatedAt
	if msg.SendAt != nil && msg.SendAt.After(from) {
		from = *msg.SendAt
	}
	m.Duration(ctx, MetricDispatchLatency, metrics.Dimensions{DimensionChannelType: string(msg.ChannelType)}, sentAt.Sub(from))
}

// Scopes is tenancy's small exported interface: where a scope sits.
type Scopes interface {
	// ScopePath returns root..scopeID, or errs.NotFound("scope").
	ScopePath(ctx context.Context, tenantID, scopeID string) ([]string, error)
	// RootScopeID returns the tenant's root scope.
	RootScopeID(ctx context.Context, tenantID string) (string, error)
}

// Provider is the port to one messaging provider (sandbox today; Twilio and
// Amazon SES next). Adapters are safe for concurrent use.
type Provider interface {
	// Name is the provider's persisted name, e.g. "sandbox".
	Name() string
	// CheckChannel validates a new channel's type, from, config and
	// credentials for this provider (errs.Invalid with fields), before they
	// are sealed and stored.
	CheckChannel(t domain.ChannelType, from string, config, credentials map[string]string) error
	// Send hands one message over. req.IdempotencyKey is the same on every
	// call for one message: a provider that saw it sends nothing new and
	// answers as the first time (Twilio and SES adapters pass it as their
	// request token), so a redelivered work item never sends twice.
	// Errors: *SendError (Transient or not); any other error is transient.
	Send(ctx context.Context, req SendRequest) (SendResult, error)
	// VerifyWebhook checks a webhook's signature and timestamp with the
	// channel's inbound secret (ErrBadSignature), and returns the id to
	// dedupe it by (Standard Webhooks' webhook-id for the sandbox).
	VerifyWebhook(secret []byte, h http.Header, body []byte, now time.Time) (webhookID string, err error)
	// ParseWebhook parses a verified body into a provider event, or
	// errs.Invalid (400).
	ParseWebhook(body []byte) (ProviderEvent, error)
}

// ErrBadSignature answers a provider webhook with a missing or bad
// signature, or a timestamp too far off (401).
var ErrBadSignature = errs.New(errs.KindUnauthenticated, "errors.webhook.signature_invalid")

// SendRequest is one message handed to a provider.
type SendRequest struct {
	IdempotencyKey string // the message id: the same on every attempt
	Attempt        int    // 1, 2, ... (this call)
	TenantID       string
	ChannelID      string
	ChannelType    domain.ChannelType
	From           string
	To             string
	Content        domain.Content
	Config         map[string]string
	Credentials    map[string]string // opened from the channel's sealed credentials
	// InboundWebhookURL and InboundSecret let a provider that posts receipts
	// (the sandbox) sign and address them as the channel expects.
	InboundWebhookURL string
	InboundSecret     string
}

// SendResult is a provider's acceptance.
type SendResult struct {
	ProviderMessageID string
}

// SendError is a provider's refusal. Transient errors are retried with
// backoff; others fail the message at once with Reason as its statusReason.
type SendError struct {
	Transient bool
	Reason    string // stable, e.g. "sandbox.invalid_number"
	Err       error
}

func (e *SendError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *SendError) Unwrap() error { return e.Err }

// IsTransient reports whether err (from Provider.Send) should be retried.
func IsTransient(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Transient
	}
	return true
}

// ProviderEvent is a provider webhook's meaning.
type ProviderEvent struct {
	Kind              string        `json:"kind"` // "receipt" or "inbound"
	ProviderMessageID string        `json:"providerMessageId"`
	Status            domain.Status `json:"status,omitempty"` // receipts: delivered | undelivered
	Reason            string        `json:"reason,omitempty"`
	From              string        `json:"from,omitempty"` // inbound
	To                string        `json:"to,omitempty"`
	Text              string        `json:"text,omitempty"`
}

// Provider event kinds.
const (
	EventReceipt = "receipt"
	EventInbound = "inbound"
)
