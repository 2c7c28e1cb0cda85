// Package ebpublisher is the EventBridge adapter of work.EventBus: it puts the
// integration events published through the outbox on the integration event
// bus (SWITCHBOARD_EVENT_BUS, Lambda mode), for systems outside Switchboard.
// The work path calls it from BusType items (work.BusHandler), never from the
// commit that publishes an event. See docs/adr/0016-integration-events-on-eventbridge.md.
//
// Wire format (the contract with the bus's consumers: ADR 0016 and the
// sample events/samples/eventbridge-message-delivered.json):
//
//   - Source: the event's own source, switchboard.<module>
//     ("switchboard.messaging" for message.*); DefaultSource for an event
//     without one;
//   - DetailType: the event type, e.g. "message.delivered";
//   - Detail: the integration event itself, exactly the document the
//     contracts call the integration event (events/contracts/schemas/
//     integration-event.schema.json, samples integration.message.*.json:
//     {"id","source","type","tenantId","time","detail":{"tenantId",
//     "invocation","scopePath","data"}}). Its "id" is the evt_ id consumers
//     dedupe by: EventBridge gives every put a new event id of its own, so
//     the EventBridge "id" differs between two puts of the same event;
//   - EventBusName: the configured bus; Resources: empty; Time: the event's
//     time (the domain event's occurredAt; EventBridge keeps whole seconds,
//     the exact time is detail.time).
//
// Results are per event (work.EventBus): an event that cannot be encoded or
// whose entry exceeds MaxEntryBytes fails alone without a call; entries go in
// PutEvents calls of at most MaxEntries entries and MaxBatchBytes; an entry
// EventBridge rejects (FailedEntryCount, ErrorCode) fails alone (ErrRejected),
// so the work path retries exactly that event; a failed call fails the events
// of its batch, and the batches not yet tried are not tried (the error says
// so). EventBridge does not dedupe: an event with an error may still have been
// put (a lost answer), and a retried item puts it again.
package ebpublisher

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// Limits of PutEvents.
const (
	// MaxEntries is the most entries EventBridge takes in one PutEvents call.
	MaxEntries = 10
	// MaxBatchBytes bounds the entries of one call, counted as EventBridge
	// counts them (EntrySize): 256 KiB.
	MaxBatchBytes = 256 * 1024
	// MaxEntryBytes bounds one entry (the same limit).
	MaxEntryBytes = MaxBatchBytes
	// DefaultSource is the Source of an event that has none (every producer
	// sets switchboard.<module>).
	DefaultSource = "switchboard"
	// timeBytes is what a Time counts in an entry's size.
	timeBytes = 14
)

// ErrTooLarge is wrapped by the result of an event whose entry exceeds
// MaxEntryBytes (never sent).
var ErrTooLarge = errors.New("eventbridge put: entry too large")

// ErrRejected is wrapped by the result of an event whose entry EventBridge
// rejected within a call that succeeded (its ErrorCode is in the message).
var ErrRejected = errors.New("eventbridge put: entry rejected")

// putEventsAPI is the part of *eventbridge.Client the publisher uses.
type putEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// EventBridge puts integration events on one event bus. Safe for concurrent
// use.
type EventBridge struct {
	api putEventsAPI
	bus string
}

var _ work.EventBus = (*EventBridge)(nil)

// New returns a publisher to the bus busName (a name or an ARN). It does no
// I/O.
func New(client *eventbridge.Client, busName string) *EventBridge {
	return &EventBridge{api: client, bus: busName}
}

// BusName is the bus the events go to.
func (b *EventBridge) BusName() string { return b.bus }

// Put implements work.EventBus: one result per event, in order (see the
// package documentation for the outcomes).
func (b *EventBridge) Put(ctx context.Context, evs []work.IntegrationEvent) []error {
	results := make([]error, len(evs))
	pending := make([]entry, 0, len(evs))
	for i, ev := range evs {
		e, err := b.entry(i, ev)
		if err != nil {
			results[i] = err
			continue
		}
		pending = append(pending, e)
	}
	for len(pending) > 0 {
		n := batchLen(pending)
		batch := pending[:n]
		pending = pending[n:]
		if err := b.putBatch(ctx, batch, results); err != nil {
			stop := fmt.Errorf("eventbridge put to %s: not tried after an earlier call failed: %w", b.bus, err)
			for _, e := range pending {
				results[e.index] = stop
			}
			break
		}
	}
	return results
}

