package capacity

import (
	"context"
	"strconv"
	"sync/atomic"
)

type ctxKey struct{}

// label is what a context carries: the workload operation, its tenant, and
// the id of this instance of the operation (to count operations).
type label struct {
	op       string
	tenant   string
	instance string
}

var instances atomic.Uint64

// WithOp labels the requests made with ctx as one instance of the workload
// operation op (e.g. "onboard-tenant"). Each call starts a new instance:
// call it once per operation performed, and pass the context to every
// request of that operation. A tenant set before (WithTenant) is kept.
func WithOp(ctx context.Context, op string) context.Context {
	l := from(ctx)
	l.op = op
	l.instance = "op-" + strconv.FormatUint(instances.Add(1), 10)
	return context.WithValue(ctx, ctxKey{}, l)
}

// WithTenant sets the tenant of the operation of ctx (used for keys that
// carry no tenant, such as global rows and outbox shards, and to count a
// tenant's operations). Without it the tenant is inferred from the keys.
func WithTenant(ctx context.Context, tenant string) context.Context {
	l := from(ctx)
	l.tenant = tenant
	return context.WithValue(ctx, ctxKey{}, l)
}

// WithInstance sets the id of the operation instance of ctx, replacing the
// one WithOp made: requests made with the same id count as one operation,
// whatever their contexts (e.g. every step of one message's lifecycle, from
// its send request to its last webhook, keyed by the message's trace id).
// An id of "" leaves the context as it is.
func WithInstance(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	l := from(ctx)
	l.instance = id
	return context.WithValue(ctx, ctxKey{}, l)
}

// OpFrom returns the workload operation and tenant of ctx ("" when unset).
func OpFrom(ctx context.Context) (op, tenant string) {
	l := from(ctx)
	return l.op, l.tenant
}

func from(ctx context.Context) label {
	l, _ := ctx.Value(ctxKey{}).(label)
	return l
}
