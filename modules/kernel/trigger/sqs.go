package trigger

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// BatchResponse is the answer to an SQS event with ReportBatchItemFailures:
// the records to retry. An empty list (never null) means all succeeded.
type BatchResponse struct {
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
}

// BatchItemFailure names one failed SQS record by its messageId.
type BatchItemFailure struct {
	ItemIdentifier string `json:"itemIdentifier"`
}

// errUndecodable marks a record body that is not a work item.
var errUndecodable = errors.New("undecodable work item")

// errRedelivered is the LastError of a record SQS delivered again: the
// invocation that received it before ended without answering for it.
var errRedelivered = errors.New("delivered again by SQS: an earlier receive did not finish it (its invocation ended, a timeout or a crash, its own or a batch-mate's; ran out of time before it; was throttled; or could not put it back)")

// DefaultDeadlineMargin is the default of Router.DeadlineMargin.
const DefaultDeadlineMargin = 5 * time.Second

// maxRetryTime bounds the time the Retry hook gets for one record.
const maxRetryTime = 2 * time.Second

// retryTime is the time the Retry hook gets for one record: half the margin,
// at most maxRetryTime, so that the batch response still goes out in time.
func retryTime(margin time.Duration) time.Duration { return min(margin/2, maxRetryTime) }

// handleSQS runs the records of a batch in order.
//
// Deadline, when ctx has one, with margin = Router.DeadlineMargin (default
// 5 s):
//
//   - before each record, when less than the margin remains, the router stops
//     taking records and reports the rest as failures without running them
//     (SQS redelivers them after the visibility timeout; their receive count
//     grows);
//   - each record runs with a context that ends at deadline - margin, so a
//     record that overruns is cancelled; its failure goes through the Retry
//     hook like any other, which gets a context of its own: not cancelled
//     with the record, ending after retryTime(margin) (half the margin, at
//     most 2 s).
//
// So the batch response is always returned before the deadline (provided the
// handlers honour their context). The function's timeout must be well above
// the margin, or nothing runs.
func (r *Router) handleSQS(ctx context.Context, recs []sqsRecord) ([]byte, error) {
	if r.Work == nil {
		return nil, fmt.Errorf("%w: SQS batch of %d records received but no work handler is configured",
			ErrNotConfigured, len(recs))
	}
	margin := r.DeadlineMargin
	if margin <= 0 {
		margin = DefaultDeadlineMargin
	}
	deadline, hasDeadline := ctx.Deadline()
	resp := BatchResponse{BatchItemFailures: []BatchItemFailure{}}
	for i := range recs {
		if hasDeadline {
			if left := deadline.Sub(r.now()); left < margin {
				for _, rec := range recs[i:] {
					resp.BatchItemFailures = append(resp.BatchItemFailures, BatchItemFailure{ItemIdentifier: rec.MessageID})
				}
				r.logger().LogAttrs(ctx, slog.LevelWarn, "trigger: sqs batch out of time; records left to SQS",
					slog.Int("records", len(recs)-i), slog.Int("ran", i), slog.Duration("timeLeft", left), slog.Duration("margin", margin))
				break
			}
		}
		if err := r.handleRecordBy(ctx, &recs[i], deadline, hasDeadline, margin); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, BatchItemFailure{ItemIdentifier: recs[i].MessageID})
		}
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("trigger: encode SQS batch response: %w", err)
	}
	return b, nil
}

// handleRecordBy runs one record with a context that ends at deadline -
// margin (when there is a deadline).
func (r *Router) handleRecordBy(ctx context.Context, rec *sqsRecord, deadline time.Time, hasDeadline bool, margin time.Duration) error {
	if hasDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancel()
	}
	return r.handleRecord(ctx, rec, retryTime(margin))
}

func (r *Router) now() time.Time {
	if r.Clock != nil {
		return r.Clock.Now()
	}
	return time.Now()
}

