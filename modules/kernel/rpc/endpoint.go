// Package rpc is Switchboard's HTTP edge: POST /commands/{name},
// POST /queries/{name}, POST /commands (batch) and GET /healthz.
//
// Modules register Endpoints; the Server runs every call through one chain of
// small middlewares (see Server: audit, recovery, authentication, access,
// authorization, idempotency, unit of work; then decoding, validation and the
// handler) and maps errors to problem+json only here, at the edge.
package rpc

import (
	"context"
	"net/http"
	"reflect"
)

// Kind is command or query.
type Kind string

// Kinds.
const (
	KindCommand Kind = "command"
	KindQuery   Kind = "query"
)

// Access says who may call an endpoint at all (before authorization).
type Access int

// Accesses.
const (
	// AccessTenant: an authenticated principal of a tenant (API key or token).
	AccessTenant Access = iota
	// AccessOperator: only the operator key.
	AccessOperator
)

// Endpoint is one command or query.
type Endpoint struct {
	Kind   Kind
	Name   string // kebab-case, e.g. "create-scope"
	Access Access
	// Action is the permission checked by the authorizer, e.g. "tenancy:create-scope".
	Action string
	// Status is the HTTP status of success (200 unless set, 202 for accepted work).
	Status int

	inputType reflect.Type
	call      func(ctx context.Context, in any) (any, error)
}

// Option tunes an endpoint.
type Option func(*Endpoint)

// OperatorOnly restricts an endpoint to the operator key.
func OperatorOnly() Option { return func(e *Endpoint) { e.Access = AccessOperator } }

// WithStatus sets the success status.
func WithStatus(code int) Option { return func(e *Endpoint) { e.Status = code } }

// Command declares a command. In is a struct decoded from the JSON body with
// unknown fields rejected and validated by its `validate` tags; h returns the
// response body or an error of package errs.
func Command[In, Out any](name, action string, h func(context.Context, In) (Out, error), opts ...Option) Endpoint {
	return newEndpoint(KindCommand, name, action, h, opts)
}

// Query declares a query (no writes; Idempotency-Key is ignored).
func Query[In, Out any](name, action string, h func(context.Context, In) (Out, error), opts ...Option) Endpoint {
	return newEndpoint(KindQuery, name, action, h, opts)
}

func newEndpoint[In, Out any](kind Kind, name, action string, h func(context.Context, In) (Out, error), opts []Option) Endpoint {
	e := Endpoint{
		Kind: kind, Name: name, Action: action, Status: http.StatusOK,
		inputType: reflect.TypeFor[In](),
		call: func(ctx context.Context, in any) (any, error) {
			return h(ctx, *(in.(*In)))
		},
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

// newInput returns a pointer to a zero input value.
func (e *Endpoint) newInput() any { return reflect.New(e.inputType).Interface() }

// Registrar is what modules register their endpoints with.
type Registrar interface {
	Register(eps ...Endpoint)
}
