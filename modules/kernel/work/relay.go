package work

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// SweepJob is the name of the scheduled job that re-hands pending outbox entries.
const SweepJob = "outbox-sweep"

// Relay moves committed outbox entries to the transport.
type Relay struct {
	Store     eventstore.Outbox
	Transport Transport
	Clock     clock.Clock
	Logger    *slog.Logger
	// Grace: the sweep leaves entries younger than this to the relay that is
	// handing them right now (fewer duplicates). 0 in local mode.
	Grace time.Duration
	// BatchSize bounds one sweep page (default 100).
	BatchSize int
}

// AfterCommit hands the entries of a fresh commit that are already due.
// Failures are logged, not returned: the entries stay in the outbox and the
// sweep hands them later, so the caller's response never depends on this.
func (r *Relay) AfterCommit(ctx context.Context, entries []Item) {
	now := r.Clock.Now()
	due := make([]Item, 0, len(entries))
	for _, e := range entries {
		if !e.DueAt.After(now) {
			due = append(due, e)
		}
	}
	if len(due) == 0 {
		return
	}
	if err := r.hand(ctx, due); err != nil {
		r.Logger.WarnContext(ctx, "relay failed; the sweep will retry", "error", err.Error(), "items", len(due))
	}
}

// Sweep hands every pending entry that is due (minus Grace), page by page, and
// returns how many it handed. It is the job SweepJob.
func (r *Relay) Sweep(ctx context.Context) (int, error) {
	size := r.BatchSize
	if size <= 0 {
		size = 100
	}
	total := 0
	dueBy := r.Clock.Now().Add(-r.Grace)
	for {
		items, err := r.Store.PendingOutbox(ctx, dueBy, size)
		if err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		if len(items) == 0 {
			return total, nil
		}
		if err := r.hand(ctx, items); err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		total += len(items)
		// A non-durable transport acks only after processing: the same entries
		// would come back on the next page. One page per sweep is enough then.
		if len(items) < size || !r.Transport.Durable() {
			return total, nil
		}
	}
}

// SweepJobFunc adapts Sweep to a Job.
func (r *Relay) SweepJobFunc() Job {
	return func(ctx context.Context) error {
		n, err := r.Sweep(ctx)
		if n > 0 {
			r.Logger.InfoContext(ctx, "outbox sweep handed work", "items", n)
		}
		return err
	}
}

func (r *Relay) hand(ctx context.Context, items []Item) error {
	if err := r.Transport.Send(ctx, items); err != nil {
		return fmt.Errorf("send %d items: %w", len(items), err)
	}
	if !r.Transport.Durable() {
		return nil
	}
	if err := r.Store.AckOutbox(ctx, items); err != nil {
		// Sent but not acked: they will be sent again; consumers are idempotent.
		return fmt.Errorf("ack %d items: %w", len(items), err)
	}
	return nil
}
