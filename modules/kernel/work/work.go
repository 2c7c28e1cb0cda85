// Package work is Switchboard's durable asynchronous work path.
//
// A command that causes work commits an eventstore.OutboxEntry together with its
// events (one transaction). After the commit, the Relay hands the entries to a
// Transport (SQS in Lambda mode; the in-process LocalWorker in local mode;
// Inline when Lambda mode has no queue). A scheduled Sweep re-hands whatever
// is still pending, so an entry committed before a crash (even kill -9) is
// never lost: the store is the only source of truth, the transport only an
// accelerator.
//
// # Outcomes are per item
//
// Transport.Send answers one result per item. A durable transport's outbox
// entries are acknowledged exactly for the items it took; an item it refused
// is rescheduled alone (Attempt+1, LastError, DueAt = now + Backoff), and
// parked (DueAt = eventstore.ParkedAt, kept for an operator: see Parked) after
// MaxAttempts. So one poisoned entry never blocks the entries behind it.
//
// # Running an item
//
// The Executor runs the handler of an item in a unit of work (package uow)
// and commits what it staged together with an idempotency record keyed by the
// work id, so an item that runs twice (relay and sweep race, SQS redelivers, a
// crash between the commit and the acknowledgement) commits its writes once.
// A handler failure is retried with Backoff and parked after MaxAttempts:
// LocalWorker and Inline reschedule the outbox entry; the SQS consumer
// (package trigger) puts the item back into the outbox through the Requeuer,
// and the relay sends it to SQS again with a delay.
//
// Delivery is at least once: side effects outside the store (provider calls)
// may happen twice and must be idempotent themselves (keyed by Item.ID).
package work

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// Item is one unit of work, as persisted in the outbox and sent over SQS.
type Item = eventstore.OutboxEntry

// DefaultMaxAttempts is how often an item is tried (hand-offs and runs
// together) before it is parked.
const DefaultMaxAttempts = 8

// Handler does one item of work. It reads what it needs and writes through
// eventstore.Write, which stages the writes in the Executor's unit of work.
// Returning an error asks for a retry with backoff; after MaxAttempts the item
// is parked.
type Handler func(ctx context.Context, it Item) error

// ItemHandler runs one item: *Executor in production (unit of work, dedupe by
// work id, panics recovered), *Registry in tests.
type ItemHandler interface {
	Handle(ctx context.Context, it Item) error
}

// Registry maps stable work types to handlers. Modules register at wiring time;
// the registry is read-only afterwards.
type Registry struct {
	t       table[Handler]
	byState table[bool] // the types registered with RegisterIdempotent
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{t: newTable[Handler]("type"), byState: newTable[bool]("idempotent type")}
}

// Register adds the handler of a work type. Registering a type twice panics.
// The Executor commits the handler's writes with a dedupe record of the item
// (see Executor), so an item that runs twice commits once.
func (r *Registry) Register(workType string, h Handler) { r.t.add(workType, h) }

// RegisterIdempotent adds the handler of a work type that is idempotent by
// the state it writes, and whose writes the Executor therefore commits
// without a dedupe record (ADR 0017: one conditional write less per item, 2
// DynamoDB write units in a transaction).
//
// The handler's contract: every commit it stages is conditioned on the state
// that makes the work due (it appends to the stream whose state it checked,
// at the version it read, or writes a record IfAbsent), and a run that finds
// the work done stages nothing. Then a second run of the same item either
// stages nothing or conflicts and runs again (uow.Runner) and then stages
// nothing: it commits once, as with a dedupe record. A handler that stages
// writes not so conditioned (an outbox entry alone, a counter) must use
// Register.
func (r *Registry) RegisterIdempotent(workType string, h Handler) {
	r.t.add(workType, h)
	r.byState.add(workType, true)
}

// Idempotent reports whether workType was registered with RegisterIdempotent.
func (r *Registry) Idempotent(workType string) bool {
	v, _ := r.byState.get(workType)
	return v
}

// ErrUnknownType is returned for an item whose type has no handler.
var ErrUnknownType = fmt.Errorf("work: unknown type")

// Lookup returns the handler of a work type, or an error wrapping
// ErrUnknownType that names the item and the type.
func (r *Registry) Lookup(it Item) (Handler, error) {
	h, ok := r.t.get(it.Type)
	if !ok {
		return nil, fmt.Errorf("handle %s %q: %w", it.ID, it.Type, ErrUnknownType)
	}
	return h, nil
}

// Handle runs the handler of it.Type (no unit of work, no dedupe: see Executor).
func (r *Registry) Handle(ctx context.Context, it Item) error {
	h, err := r.Lookup(it)
	if err != nil {
		return err
	}
	return h(ctx, it)
}

// Types lists the registered types, sorted.
func (r *Registry) Types() []string { return r.t.names() }

// Transport hands items over to whatever runs them.
//
// Send returns one result per item, in order (len(results) == len(items)): nil
// means the transport took the item; an error means it did not, and the item's
// outbox entry is as it was.
//
// Durable transports (SQS) own every item with a nil result: the relay
// acknowledges exactly those outbox entries, and reschedules the others
// (Attempt+1, LastError, backoff; parked after MaxAttempts). A transport that
// is not durable (LocalWorker, Inline) acknowledges an entry itself after its
// handler succeeded and reschedules it itself when the handler failed; the
// relay only logs its errors.
//
// MaxDelay is how far ahead of its DueAt the transport may be handed an item
// (it holds the item back until due): SQS 15 minutes (DelaySeconds), 0 for
// transports that run what they get at once.
type Transport interface {
	Send(ctx context.Context, items []Item) []error
	Durable() bool
	MaxDelay() time.Duration
}
