package eventstore

import (
	"context"
	"fmt"
	"sync"
)

// Unit is an invocation's unit of work: the writes its handlers stage, committed
// once by the edge (rpc) together with the idempotency record, so that a command
// costs one write round trip and a concurrent duplicate commits nothing.
//
// Handlers do not see their own staged writes when they read.
type Unit struct {
	mu       sync.Mutex
	commit   Commit
	onCommit []func(context.Context)
}

// NewUnit returns an empty unit for a tenant.
func NewUnit(tenantID string) *Unit { return &Unit{commit: Commit{TenantID: tenantID}} }

// Stage adds c to the unit. A stream may be appended to once per unit.
func (u *Unit) Stage(c *Commit) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.commit.TenantID == "" {
		u.commit.TenantID = c.TenantID
	}
	if c.TenantID != u.commit.TenantID {
		return fmt.Errorf("stage: tenant %q in a unit of tenant %q: %w", c.TenantID, u.commit.TenantID, ErrInvalid)
	}
	for _, a := range c.Appends {
		for _, b := range u.commit.Appends {
			if a.StreamID == b.StreamID {
				return fmt.Errorf("stage: stream %q appended twice: %w", a.StreamID, ErrInvalid)
			}
		}
	}
	u.commit.Appends = append(u.commit.Appends, c.Appends...)
	u.commit.Records = append(u.commit.Records, c.Records...)
	u.commit.Outbox = append(u.commit.Outbox, c.Outbox...)
	return nil
}

// Commit returns the staged commit (the caller adds the idempotency record).
func (u *Unit) Commit() *Commit {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.commit
	return &c
}

// OnCommit registers f to run after the unit committed (not when it fails or
// is re-run): log lines and metrics of what a handler did go here, so they
// are written once and only for what was written.
func (u *Unit) OnCommit(f func(context.Context)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.onCommit = append(u.onCommit, f)
}

// Committed runs the OnCommit functions (the committer calls it once).
func (u *Unit) Committed(ctx context.Context) {
	u.mu.Lock()
	fs := u.onCommit
	u.onCommit = nil
	u.mu.Unlock()
	for _, f := range fs {
		f(ctx)
	}
}

type unitKey struct{}

// WithUnit returns ctx carrying u.
func WithUnit(ctx context.Context, u *Unit) context.Context {
	return context.WithValue(ctx, unitKey{}, u)
}

// UnitFrom returns the unit of ctx, if any.
func UnitFrom(ctx context.Context) (*Unit, bool) {
	u, ok := ctx.Value(unitKey{}).(*Unit)
	return u, ok && u != nil
}

// Write stages c in ctx's unit of work when there is one (an rpc command), or
// commits it at once otherwise (workers, schedules). Repositories call this.
func Write(ctx context.Context, store Appender, c *Commit) error {
	if u, ok := UnitFrom(ctx); ok {
		return u.Stage(c)
	}
	return store.Commit(ctx, c)
}

// OnCommit runs f after ctx's unit of work commits, or at once when there is
// no unit (the write it follows committed directly).
func OnCommit(ctx context.Context, f func(context.Context)) {
	if u, ok := UnitFrom(ctx); ok {
		u.OnCommit(f)
		return
	}
	f(ctx)
}
