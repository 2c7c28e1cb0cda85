package work

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// SweepJob is the name of the scheduled job that re-hands pending outbox entries.
const SweepJob = "outbox-sweep"

// DefaultMaxPages bounds the pages one Sweep hands to a durable transport.
const DefaultMaxPages = 100

// Relay moves committed outbox entries to the transport.
//
// Outcomes are per item. With a durable transport the relay acknowledges
// exactly the entries the transport took; an entry it refused is rescheduled
// alone (Attempt+1, LastError, DueAt = now + Backoff(Attempt)) and parked
// (DueAt = eventstore.ParkedAt, logged at error level) once it used
// MaxAttempts, so it never holds back the entries behind it. A non-durable
// transport acknowledges and reschedules entries itself.
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
	// MaxAttempts before an entry the transport keeps refusing is parked
	// (default DefaultMaxAttempts).
	MaxAttempts int
	// MaxPages bounds the pages of one Sweep to a durable transport (default
	// DefaultMaxPages); the next run goes on.
	MaxPages int
}

// AfterCommit hands the entries of a fresh commit that are due within the
// transport's MaxDelay (SQS holds them back until due). Failures are logged
// and recorded on the entries, not returned: the caller's response never
// depends on this, and the sweep hands what is left later.
func (r *Relay) AfterCommit(ctx context.Context, entries []Item) {
	horizon := r.Clock.Now().Add(r.Transport.MaxDelay())
	due := make([]Item, 0, len(entries))
	for _, e := range entries {
		if !e.DueAt.After(horizon) {
			due = append(due, e)
		}
	}
	if len(due) == 0 {
		return
	}
	out := r.hand(ctx, due)
	if out.failed > 0 && out.failed == out.full && out.storeErr == nil {
		// Back-pressure, not a failure: the store keeps them for the sweep.
		r.logger().DebugContext(ctx, "transport full; the sweep hands the items later", "items", len(due), "refused", out.failed)
		return
	}
	if out.failed > 0 || out.storeErr != nil {
		args := []any{"items", len(due), "handed", out.handed, "failed", out.failed}
		if out.firstSendErr != nil {
			args = append(args, "error", out.firstSendErr.Error())
		}
		if out.storeErr != nil {
			args = append(args, "storeError", out.storeErr.Error())
		}
		r.logger().WarnContext(ctx, "relay failed for some items; the sweep will retry", args...)
	}
}

// Sweep hands the pending entries that are due (by now - Grace), page by
// page, earliest first, and returns how many the transport took. It is the
// job SweepJob.
//
// A transport with a MaxDelay (SQS, the local worker) gets the entries due
// within it (by now + MaxDelay, Grace aside), which it holds until due: so
// work committed far ahead runs on time, not at the first sweep after its
// due time.
//
// A non-durable transport gets one page (it acknowledges only after running,
// so the same entries would come back); one that holds what it takes
// (LocalWorker: SweepLimit) gets a page of that size, which reaches past the
// entries it holds, or nothing while it has work enough. A refusal for
// back-pressure (the local worker is full) is not a failure: the next run
// goes on.
//
// A durable transport gets pages until the store answers an empty page; a
// short page does not end the sweep (a store may answer fewer entries than
// asked while more are due). Handed entries are acknowledged and refused ones
// rescheduled past the sweep's horizon, so every page moves on to entries not
// seen before; entries this sweep already handed are not handed again, and a
// page of nothing but those (their acknowledgements did not remove them) ends
// the sweep as no progress.
//
// It also stops before a page that might not finish before ctx's deadline
// (twice the longest page so far), when a page handed nothing (the transport is down: the error
// names its first failure), after MaxPages pages, when the store fails
// (read, acknowledge, reschedule: the error says so), or when ctx ends.
func (r *Relay) Sweep(ctx context.Context) (int, error) {
	size := r.BatchSize
	if size <= 0 {
		size = 100
	}
	maxPages := r.MaxPages
	if maxPages <= 0 {
		maxPages = DefaultMaxPages
	}
	durable := r.Transport.Durable()
	total := 0
	seen := map[string]bool{}
	dueBy := r.Clock.Now().Add(-r.Grace)
	if d := r.Transport.MaxDelay(); d > 0 {
		// The transport holds items back until due (SQS: DelaySeconds; the
		// local worker: its timer heap): hand what is due within that
		// window, so that scheduled work runs on time, not at the first
		// sweep after its due time. Entries committed a moment ago may go
		// twice (the relay is handing them): consumers dedupe by work id.
		dueBy = r.Clock.Now().Add(d)
	}
	if !durable {
		if l, ok := r.Transport.(sweepLimiter); ok {
			if size = l.SweepLimit(); size <= 0 {
				r.logger().DebugContext(ctx, "outbox sweep: the transport has work enough; the next run goes on")
				return 0, nil
			}
		}
	}
	var pageTook time.Duration // the longest page so far
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		if d, ok := ctx.Deadline(); ok && page > 1 && time.Until(d) < 2*pageTook {
			// A Lambda invocation's deadline: end cleanly rather than be cut
			// off in a page (the next run goes on).
			r.logger().InfoContext(ctx, "outbox sweep: deadline near; the next run goes on", "pages", page-1, "items", total)
			return total, nil
		}
		pageStart := time.Now()
		items, err := r.Store.PendingOutbox(ctx, dueBy, size)
		if err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		if len(items) == 0 {
			return total, nil
		}
		fresh := items[:0:0]
		for _, it := range items {
			if !seen[it.ID] {
				fresh = append(fresh, it)
			}
		}
		if len(fresh) == 0 {
			r.logger().WarnContext(ctx, "outbox sweep: no progress, the store answers entries this sweep already handed; the next run goes on",
				"pages", page-1, "items", total, "repeated", len(items))
			return total, nil
		}
		out := r.hand(ctx, fresh)
		total += out.handed
		switch {
		case out.storeErr != nil:
			return total, fmt.Errorf("sweep: %w", out.storeErr)
		case out.handed == 0 && out.failed == out.full:
			r.logger().DebugContext(ctx, "outbox sweep: transport full; the next run goes on", "items", len(fresh))
			return total, nil
		case out.handed == 0:
			return total, fmt.Errorf("sweep: none of %d items handed: %w", len(fresh), out.firstSendErr)
		case out.failed > 0 && out.failed == out.full:
			r.logger().DebugContext(ctx, "outbox sweep: transport full; the next run hands the rest", "items", len(fresh), "refused", out.failed)
		case out.failed > 0:
			r.logger().WarnContext(ctx, "outbox sweep: some items not handed", "items", len(fresh), "failed", out.failed,
				"error", out.firstSendErr.Error())
		}
		if !durable {
			return total, nil
		}
		pageTook = max(pageTook, time.Since(pageStart))
		for _, it := range fresh {
			seen[it.ID] = true
		}
		if page >= maxPages {
			r.logger().InfoContext(ctx, "outbox sweep: page limit reached; the next run goes on", "pages", page, "items", total)
			return total, nil
		}
	}
}

