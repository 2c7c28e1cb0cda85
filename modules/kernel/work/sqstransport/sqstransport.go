// Package sqstransport is the durable work.Transport of Lambda mode: it sends
// work items to a standard SQS queue whose consumer is the trigger router
// (package trigger), which runs them.
//
// Wire format (the contract with the consumer, see events/README.md):
// MessageBody is the JSON of the work.Item; the message attribute "type"
// (String) repeats the item type for filtering and metrics. Items due in the
// future are delayed with DelaySeconds (at most 900 s, the SQS limit, which is
// the transport's MaxDelay: the relay hands it nothing due later than that).
//
// Results are per item (work.Transport): an item whose message exceeds
// MaxMessageBytes fails alone without a call; entries SQS rejects within a
// batch are retried once (unless SQS says the sender is at fault) and then
// fail alone; a failed call fails the items of its batch, and the items not
// yet tried for the same queue unless the error concerned only that batch
// (see Send).
//
// # Queues per tenant
//
// With a tenantres.Resolver (Transport.Resources), each item goes to the work
// queue of its TenantID: a siloed tenant's own queue when its resources
// parameter names one (a bulkhead: its flood cannot starve the others), the
// shared queue otherwise (pooled tenants, siloed tenants whose resources do
// not exist yet, platform work without a tenant, and when the resolver cannot
// tell). Batches are grouped by queue. Sends to a tenant queue that no longer
// exists (QueueDoesNotExist: its resources were removed and this instance
// still has the parameter cached) go to the shared queue instead. See
// docs/adr/0013-siloed-tenant-resources-at-runtime.md.
package sqstransport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// Limits of SendMessageBatch.
const (
	// MaxBatchEntries is the most entries SQS accepts in one batch.
	MaxBatchEntries = 10
	// MaxBatchBytes bounds the messages of one batch (the classic 256 KiB SQS
	// limit on the whole batch payload).
	MaxBatchBytes = 256 * 1024
	// MaxMessageBytes bounds one message (body and attributes): the classic
	// SQS limit, also the default of a queue's MaximumMessageSize.
	MaxMessageBytes = 256 * 1024
	// MaxDelay is the longest DelaySeconds SQS accepts.
	MaxDelay = 900 * time.Second
	// TypeAttribute is the message attribute holding the item type.
	TypeAttribute = "type"
)

// sendBatchAPI is the part of *sqs.Client the transport uses.
type sendBatchAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Transport sends work items to the shared SQS queue, or to their tenant's
// own queue (Resources). It is durable: SQS owns every item whose result is
// nil (the relay acknowledges their outbox entries). Safe for concurrent use;
// set the fields before the first Send.
type Transport struct {
	api      sendBatchAPI
	queueURL string
	// Clock tells the time for DelaySeconds; nil means clock.System.
	Clock clock.Clock
	// Resources routes each item by its TenantID: to the tenant's own work
	// queue when Resources answers a siloed tenant, to the shared queue
	// otherwise. nil sends every item to the shared queue (no per-tenant
	// resources).
	Resources tenantres.Resolver
	// Logger logs routing fallbacks; nil discards.
	Logger *slog.Logger
}

var _ work.Transport = (*Transport)(nil)

// New returns a transport to the shared queue queueURL. It does no I/O.
func New(client *sqs.Client, queueURL string) *Transport {
	return &Transport{api: client, queueURL: queueURL}
}

// Durable implements work.Transport: SQS keeps what it accepted.
func (t *Transport) Durable() bool { return true }

// MaxDelay implements work.Transport: SQS holds a message back up to 900 s.
func (t *Transport) MaxDelay() time.Duration { return MaxDelay }