// handleRecord runs one record and logs its outcome (one line). It returns an
// error when the record must stay in SQS: undecodable, no time left, or a
// handler failure (error, panic, or its context ending) that the Retry hook
// did not take. The hook runs with a context detached from ctx's end (values
// kept), ending after retryIn.
//
// The item's attempt is its Attempt in the body (attempts before it was last
// put into the outbox) plus the record's ApproximateReceiveCount (1 on the
// first delivery). With a Retry hook, a record received before
// (ApproximateReceiveCount > 1) is not run: it is put back into the outbox
// at that attempt and runs from there, unless that attempt reaches
// MaxAttempts (it runs then, its last chance).
func (r *Router) handleRecord(ctx context.Context, rec *sqsRecord, retryIn time.Duration) error {
	start := time.Now()
	var it work.Item
	decodeErr := decodeItem(rec.Body, &it)
	var c *invocation.Context
	if decodeErr != nil {
		c = r.newContext(invocation.Meta{}, TriggerSQS, "")
	} else {
		c = r.newContext(it.Invocation, TriggerSQS, it.TenantID)
		it.Attempt += receiveCount(rec.Attributes)
	}
	ctx = invocation.With(ctx, c)
	attrs := []slog.Attr{slog.String("messageId", rec.MessageID)}
	if decodeErr != nil {
		r.logger().LogAttrs(ctx, slog.LevelError, "trigger: sqs record undecodable",
			append(attrs, slog.Int("bodyBytes", len(rec.Body)), slog.String("error", decodeErr.Error()))...)
		return decodeErr
	}
	attrs = append(attrs, slog.String("workId", it.ID), slog.String("workType", it.Type), slog.Int("attempt", it.Attempt))
	if err := ctx.Err(); err != nil {
		// No time left in this invocation: leave the record to SQS.
		r.logger().LogAttrs(ctx, slog.LevelWarn, "trigger: sqs record skipped",
			append(attrs, slog.String("error", err.Error()))...)
		return err
	}
	if r.Retry != nil && receiveCount(rec.Attributes) > 1 && it.Attempt < cmp.Or(r.MaxAttempts, work.DefaultMaxAttempts) {
		// A record comes back from SQS when an earlier receive did not
		// finish it: its invocation timed out or crashed (maybe on a
		// batch-mate), ran out of time before it, was throttled, or could
		// not put it back. It goes back into the outbox, counted, rather
		// than run here with the batch it may have ended before, so that
		// a record that kills its invocation parks alone and does not take
		// its batch-mates to the DLQ. A record at its last attempt runs:
		// put back it would park without having run.
		return r.putBack(ctx, it, errRedelivered, retryIn, attrs, "redelivered", "instead of running it")
	}
	panicked, err := r.runWork(ctx, it)
	attrs = append(attrs, slog.Duration("duration", time.Since(start)))
	if err == nil {
		r.logger().LogAttrs(ctx, slog.LevelInfo, "trigger: sqs record done", attrs...)
		return nil
	}
	if panicked != nil {
		attrs = append(attrs, slog.Any("panic", panicked.value), slog.String("stack", panicked.stack))
	}
	attrs = append(attrs, slog.String("error", err.Error()))
	if r.Retry == nil {
		r.logger().LogAttrs(ctx, slog.LevelWarn, "trigger: sqs record failed", attrs...)
		return err
	}
	return r.putBack(ctx, it, err, retryIn, attrs, "failed", "for a later attempt")
}

// putBack hands it to the Retry hook (cause is why) and logs the outcome;
// an error means the record stays in SQS. The record's context may have
// ended (that may be why it failed): the requeue gets retryIn of its own.
func (r *Router) putBack(ctx context.Context, it work.Item, cause error, retryIn time.Duration, attrs []slog.Attr, what, how string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), retryIn)
	defer cancel()
	if rerr := r.Retry.RetryLater(rctx, it, cause); rerr != nil {
		r.logger().LogAttrs(ctx, slog.LevelError, "trigger: sqs record "+what+" and could not be put back; left to SQS",
			append(attrs, slog.String("retryError", rerr.Error()))...)
		return fmt.Errorf("%w (retry: %v)", cause, rerr)
	}
	r.logger().LogAttrs(ctx, slog.LevelWarn, "trigger: sqs record "+what+"; put back into the outbox "+how, attrs...)
	return nil
}

type panicInfo struct {
	value any
	stack string
}

// runWork runs the work handler, turning a panic into an error.
func (r *Router) runWork(ctx context.Context, it work.Item) (p *panicInfo, err error) {
	defer func() {
		if v := recover(); v != nil {
			p = &panicInfo{value: v, stack: string(debug.Stack())}
			err = fmt.Errorf("work item %s panicked: %v", it.ID, v)
		}
	}()
	return nil, r.Work.Handle(ctx, it)
}

// decodeItem decodes a record body into a work item; an item needs an id and
// a type.
func decodeItem(body string, it *work.Item) error {
	if err := json.Unmarshal([]byte(body), it); err != nil {
		return fmt.Errorf("%w: %v", errUndecodable, err)
	}
	if it.ID == "" || it.Type == "" {
		return fmt.Errorf("%w: missing id or type", errUndecodable)
	}
	return nil
}

// receiveCount is the SQS delivery attempt of a record (ApproximateReceiveCount,
// 1 on the first delivery; 1 when absent or malformed).
func receiveCount(attrs map[string]string) int {
	n, err := strconv.Atoi(attrs["ApproximateReceiveCount"])
	if err != nil || n < 1 {
		return 1
	}
	return n
}