// entry is one encoded event.
type entry struct {
	index int // in the events of Put
	id    string
	typ   string
	req   types.PutEventsRequestEntry
	size  int // EntrySize
}

// Entry returns the PutEvents entry of ev for the bus busName (see the
// package documentation).
func Entry(busName string, ev work.IntegrationEvent) (types.PutEventsRequestEntry, error) {
	if ev.ID == "" || ev.Type == "" {
		return types.PutEventsRequestEntry{}, fmt.Errorf("eventbridge put: event without id or type (id %q, type %q): %w", ev.ID, ev.Type, eventstore.ErrInvalid)
	}
	detail, err := eventstore.MarshalJSON(ev) // not HTML-escaped: content as written
	if err != nil {
		return types.PutEventsRequestEntry{}, fmt.Errorf("eventbridge put: encode event %s %q: %w", ev.ID, ev.Type, err)
	}
	source := ev.Source
	if source == "" {
		source = DefaultSource
	}
	e := types.PutEventsRequestEntry{
		EventBusName: aws.String(busName),
		Source:       aws.String(source),
		DetailType:   aws.String(ev.Type),
		Detail:       aws.String(string(detail)),
		Resources:    []string{},
	}
	if !ev.Time.IsZero() {
		e.Time = aws.Time(ev.Time.UTC())
	}
	return e, nil
}

// EntrySize is the size of e as EventBridge counts it against its limits:
// 14 bytes for a Time, and the UTF-8 bytes of Source, DetailType, Detail and
// each resource.
func EntrySize(e types.PutEventsRequestEntry) int {
	n := len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail))
	if e.Time != nil {
		n += timeBytes
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

func (b *EventBridge) entry(index int, ev work.IntegrationEvent) (entry, error) {
	req, err := Entry(b.bus, ev)
	if err != nil {
		return entry{}, err
	}
	size := EntrySize(req)
	if size > MaxEntryBytes {
		return entry{}, fmt.Errorf("eventbridge put: event %s %q: entry of %d bytes, more than %d: %w", ev.ID, ev.Type, size, MaxEntryBytes, ErrTooLarge)
	}
	return entry{index: index, id: ev.ID, typ: ev.Type, req: req, size: size}, nil
}

// batchLen is how many entries from the head of es go in the next call (at
// least one).
func batchLen(es []entry) int {
	size := 0
	for i, e := range es {
		if i == MaxEntries || (i > 0 && size+e.size > MaxBatchBytes) {
			return i
		}
		size += e.size
	}
	return len(es)
}

// putBatch puts one batch and sets the results of its events. It returns
// the error of a failed call (the results of the batch are set to it).
func (b *EventBridge) putBatch(ctx context.Context, batch []entry, results []error) error {
	reqs := make([]types.PutEventsRequestEntry, len(batch))
	for i, e := range batch {
		reqs[i] = e.req
	}
	out, err := b.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: reqs})
	if err != nil {
		err = fmt.Errorf("eventbridge put to %s: call with %d events starting at %s: %w", b.bus, len(batch), batch[0].id, err)
		for _, e := range batch {
			results[e.index] = err
		}
		return err
	}
	if out.FailedEntryCount == 0 {
		return nil
	}
	if len(out.Entries) != len(batch) {
		// The answer does not say which entries failed: none counts as put.
		for _, e := range batch {
			results[e.index] = fmt.Errorf("eventbridge put to %s: event %s %q: %d of %d entries failed and the answer names %d: %w",
				b.bus, e.id, e.typ, out.FailedEntryCount, len(batch), len(out.Entries), ErrRejected)
		}
		return nil
	}
	for i, r := range out.Entries {
		if aws.ToString(r.ErrorCode) == "" && aws.ToString(r.EventId) != "" {
			continue
		}
		e := batch[i]
		results[e.index] = fmt.Errorf("eventbridge put to %s: event %s %q rejected (%s): %s: %w",
			b.bus, e.id, e.typ, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage), ErrRejected)
	}
	return nil
}