// Send implements work.Transport. Each item goes to its queue (see
// Resources), in batches of at most 10 (and MaxBatchBytes) per queue, in
// order; results are per item:
//
//   - an item that cannot be encoded, or whose message (body and attributes)
//     exceeds MaxMessageBytes, fails alone (ErrTooLarge) and is never sent;
//   - entries SQS rejects within a batch are retried once in a second call,
//     except those it rejects as the sender's fault (they would fail again);
//     the ones that fail again get an error naming the SQS code;
//   - a failed call fails every item of its batch. When the error concerns
//     only that request (the batch itself was malformed: too long, bad or
//     repeated entry ids) the later batches are still tried; any other error
//     (network, throttling after the SDK's own retries, access, missing
//     queue, ctx ended) would fail them too, so the later batches of the same
//     queue fail at once with an error saying they were not tried. Other
//     queues are still tried: one tenant's broken queue never holds back the
//     others' work;
//   - a tenant queue that does not exist (QueueDoesNotExist on its first
//     call) sends its items to the shared queue instead.
//
// An item with a nil result is owned by SQS. An item with an error may still
// have been sent (a lost response): delivery is at least once, and consumers
// dedupe by item id.
func (t *Transport) Send(ctx context.Context, items []work.Item) []error {
	results := make([]error, len(items))
	if len(items) == 0 {
		return results
	}
	now := time.Now()
	if t.Clock != nil {
		now = t.Clock.Now()
	}
	pending := make([]message, 0, len(items))
	for i, it := range items {
		m, err := encode(i, it, now)
		if err != nil {
			results[i] = err
			continue
		}
		pending = append(pending, m)
	}
	// Group by queue, in order of first appearance.
	queues := t.route(ctx, items, pending)
	var order []string
	groups := make(map[string][]message, len(queues))
	for _, m := range pending {
		q := queues[items[m.index].TenantID]
		if _, ok := groups[q]; !ok {
			order = append(order, q)
		}
		groups[q] = append(groups[q], m)
	}
	var rerouted []message
	for _, q := range order {
		rerouted = append(rerouted, t.sendQueue(ctx, q, groups[q], results)...)
	}
	if len(rerouted) > 0 {
		t.sendQueue(ctx, t.queueURL, rerouted, results)
	}
	return results
}

// routeParallel bounds the concurrent lookups of one Send (a sweep page may
// hold items of many tenants, each a cold SSM call at worst).
const routeParallel = 16

// route returns the queue of every tenant of the encoded items: its own when
// Resources answers a siloed tenant, else the shared queue. It asks once per
// tenant (up to routeParallel at a time); a resolver error sends that
// tenant's items to the shared queue (logged): the work is done either way,
// only the bulkhead is missing while the resolver cannot tell.
func (t *Transport) route(ctx context.Context, items []work.Item, pending []message) map[string]string {
	queues := make(map[string]string)
	var tenants []string
	for _, m := range pending {
		tenantID := items[m.index].TenantID
		if _, ok := queues[tenantID]; !ok {
			queues[tenantID] = t.queueURL
			if t.Resources != nil && tenantID != "" {
				tenants = append(tenants, tenantID)
			}
		}
	}
	own := make([]string, len(tenants))
	var wg sync.WaitGroup
	sem := make(chan struct{}, routeParallel)
	for i, tenantID := range tenants {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			res, err := t.Resources.Resources(ctx, tenantID)
			switch {
			case err != nil:
				t.logger().WarnContext(ctx, "tenant resources unknown; work goes to the shared queue",
					slog.String("tenantId", tenantID), slog.String("error", err.Error()))
			case res.Siloed():
				own[i] = res.WorkQueueURL
			}
		}()
	}
	wg.Wait()
	for i, tenantID := range tenants {
		if own[i] != "" {
			queues[tenantID] = own[i]
		}
	}
	return queues
}

// sendQueue sends msgs to queue in batches and sets their results. When
// queue is a tenant queue that does not exist, it returns the messages not
// sent (with their results unset) for the shared queue.
func (t *Transport) sendQueue(ctx context.Context, queue string, msgs []message, results []error) (reroute []message) {
	for len(msgs) > 0 {
		n := batchLen(msgs)
		batch := msgs[:n]
		msgs = msgs[n:]
		failed, err := t.sendBatch(ctx, queue, batch)
		if err != nil && queue != t.queueURL && queueGone(err) {
			t.logger().WarnContext(ctx, "tenant work queue does not exist; its work goes to the shared queue",
				slog.String("queueUrl", queue), slog.Int("items", len(batch)+len(msgs)), slog.String("error", err.Error()))
			return append(append(reroute, batch...), msgs...)
		}
		for _, m := range batch {
			if err != nil {
				results[m.index] = err
			} else if f, ok := failed[m.index]; ok {
				results[m.index] = f
			}
		}
		if err != nil && !batchOnly(err) {
			stop := fmt.Errorf("sqs send to %s: not tried after an earlier batch failed: %w", queue, err)
			for _, m := range msgs {
				results[m.index] = stop
			}
			break
		}
	}
	return nil
}

// queueGone reports whether a failed call says the queue does not exist.
func queueGone(err error) bool {
	var gone *types.QueueDoesNotExist
	return errors.As(err, &gone)
}

func (t *Transport) logger() *slog.Logger {
	if t.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Logger
}

// ErrTooLarge is wrapped by the result of an item whose message exceeds
// MaxMessageBytes.
var ErrTooLarge = errors.New("sqs send: message too large")

