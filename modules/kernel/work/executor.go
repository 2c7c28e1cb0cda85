package work

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// DefaultDedupeTTL is how long the Executor remembers that a work item ran.
const DefaultDedupeTTL = 7 * 24 * time.Hour

// TriggerWorker is the invocation trigger of work run in-process (LocalWorker,
// Inline, or an Executor called without an invocation context).
const TriggerWorker = "worker"

// DedupeKey is the idempotency key under which the Executor records that the
// item with this work id ran.
func DedupeKey(workID string) string { return "work:" + workID }

// Executor runs work items: the handler of the item's type, in a unit of
// work (uow.Runner) of the item's tenant, committing what the handler staged
// in one commit together with an idempotency record under DedupeKey(it.ID).
//
// So an item that runs twice commits once: when the record exists, the
// commit fails with eventstore.ErrDuplicate and Execute returns nil (the work
// was done). A handler that staged nothing writes no record (nothing to
// dedupe), and neither does a type registered with
// Registry.RegisterIdempotent: its handler's commits are conditioned on the
// state that makes the work due, which dedupes them already (ADR 0017).
// Panics are recovered by the runner (uow.ErrPanic), conflicts re-run the
// handler, and the committed outbox entries go to the relay at once.
//
// Side effects outside the store (a provider call) are not covered: they may
// happen once per run and must be idempotent by themselves (key them by it.ID).
type Executor struct {
	Handlers *Registry
	Runner   *uow.Runner
	Clock    clock.Clock  // nil: system clock
	Logger   *slog.Logger // nil: discard
	// DedupeTTL is how long the dedupe record is kept (default DefaultDedupeTTL);
	// it must outlast every redelivery of the item.
	DedupeTTL time.Duration
}

// Execute runs one item. The invocation context of ctx is used when it has
// one (the SQS router sets trigger "sqs"); otherwise the item continues its
// cause's invocation with trigger TriggerWorker. An authz guard in ctx is
// cleared: handlers act as the system principal. Errors: the handler's, one
// wrapping ErrUnknownType or uow.ErrPanic, or the store's.
func (x *Executor) Execute(ctx context.Context, it Item) error {
	h, err := x.Handlers.Lookup(it)
	if err != nil {
		return err
	}
	ctx = authz.WithGuard(ctx, nil) // work is the system's, never a caller's invocation
	if invocation.From(ctx).Trigger == "" {
		ctx = invocation.With(ctx, invocation.FromMeta(it.Invocation, TriggerWorker, it.TenantID))
	}
	ttl := x.DedupeTTL
	if ttl <= 0 {
		ttl = DefaultDedupeTTL
	}
	byState := x.Handlers.Idempotent(it.Type)
	finish := func(_ context.Context, c *eventstore.Commit) error {
		if c.Empty() || byState {
			return nil
		}
		now := systemClock(x.Clock).Now()
		c.Idempotency = &eventstore.Idempotency{
			TenantID: it.TenantID, Key: DedupeKey(it.ID), Fingerprint: it.Type, Status: 200,
			Body: json.RawMessage(`{}`), CreatedAt: now, ExpiresAt: now.Add(ttl),
		}
		return nil
	}
	err = x.Runner.Run(ctx, it.TenantID, func(ctx context.Context) error { return h(ctx, it) }, finish)
	if errors.Is(err, eventstore.ErrDuplicate) {
		orDiscard(x.Logger).DebugContext(ctx, "work item already ran; its writes are dropped", "workId", it.ID, "type", it.Type)
		return nil
	}
	return err
}

// Handle implements ItemHandler (and trigger.WorkHandler): it is Execute.
func (x *Executor) Handle(ctx context.Context, it Item) error { return x.Execute(ctx, it) }

// Requeuer puts a work item whose run failed back into the outbox, due after
// a backoff: the retry path of the SQS consumer (package trigger). It commits
// the item (Attempt as given, LastError, DueAt = now + Backoff(Attempt), or
// eventstore.ParkedAt once Attempt >= MaxAttempts) through the uow.Runner,
// whose AfterCommit hands it to the relay, which sends it to SQS with
// DelaySeconds. The consumer then deletes the record it ran.
type Requeuer struct {
	Runner *uow.Runner
	// Store, when set, reschedules the entry in place when it is still pending
	// in the outbox (its acknowledgement after the hand-off failed), instead of
	// failing on the commit's conflict.
	Store       eventstore.Outbox
	Clock       clock.Clock  // nil: system clock
	Logger      *slog.Logger // nil: discard
	MaxAttempts int          // default DefaultMaxAttempts
}

// RetryLater commits it back into the outbox for a later attempt (it.Attempt
// is the attempt that failed). An error means the item is not in the outbox:
// the caller must keep it (let SQS redeliver it).
func (q *Requeuer) RetryLater(ctx context.Context, it Item, cause error) error {
	it, parked := failed(it, systemClock(q.Clock).Now(), q.MaxAttempts, cause)
	log := orDiscard(q.Logger)
	c := &eventstore.Commit{TenantID: it.TenantID, Outbox: []Item{it}}
	// One run per commit: a conflict here is the entry still pending (its
	// acknowledgement after the hand-off failed), which running again
	// does not change.
	once := *q.Runner
	once.MaxAttempts = 1
	commit := func() error {
		return once.Run(ctx, it.TenantID, func(ctx context.Context) error {
			return eventstore.Write(ctx, once.Store, c)
		}, nil)
	}
	err := commit()
	if errors.Is(err, eventstore.ErrConflict) && q.Store != nil {
		if err = q.Store.RescheduleOutbox(ctx, it); err == nil {
			// A late acknowledgement of the version handed may have removed
			// the entry after the conflict, and then the reschedule changed
			// nothing: commit it again. A conflict now means it is there,
			// rescheduled (an acknowledgement no longer matches its DueAt).
			if err = commit(); errors.Is(err, eventstore.ErrConflict) {
				err = nil
			}
		}
	}
	if err != nil {
		return err
	}
	if parked {
		logFailure(ctx, log, it, parked, "work failed", cause)
	} else {
		log.DebugContext(ctx, "work put back into the outbox", "workId", it.ID, "attempt", it.Attempt, "retryAt", it.DueAt)
	}
	return nil
}
