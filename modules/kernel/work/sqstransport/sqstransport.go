// Package sqstransport is the durable work.Transport of Lambda mode: it sends
// work items to a standard SQS queue whose consumer is the trigger router
// (package trigger), which runs them and reports failed records for retry.
//
// Wire format (the contract with the consumer, see events/README.md):
// MessageBody is the JSON of the work.Item; the message attribute "type"
// (String) repeats the item type for filtering and metrics. Items due in the
// future are delayed with DelaySeconds (at most 900 s, the SQS limit); an item
// due later than that arrives early and its handler must wait for DueAt (the
// relay normally hands items over only when due).
package sqstransport

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// Limits of SendMessageBatch.
const (
	// MaxBatchEntries is the most entries SQS accepts in one batch.
	MaxBatchEntries = 10
	// MaxBatchBytes bounds the bodies of one batch (the classic 256 KiB SQS
	// limit on the whole batch payload); an item larger than that goes alone.
	MaxBatchBytes = 256 * 1024
	// MaxDelay is the longest DelaySeconds SQS accepts.
	MaxDelay = 900 * time.Second
	// TypeAttribute is the message attribute holding the item type.
	TypeAttribute = "type"
)

// sendBatchAPI is the part of *sqs.Client the transport uses.
type sendBatchAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Transport sends work items to one SQS queue. It is durable: once Send
// returns nil, SQS owns every item (the relay may acknowledge the outbox).
// Safe for concurrent use.
type Transport struct {
	api      sendBatchAPI
	queueURL string
	// Clock tells the time for DelaySeconds; nil means clock.System.
	Clock clock.Clock
}

var _ work.Transport = (*Transport)(nil)

// New returns a transport to queueURL. It does no I/O.
func New(client *sqs.Client, queueURL string) *Transport {
	return &Transport{api: client, queueURL: queueURL}
}

// Durable implements work.Transport: SQS keeps what it accepted.
func (t *Transport) Durable() bool { return true }

// Send implements work.Transport. Items go in batches of at most 10 (and
// MaxBatchBytes of bodies), in order. Entries that SQS rejects within a batch
// are retried once; entries that fail again make Send fail with an error
// naming their item ids, after all batches were tried. A failed call (network,
// throttling after the SDK's own retries, access) stops at that batch. Either
// way some items may have been sent: delivery is at least once, and handlers
// dedupe by item id.
func (t *Transport) Send(ctx context.Context, items []work.Item) error {
	if len(items) == 0 {
		return nil
	}
	now := time.Now()
	if t.Clock != nil {
		now = t.Clock.Now()
	}
	var failed []string
	for start := 0; start < len(items); {
		entries, n, err := t.batch(items[start:], now)
		if err != nil {
			return err
		}
		f, err := t.sendBatch(ctx, entries, items[start:start+n])
		if err != nil {
			return err
		}
		failed = append(failed, f...)
		start += n
	}
	if len(failed) > 0 {
		return fmt.Errorf("sqs send to %s: %d of %d items failed twice: %s",
			t.queueURL, len(failed), len(items), strings.Join(failed, ", "))
	}
	return nil
}

// batch builds the entries of the next batch from the head of items and says
// how many items it took. Entry ids are the item's index in the batch ("0".."9"):
// always valid and distinct, even if an item id repeats.
func (t *Transport) batch(items []work.Item, now time.Time) ([]types.SendMessageBatchRequestEntry, int, error) {
	entries := make([]types.SendMessageBatchRequestEntry, 0, min(len(items), MaxBatchEntries))
	size := 0
	for i, it := range items {
		if i == MaxBatchEntries {
			break
		}
		body, err := json.Marshal(it)
		if err != nil {
			return nil, 0, fmt.Errorf("sqs send: encode item %s: %w", it.ID, err)
		}
		if i > 0 && size+len(body) > MaxBatchBytes {
			break
		}
		size += len(body)
		e := types.SendMessageBatchRequestEntry{
			Id:           aws.String(strconv.Itoa(i)),
			MessageBody:  aws.String(string(body)),
			DelaySeconds: delaySeconds(it.DueAt, now),
		}
		if it.Type != "" {
			e.MessageAttributes = map[string]types.MessageAttributeValue{
				TypeAttribute: {DataType: aws.String("String"), StringValue: aws.String(it.Type)},
			}
		}
		entries = append(entries, e)
	}
	return entries, len(entries), nil
}

// delaySeconds is min(900, whole seconds until due, rounded up); 0 when due.
func delaySeconds(due, now time.Time) int32 {
	if due.IsZero() || !due.After(now) {
		return 0
	}
	d := due.Sub(now)
	if d >= MaxDelay {
		return int32(MaxDelay / time.Second)
	}
	return int32(math.Ceil(d.Seconds()))
}

// sendBatch sends one batch, retries the rejected entries once, and returns
// the ids of the items that failed twice.
func (t *Transport) sendBatch(ctx context.Context, entries []types.SendMessageBatchRequestEntry, items []work.Item) ([]string, error) {
	reasons := map[string]string{}
	for attempt := 1; attempt <= 2 && len(entries) > 0; attempt++ {
		out, err := t.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(t.queueURL), Entries: entries})
		if err != nil {
			return nil, fmt.Errorf("sqs send to %s: batch of %d items starting at %s: %w", t.queueURL, len(entries),
				items[entryIndex(entries[0].Id)].ID, err)
		}
		byID := make(map[string]types.SendMessageBatchRequestEntry, len(entries))
		for _, e := range entries {
			byID[aws.ToString(e.Id)] = e
		}
		retry := entries[:0:0]
		clear(reasons)
		for _, f := range out.Failed {
			e, ok := byID[aws.ToString(f.Id)]
			if !ok {
				continue // an id we did not send: ignore
			}
			retry = append(retry, e)
			reasons[aws.ToString(f.Id)] = aws.ToString(f.Code)
		}
		entries = retry
	}
	if len(entries) == 0 {
		return nil, nil
	}
	failed := make([]string, 0, len(entries))
	for _, e := range entries {
		failed = append(failed, fmt.Sprintf("%s (%s)", items[entryIndex(e.Id)].ID, reasons[aws.ToString(e.Id)]))
	}
	return failed, nil
}

func entryIndex(id *string) int {
	i, _ := strconv.Atoi(aws.ToString(id))
	return i
}
