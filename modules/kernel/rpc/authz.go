package rpc

import (
	"context"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Authorizer decides whether a principal may run an endpoint. It runs once per
// invocation, after authentication and before any read or write. It is the seam
// for the policy engine (Cedar): the request will grow a resource (the scope the
// command acts in) when scoped service accounts arrive.
type Authorizer interface {
	// Authorize returns nil, or an *errs.Error of KindForbidden.
	Authorize(ctx context.Context, p invocation.Principal, ep *Endpoint) error
}

// RoleAuthorizer is the built-in role model of the contract: admin may do
// everything, sender may send and cancel messages and read channels and
// messages, viewer may read. Roles are granted at a scope; until scoped
// resources exist (channels, messages), a binding anywhere in the tenant counts.
type RoleAuthorizer struct{}

// senderActions are the actions a sender may run besides reads of channels and messages.
var senderActions = map[string]bool{
	"messaging:send-message":   true,
	"messaging:cancel-message": true,
}

// Authorize implements Authorizer.
func (RoleAuthorizer) Authorize(_ context.Context, p invocation.Principal, ep *Endpoint) error {
	if p.Kind == invocation.KindSystem {
		return nil
	}
	for _, b := range p.Roles {
		switch b.Role {
		case "admin":
			return nil
		case "sender":
			if senderActions[ep.Action] || (ep.Kind == KindQuery &&
				(strings.HasPrefix(ep.Action, "messaging:") || strings.HasPrefix(ep.Action, "channels:"))) {
				return nil
			}
		case "viewer":
			if ep.Kind == KindQuery {
				return nil
			}
		}
	}
	return errs.New(errs.KindForbidden, errs.CodeForbidden).With("action", ep.Action)
}
