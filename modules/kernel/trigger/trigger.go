// Package trigger is the Lambda trigger router: the one entry point of the
// lambdalith in Lambda mode. It recognises what invoked the function and hands
// the payload to the right part of the application:
//
//   - API Gateway HTTP API (payload format 2.0) and REST API (format 1.0)
//     proxy events become *http.Request for the HTTP handler (same routes for
//     both); a panic there becomes a 500 problem+json response.
//   - SQS events (ReportBatchItemFailures): every record body is a JSON work
//     item (work.Item); the answer names only the records that failed
//     ({"batchItemFailures":[{"itemIdentifier":"<messageId>"}]}). A record that
//     does not decode fails alone. A record whose handler fails or panics is
//     put back into the outbox with a backoff delay by the Retry hook and
//     reported done (without a hook, or when that fails, it fails alone).
//     Records left when the invocation's deadline is near are not run and
//     reported failed, and a record still running at deadline - margin is
//     cancelled (see Router.DeadlineMargin).
//   - EventBridge events: scheduled jobs (a rule "…job-<name>" or our own
//     {"source":"switchboard.scheduler","detail-type":"switchboard.job"} form)
//     and integration events (source "switchboard.<module>"). Errors fail the
//     invocation so that EventBridge retries it and finally dead-letters it.
//   - Anything else fails the invocation with an error that names what arrived.
//     Nothing panics out of Invoke.
//
// Detection is one json.Unmarshal into a union probe that holds every field
// any supported kind needs, so a payload is decoded exactly once. The router
// does no work at construction: no reflection-heavy setup, no network.
//
// The router owns the invocation context of SQS records (Trigger "sqs", the
// invocation and trace ids of the cause), scheduled jobs ("schedule") and
// integration events ("event"). HTTP requests get theirs from the rpc layer.
// Log lines are written with the invocation's ctx; the logging package adds
// the invocation attributes from it.
package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// WorkHandler runs one work item (satisfied by *work.Executor in production,
// and by *work.Registry). An error asks for a retry: through Router.Retry when
// set, else the record is reported in batchItemFailures.
type WorkHandler interface {
	Handle(ctx context.Context, it work.Item) error
}

// JobRunner runs a scheduled job by name (satisfied by *work.Jobs). An unknown
// name is an error that names it.
type JobRunner interface {
	Run(ctx context.Context, name string) error
}

// EventDeliverer delivers an integration event to its subscribers (satisfied
// by *work.Subscriptions). An event type nobody handles is an error naming it.
type EventDeliverer interface {
	Deliver(ctx context.Context, ev work.IntegrationEvent) error
}

// Router dispatches Lambda invocations. It implements aws-lambda-go's
// lambda.Handler, so main calls lambda.Start(router) (or
// lambda.StartWithOptions) with it directly.
//
// A nil HTTP, Work, Jobs or Events field turns that feature off: a payload of
// that kind fails the invocation with an error naming the missing feature.
// The zero values of Logger and IDs mean slog.Default() and ids.NewULIDs().
// A Router is safe for concurrent use; do not change its fields after the
// first Invoke.
type Router struct {
	HTTP   http.Handler
	Work   WorkHandler
	Jobs   JobRunner
	Events EventDeliverer
	Logger *slog.Logger
	IDs    ids.Generator
	// Retry, when set, takes a work item whose handler failed back into the
	// outbox for a later attempt with backoff (work.Requeuer); the record is
	// then reported done. Nil: the record is reported failed and SQS
	// redelivers it after the visibility timeout.
	Retry Retrier
	// DeadlineMargin: an SQS batch stops taking records when less than this
	// remains before the invocation's deadline, and each record's context
	// ends this long before it; the Retry hook of a failed record gets half
	// of it, at most 2 s (default DefaultDeadlineMargin).
	DeadlineMargin time.Duration
	// MaxAttempts is the Retry hook's parking bound (default
	// work.DefaultMaxAttempts): a redelivered record that would reach it
	// runs rather than being put back (where it would park unrun).
	MaxAttempts int
	// Clock tells the time for the deadline margin; nil means the system clock.
	Clock clock.Clock
}

// Retrier puts a failed work item back into the outbox, due after a backoff
// (or parked after its last attempt); satisfied by *work.Requeuer. it.Attempt
// is the attempt that failed. An error means the item was not kept.
type Retrier interface {
	RetryLater(ctx context.Context, it work.Item, cause error) error
}

// Invocation triggers, as recorded in invocation.Context.Trigger.
const (
	TriggerHTTP     = "http"
	TriggerSQS      = "sqs"
	TriggerSchedule = "schedule"
	TriggerEvent    = "event"
)

