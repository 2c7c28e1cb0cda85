package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/trigger"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

var _ trigger.Retrier = (*work.Requeuer)(nil)
var _ trigger.WorkHandler = (*work.Executor)(nil)

// fakeStore is an eventstore.Appender that keeps the committed outbox entries.
type fakeStore struct {
	mu     sync.Mutex
	err    error
	outbox map[string]eventstore.OutboxEntry
}

func (f *fakeStore) Commit(ctx context.Context, c *eventstore.Commit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if err := ctx.Err(); err != nil { // as a real store: nothing is written without time left
		return err
	}
	if f.outbox == nil {
		f.outbox = map[string]eventstore.OutboxEntry{}
	}
	for _, e := range c.Outbox {
		f.outbox[e.ID] = e
	}
	return nil
}

func (f *fakeStore) entry(id string) (eventstore.OutboxEntry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.outbox[id]
	return e, ok
}

// batchOf builds an SQS event of n records (messageIds m0..m<n-1>) of one
// work type, each received once.
func batchOf(t *testing.T, n int, typ string, attempt int) ([]byte, []work.Item) {
	t.Helper()
	base := sqsSample(t, "sqs-work-batch.json").Records[0]
	var ev sqsEvent
	var items []work.Item
	for i := 0; i < n; i++ {
		it := work.Item{ID: fmt.Sprintf("wrk_%d", i), TenantID: "tnt_x", Type: typ, Attempt: attempt, Payload: json.RawMessage(`{}`)}
		rec := withBody(base, fmt.Sprintf("m%d", i), it)
		rec["attributes"] = map[string]any{"ApproximateReceiveCount": "1"}
		ev.Records = append(ev.Records, rec)
		items = append(items, it)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return payload, items
}

func TestSQSDeadlineTooCloseRunsNothing(t *testing.T) {
	payload, _ := batchOf(t, 3, "t", 0)
	calls := 0
	reg := work.NewRegistry()
	reg.Register("t", func(context.Context, work.Item) error { calls++; return nil })
	r, logs := newRouter(t)
	r.Work = reg
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	out, err := r.Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(t, out); !reflect.DeepEqual(got, []string{"m0", "m1", "m2"}) || calls != 0 {
		t.Fatalf("failures %v after %d runs, want every record left to SQS without running", got, calls)
	}
	if !strings.Contains(logs.String(), "out of time") || !strings.Contains(logs.String(), `"records":3`) {
		t.Fatalf("logs = %s, want how many records were left", logs)
	}
}

func TestSQSDeadlineStopsTakingRecordsAtTheMargin(t *testing.T) {
	payload, _ := batchOf(t, 5, "t", 0)
	start := time.Now()
	clk := clock.NewFixed(start)
	var ran []string
	reg := work.NewRegistry()
	reg.Register("t", func(_ context.Context, it work.Item) error {
		ran = append(ran, it.ID)
		clk.Advance(20 * time.Minute) // each record takes 20 minutes of the hour
		return nil
	})
	r, _ := newRouter(t)
	r.Work, r.Clock, r.DeadlineMargin = reg, clk, 25*time.Minute
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(time.Hour))
	defer cancel()
	out, err := r.Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	// 60 min left: run; 40: run; 20 < 25: stop.
	if !reflect.DeepEqual(ran, []string{"wrk_0", "wrk_1"}) {
		t.Fatalf("ran %v, want the first two", ran)
	}
	if got := failedIDs(t, out); !reflect.DeepEqual(got, []string{"m2", "m3", "m4"}) {
		t.Fatalf("failures %v, want the records not run", got)
	}
}

func TestSQSDeadlineDefaultMarginLetsRecordsRun(t *testing.T) {
	payload, _ := batchOf(t, 2, "t", 0)
	reg := work.NewRegistry()
	calls := 0
	reg.Register("t", func(context.Context, work.Item) error { calls++; return nil })
	r, _ := newRouter(t)
	r.Work = reg
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.Invoke(ctx, payload)
	if err != nil || len(failedIDs(t, out)) != 0 || calls != 2 {
		t.Fatalf("out %s, err %v, %d runs", out, err, calls)
	}
}

func requeueRouter(t *testing.T, store *fakeStore, handler work.Handler) (*trigger.Router, *clock.Fixed) {
	t.Helper()
	clk := clock.NewFixed(testStart)
	reg := work.NewRegistry()
	reg.Register("t", handler)
	runner := &uow.Runner{Store: store}
	r, _ := newRouter(t)
	r.Work = &work.Executor{Handlers: reg, Runner: runner, Clock: clk}
	r.Retry = &work.Requeuer{Runner: runner, Clock: clk}
	return r, clk
}

