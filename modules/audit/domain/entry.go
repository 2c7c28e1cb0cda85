// Package domain is the audit log's model: one Entry per API invocation,
// written once and never changed, kept for the tenant's retention.
package domain

import "time"

// Outcomes of an invocation (the rpc audit hook's). Persisted.
const (
	OutcomeAllowed         = "allowed"
	OutcomeDenied          = "denied"
	OutcomeUnauthenticated = "unauthenticated"
	OutcomeFailed          = "failed"
)

// Outcomes lists every outcome.
func Outcomes() []string {
	return []string{OutcomeAllowed, OutcomeDenied, OutcomeUnauthenticated, OutcomeFailed}
}

// Entry is one audited invocation. Persisted as JSON with these names.
type Entry struct {
	// AuditID (aud_<ULID>) and TenantID are the row's key and tenant; rows
	// store them only when written before that was so (omitempty).
	AuditID      string    `json:"auditId,omitempty"`
	At           time.Time `json:"at"` // when the invocation started
	TenantID     string    `json:"tenantId,omitempty"`
	InvocationID string    `json:"invocationId"`
	TraceID      string    `json:"traceId,omitempty"`
	ActionID     string    `json:"actionId,omitempty"`
	Principal    string    `json:"principal,omitempty"`    // "service_account:sva_..."; "" when unauthenticated
	CredentialID string    `json:"credentialId,omitempty"` // the API key (a token's session) used or named
	Endpoint     string    `json:"endpoint"`               // "send-message"
	Kind         string    `json:"kind"`                   // "command" | "query"
	Action       string    `json:"action"`                 // "messaging:send-message"
	Resources    []string  `json:"resources,omitempty"`    // "<type>:<id>" decided on
	Outcome      string    `json:"outcome"`
	Status       int       `json:"status"`
	Code         string    `json:"code,omitempty"` // the problem code of a failure
	Replayed     bool      `json:"replayed,omitempty"`
	SourceIP     string    `json:"sourceIp,omitempty"`
	UserAgent    string    `json:"userAgent,omitempty"`
	DurationMs   float64   `json:"durationMs"`
}
