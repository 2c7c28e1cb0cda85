package domain

import "github.com/switchboard-dev/switchboard/modules/kernel/errs"

// Stable error codes of the tenancy context (i18n keys; never rename one).
const (
	CodeInvalidName        = "errors.tenancy.invalid_name"
	CodeInvalidTier        = "errors.tenancy.invalid_tier"
	CodeInvalidRole        = "errors.tenancy.invalid_role"
	CodeInvalidID          = "errors.tenancy.invalid_id"
	CodeScopeNameTaken     = "errors.tenancy.scope_name_taken"
	CodeCorruptHistory     = "errors.tenancy.corrupt_history"
	CodeTooManyAPIKeys     = "errors.tenancy.too_many_api_keys"
	CodeTooManyRoles       = "errors.tenancy.too_many_role_bindings"
	CodeUnknownAction      = "errors.tenancy.unknown_action"
	CodeNoActions          = "errors.tenancy.no_actions"
	CodeTooManyActions     = "errors.tenancy.too_many_actions"
	CodeRoleNameTaken      = "errors.tenancy.role_name_taken"
	CodeTooManyTenantRoles = "errors.tenancy.too_many_roles"
)

// ErrRoleNameTaken: the tenant already has a role of this name
// (case-insensitively), or it is a built-in role's name. 409.
var ErrRoleNameTaken = errs.Conflict(CodeRoleNameTaken)

// ErrTooManyTenantRoles: the tenant already has MaxTenantRoles roles. 409.
var ErrTooManyTenantRoles = errs.Conflict(CodeTooManyTenantRoles).With("max", MaxTenantRoles)

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

// ErrTooManyAPIKeys: the service account already has MaxActiveAPIKeys keys
// that are not revoked. 409; revoke one first.
var ErrTooManyAPIKeys = errs.Conflict(CodeTooManyAPIKeys).With("max", MaxActiveAPIKeys)

// ErrTooManyRoleBindings: the service account already holds MaxRoleBindings
// bindings. 409; revoke one first.
var ErrTooManyRoleBindings = errs.Conflict(CodeTooManyRoles).With("max", MaxRoleBindings)

// errCorrupt reports a stream whose events cannot form the aggregate (a bug or
// a damaged store, never bad input): an internal error.
func errCorrupt(what string) *errs.Error {
	return (&errs.Error{Kind: errs.KindInternal, Code: CodeCorruptHistory}).With("detail", what)
}