func TestSQSFailedRecordIsRequeuedWithBackoff(t *testing.T) {
	store := &fakeStore{}
	r, _ := requeueRouter(t, store, func(_ context.Context, it work.Item) error {
		if it.ID == "wrk_1" {
			return errors.New("provider 503")
		}
		return nil
	})
	payload, items := batchOf(t, 3, "t", 2) // two attempts before this delivery
	out, err := r.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(t, out); len(got) != 0 {
		t.Fatalf("failures %v, want none: the failed item is back in the outbox", got)
	}
	got, ok := store.entry("wrk_1")
	if !ok {
		t.Fatal("the failed item is not in the outbox")
	}
	// Attempt 3 = 2 (body) + 1 (ApproximateReceiveCount); due after Backoff(3) in [2s, 4s].
	if got.Attempt != 3 || got.LastError != "provider 503" || got.DueAt.Before(testStart.Add(2*time.Second)) ||
		got.DueAt.After(testStart.Add(4*time.Second)) || got.TenantID != items[1].TenantID || got.Type != "t" {
		t.Fatalf("requeued = %+v", got)
	}
	if _, ok := store.entry("wrk_0"); ok {
		t.Fatal("a successful item was requeued")
	}
}

// A record SQS delivers again was with an invocation that ended without
// answering for it (a timeout, a crash: maybe a batch-mate's doing). It goes
// back into the outbox, counted, instead of running with its batch again:
// a record that kills its invocation then parks alone (review finding: it
// took its batch-mates to the DLQ).
func TestSQSRedeliveredRecordGoesBackToTheOutbox(t *testing.T) {
	store := &fakeStore{}
	var ran []string
	r, _ := requeueRouter(t, store, func(_ context.Context, it work.Item) error { ran = append(ran, it.ID); return nil })
	payload, _ := batchOf(t, 3, "t", 1)
	var ev sqsEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	ev.Records[1]["attributes"] = map[string]any{"ApproximateReceiveCount": "3"}
	payload, _ = json.Marshal(ev)
	out, err := r.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(t, out); len(got) != 0 {
		t.Fatalf("failures %v, want none", got)
	}
	if !reflect.DeepEqual(ran, []string{"wrk_0", "wrk_2"}) {
		t.Fatalf("ran %v, want the first deliveries only", ran)
	}
	got, ok := store.entry("wrk_1")
	if !ok || got.Attempt != 4 || !strings.Contains(got.LastError, "delivered again") || !got.DueAt.After(testStart) {
		t.Fatalf("requeued = %+v (found %v), want attempt 4 = 1 (body) + 3 (receives), due later", got, ok)
	}

	// At its last attempt it runs: put back, it would park unrun.
	last, _ := batchOf(t, 1, "t", work.DefaultMaxAttempts-2)
	if err := json.Unmarshal(last, &ev); err != nil {
		t.Fatal(err)
	}
	ev.Records[0]["attributes"] = map[string]any{"ApproximateReceiveCount": "2"}
	last, _ = json.Marshal(ev)
	ran = nil
	if out, err := r.Invoke(context.Background(), last); err != nil || len(failedIDs(t, out)) != 0 || !reflect.DeepEqual(ran, []string{"wrk_0"}) {
		t.Fatalf("last attempt: out %s, err %v, ran %v; want it run", out, err, ran)
	}

	// Put back it cannot be: left to SQS.
	down := &fakeStore{err: errors.New("store unavailable")}
	r, _ = requeueRouter(t, down, func(context.Context, work.Item) error { return nil })
	out, err = r.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(t, out); !reflect.DeepEqual(got, []string{"m1"}) {
		t.Fatalf("failures %v, want the redelivered record left to SQS", got)
	}
}

func TestSQSRequeueFailureReportsTheRecord(t *testing.T) {
	store := &fakeStore{err: errors.New("store unavailable")}
	r, _ := requeueRouter(t, store, func(context.Context, work.Item) error { return errors.New("provider 503") })
	payload, _ := batchOf(t, 2, "t", 0)
	out, err := r.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(t, out); !reflect.DeepEqual(got, []string{"m0", "m1"}) {
		t.Fatalf("failures %v, want both records left to SQS", got)
	}
}

func TestSQSRequeueParksAtMaxAttempts(t *testing.T) {
	store := &fakeStore{}
	r, _ := requeueRouter(t, store, func(context.Context, work.Item) error { return errors.New("poison") })
	payload, _ := batchOf(t, 1, "t", work.DefaultMaxAttempts-1)
	out, err := r.Invoke(context.Background(), payload)
	if err != nil || len(failedIDs(t, out)) != 0 {
		t.Fatalf("out %s, err %v", out, err)
	}
	got, _ := store.entry("wrk_0")
	if got.Attempt != work.DefaultMaxAttempts || !got.DueAt.Equal(eventstore.ParkedAt) || got.LastError != "poison" {
		t.Fatalf("requeued = %+v, want parked", got)
	}
}

