package work

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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
// Because it runs inside an invocation that may end (a Lambda timeout, a
// crash), each item's attempt is recorded before its handler runs: the
// entry's Attempt is raised and its DueAt moved to the attempt's backoff, so
// an item whose run ends the invocation still counts, is not swept again
// before that backoff (a longer run may be handed twice; the Executor's
// dedupe holds), and is parked once it used MaxAttempts (the sweep reads
// earliest-due first: an item that never counted would head every sweep).
// With a deadline on ctx, an item runs with a context that ends DeadlineMargin
// before it, items are not started with less than the margin left (left
// pending, result ErrNoTime), and acknowledgements and reschedules get time
// of their own.
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
	// DeadlineMargin is the time kept before ctx's deadline (default
	// DefaultInlineMargin).
	DeadlineMargin time.Duration
}

// DefaultInlineMargin is the default of Inline.DeadlineMargin.
const DefaultInlineMargin = 5 * time.Second

// inlineStoreTime bounds each store call of Inline around a run (the
// attempt's record, the acknowledgement, the reschedule).
const inlineStoreTime = 2 * time.Second

// ErrNoTime is the result of an item Inline did not start because its
// invocation's deadline was near; the item stays pending as it was.
var ErrNoTime = errors.New("work: not started, the invocation's deadline is near")

// Durable implements Transport.
func (t *Inline) Durable() bool { return false }

// MaxDelay implements Transport: Inline runs what it gets at once.
func (t *Inline) MaxDelay() time.Duration { return 0 }

// Send implements Transport. It runs every item in order; the result of an
// item is its handler's error (or the store's, or ErrNoTime), after the item
// was rescheduled or parked in the store.
//
// Items run as the system principal (trigger TriggerWorker) without the
// caller's authz guard, even when ctx is an HTTP invocation's (AfterCommit of
// its unit of work): a handler's authz.Require judges the work, not the
// caller.
func (t *Inline) Send(ctx context.Context, items []Item) []error {
	results := make([]error, len(items))
	margin := cmp.Or(t.DeadlineMargin, DefaultInlineMargin)
	deadline, hasDeadline := ctx.Deadline()
	for i, it := range items {
		if hasDeadline && time.Until(deadline) < margin {
			results[i] = fmt.Errorf("work %s: %w", it.ID, ErrNoTime)
			continue
		}
		wctx := invocation.With(authz.WithGuard(ctx, nil), invocation.FromMeta(it.Invocation, TriggerWorker, it.TenantID))
		results[i] = t.run(wctx, it, deadline, hasDeadline, margin)
	}
	return results
}

// run records the attempt, runs the handler and acknowledges or reschedules
// the item.
func (t *Inline) run(ctx context.Context, it Item, deadline time.Time, hasDeadline bool, margin time.Duration) error {
	log := orDiscard(t.Logger)
	clk := systemClock(t.Clock)
	maxAttempts := cmp.Or(t.MaxAttempts, DefaultMaxAttempts)
	store := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), inlineStoreTime)
	}
	if it.Attempt >= maxAttempts { // its last attempt was recorded and never finished
		cause := fmt.Errorf("attempt %d did not finish (%s)", it.Attempt, it.LastError)
		sctx, cancel := store()
		retryLater(sctx, t.Store, clk, log, it, maxAttempts, cause)
		cancel()
		return fmt.Errorf("work %s: %w", it.ID, cause)
	}
	claimed := it
	claimed.Attempt++
	claimed.DueAt = clk.Now().Add(Backoff(claimed.Attempt))
	claimed.LastError = fmt.Sprintf("attempt %d did not finish: the invocation ended while it ran", claimed.Attempt)
	sctx, cancel := store()
	err := t.Store.RescheduleOutbox(sctx, claimed)
	cancel()
	if err != nil {
		return fmt.Errorf("work %s: record the attempt: %w", it.ID, err)
	}
	claimed.LastError = it.LastError
	rctx := ctx
	if hasDeadline {
		var cancelRun context.CancelFunc
		rctx, cancelRun = context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancelRun()
	}
	err = safeHandle(rctx, t.Handler, log, claimed)
	sctx, cancel = store()
	defer cancel()
	if err == nil {
		if aerr := t.Store.AckOutbox(sctx, []Item{claimed}); aerr != nil {
			log.WarnContext(ctx, "work done but not acknowledged; it will run again", "workId", it.ID, "error", aerr.Error())
			return fmt.Errorf("ack %s: %w", it.ID, aerr)
		}
		return nil
	}
	retryLater(sctx, t.Store, clk, log, claimed, maxAttempts, err)
	return fmt.Errorf("work %s: %w", it.ID, err)
}
