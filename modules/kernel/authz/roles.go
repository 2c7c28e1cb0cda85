package authz

import (
	"context"
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Roles is the built-in role model of the contract written by hand, as it
// was decided before Cedar: admin may do everything, sender may send and
// cancel messages and read channels and messages, viewer may read. A binding
// is valid at its scope and every scope below it: it applies to a resource
// whose ScopePath contains the binding's scope. So the tenant itself
// (authz.Tenant, in the root scope) is covered only by bindings at the root;
// a binding without a scope, or a resource without a scope path, covers
// nothing (fail closed). Reads are the actions IsRead names.
//
// The edge does not use it: its Authorizer is cedarauthz (ADR 0009), which
// also denies actions missing from the catalogue. Roles stays as the oracle
// of cedarauthz's equivalence tests and for module tests that install a
// Guard with test actions of their own; new code uses cedarauthz.
type Roles struct{}

// senderActions are the actions a sender may run besides reads of channels and messages.
var senderActions = map[string]bool{
	"messaging:send-message":   true,
	"messaging:cancel-message": true,
}

// readPrefixes are the verbs of read actions ("tenancy:get-tenant", "tenancy:list-scopes").
var readPrefixes = []string{"get-", "list-"}

// IsRead reports whether an action only reads.
func IsRead(action string) bool {
	_, verb, _ := strings.Cut(action, ":")
	for _, p := range readPrefixes {
		if strings.HasPrefix(verb, p) {
			return true
		}
	}
	return false
}

// Authorize implements Authorizer.
func (Roles) Authorize(_ context.Context, p invocation.Principal, action string, res Resource) error {
	if p.Kind == invocation.KindSystem {
		return nil
	}
	if p.Kind == invocation.KindServiceAccount {
		for _, b := range p.Roles {
			if b.ScopeID == "" || !slices.Contains(res.ScopePath, b.ScopeID) {
				continue
			}
			if roleAllows(b.Role, action) {
				return nil
			}
		}
	}
	return errs.New(errs.KindForbidden, errs.CodeForbidden).With("action", action)
}

func roleAllows(role, action string) bool {
	switch role {
	case "admin":
		return true
	case "sender":
		return senderActions[action] || (readGroup(action) &&
			(strings.HasPrefix(action, "messaging:") || strings.HasPrefix(action, "channels:")))
	case "viewer":
		return readGroup(action)
	}
	return false
}

// readGroup reports whether the read roles grant action: a read action that
// is not Privileged.
func readGroup(action string) bool {
	act, ok := LookupAction(action)
	return IsRead(action) && !(ok && act.Privileged)
}
