// Package invocation carries the invocation context: who called, on whose
// behalf, and the ids that correlate everything one invocation causes (events,
// log lines, work items, outbound webhooks).
//
// One invocation is one HTTP request, one SQS record, or one EventBridge event.
// The context is created once at the edge (rpc, trigger) and read everywhere
// else; it is immutable after authentication.
package invocation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
)

// PrincipalKind says what kind of caller a Principal is. Persisted in events.
type PrincipalKind string

// Principal kinds.
const (
	KindAnonymous      PrincipalKind = ""
	KindOperator       PrincipalKind = "operator"
	KindServiceAccount PrincipalKind = "service_account"
	KindSystem         PrincipalKind = "system" // the platform itself: workers, schedules
)

// RoleBinding grants a role at a scope (valid in that scope and every scope below it).
type RoleBinding struct {
	Role    string `json:"role"`
	ScopeID string `json:"scopeId"`
}

// Principal is the authenticated caller.
type Principal struct {
	Kind     PrincipalKind `json:"kind"`
	ID       string        `json:"id"`                 // sva_..., "operator", "system"
	TenantID string        `json:"tenantId,omitempty"` // empty for operator
	// CredentialID is the API key (key_...) or token session that authenticated the call.
	CredentialID string        `json:"credentialId,omitempty"`
	Roles        []RoleBinding `json:"roles,omitempty"`
}

// String is the principal as recorded in events and logs: "service_account:sva_...".
func (p Principal) String() string {
	if p.Kind == KindAnonymous {
		return "anonymous"
	}
	if p.ID == "" || p.ID == string(p.Kind) {
		return string(p.Kind)
	}
	return string(p.Kind) + ":" + p.ID
}

// Toggles are per-invocation switches, set by trusted callers (for example a
// debug log level for one request).
type Toggles struct {
	// LogLevel, when set, lowers the log level for this invocation only.
	LogLevel *slog.Level `json:"logLevel,omitempty"`
}

// Context is the invocation context.
type Context struct {
	InvocationID   string    // inv_<ULID>, made by the server; X-Invocation-Id
	ActionID       string    // client action (X-Action-Id), optional ULID
	TraceID        string    // W3C trace id, 32 lowercase hex; from traceparent or new
	ParentSpanID   string    // span id from traceparent, if any
	IdempotencyKey string    // Idempotency-Key header, optional
	Trigger        string    // "http", "sqs", "schedule", "event", "worker"
	Principal      Principal // who is calling
	Locale         string    // best language from Accept-Language ("en", "de")
	Toggles        Toggles
}

// TenantID is the tenant the invocation acts in ("" for operator or anonymous).
func (c *Context) TenantID() string { return c.Principal.TenantID }

// Meta is the part of the context recorded with every event and work item.
type Meta struct {
	InvocationID string `json:"invocationId"`
	ActionID     string `json:"actionId,omitempty"`
	TraceID      string `json:"traceId"`
	Principal    string `json:"principal"`
}

// Meta returns the persisted part of the context.
func (c *Context) Meta() Meta {
	return Meta{InvocationID: c.InvocationID, ActionID: c.ActionID, TraceID: c.TraceID, Principal: c.Principal.String()}
}

// LogAttrs are the attributes every log line of the invocation carries.
func (c *Context) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("invocationId", c.InvocationID),
		slog.String("traceId", c.TraceID),
	}
	if c.ActionID != "" {
		attrs = append(attrs, slog.String("actionId", c.ActionID))
	}
	if c.Trigger != "" {
		attrs = append(attrs, slog.String("trigger", c.Trigger))
	}
	if c.Principal.Kind != KindAnonymous {
		attrs = append(attrs, slog.String("principal", c.Principal.String()))
	}
	if t := c.TenantID(); t != "" {
		attrs = append(attrs, slog.String("tenantId", t))
	}
	return attrs
}

type ctxKey struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c *Context) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// From returns the invocation context of ctx, or an empty one (never nil).
func From(ctx context.Context) *Context {
	if c, ok := ctx.Value(ctxKey{}).(*Context); ok && c != nil {
		return c
	}
	return &Context{}
}

// FromMeta rebuilds a context for asynchronous work that continues an
// invocation: the same invocation and trace ids, acting as the system.
func FromMeta(m Meta, trigger, tenantID string) *Context {
	return &Context{
		InvocationID: m.InvocationID,
		ActionID:     m.ActionID,
		TraceID:      m.TraceID,
		Trigger:      trigger,
		Principal:    Principal{Kind: KindSystem, ID: string(KindSystem), TenantID: tenantID},
	}
}

// NewTraceID returns a random W3C trace id (32 lowercase hex digits).
func NewTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidTraceID reports whether s is a W3C trace id: 32 lowercase hex digits,
// not all zero.
func ValidTraceID(s string) bool {
	return len(s) == 32 && isLowerHex(s) && s != strings.Repeat("0", 32)
}

// ParseTraceparent reads a W3C traceparent "00-<trace id>-<span id>-<flags>";
// both results are empty when the header is absent or malformed.
func ParseTraceparent(h string) (traceID, spanID string) {
	parts := strings.Split(strings.TrimSpace(h), "-")
	if len(parts) != 4 || len(parts[0]) != 2 || len(parts[2]) != 16 || len(parts[3]) != 2 || parts[0] == "ff" {
		return "", ""
	}
	if !ValidTraceID(parts[1]) || !isLowerHex(parts[2]) {
		return "", ""
	}
	return parts[1], parts[2]
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
