package trigger

import (
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

func (r *Router) handleSQS(ctx context.Context, recs []sqsRecord) ([]byte, error) {
	if r.Work == nil {
		return nil, fmt.Errorf("%w: SQS batch of %d records received but no work handler is configured",
			ErrNotConfigured, len(recs))
	}
	resp := BatchResponse{BatchItemFailures: []BatchItemFailure{}}
	for i := range recs {
		if err := r.handleRecord(ctx, &recs[i]); err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, BatchItemFailure{ItemIdentifier: recs[i].MessageID})
		}
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("trigger: encode SQS batch response: %w", err)
	}
	return b, nil
}

// handleRecord runs one record and logs its outcome. Every failure (decode,
// handler error, panic, no time left) is returned, so the record is retried.
func (r *Router) handleRecord(ctx context.Context, rec *sqsRecord) (err error) {
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
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("work item %s panicked: %v", it.ID, v)
			r.logger().LogAttrs(ctx, slog.LevelError, "trigger: sqs record panicked",
				append(attrs, slog.Any("panic", v), slog.Duration("duration", time.Since(start)),
					slog.String("stack", string(debug.Stack())))...)
		}
	}()
	if err := r.Work.Handle(ctx, it); err != nil {
		r.logger().LogAttrs(ctx, slog.LevelWarn, "trigger: sqs record failed",
			append(attrs, slog.Duration("duration", time.Since(start)), slog.String("error", err.Error()))...)
		return err
	}
	r.logger().LogAttrs(ctx, slog.LevelInfo, "trigger: sqs record done",
		append(attrs, slog.Duration("duration", time.Since(start)))...)
	return nil
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
