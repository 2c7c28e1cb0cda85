package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Authenticator turns a bearer credential into a principal (see package auth).
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (invocation.Principal, error)
}

// CodeAuthThrottled answers a call refused by the failed-authentication
// throttle (429 with Retry-After, ADR 0011).
const CodeAuthThrottled = "errors.auth.throttled"

// Authenticate sets the invocation's principal from the call's credential:
// 401 when it is missing or bad, 503 errors.service.not_configured for an
// operator endpoint while no operator key is configured, 503 when the key
// store is unreachable. A principal set already (a batch item) is kept.
// allowLogLevel says whether X-Log-Level is honoured for everyone; otherwise
// only the operator's is. It does not throttle failures (AuthenticateThrottled).
func Authenticate(a Authenticator, allowLogLevel bool) Middleware {
	return AuthenticateThrottled(a, nil, allowLogLevel)
}

// AuthenticateThrottled is Authenticate with failed attempts counted by t
// (nil: none), ADR 0011: a call whose API key id is throttled is answered
// 429 errors.auth.throttled with Retry-After before its credential is
// checked (a right secret too); a bad credential from an address over its
// limit is answered 429 instead of 401. A missing credential is a 401 and is
// not counted (it guesses nothing); store failures are not counted either.
func AuthenticateThrottled(a Authenticator, t *auth.Throttle, allowLogLevel bool) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, call *Call) (Result, error) {
			ic := invocation.From(ctx)
			if ic.Principal.Kind != invocation.KindAnonymous {
				return next(ctx, call)
			}
			if call.Credential == "" {
				return Result{}, errs.New(errs.KindUnauthenticated, errs.CodeUnauthenticated)
			}
			if t != nil {
				if ra, throttled := t.Check(call.Credential, call.Source.IP); throttled {
					return Result{}, authThrottled(ra)
				}
			}
			p, err := a.Authenticate(ctx, call.Credential)
			switch {
			case errors.Is(err, auth.ErrNotConfigured) && call.Endpoint.Access == AccessOperator:
				return Result{}, errs.New(errs.KindUnavailable, errs.CodeNotConfigured).With("setting", "SWITCHBOARD_OPERATOR_KEY")
			case errors.Is(err, auth.ErrUnauthenticated) || errors.Is(err, auth.ErrNotConfigured):
				if f := (*auth.Failure)(nil); errors.As(err, &f) {
					call.failedAuth = f
				}
				if t != nil {
					if ra, throttled := t.Fail(call.Credential, call.Source.IP); throttled {
						return Result{}, authThrottled(ra)
					}
				}
				return Result{}, errs.New(errs.KindUnauthenticated, errs.CodeUnauthenticated)
			case err != nil:
				return Result{}, errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(fmt.Errorf("authenticate: %w", err))
			}
			ic.Principal = p
			if p.Kind == invocation.KindOperator && !allowLogLevel && call.LogLevel != nil {
				ic.Toggles.LogLevel = call.LogLevel
			}
			return next(ctx, call)
		}
	}
}

func authThrottled(retryAfter int) error {
	return errs.New(errs.KindRateLimited, CodeAuthThrottled).With("retryAfter", retryAfter)
}

// CheckAccess enforces who may call an endpoint at all: operator endpoints only the
// operator, every other endpoint only a tenant's principal (403 otherwise).
func CheckAccess() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, call *Call) (Result, error) {
			operator := invocation.From(ctx).Principal.Kind == invocation.KindOperator
			if (call.Endpoint.Access == AccessOperator) != operator {
				return Result{}, errs.New(errs.KindForbidden, errs.CodeForbidden).With("action", call.Endpoint.Action)
			}
			return next(ctx, call)
		}
	}
}

// bearer extracts the credential of an "Authorization: Bearer <credential>"
// header; the scheme is case-insensitive (RFC 9110).
func bearer(h string) string {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	cred = strings.TrimSpace(cred)
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return cred
}
