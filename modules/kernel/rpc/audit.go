package rpc

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Audit outcomes. Persisted (audit log).
const (
	OutcomeAllowed         = "allowed"         // the call ran (or replayed) and succeeded
	OutcomeDenied          = "denied"          // authenticated, not allowed
	OutcomeUnauthenticated = "unauthenticated" // no or a bad credential, or refused by the auth throttle (429)
	OutcomeFailed          = "failed"          // allowed or not yet decided, then failed (invalid input, conflict, ...)
)

// AuditEntry is what the audit hook learns of every call, command or query.
type AuditEntry struct {
	At           time.Time
	InvocationID string
	TraceID      string
	ActionID     string
	// TenantID is the caller's tenant; for an unauthenticated call, the
	// tenant of the real key its credential named (auth.Failure), else "".
	// "" for the operator.
	TenantID  string
	Principal string // "" when unauthenticated
	// CredentialID is the API key id the call authenticated with (a
	// token's session), or the real key id a failed credential named.
	CredentialID string
	Endpoint     string // "create-scope"
	Kind         Kind
	Action       string   // "tenancy:create-scope"
	Resources    []string // the resources decided on, "<type>:<id>"
	Outcome      string
	Status       int
	Code         string // the problem code of a failure
	Replayed     bool
	Source       Source
	Duration     time.Duration
}

// Auditor receives an entry for every call. It must not fail the call.
type Auditor interface {
	Audit(ctx context.Context, e AuditEntry)
}

// AuditFlushTimeout bounds the server's FlushAudit after a request.
const AuditFlushTimeout = 2 * time.Second

// AuditFlusher is an Auditor that buffers entries: the server calls
// FlushAudit at the end of every HTTP request, before its response leaves a
// Lambda invocation (an auditor that writes in the background ignores it).
type AuditFlusher interface {
	FlushAudit(ctx context.Context)
}

// Auditors sends every entry to each of its auditors, in order.
type Auditors []Auditor

// Audit implements Auditor.
func (as Auditors) Audit(ctx context.Context, e AuditEntry) {
	for _, a := range as {
		a.Audit(ctx, e)
	}
}

// FlushAudit implements AuditFlusher for those of its auditors that buffer.
func (as Auditors) FlushAudit(ctx context.Context) {
	for _, a := range as {
		if f, ok := a.(AuditFlusher); ok {
			f.FlushAudit(ctx)
		}
	}
}

// LogAuditor writes each entry as one "audit" log line.
type LogAuditor struct{ Logger *slog.Logger }

// Audit implements Auditor.
func (a LogAuditor) Audit(ctx context.Context, e AuditEntry) {
	a.Logger.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("endpoint", e.Endpoint), slog.String("action", e.Action), slog.Any("resources", e.Resources),
		slog.String("outcome", e.Outcome), slog.Int("status", e.Status), slog.String("code", e.Code),
		slog.Bool("replayed", e.Replayed), slog.String("sourceIp", e.Source.IP), slog.String("userAgent", e.Source.UserAgent),
		slog.Float64("durationMs", float64(e.Duration.Microseconds())/1000))
}

// Audit reports every call below it to a, with its outcome.
func Audit(a Auditor, clk clock.Clock) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, call *Call) (Result, error) {
			start := clk.Now()
			res, err := next(ctx, call)
			ic := invocation.From(ctx)
			e := AuditEntry{
				At: start, InvocationID: ic.InvocationID, TraceID: ic.TraceID, ActionID: ic.ActionID,
				TenantID: ic.TenantID(), Endpoint: call.Endpoint.Name, Kind: call.Endpoint.Kind,
				Action: call.Endpoint.Action, Source: call.Source, Replayed: res.Replayed,
				Duration: clk.Now().Sub(start), Status: res.Status,
			}
			if ic.Principal.Kind != invocation.KindAnonymous {
				e.Principal = ic.Principal.String()
				e.CredentialID = ic.Principal.CredentialID
			} else if f := call.failedAuth; f != nil {
				e.TenantID, e.CredentialID = f.TenantID, f.CredentialID
			}
			if call.guard != nil {
				for _, r := range call.guard.Resources() {
					e.Resources = append(e.Resources, r.String())
				}
			}
			switch {
			case err == nil:
				e.Outcome = OutcomeAllowed
			default:
				pe := errs.As(err)
				e.Code, e.Status = pe.Code, status(pe)
				switch {
				case pe.Kind == errs.KindUnauthenticated || pe.Code == CodeAuthThrottled,
					call.refusal != nil && ic.Principal.Kind == invocation.KindAnonymous: // refused before the chain, not authenticated
					e.Outcome = OutcomeUnauthenticated
				case pe.Kind == errs.KindForbidden || (call.guard != nil && call.guard.Denied()):
					e.Outcome = OutcomeDenied
				default:
					e.Outcome = OutcomeFailed
				}
			}
			a.Audit(ctx, e)
			return res, err
		}
	}
}
