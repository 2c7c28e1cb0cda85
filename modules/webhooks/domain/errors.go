package domain

import "github.com/switchboard-dev/switchboard/modules/kernel/errs"

// Stable error codes of the webhooks context (i18n keys; never rename one).
const (
	CodeInvalidURL        = "errors.webhook.invalid_url"
	CodeTargetForbidden   = "errors.webhook.target_forbidden"
	CodeInvalidEventTypes = "errors.webhook.invalid_event_types"
	CodeInvalidID         = "errors.webhook.invalid_id"
	CodeCorruptHistory    = "errors.webhook.corrupt_history"
	CodeTooManyInScope    = "errors.webhook.too_many_subscriptions"
)

// invalid returns a 400 (errors.validation.failed, as every validation
// error) whose single field error carries code with params.
func invalid(field, code string, params map[string]any) *errs.Error {
	return &errs.Error{
		Kind:   errs.KindInvalid,
		Code:   errs.CodeValidation,
		Params: params,
		Fields: []errs.FieldError{{Field: field, Code: code, Params: params}},
	}
}

// ErrTargetForbidden answers a subscription URL whose host is, or resolves
// to, an address subscriber webhooks may not reach (loopback, private,
// link-local, metadata, ...). 400 on field "url".
var ErrTargetForbidden = invalid("url", CodeTargetForbidden, nil)

// ErrTooManyInScope answers a subscription over MaxScopeSubscriptions
// enabled ones in its scope: 409.
var ErrTooManyInScope = errs.Conflict(CodeTooManyInScope).With("max", MaxScopeSubscriptions)

// errCorrupt reports a stream whose events cannot form the aggregate (a bug or
// a damaged store, never bad input): an internal error.
func errCorrupt(what string) *errs.Error {
	return (&errs.Error{Kind: errs.KindInternal, Code: CodeCorruptHistory}).With("detail", what)
}

// requireID rejects an empty id: ids are made by the application, so an empty
// one is a bug, not bad input.
func requireID(field, id string) error {
	if id == "" {
		return (&errs.Error{Kind: errs.KindInternal, Code: CodeInvalidID}).With("field", field)
	}
	return nil
}