// SweepJobFunc adapts Sweep to a Job.
func (r *Relay) SweepJobFunc() Job {
	return func(ctx context.Context) error {
		n, err := r.Sweep(ctx)
		if n > 0 {
			r.logger().InfoContext(ctx, "outbox sweep handed work", "items", n)
		}
		return err
	}
}

// sweepLimiter is a non-durable transport that holds the items it takes
// until they ran (LocalWorker): SweepLimit is the size of the one page a
// sweep reads for it, enough to reach past the entries it holds; 0 when it
// takes nothing now (the sweep reads nothing).
type sweepLimiter interface{ SweepLimit() int }

// outcome is what one hand-off did.
type outcome struct {
	handed, failed int
	full           int   // refusals that are back-pressure (errQueueFull, errStopped), not failures
	firstSendErr   error // the first item's error from the transport
	storeErr       error // acknowledging or rescheduling failed
}

// hand sends items and records the per-item outcome: for a durable transport
// it acknowledges the handed entries and reschedules (or parks) the others.
func (r *Relay) hand(ctx context.Context, items []Item) outcome {
	results := r.Transport.Send(ctx, items)
	if len(results) != len(items) {
		// A transport bug: trust none of it (sending again is harmless).
		err := fmt.Errorf("transport answered %d results for %d items", len(results), len(items))
		results = make([]error, len(items))
		for i := range results {
			results[i] = err
		}
	}
	var out outcome
	handed := make([]Item, 0, len(items))
	var refused []int
	for i, err := range results {
		if err == nil {
			handed = append(handed, items[i])
			continue
		}
		if out.firstSendErr == nil {
			out.firstSendErr = fmt.Errorf("work %s: %w", items[i].ID, err)
		}
		if errors.Is(err, errQueueFull) || errors.Is(err, errStopped) {
			out.full++
		}
		refused = append(refused, i)
	}
	out.handed, out.failed = len(handed), len(refused)
	if !r.Transport.Durable() {
		return out // it acknowledges and reschedules entries itself
	}
	if len(handed) > 0 {
		if err := r.Store.AckOutbox(ctx, handed); err != nil {
			// Sent but not acked: they will be sent again; consumers dedupe.
			out.storeErr = fmt.Errorf("ack %d items: %w", len(handed), err)
		}
	}
	now := r.Clock.Now()
	var firstErr error
	failedReschedules := 0
	for _, i := range refused {
		it := items[i]
		it.Attempt++
		it, parked := failed(it, now, r.MaxAttempts, results[i])
		logFailure(ctx, r.logger(), it, parked, "work hand-off failed", results[i])
		if err := r.Store.RescheduleOutbox(ctx, it); err != nil {
			failedReschedules++
			if firstErr == nil {
				firstErr = fmt.Errorf("reschedule %s: %w", it.ID, err)
			}
		}
	}
	if failedReschedules > 0 {
		err := fmt.Errorf("%d of %d refused items not rescheduled, first: %w", failedReschedules, len(refused), firstErr)
		out.storeErr = errors.Join(out.storeErr, err)
	}
	return out
}

func (r *Relay) logger() *slog.Logger { return orDiscard(r.Logger) }
