package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// MaxNameLength is the longest name (in characters) of a tenant, scope or service account.
const MaxNameLength = 200

// NormalizeName trims surrounding white space and checks the result is 1..200
// characters without control characters. field names the input field in the
// error (400 errors.tenancy.invalid_name).
func NormalizeName(field, name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" || !utf8.ValidString(n) || utf8.RuneCountInString(n) > MaxNameLength {
		return "", invalid(field, CodeInvalidName).With("max", MaxNameLength)
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return "", invalid(field, CodeInvalidName).With("max", MaxNameLength)
		}
	}
	return n, nil
}

// NameKey is the form in which sibling names are compared: case-insensitive.
// name must already be normalized.
func NameKey(name string) string { return strings.ToLower(name) }

// Tier is how a tenant's data is hosted.
type Tier string

// Tiers. Persisted.
const (
	TierPooled Tier = "pooled" // shares the platform's table
	TierSiloed Tier = "siloed" // dedicated resources (provisioned asynchronously)
)

// ParseTier checks a tier (400 errors.tenancy.invalid_tier).
func ParseTier(s string) (Tier, error) {
	switch t := Tier(s); t {
	case TierPooled, TierSiloed:
		return t, nil
	}
	return "", invalid("tier", CodeInvalidTier).With("value", s)
}

// Role is what a binding grants at a scope (valid in it and below it): a
// built-in role's name or a tenant role's id ("rol_...").
type Role string

// Roles. Persisted.
const (
	RoleAdmin  Role = "admin"  // everything
	RoleSender Role = "sender" // send and cancel messages, read channels and messages
	RoleViewer Role = "viewer" // read
)

// ParseRole checks a role: a built-in role's name or a well-formed tenant
// role id (that the role exists in the tenant is the application's check).
// Errors: 400 errors.tenancy.invalid_role.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleSender, RoleViewer:
		return r, nil
	}
	if ids.Valid(ids.Role, s) {
		return Role(s), nil
	}
	return "", ErrInvalidRole(s)
}

// ErrInvalidRole is the 400 of a role that is neither built in nor a role id.
func ErrInvalidRole(s string) error { return invalid("role", CodeInvalidRole).With("value", s) }

// IsTenantRole reports whether r is a tenant role's id.
func (r Role) IsTenantRole() bool { return ids.Valid(ids.Role, string(r)) }

// requireID rejects an empty id: ids are made by the application, so an empty
// one is a bug, not bad input.
func requireID(field, id string) error {
	if id == "" {
		return (&errs.Error{Kind: errs.KindInternal, Code: CodeInvalidID}).With("field", field)
	}
	return nil
}
