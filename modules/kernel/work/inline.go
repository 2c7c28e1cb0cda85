package work

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Inline is a Transport that runs items synchronously in the caller's
// goroutine and acknowledges each after its handler succeeded; a failed item
// (error or panic) is rescheduled with backoff (Attempt, LastError) and parked
// after MaxAttempts, as in LocalWorker. It is the Lambda-mode fallback when no
// work queue is configured (the sweep then does the work), and handy in tests.
//
// Handler is the Executor in production: with a runner whose AfterCommit is
// the relay, work committed by a handler runs at once, nested in the call.
type Inline struct {
	Handler ItemHandler
	Store   eventstore.Outbox
	Clock   clock.Clock
	Logger  *slog.Logger
	// MaxAttempts before an item is parked (default DefaultMaxAttempts).
	MaxAttempts int
}

// Durable implements Transport.
func (t *Inline) Durable() bool { return false }

// MaxDelay implements Transport: Inline runs what it gets at once.
func (t *Inline) MaxDelay() time.Duration { return 0 }

// Send implements Transport. It runs every item in order; the result of an
// item is its handler's error (or the acknowledgement's), after the item was
// rescheduled or parked in the store.
//
// Items run as the system principal (trigger TriggerWorker) without the
// caller's authz guard, even when ctx is an HTTP invocation's (AfterCommit of
// its unit of work): a handler's authz.Require judges the work, not the
// caller.
func (t *Inline) Send(ctx context.Context, items []Item) []error {
	results := make([]error, len(items))
	for i, it := range items {
		wctx := invocation.With(authz.WithGuard(ctx, nil), invocation.FromMeta(it.Invocation, TriggerWorker, it.TenantID))
		results[i] = runItem(wctx, t.Handler, t.Store, t.Clock, orDiscard(t.Logger), it, t.MaxAttempts)
	}
	return results
}
