// Package errs is Switchboard's one error vocabulary. Code below the edge
// returns *Error (or wraps one); only the edge (rpc, problem) maps a Kind to an
// HTTP status. Codes are stable i18n keys ("errors.validation.failed"): clients
// and message catalogs depend on them, so never rename one.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error; each kind maps to one HTTP status at the edge.
type Kind int

// Kinds.
const (
	KindInternal         Kind = iota // 500: a bug or an unexpected dependency failure
	KindInvalid                      // 400: malformed or invalid input
	KindUnauthenticated              // 401
	KindForbidden                    // 403
	KindNotFound                     // 404 (also: another tenant's resource)
	KindConflict                     // 409: state or concurrency conflict
	KindTooLarge                     // 413
	KindUnsupportedMedia             // 415
	KindIdempotency                  // 422: idempotency key misuse
	KindRateLimited                  // 429
	KindUnavailable                  // 503: a dependency or feature is not available
)

// FieldError is one invalid field of the input.
type FieldError struct {
	Field  string         `json:"field"`
	Code   string         `json:"code"`
	Params map[string]any `json:"-"`
}

// Error is a classified error with a stable code.
type Error struct {
	Kind   Kind
	Code   string         // stable i18n key
	Params map[string]any // values for the localized message ({name} placeholders)
	Fields []FieldError
	Err    error // cause, logged, never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	if len(e.Params) > 0 {
		return fmt.Sprintf("%s %v", e.Code, e.Params)
	}
	return e.Code
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, errs.New(kind, code)) compare by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// New returns an error of kind with code.
func New(kind Kind, code string) *Error { return &Error{Kind: kind, Code: code} }

// With returns a copy of e with a message parameter set.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Params = make(map[string]any, len(e.Params)+1)
	for k, v := range e.Params {
		c.Params[k] = v
	}
	c.Params[key] = value
	return &c
}

// Wrap returns a copy of e that carries cause.
func (e *Error) Wrap(cause error) *Error { c := *e; c.Err = cause; return &c }

// As returns the *Error in err's chain, or an internal error wrapping err.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindInternal, Code: CodeInternal, Err: err}
}

// KindOf returns the kind of err (KindInternal if unclassified).
func KindOf(err error) Kind { return As(err).Kind }

// Stable codes shared across modules. Modules define their own codes next to
// their rules, in the same "errors.<area>.<reason>" form.
const (
	CodeInternal            = "errors.internal"
	CodeValidation          = "errors.validation.failed"
	CodeMalformedJSON       = "errors.request.malformed_json"
	CodeUnknownField        = "errors.request.unknown_field"
	CodeDuplicateField      = "errors.request.duplicate_field"
	CodeTooLarge            = "errors.request.too_large"
	CodeUnsupportedMedia    = "errors.request.unsupported_media_type"
	CodeUnknownCommand      = "errors.request.unknown_command"
	CodeUnknownQuery        = "errors.request.unknown_query"
	CodeNotFound            = "errors.resource.not_found"
	CodeRouteNotFound       = "errors.request.route_not_found"
	CodeMethodNotAllowed    = "errors.request.method_not_allowed"
	CodeUnauthenticated     = "errors.auth.unauthenticated"
	CodeForbidden           = "errors.auth.forbidden"
	CodeConcurrency         = "errors.concurrency.conflict"
	CodeIdempotencyReused   = "errors.idempotency.key_reused"
	CodeIdempotencyInFlight = "errors.idempotency.in_progress"
	CodeIdempotencyKey      = "errors.idempotency.key_invalid"
	CodeUnavailable         = "errors.service.unavailable"
	CodeNotConfigured       = "errors.service.not_configured"
	CodeRateLimited         = "errors.quota.exceeded"
)

// Convenience constructors.

// Invalid is a 400 with field errors.
func Invalid(fields ...FieldError) *Error {
	return &Error{Kind: KindInvalid, Code: CodeValidation, Fields: fields}
}

// NotFound is a 404 for a resource of the given type ("scope", "tenant").
func NotFound(resource string) *Error {
	return (&Error{Kind: KindNotFound, Code: CodeNotFound}).With("resource", resource)
}

// Conflict is a 409 with a specific code.
func Conflict(code string) *Error { return &Error{Kind: KindConflict, Code: code} }
