package rpc

import (
	"context"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Authorize installs the invocation's authorization guard (package authz):
// the principal and the endpoint's action as they are now, for the whole
// invocation. Handlers decide with authz.Require on the resource they load;
// the innermost step (the endpoint call) fails closed with 403 when a handler
// returned without any decision, so nothing is committed. Operator endpoints
// are decided by their access rule (CheckAccess).
func Authorize(a authz.Authorizer) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, call *Call) (Result, error) {
			g := authz.NewGuard(a, invocation.From(ctx).Principal, call.Endpoint.Action)
			if call.Endpoint.Access == AccessOperator {
				g.Allow()
			}
			call.guard = g
			return next(authz.WithGuard(ctx, g), call)
		}
	}
}
