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
// is rescheduled with backoff. It is the Lambda-mode fallback when no work
// queue is configured (the sweep then does the work), and handy in tests.
type Inline struct {
	Handler interface {
		Handle(context.Context, Item) error
	}
	Store  eventstore.Outbox
	Clock  clock.Clock
	Logger *slog.Logger
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
			it.DueAt = t.Clock.Now().Add(Backoff(it.Attempt))
			t.Logger.WarnContext(wctx, "work failed; will retry", "workId", it.ID, "type", it.Type, "attempt", it.Attempt, "error", err.Error())
			if rerr := t.Store.RescheduleOutbox(wctx, it); rerr != nil {
				t.Logger.ErrorContext(wctx, "reschedule failed", "workId", it.ID, "error", rerr.Error())
			}
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