// Event conventions shared with the producers (see events/README.md).
const (
	// SchedulerSource and JobDetailType mark our own scheduled-job events:
	// {"source":"switchboard.scheduler","detail-type":"switchboard.job","detail":{"job":"<name>"}}.
	SchedulerSource = "switchboard.scheduler"
	JobDetailType   = "switchboard.job"
	// IntegrationSourcePrefix starts the source of every integration event.
	IntegrationSourcePrefix = "switchboard."
	// RuleJobMarker precedes the job name in the name of an EventBridge rule:
	// rule "switchboard-job-outbox-sweep" runs job "outbox-sweep".
	RuleJobMarker = "job-"
	// RequestIDHeader carries the API Gateway request id to the HTTP handler.
	RequestIDHeader = "X-Amzn-Request-Id"

	awsEventsSource    = "aws.events"
	scheduledEventType = "Scheduled Event"
)

// ErrUnsupported is wrapped by the error for a payload of no supported kind.
var ErrUnsupported = errors.New("trigger: unsupported payload")

// ErrNotConfigured is wrapped by the error for a supported payload whose
// feature is off (a nil Router field).
var ErrNotConfigured = errors.New("trigger: not configured")

// Kind is what a payload was recognised as.
type Kind string

// Kinds.
const (
	KindUnknown          Kind = "unknown"
	KindAPIGatewayV2     Kind = "apigw-v2"      // HTTP API, payload format 2.0
	KindAPIGatewayV1     Kind = "apigw-v1"      // REST API (or HTTP API payload format 1.0)
	KindSQS              Kind = "sqs"           // SQS batch
	KindScheduledJob     Kind = "scheduled-job" // EventBridge rule or switchboard.scheduler
	KindIntegrationEvent Kind = "integration-event"
)

// Detect tells what kind of payload this is (KindUnknown for anything the
// router does not accept).
func Detect(payload []byte) Kind {
	k, _, _ := detect(payload)
	return k
}

