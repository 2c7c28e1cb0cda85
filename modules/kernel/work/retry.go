package work

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// Backoff is the delay before attempt+1: exponential from 1 s, capped at 5
// minutes, with full jitter in its upper half.
func Backoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt-1, 0), 9) // attempt < 1 reads as 1 (a negative shift panics)
	if d > 5*time.Minute {
		d = 5 * time.Minute
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// LastError is err's message as kept in OutboxEntry.LastError
// (eventstore.TruncateLastError: valid UTF-8, at most
// eventstore.MaxLastError bytes, cut at a character boundary).
func LastError(err error) string {
	if err == nil {
		return ""
	}
	return eventstore.TruncateLastError(err.Error())
}

// failed returns it after a failed attempt (it.Attempt is the attempt that
// failed): with LastError, and due after Backoff(Attempt), or parked
// (eventstore.ParkedAt) once it used maxAttempts.
func failed(it Item, now time.Time, maxAttempts int, cause error) (Item, bool) {
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	it.LastError = LastError(cause)
	if it.Attempt >= maxAttempts {
		it.DueAt = eventstore.ParkedAt
		return it, true
	}
	it.DueAt = now.Add(Backoff(it.Attempt))
	return it, false
}

// retryLater reschedules a failed item (it.Attempt is the attempt that
// failed) with backoff, or parks it once it used maxAttempts: kept in the
// store for an operator (Parked), never retried on its own.
func retryLater(ctx context.Context, store eventstore.Outbox, clk clock.Clock, log *slog.Logger, it Item, maxAttempts int, err error) {
	it, parked := failed(it, clk.Now(), maxAttempts, err)
	logFailure(ctx, log, it, parked, "work failed", err)
	if rerr := store.RescheduleOutbox(ctx, it); rerr != nil {
		log.ErrorContext(ctx, "reschedule failed", "workId", it.ID, "error", rerr.Error())
	}
}

// ParkedLogPhrase ends the error line logged when an item used its attempts
// and is parked; the deployment's metric filter (infra) counts it. Never
// change it without the filter.
const ParkedLogPhrase = "parked in the outbox"

// logFailure logs a failed attempt: at error level when the item is parked.
func logFailure(ctx context.Context, log *slog.Logger, it Item, parked bool, what string, err error) {
	if parked {
		log.ErrorContext(ctx, what+" for good; "+ParkedLogPhrase, "workId", it.ID, "type", it.Type, "tenantId", it.TenantID,
			"attempt", it.Attempt, "error", err.Error())
		return
	}
	log.WarnContext(ctx, what+"; will retry", "workId", it.ID, "type", it.Type, "attempt", it.Attempt, "retryAt", it.DueAt, "error", err.Error())
}

// orDiscard returns l, or a logger that discards when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// systemClock returns c, or the system clock when c is nil.
func systemClock(c clock.Clock) clock.Clock {
	if c == nil {
		return clock.System{}
	}
	return c
}
