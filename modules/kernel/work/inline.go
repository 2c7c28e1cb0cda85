package work

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Inline is a Transport that runs items synchronously in the caller's
// goroutine and acknowledges each after its handler succeeded; a failed item
// is rescheduled with backoff and parked after MaxAttempts. It is the Lambda-mode fallback when no work
// queue is configured (the sweep then does the work), and handy in tests.
type Inline struct {
	Handler interface {
		Handle(context.Context, Item) error
	}
	Store  eventstore.Outbox
	Clock  clock.Clock
	Logger *slog.Logger
	// MaxAttempts before an item is parked (default 8), as in LocalWorker.
	MaxAttempts int
}

// Durable implements Transport.
func (t *Inline) Durable() bool { return false }

// Send implements Transport. It returns the first handler error after trying
// every item (the failed ones are rescheduled in the store).
func (t *Inline) Send(ctx context.Context, items []Item) error {
	var first error
	for _, it := range items {
		wctx := invocation.With(ctx, invocation.FromMeta(it.Invocation, "worker", it.TenantID))
		it.Attempt++
		if err := t.Handler.Handle(wctx, it); err != nil {
			maxAttempts := t.MaxAttempts
			if maxAttempts <= 0 {
				maxAttempts = 8
			}
			retryLater(wctx, t.Store, t.Clock, t.Logger, it, maxAttempts, err)
			if first == nil {
				first = fmt.Errorf("work %s: %w", it.ID, err)
			}
			continue
		}
		if err := t.Store.AckOutbox(wctx, []Item{it}); err != nil && first == nil {
			first = fmt.Errorf("ack %s: %w", it.ID, err)
		}
	}
	return first
}
