package app

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/modules/audit/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/paging"
)

// ActionListAuditLog is the action of list-audit-log: read-only and
// privileged (authz.Action), so admins have it and viewers do not.
const ActionListAuditLog = "audit:list-audit-log"

// MaxFilteredReads bounds the store pages one list-audit-log reads when it
// filters by principal and outcome together.
const MaxFilteredReads = 10

// principalForm is a principal as entries show it ("service_account:sva_...").
var principalForm = regexp.MustCompile(`^[a-z_]{1,32}:[A-Za-z0-9_-]{1,64}$`)

// ListAuditLogInput is the body of list-audit-log.
type ListAuditLogInput struct {
	Limit     *int   `json:"limit" validate:"omitempty,min=1,max=100"`
	Cursor    string `json:"cursor" validate:"omitempty,max=1024"`
	Principal string `json:"principal" validate:"omitempty,max=128"`
	Outcome   string `json:"outcome" validate:"omitempty,oneof=allowed denied unauthenticated failed"`
	From      string `json:"from" validate:"omitempty,max=64"`
	To        string `json:"to" validate:"omitempty,max=64"`
}

// TimeFormat is how answers show times: RFC 3339, UTC, three fraction digits
// (contract section 2). from and to take any RFC 3339 time.
const TimeFormat = clock.TimeFormat

// EntryItem is one entry as answered.
type EntryItem struct {
	AuditID      string   `json:"auditId"`
	At           string   `json:"at"`
	TenantID     string   `json:"tenantId"`
	InvocationID string   `json:"invocationId"`
	TraceID      *string  `json:"traceId"`
	ActionID     *string  `json:"actionId"`
	Principal    *string  `json:"principal"`    // null when unauthenticated
	CredentialID *string  `json:"credentialId"` // the API key id used or named; never a secret
	Endpoint     string   `json:"endpoint"`
	Kind         string   `json:"kind"`
	Action       string   `json:"action"`
	Resources    []string `json:"resources"`
	Outcome      string   `json:"outcome"`
	Status       int      `json:"status"`
	Code         *string  `json:"code"`
	Replayed     bool     `json:"replayed"`
	SourceIP     *string  `json:"sourceIp"`
	UserAgent    *string  `json:"userAgent"`
	DurationMs   float64  `json:"durationMs"`
}

// ListAuditLogOutput is one page of the audit log.
type ListAuditLogOutput struct {
	Items      []EntryItem `json:"items"`
	NextCursor *string     `json:"nextCursor"`
}

// ListAuditLogHandler runs list-audit-log: the tenant's audit log, newest
// first, decided on the tenant (bindings at the root scope).
type ListAuditLogHandler struct {
	Log    Log
	Scopes Scopes
}

// Handle implements the query. Errors: 403; 400 for a limit outside 1..100,
// an unknown outcome, a from or to that is not an RFC 3339 time, from not
// before to, or a cursor this list did not issue.
func (h ListAuditLogHandler) Handle(ctx context.Context, in ListAuditLogInput) (ListAuditLogOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return ListAuditLogOutput{}, err
	}
	q, limit, err := parseQuery(in)
	if err != nil {
		return ListAuditLogOutput{}, err
	}
	root, err := h.Scopes.RootScopeID(ctx, tenantID)
	if err != nil {
		return ListAuditLogOutput{}, fmt.Errorf("list audit log: %w", err)
	}
	if err := authz.Require(ctx, authz.Tenant(tenantID, root)); err != nil {
		return ListAuditLogOutput{}, err
	}
	return list(ctx, h.Log, tenantID, q, limit)
}

// ActionListOperatorAuditLog is the action of list-operator-audit-log: the
// operator's own calls (onboard-tenant, the work tools), for the operator
// only (no role grants it).
const ActionListOperatorAuditLog = "audit:list-operator-audit-log"