func TestSQSPanicIsRequeued(t *testing.T) {
	store := &fakeStore{}
	r, _ := requeueRouter(t, store, func(context.Context, work.Item) error { panic("nil map write") })
	payload, _ := batchOf(t, 1, "t", 0)
	out, err := r.Invoke(context.Background(), payload)
	if err != nil || len(failedIDs(t, out)) != 0 {
		t.Fatalf("out %s, err %v", out, err)
	}
	if got, _ := store.entry("wrk_0"); got.Attempt != 1 || !strings.Contains(got.LastError, "nil map write") {
		t.Fatalf("requeued = %+v", got)
	}
}

func TestSQSUndecodableIsNotRequeued(t *testing.T) {
	store := &fakeStore{}
	r, _ := requeueRouter(t, store, func(context.Context, work.Item) error { return nil })
	out, err := r.Invoke(context.Background(), sample(t, "sqs-undecodable.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(t, out); !reflect.DeepEqual(got, []string{"f4a9d6b1-3c5e-4f70-9a8b-1d2c3e4f5a6b"}) {
		t.Fatalf("failures %v, want the undecodable record", got)
	}
}

// blockUntilDone is a work handler that runs until its context ends, like a
// slow provider call; it records the deadline it was given.
type blockUntilDone struct {
	mu        sync.Mutex
	ran       []string
	deadlines []time.Time
}

func (b *blockUntilDone) handle(ctx context.Context, it work.Item) error {
	d, _ := ctx.Deadline()
	b.mu.Lock()
	b.ran, b.deadlines = append(b.ran, it.ID), append(b.deadlines, d)
	b.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

// A record that overruns the margin is cancelled at deadline - margin: its
// failure is put back into the outbox (with a context that still has time)
// and the batch response comes before the invocation's deadline.
func TestSQSRecordOverrunningTheMarginIsCancelledAndRequeued(t *testing.T) {
	store := &fakeStore{}
	var b blockUntilDone
	r, _ := requeueRouter(t, store, b.handle)
	const margin = 200 * time.Millisecond
	r.DeadlineMargin = margin
	payload, _ := batchOf(t, 2, "t", 0)
	deadline := time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	out, err := r.Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	if time.Now().After(deadline) {
		t.Fatalf("the batch answered after the invocation's deadline")
	}
	if !reflect.DeepEqual(b.ran, []string{"wrk_0"}) || !b.deadlines[0].Equal(deadline.Add(-margin)) {
		t.Fatalf("ran %v with deadlines %v, want wrk_0 until %v", b.ran, b.deadlines, deadline.Add(-margin))
	}
	// wrk_0 is back in the outbox (reported done); wrk_1 was not started.
	if got := failedIDs(t, out); !reflect.DeepEqual(got, []string{"m1"}) {
		t.Fatalf("failures %v, want only the record not run", got)
	}
	got, ok := store.entry("wrk_0")
	if !ok || got.Attempt != 1 || !strings.Contains(got.LastError, "deadline exceeded") {
		t.Fatalf("requeued = %+v (found %v), want attempt 1 with the deadline as its error", got, ok)
	}
}

func TestSQSRecordOverrunningTheMarginFailsWhenTheRequeueFails(t *testing.T) {
	store := &fakeStore{err: errors.New("store unavailable")}
	var b blockUntilDone
	r, _ := requeueRouter(t, store, b.handle)
	r.DeadlineMargin = 200 * time.Millisecond
	payload, _ := batchOf(t, 1, "t", 0)
	deadline := time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	out, err := r.Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	if time.Now().After(deadline) {
		t.Fatalf("the batch answered after the invocation's deadline")
	}
	if got := failedIDs(t, out); !reflect.DeepEqual(got, []string{"m0"}) || len(b.ran) != 1 {
		t.Fatalf("failures %v after running %v, want the record left to SQS", got, b.ran)
	}
}

// The requeue gets its own short time, even when the record used all of its
// own: a store that takes a moment still keeps the item.
func TestSQSRequeueHasItsOwnTime(t *testing.T) {
	store := &fakeStore{}
	var b blockUntilDone
	r, _ := requeueRouter(t, store, b.handle)
	r.Retry = retryFunc(func(ctx context.Context, it work.Item, cause error) error {
		d, ok := ctx.Deadline()
		if !ok || ctx.Err() != nil || time.Until(d) < 50*time.Millisecond || time.Until(d) > 100*time.Millisecond {
			return fmt.Errorf("retry ctx: deadline %v in %v, err %v", ok, time.Until(d), ctx.Err())
		}
		return nil
	})
	r.DeadlineMargin = 200 * time.Millisecond // the retry gets margin/2
	payload, _ := batchOf(t, 1, "t", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out, err := r.Invoke(ctx, payload)
	if err != nil || len(failedIDs(t, out)) != 0 {
		t.Fatalf("out %s, err %v, want the record requeued", out, err)
	}
}

type retryFunc func(ctx context.Context, it work.Item, cause error) error

func (f retryFunc) RetryLater(ctx context.Context, it work.Item, cause error) error {
	return f(ctx, it, cause)
}
