// Package app holds the audit log's use cases: list-audit-log, and the
// recording of entries (the rpc audit hook's writer lives in adapters).
package app

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard-dev/switchboard/modules/audit/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// Query is one page of a tenant's audit log, newest first.
type Query struct {
	Principal string // "" or a principal as entries show it
	Outcome   string // "" or one of domain.Outcomes
	// From (inclusive) and To (exclusive) bound the entries' At; zero: none.
	From, To time.Time
	Limit    int
	Cursor   string
}

// Log is the store of the audit log.
type Log interface {
	// Append writes entries of one tenant (or of eventstore.OperatorNamespace),
	// each kept until its At plus the retention. Writing the same entries
	// again is harmless. An entry the store refuses for good does not keep
	// the others out: the error then wraps ErrEntriesRefused and names the
	// refused entries' invocations.
	Append(ctx context.Context, tenantID string, entries []domain.Entry) error
	// List reads one page: with Principal, the principal's entries; else
	// with Outcome, that outcome's; else all. Outcome with Principal is
	// not filtered here (the handler filters). A cursor the list did not
	// issue is ErrInvalidCursor.
	List(ctx context.Context, tenantID string, q Query) (entries []domain.Entry, next string, err error)
}

// ErrEntriesRefused is wrapped by Log.Append's error when the store refused
// entries for good (too large or malformed): the others were written, these
// never will be (no retry helps).
var ErrEntriesRefused = errors.New("audit entries refused by the store")

// Scopes is tenancy's small exported interface: the tenant's root scope
// (the audit log is a tenant-wide resource).
type Scopes interface {
	RootScopeID(ctx context.Context, tenantID string) (string, error)
}

// CodeInvalidCursor is the field error of a cursor the list did not issue.
const CodeInvalidCursor = "errors.validation.cursor"

// ErrInvalidCursor is the error of such a cursor.
var ErrInvalidCursor = errs.Invalid(errs.FieldError{Field: "cursor", Code: CodeInvalidCursor})