// ListOperatorAuditLogHandler runs list-operator-audit-log: the audit log of
// the operator's calls (eventstore.OperatorNamespace), like list-audit-log.
// The endpoint is operator-only (rpc.OperatorOnly): the edge decides.
type ListOperatorAuditLogHandler struct {
	Log Log
}

// Handle implements the query. Errors: 400 as list-audit-log.
func (h ListOperatorAuditLogHandler) Handle(ctx context.Context, in ListAuditLogInput) (ListAuditLogOutput, error) {
	q, limit, err := parseQuery(in)
	if err != nil {
		return ListAuditLogOutput{}, err
	}
	return list(ctx, h.Log, eventstore.OperatorNamespace, q, limit)
}

// parseQuery checks the input of a list and returns its query and limit.
func parseQuery(in ListAuditLogInput) (Query, int, error) {
	limit, err := paging.Limit(in.Limit)
	if err != nil {
		return Query{}, 0, err
	}
	q := Query{Principal: in.Principal, Outcome: in.Outcome, Cursor: in.Cursor}
	var fe []errs.FieldError
	if in.Principal != "" && !principalForm.MatchString(in.Principal) {
		fe = append(fe, errs.FieldError{Field: "principal", Code: "errors.validation.invalid"})
	}
	for _, b := range []struct {
		field, v string
		t        *time.Time
	}{{"from", in.From, &q.From}, {"to", in.To, &q.To}} {
		if b.v == "" {
			continue
		}
		t, err := clock.ParseRFC3339(b.v)
		if err != nil {
			fe = append(fe, errs.FieldError{Field: b.field, Code: "errors.validation.datetime"})
			continue
		}
		*b.t = t
	}
	if len(fe) == 0 && !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		fe = append(fe, errs.FieldError{Field: "to", Code: "errors.validation.after", Params: map[string]any{"field": "from"}})
	}
	if len(fe) > 0 {
		return Query{}, 0, errs.Invalid(fe...)
	}
	return q, limit, nil
}

// list reads one answer of the log of tenantID (a tenant, or the operator's
// namespace).
func list(ctx context.Context, log Log, tenantID string, q Query, limit int) (ListAuditLogOutput, error) {
	// With principal and outcome, the principal's list is read and filtered:
	// each store page asks for what the answer still lacks, so the page
	// ends on a row the store's cursor names and nothing is skipped.
	var entries []domain.Entry
	next := ""
	for reads := 0; ; reads++ {
		q.Limit = limit - len(entries)
		page, n, err := log.List(ctx, tenantID, q)
		if err != nil {
			return ListAuditLogOutput{}, fmt.Errorf("list audit log: %w", err)
		}
		if q.Principal != "" && q.Outcome != "" {
			page = slices.DeleteFunc(page, func(e domain.Entry) bool { return e.Outcome != q.Outcome })
		}
		entries, next = append(entries, page...), n
		if next == "" || len(entries) >= limit || reads+1 == MaxFilteredReads {
			break
		}
		q.Cursor = next
	}
	out := ListAuditLogOutput{Items: make([]EntryItem, 0, len(entries)), NextCursor: paging.Next(next)}
	for _, e := range entries {
		out.Items = append(out.Items, item(e))
	}
	return out, nil
}

func item(e domain.Entry) EntryItem {
	res := e.Resources
	if res == nil {
		res = []string{}
	}
	return EntryItem{
		AuditID: e.AuditID, At: e.At.UTC().Format(TimeFormat), TenantID: e.TenantID, InvocationID: e.InvocationID,
		TraceID: orNull(e.TraceID), ActionID: orNull(e.ActionID), Principal: orNull(e.Principal), CredentialID: orNull(e.CredentialID),
		Endpoint: e.Endpoint, Kind: e.Kind, Action: e.Action, Resources: res, Outcome: e.Outcome, Status: e.Status,
		Code: orNull(e.Code), Replayed: e.Replayed, SourceIP: orNull(e.SourceIP), UserAgent: orNull(e.UserAgent), DurationMs: e.DurationMs,
	}
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
