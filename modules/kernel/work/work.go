// Package work is Switchboard's durable asynchronous work path.
//
// A command that causes work commits an eventstore.OutboxEntry together with its
// events (one transaction). After the commit, the Relay hands the entries to a
// Transport (SQS in Lambda mode; the in-process Worker in local mode). A
// scheduled Sweep re-hands whatever is still pending, so an entry committed
// before a crash (even kill -9) is never lost: the store is the only source of
// truth, the transport only an accelerator.
//
// Delivery is at least once: a Handler may see the same item more than once
// (relay and sweep race, SQS redelivers) and must be idempotent, keyed by Item.ID
// or by the state it moves forward (expected versions).
package work

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// Item is one unit of work, as persisted in the outbox and sent over SQS.
type Item = eventstore.OutboxEntry

// Handler does one item of work. Returning an error asks for a retry (with
// backoff; after the transport's limit the item goes to its dead-letter queue).
type Handler func(ctx context.Context, it Item) error

// Registry maps stable work types to handlers. Modules register at wiring time;
// the registry is read-only afterwards.
type Registry struct{ t table[Handler] }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{t: newTable[Handler]("type")} }

// Register adds the handler of a work type. Registering a type twice panics.
func (r *Registry) Register(workType string, h Handler) { r.t.add(workType, h) }

// ErrUnknownType is returned for an item whose type has no handler.
var ErrUnknownType = fmt.Errorf("work: unknown type")

// Handle runs the handler of it.Type.
func (r *Registry) Handle(ctx context.Context, it Item) error {
	h, ok := r.t.get(it.Type)
	if !ok {
		return fmt.Errorf("handle %s %q: %w", it.ID, it.Type, ErrUnknownType)
	}
	return h(ctx, it)
}

// Types lists the registered types, sorted.
func (r *Registry) Types() []string { return r.t.names() }

// Transport hands items over to whatever runs them.
//
// Durable transports (SQS) own an item once Send returns nil: the relay then
// acknowledges the outbox entry. A transport that is not durable (the local
// in-process worker) acknowledges entries itself after their handler succeeded.
type Transport interface {
	Send(ctx context.Context, items []Item) error
	Durable() bool
}
