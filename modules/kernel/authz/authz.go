// Package authz is the authorization hook of every invocation: handlers decide
// on the resource they act on, after loading it; the edge makes sure they did.
//
// The edge (package rpc) puts a Guard into the context of each invocation,
// holding the principal and the endpoint's action as they were when the
// invocation started. A handler that has loaded its resource (the parent scope
// of a new scope, the channel of a message, ...) calls Require with it; the
// Guard asks the Authorizer once per resource per invocation (a handler re-run
// after a version conflict gets the same answer) and remembers that a decision
// was made. An invocation whose handler returns without any decision fails
// closed: the edge answers 403 and commits nothing.
//
// Code that runs without a Guard (work items, scheduled jobs) acts as the
// system principal: Require allows it and denies anyone else (fail closed).
//
// What roles can grant is the catalogue of actions (Actions: name, resource
// types, read-only), one entry per tenant endpoint's action. The Authorizer
// of the edge is package cedarauthz: the built-in roles as Cedar policies
// over that catalogue (ADR 0009). Roles is the hand-written reference it
// replaced.
package authz

import (
	"context"
	"slices"
	"sync"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Resource is what an action is taken on.
type Resource struct {
	Type string // "tenant", "scope", "channel", "message", ... (stable)
	ID   string
	// ScopePath is the scope ids from the tenant's root scope down to the
	// resource's own scope (for a scope: itself last; for the tenant itself:
	// the root scope alone). A resource without one is denied to everyone
	// but the system (fail closed).
	ScopePath []string
}

// String renders the resource as "<type>:<id>" (audit lines).
func (r Resource) String() string { return r.Type + ":" + r.ID }

// Tenant is the resource of tenant-wide actions (get-tenant, list-scopes):
// it lives in the tenant's root scope, so only bindings at the root cover it.
func Tenant(tenantID, rootScopeID string) Resource {
	return Resource{Type: ResourceTenant, ID: tenantID, ScopePath: []string{rootScopeID}}
}

// Authorizer decides whether a principal may take an action on a resource.
type Authorizer interface {
	// Authorize returns nil, or an *errs.Error of KindForbidden.
	Authorize(ctx context.Context, p invocation.Principal, action string, res Resource) error
}

// Guard is one invocation's authorization state. Safe for concurrent use.
type Guard struct {
	authorizer Authorizer
	principal  invocation.Principal
	action     string

	mu        sync.Mutex
	decisions map[string]error
	order     []Resource
	denied    bool
	preset    bool
}

// NewGuard returns the guard of an invocation by p of action.
func NewGuard(a Authorizer, p invocation.Principal, action string) *Guard {
	return &Guard{authorizer: a, principal: p, action: action, decisions: map[string]error{}}
}

// Allow marks the invocation as decided and allowed without a resource: for
// endpoints whose access rule is the whole decision (operator-only commands).
func (g *Guard) Allow() {
	g.mu.Lock()
	g.preset = true
	g.mu.Unlock()
}

// Require decides on res (once per resource per invocation).
func (g *Guard) Require(ctx context.Context, res Resource) error {
	key := res.String() + "\x00" + joinPath(res.ScopePath)
	g.mu.Lock()
	if err, ok := g.decisions[key]; ok {
		g.mu.Unlock()
		return err
	}
	g.mu.Unlock()
	err := g.authorizer.Authorize(ctx, g.principal, g.action, res)
	g.mu.Lock()
	defer g.mu.Unlock()
	if prev, ok := g.decisions[key]; ok { // a concurrent Require decided first
		return prev
	}
	g.decisions[key] = err
	g.order = append(g.order, res)
	if err != nil {
		g.denied = true
	}
	return err
}

// Decided reports whether a decision was made.
func (g *Guard) Decided() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.preset || len(g.decisions) > 0
}

// Denied reports whether any decision denied.
func (g *Guard) Denied() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.denied
}

// Resources lists the resources decided on, in order.
func (g *Guard) Resources() []Resource {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.order)
}

func joinPath(p []string) string {
	n := 0
	for _, s := range p {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	for _, s := range p {
		b = append(b, s...)
		b = append(b, '/')
	}
	return string(b)
}

type guardKey struct{}

// WithGuard returns ctx carrying g.
func WithGuard(ctx context.Context, g *Guard) context.Context {
	return context.WithValue(ctx, guardKey{}, g)
}

// GuardFrom returns the guard of ctx, if any.
func GuardFrom(ctx context.Context) (*Guard, bool) {
	g, ok := ctx.Value(guardKey{}).(*Guard)
	return g, ok && g != nil
}

// Require decides whether the invocation of ctx may act on res. Without a
// guard only the system principal is allowed.
func Require(ctx context.Context, res Resource) error {
	if g, ok := GuardFrom(ctx); ok {
		return g.Require(ctx, res)
	}
	if invocation.From(ctx).Principal.Kind == invocation.KindSystem {
		return nil
	}
	return errs.New(errs.KindForbidden, errs.CodeForbidden).With("resource", res.String())
}

// ErrNoTenant answers a tenant command or query called without a tenant
// principal: the edge lets only tenant principals through to tenant
// endpoints (rpc.CheckAccess), so this is the backstop.
var ErrNoTenant = errs.New(errs.KindForbidden, errs.CodeForbidden)

// TenantOf is the tenant the invocation acts in, or ErrNoTenant.
func TenantOf(ctx context.Context) (string, error) {
	if id := invocation.From(ctx).TenantID(); id != "" {
		return id, nil
	}
	return "", ErrNoTenant
}
