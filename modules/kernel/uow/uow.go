// Package uow runs units of work: the one way anything in Switchboard commits.
//
// A unit of work runs a function that reads what it needs and stages its
// writes (events, read-model rows, outbox entries) in an eventstore.Unit
// carried by the context; the runner then commits everything staged, plus an
// optional idempotency record, in ONE eventstore.Commit, and hands the
// committed outbox entries to the work relay (AfterCommit). The RPC edge,
// work consumers, provider webhook routes and scheduled jobs all use it, so
// every commit path has the same guarantees:
//
//   - one write round trip per unit; nothing is written when the function fails;
//   - a version conflict (eventstore.ErrConflict) re-runs the function in a
//     fresh unit after a short jittered pause, up to MaxAttempts times
//     (nothing had been written); the pause spreads writers that raced for
//     one stream, so ten at once all get through;
//   - an idempotency record that already exists (eventstore.ErrDuplicate: a
//     concurrent twin committed first) is returned to the caller, who replays;
//   - a panic in the function is recovered and returned as an error wrapping
//     ErrPanic (logged with its stack);
//   - work committed by the unit reaches the relay at once, not only through
//     the outbox sweep.
package uow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// DefaultMaxAttempts is how often a unit is run when its commits keep
// conflicting.
const DefaultMaxAttempts = 8

// ConflictPause is the default pause before run attempt+1 after a conflict:
// "full jitter" (uniform in [0, min(64 ms, 2 ms × 2^(attempt-1))]), at most
// ~190 ms over all runs. Without it, writers racing for one stream run again
// at the same instant and only one of them wins each round.
func ConflictPause(attempt int) time.Duration {
	ceiling := min(64*time.Millisecond, (2*time.Millisecond)<<min(attempt-1, 6))
	return rand.N(ceiling + 1)
}

// ErrPanic is wrapped by the error of a unit whose function panicked.
var ErrPanic = errors.New("uow: panic")

// Finish is called after the function succeeded, with the commit it staged
// (not yet written); it may add the idempotency record (c.Idempotency) or
// inspect the commit. An error aborts the unit: nothing is written.
type Finish func(ctx context.Context, c *eventstore.Commit) error

// Runner commits units of work. The zero value is not usable: Store is required.
type Runner struct {
	Store eventstore.Appender
	// AfterCommit receives the outbox entries of every successful commit (the
	// work relay). It must not block for long; it never fails the unit. Its
	// context keeps the values and the deadline of Run's, but is not
	// cancelled with it (see detach); it still carries the caller's
	// invocation values (principal, authz guard): code that runs work must
	// not act as that caller (work.Inline and work.Executor clear the guard).
	AfterCommit func(ctx context.Context, entries []eventstore.OutboxEntry)
	// MaxAttempts bounds the runs of one unit on version conflicts
	// (default DefaultMaxAttempts).
	MaxAttempts int
	// Pause is the wait before the run after a conflicting attempt (default
	// ConflictPause); the wait ends early, with the conflict, when ctx ends.
	Pause  func(attempt int) time.Duration
	Logger *slog.Logger // nil: discard
}

// Run runs fn in a fresh unit of work of tenantID ("" takes the tenant of the
// first staged write) and commits what it staged, after finish (may be nil)
// had its say. Errors: fn's error as it is; eventstore.ErrDuplicate (wrapped)
// when the idempotency record exists; eventstore.ErrConflict (wrapped) after
// MaxAttempts conflicting runs; ErrPanic; or the store's error.
func (r *Runner) Run(ctx context.Context, tenantID string, fn func(ctx context.Context) error, finish Finish) error {
	attempts := r.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	for attempt := 1; ; attempt++ {
		err := r.runOnce(context.WithValue(ctx, attemptKey{}, attempt), tenantID, fn, finish)
		if errors.Is(err, eventstore.ErrConflict) && !errors.Is(err, eventstore.ErrDuplicate) && attempt < attempts {
			r.logger().DebugContext(ctx, "unit of work conflicted, running it again", "attempt", attempt, "error", err.Error())
			pause := ConflictPause
			if r.Pause != nil {
				pause = r.Pause
			}
			if d := pause(attempt); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return err
				}
			}
			continue
		}
		return err
	}
}

type attemptKey struct{}

// Attempt is the run of the unit of work ctx belongs to: 1 for its first
// run, 2 and more for the runs after a conflict; 0 outside a Runner. A handler
// may read what only a lost race makes likely on a later run alone.
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

func (r *Runner) runOnce(ctx context.Context, tenantID string, fn func(ctx context.Context) error, finish Finish) error {
	unit := eventstore.NewUnit(tenantID)
	if err := r.call(eventstore.WithUnit(ctx, unit), fn); err != nil {
		return err
	}
	c := unit.Commit()
	if finish != nil {
		if err := finish(ctx, c); err != nil {
			return err
		}
	}
	if c.Empty() {
		unit.Committed(ctx)
		return nil
	}
	if c.TenantID == "" && c.Idempotency != nil {
		c.TenantID = c.Idempotency.TenantID
	}
	if err := r.Store.Commit(ctx, c); err != nil {
		return fmt.Errorf("uow: %w", err)
	}
	unit.Committed(ctx)
	if len(c.Outbox) > 0 && r.AfterCommit != nil {
		actx, cancel := detach(ctx)
		defer cancel()
		r.AfterCommit(actx, c.Outbox)
	}
	return nil
}

// detach returns a context for the work after a commit: it keeps ctx's
// values and deadline but not its cancellation. The commit happened; a
// caller that goes away (an HTTP client disconnecting) must not cancel the
// hand-off of its work, while the invocation's deadline still bounds it (so
// an SQS batch still answers in time).
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	d := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(d, deadline)
	}
	return d, func() {}
}

// call runs fn, turning a panic into an error.
func (r *Runner) call(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.logger().ErrorContext(ctx, "panic in unit of work", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", ErrPanic, p)
		}
	}()
	return fn(ctx)
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// OnCommit runs f after the unit of work of ctx commits (once, and only if it
// commits), or at once outside a unit. Handlers log what they did here.
func OnCommit(ctx context.Context, f func(ctx context.Context)) { eventstore.OnCommit(ctx, f) }

// WithoutUnit returns ctx without its unit of work: a write made with it
// commits at once (eventstore.Write), and neither a failure nor a re-run of
// ctx's unit takes it back. For the rare write that must be visible before
// the unit goes on (a claim other processes must see, made before a call).
func WithoutUnit(ctx context.Context) context.Context { return eventstore.WithUnit(ctx, nil) }