// message is one encoded item.
type message struct {
	index int // in the items of Send
	id    string
	entry types.SendMessageBatchRequestEntry
	size  int // body and attributes, as SQS counts them
}

func encode(index int, it work.Item, now time.Time) (message, error) {
	body, err := marshal(it)
	if err != nil {
		return message{}, fmt.Errorf("sqs send: encode item %s: %w", it.ID, err)
	}
	e := types.SendMessageBatchRequestEntry{
		MessageBody:  aws.String(string(body)),
		DelaySeconds: delaySeconds(it.DueAt, now),
	}
	size := len(body)
	if it.Type != "" {
		e.MessageAttributes = map[string]types.MessageAttributeValue{
			TypeAttribute: {DataType: aws.String("String"), StringValue: aws.String(it.Type)},
		}
		size += len(TypeAttribute) + len("String") + len(it.Type)
	}
	if size > MaxMessageBytes {
		return message{}, fmt.Errorf("sqs send: item %s: message of %d bytes, more than %d: %w", it.ID, size, MaxMessageBytes, ErrTooLarge)
	}
	return message{index: index, id: it.ID, entry: e, size: size}, nil
}

// marshal is json.Marshal without HTML escaping: json.Marshal writes <, >
// and & (also inside the json.RawMessage payload) as six-byte \u escapes, so
// a payload within eventstore.MaxOutboxPayload could grow past
// MaxMessageBytes. The consumer decodes either form alike.
func marshal(it work.Item) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(it); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// batchLen is how many messages from the head of ms go in the next batch (at
// least one).
func batchLen(ms []message) int {
	size := 0
	for i, m := range ms {
		if i == MaxBatchEntries || (i > 0 && size+m.size > MaxBatchBytes) {
			return i
		}
		size += m.size
	}
	return len(ms)
}

// batchOnly reports whether a failed call concerned only its own batch, so
// that the next batches may still succeed.
func batchOnly(err error) bool {
	var (
		tooLong   *types.BatchRequestTooLong
		notUnique *types.BatchEntryIdsNotDistinct
		empty     *types.EmptyBatchRequest
		badID     *types.InvalidBatchEntryId
		tooMany   *types.TooManyEntriesInBatchRequest
	)
	return errors.As(err, &tooLong) || errors.As(err, &notUnique) || errors.As(err, &empty) ||
		errors.As(err, &badID) || errors.As(err, &tooMany)
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

// sendBatch sends one batch to queue and retries the entries SQS rejected
// once (unless they were the sender's fault). It returns the error of each
// item that failed, by index, or the error of a failed call.
func (t *Transport) sendBatch(ctx context.Context, queue string, batch []message) (map[int]error, error) {
	// Entry ids are the message's position in the batch ("0".."9"): always
	// valid and distinct, even if an item id repeats.
	entries := make([]types.SendMessageBatchRequestEntry, len(batch))
	byEntry := make(map[string]message, len(batch))
	for i, m := range batch {
		entries[i] = m.entry
		entries[i].Id = aws.String(strconv.Itoa(i))
		byEntry[strconv.Itoa(i)] = m
	}
	failed := map[int]error{}
	for attempt := 1; attempt <= 2 && len(entries) > 0; attempt++ {
		out, err := t.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queue), Entries: entries})
		if err != nil {
			if attempt == 1 {
				return nil, fmt.Errorf("sqs send to %s: batch of %d items starting at %s: %w", queue, len(entries), batch[0].id, err)
			}
			// The retry call failed: the entries it carried failed.
			for _, e := range entries {
				m := byEntry[aws.ToString(e.Id)]
				failed[m.index] = fmt.Errorf("sqs send to %s: item %s: retry failed: %w", queue, m.id, err)
			}
			return failed, nil
		}
		sent := make(map[string]types.SendMessageBatchRequestEntry, len(entries))
		for _, e := range entries {
			sent[aws.ToString(e.Id)] = e
		}
		retry := entries[:0:0]
		for _, f := range out.Failed {
			e, ok := sent[aws.ToString(f.Id)]
			if !ok {
				continue // an id we did not send: ignore
			}
			m := byEntry[aws.ToString(f.Id)]
			failed[m.index] = fmt.Errorf("sqs send to %s: item %s rejected (%s): %s", queue, m.id, aws.ToString(f.Code), aws.ToString(f.Message))
			if !f.SenderFault {
				retry = append(retry, e)
			}
		}
		if attempt == 1 {
			for _, e := range retry {
				delete(failed, byEntry[aws.ToString(e.Id)].index) // decided by the retry
			}
		}
		entries = retry
	}
	return failed, nil
}