// probe is the union of the fields every supported payload kind needs. JSON
// keys of the different kinds do not collide (encoding/json matches keys case
// insensitively; "resource" and "resources" are distinct keys).
type probe struct {
	// API Gateway, both formats.
	Version         string            `json:"version"` // "2.0" for HTTP API v2, "1.0" or absent for v1; "0" for EventBridge
	Headers         map[string]string `json:"headers"`
	QueryString     map[string]string `json:"queryStringParameters"`
	Body            *string           `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	RequestContext  *requestContext   `json:"requestContext"`
	// API Gateway v2.
	RouteKey       string   `json:"routeKey"`
	RawPath        string   `json:"rawPath"`
	RawQueryString string   `json:"rawQueryString"`
	Cookies        []string `json:"cookies"`
	// API Gateway v1.
	Resource          string              `json:"resource"`
	Path              string              `json:"path"`
	HTTPMethod        string              `json:"httpMethod"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	MultiValueQuery   map[string][]string `json:"multiValueQueryStringParameters"`
	// SQS.
	Records []sqsRecord `json:"Records"`
	// EventBridge.
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	DetailType *string         `json:"detail-type"`
	Time       string          `json:"time"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

type requestContext struct {
	RequestID  string `json:"requestId"`
	Stage      string `json:"stage"`
	DomainName string `json:"domainName"`
	Protocol   string `json:"protocol"` // v1
	Identity   struct {
		SourceIP  string `json:"sourceIp"`
		UserAgent string `json:"userAgent"`
	} `json:"identity"` // v1
	HTTP *struct {
		Method   string `json:"method"`
		Path     string `json:"path"`
		Protocol string `json:"protocol"`
		SourceIP string `json:"sourceIp"`
	} `json:"http"` // v2
}

type sqsRecord struct {
	MessageID   string            `json:"messageId"`
	Body        string            `json:"body"`
	Attributes  map[string]string `json:"attributes"`
	EventSource string            `json:"eventSource"`
}

// detect decodes payload once and classifies it. For KindUnknown the string
// describes what arrived.
func detect(payload []byte) (Kind, *probe, string) {
	var p probe
	if err := json.Unmarshal(payload, &p); err != nil {
		// Not JSON, not an object, or a known key of another type: another shape.
		return KindUnknown, nil, describe(payload)
	}
	switch {
	case p.RequestContext != nil && p.RequestContext.HTTP != nil && p.RequestContext.HTTP.Method != "" &&
		(p.Version == "2.0" || p.RouteKey != ""):
		return KindAPIGatewayV2, &p, ""
	case p.HTTPMethod != "" && p.Resource != "" && p.RequestContext != nil:
		return KindAPIGatewayV1, &p, ""
	case len(p.Records) > 0 && allSQS(p.Records):
		return KindSQS, &p, ""
	case p.Source != "" && p.DetailType != nil:
		switch {
		case p.Source == awsEventsSource && *p.DetailType == scheduledEventType,
			p.Source == SchedulerSource && *p.DetailType == JobDetailType:
			return KindScheduledJob, &p, ""
		case strings.HasPrefix(p.Source, IntegrationSourcePrefix):
			return KindIntegrationEvent, &p, ""
		}
	}
	return KindUnknown, nil, describe(payload)
}

func allSQS(recs []sqsRecord) bool {
	for _, r := range recs {
		if r.EventSource != "aws:sqs" {
			return false
		}
	}
	return true
}

// describe summarises an unsupported payload for the error message: never
// the whole payload (it may be large or hold secrets).
func describe(payload []byte) string {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return "empty payload"
	}
	if !json.Valid(trimmed) {
		snippet := trimmed
		if len(snippet) > 32 {
			snippet = snippet[:32]
		}
		return fmt.Sprintf("not JSON (%d bytes, starting %q)", len(payload), snippet)
	}
	switch trimmed[0] {
	case '{':
	case '[':
		return "a JSON array"
	case '"':
		return "a JSON string"
	case 't', 'f':
		return "a JSON boolean"
	case 'n':
		return "JSON null"
	default:
		return "a JSON number"
	}
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(trimmed, &obj) // valid JSON object: cannot fail
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	const maxKeys = 12
	more := ""
	if len(keys) > maxKeys {
		more = fmt.Sprintf(" and %d more", len(keys)-maxKeys)
		keys = keys[:maxKeys]
	}
	desc := fmt.Sprintf("JSON object with keys [%s]%s", strings.Join(keys, " "), more)
	// Say which service sent it, when that is visible.
	var hints struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
		Source     string  `json:"source"`
		DetailType *string `json:"detail-type"`
	}
	_ = json.Unmarshal(trimmed, &hints) // best effort; type errors leave fields empty
	seen := map[string]bool{}
	var sources []string
	for _, r := range hints.Records {
		if r.EventSource != "" && !seen[r.EventSource] {
			seen[r.EventSource] = true
			sources = append(sources, r.EventSource)
		}
	}
	if len(sources) > 0 {
		desc += ", Records[].eventSource " + strings.Join(sources, ",")
	} else if len(hints.Records) > 0 {
		desc += fmt.Sprintf(", %d Records without eventSource", len(hints.Records))
	} else if _, ok := obj["Records"]; ok {
		desc += ", no Records"
	}
	if hints.Source != "" {
		desc += fmt.Sprintf(", source %q", hints.Source)
		if hints.DetailType != nil {
			desc += fmt.Sprintf(" detail-type %q", *hints.DetailType)
		}
	}
	return desc
}

// Invoke handles one Lambda invocation (lambda.Handler). It returns the
// response payload of the trigger kind, or an error that fails the
// invocation. It never panics.
func (r *Router) Invoke(ctx context.Context, payload []byte) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			r.logger().ErrorContext(ctx, "trigger: panic", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			out, err = nil, fmt.Errorf("trigger: panic: %v", v)
		}
	}()
	kind, p, desc := detect(payload)
	switch kind {
	case KindAPIGatewayV2:
		return r.serveV2(ctx, p)
	case KindAPIGatewayV1:
		return r.serveV1(ctx, p)
	case KindSQS:
		return r.handleSQS(ctx, p.Records)
	case KindScheduledJob:
		return r.runJob(ctx, p)
	case KindIntegrationEvent:
		return r.deliverEvent(ctx, p)
	default:
		r.logger().ErrorContext(ctx, "trigger: unsupported payload", slog.String("payload", desc))
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, desc)
	}
}

func (r *Router) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Router) ids() ids.Generator {
	if r.IDs != nil {
		return r.IDs
	}
	return defaultIDs()
}

// defaultIDs is made on first use, not at init.
var defaultIDs = sync.OnceValue(func() ids.Generator { return ids.NewULIDs() })

// newContext builds the invocation context the router owns, continuing the
// invocation and trace of the cause when known.
func (r *Router) newContext(cause invocation.Meta, trigger, tenantID string) *invocation.Context {
	c := invocation.FromMeta(cause, trigger, tenantID)
	if c.InvocationID == "" {
		c.InvocationID = r.ids().New(ids.Invocation)
	}
	if !invocation.ValidTraceID(c.TraceID) {
		c.TraceID = invocation.NewTraceID()
	}
	return c
}
