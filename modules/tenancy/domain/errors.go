package domain

import "github.com/switchboard-dev/switchboard/modules/kernel/errs"

// Stable error codes of the tenancy context (i18n keys; never rename one).
const (
	CodeInvalidName    = "errors.tenancy.invalid_name"
	CodeInvalidTier    = "errors.tenancy.invalid_tier"
	CodeInvalidRole    = "errors.tenancy.invalid_role"
	CodeInvalidID      = "errors.tenancy.invalid_id"
	CodeScopeNameTaken = "errors.tenancy.scope_name_taken"
	CodeCorruptHistory = "errors.tenancy.corrupt_history"
)

// invalid returns a 400 whose code and single field error carry code.
func invalid(field, code string) *errs.Error {
	return &errs.Error{
		Kind:   errs.KindInvalid,
		Code:   code,
		Fields: []errs.FieldError{{Field: field, Code: code}},
	}
}

// ErrScopeNameTaken: a sibling scope already has this name (case-insensitively). 409.
var ErrScopeNameTaken = errs.Conflict(CodeScopeNameTaken)

// errCorrupt reports a stream whose events cannot form the aggregate (a bug or
// a damaged store, never bad input): an internal error.
func errCorrupt(what string) *errs.Error {
	return (&errs.Error{Kind: errs.KindInternal, Code: CodeCorruptHistory}).With("detail", what)
}
