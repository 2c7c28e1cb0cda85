package work_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// recorder is a Transport that records what it is handed.
type recorder struct {
	mu       sync.Mutex
	durable  bool
	maxDelay time.Duration
	err      error                 // refuses every item with it
	refuse   func(work.Item) error // else refuses the items it answers an error for
	batches  [][]work.Item
}

func (r *recorder) Send(_ context.Context, items []work.Item) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, append([]work.Item(nil), items...))
	results := make([]error, len(items))
	for i, it := range items {
		switch {
		case r.err != nil:
			results[i] = r.err
		case r.refuse != nil:
			results[i] = r.refuse(it)
		}
	}
	return results
}

func (r *recorder) Durable() bool { return r.durable }

func (r *recorder) MaxDelay() time.Duration { return r.maxDelay }

func (r *recorder) sent() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]string, len(r.batches))
	for i, b := range r.batches {
		out[i] = idsOf(b)
	}
	return out
}

func (e *env) relay(tr work.Transport) *work.Relay {
	return &work.Relay{Store: e.store, Transport: tr, Clock: e.clock, Logger: e.logger}
}

func TestAfterCommitHandsDueEntriesAndAcksWhenDurable(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", -time.Second, 0, time.Second)
	tr := &recorder{durable: true}
	e.relay(tr).AfterCommit(e.ctx, items)

	if want := [][]string{{items[0].ID, items[1].ID}}; !reflect.DeepEqual(tr.sent(), want) {
		t.Fatalf("sent %v, want only the due entries %v", tr.sent(), want)
	}
	if got := e.pendingBy(t0); len(got) != 0 {
		t.Fatalf("due entries still pending after a durable send: %v", idsOf(got))
	}
	if got := idsOf(e.pending()); !reflect.DeepEqual(got, []string{items[2].ID}) {
		t.Fatalf("pending = %v, want only the future entry %s", got, items[2].ID)
	}
}

func TestAfterCommitNothingDue(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", time.Millisecond, time.Hour)
	tr := &recorder{durable: true}
	e.relay(tr).AfterCommit(e.ctx, items)
	e.relay(tr).AfterCommit(e.ctx, nil)
	if len(tr.sent()) != 0 {
		t.Fatalf("sent %v, want nothing", tr.sent())
	}
	if len(e.pending()) != 2 {
		t.Fatal("entries that are not due must stay pending")
	}
}

func TestAfterCommitDoesNotAckWhenNotDurable(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", 0, 0)
	tr := &recorder{durable: false}
	e.relay(tr).AfterCommit(e.ctx, items)
	if want := [][]string{idsOf(items)}; !reflect.DeepEqual(tr.sent(), want) {
		t.Fatalf("sent %v, want %v", tr.sent(), want)
	}
	if got := idsOf(e.pending()); !reflect.DeepEqual(got, idsOf(items)) {
		t.Fatalf("pending = %v, want every entry (a non-durable transport acks itself)", got)
	}
}

func TestAfterCommitSendFailureLogsAndKeeps(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", 0, 0)
	tr := &recorder{durable: true, err: errors.New("queue unavailable")}
	e.relay(tr).AfterCommit(e.ctx, items) // must not panic or return anything
	if len(tr.sent()) != 1 {
		t.Fatalf("sent %v, want one attempt", tr.sent())
	}
	if got := sortedIDs(e.pending()); !reflect.DeepEqual(got, sortedIDs(items)) {
		t.Fatalf("pending = %v, want every entry kept for the sweep", got)
	}
	for _, it := range e.pending() {
		assertRescheduled(t, it, 1)
		if it.LastError != "queue unavailable" {
			t.Fatalf("LastError = %q, want the transport's error", it.LastError)
		}
	}
	if logs := e.logs.String(); !strings.Contains(logs, "relay failed") || !strings.Contains(logs, "queue unavailable") {
		t.Fatalf("logs = %q, want the relay failure logged", logs)
	}
}

func TestSweepPagesThroughADurableTransport(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", -5*time.Second, -4*time.Second, -3*time.Second, -2*time.Second, -time.Second)
	future := e.commit("test.work", time.Minute)
	tr := &recorder{durable: true}
	r := e.relay(tr)
	r.BatchSize = 2

	n, err := r.Sweep(e.ctx)
	if err != nil || n != 5 {
		t.Fatalf("Sweep = (%d, %v), want (5, nil)", n, err)
	}
	want := [][]string{{items[0].ID, items[1].ID}, {items[2].ID, items[3].ID}, {items[4].ID}}
	if !reflect.DeepEqual(tr.sent(), want) {
		t.Fatalf("sent %v, want pages %v (earliest first)", tr.sent(), want)
	}
	if got := idsOf(e.pending()); !reflect.DeepEqual(got, idsOf(future)) {
		t.Fatalf("pending = %v, want only the future entry", got)
	}
	// Nothing left: the next sweep hands nothing.
	if n, err := r.Sweep(e.ctx); err != nil || n != 0 {
		t.Fatalf("second Sweep = (%d, %v), want (0, nil)", n, err)
	}
	// Once due, the future entry goes too.
	e.clock.Advance(time.Minute)
	if n, err := r.Sweep(e.ctx); err != nil || n != 1 || len(e.pending()) != 0 {
		t.Fatalf("Sweep after the clock moved = (%d, %v), pending %v", n, err, idsOf(e.pending()))
	}
}

func TestSweepExactlyFullPages(t *testing.T) {
	e := newEnv(t)
	e.commit("test.work", -4*time.Second, -3*time.Second, -2*time.Second, -time.Second)
	tr := &recorder{durable: true}
	r := e.relay(tr)
	r.BatchSize = 2
	if n, err := r.Sweep(e.ctx); err != nil || n != 4 {
		t.Fatalf("Sweep = (%d, %v), want (4, nil)", n, err)
	}
	if len(tr.sent()) != 2 || len(e.pending()) != 0 {
		t.Fatalf("sent %v, pending %v", tr.sent(), idsOf(e.pending()))
	}
}

func TestSweepOnePageForANonDurableTransport(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", -3*time.Second, -2*time.Second, -time.Second)
	tr := &recorder{durable: false}
	r := e.relay(tr)
	r.BatchSize = 2
	n, err := r.Sweep(e.ctx)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = (%d, %v), want (2, nil): one page", n, err)
	}
	if want := [][]string{{items[0].ID, items[1].ID}}; !reflect.DeepEqual(tr.sent(), want) {
		t.Fatalf("sent %v, want %v", tr.sent(), want)
	}
	if len(e.pending()) != 3 {
		t.Fatal("a sweep to a non-durable transport must not ack")
	}
}

func TestSweepRespectsGrace(t *testing.T) {
	e := newEnv(t)
	old := e.commit("test.work", -10*time.Second, -5*time.Second)
	fresh := e.commit("test.work", -4*time.Second, 0)
	tr := &recorder{durable: true}
	r := e.relay(tr)
	r.Grace = 5 * time.Second
	n, err := r.Sweep(e.ctx)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = (%d, %v), want (2, nil)", n, err)
	}
	if want := [][]string{idsOf(old)}; !reflect.DeepEqual(tr.sent(), want) {
		t.Fatalf("sent %v, want only entries due at least Grace ago %v", tr.sent(), want)
	}
	if got := idsOf(e.pending()); !reflect.DeepEqual(got, idsOf(fresh)) {
		t.Fatalf("pending = %v, want the fresh entries %v", got, idsOf(fresh))
	}
}

func TestSweepSendFailure(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", -time.Second, 0)
	down := errors.New("queue unavailable")
	r := e.relay(&recorder{durable: true, err: down})
	n, err := r.Sweep(e.ctx)
	if !errors.Is(err, down) || n != 0 {
		t.Fatalf("Sweep = (%d, %v), want (0, the transport error)", n, err)
	}
	if !strings.HasPrefix(err.Error(), "sweep: ") {
		t.Fatalf("error %q lacks the operation prefix", err)
	}
	if got := sortedIDs(e.pending()); !reflect.DeepEqual(got, sortedIDs(items)) {
		t.Fatalf("pending = %v, want every entry kept", got)
	}
	// Kept, with the failed hand-off recorded: not due again before the backoff.
	for _, it := range e.pending() {
		assertRescheduled(t, it, 1)
		if it.LastError != "queue unavailable" {
			t.Fatalf("LastError = %q", it.LastError)
		}
	}
}

func TestSweepJobFunc(t *testing.T) {
	e := newEnv(t)
	e.commit("test.work", 0, 0, 0)
	tr := &recorder{durable: true}
	jobs := work.NewJobs()
	jobs.Register(work.SweepJob, e.relay(tr).SweepJobFunc())
	if err := jobs.Run(e.ctx, "outbox-sweep"); err != nil {
		t.Fatalf("run %s: %v", work.SweepJob, err)
	}
	if len(e.pending()) != 0 || len(tr.sent()) != 1 {
		t.Fatalf("sent %v, pending %v", tr.sent(), idsOf(e.pending()))
	}
	if !strings.Contains(e.logs.String(), "outbox sweep handed work") {
		t.Fatalf("logs = %q, want the sweep logged", e.logs.String())
	}
}

// A non-durable transport with a MaxDelay (it holds items until due) gets
// the entries due within it from a sweep; so does a durable one (SQS holds
// them with DelaySeconds).
func TestSweepLooksAheadByMaxDelay(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", -time.Second, 5*time.Second, 20*time.Second)
	holder := &recorder{durable: false, maxDelay: 10 * time.Second}
	if n, err := e.relay(holder).Sweep(e.ctx); err != nil || n != 2 {
		t.Fatalf("Sweep = (%d, %v), want (2, nil)", n, err)
	}
	if want := [][]string{idsOf(items[:2])}; !reflect.DeepEqual(holder.sent(), want) {
		t.Fatalf("sent %v, want the entries due within MaxDelay %v", holder.sent(), want)
	}
	sqs := &recorder{durable: true, maxDelay: 15 * time.Minute}
	if n, err := e.relay(sqs).Sweep(e.ctx); err != nil || n != 3 {
		t.Fatalf("durable Sweep = (%d, %v), want (3, nil)", n, err)
	}
	if want := [][]string{idsOf(items)}; !reflect.DeepEqual(sqs.sent(), want) {
		t.Fatalf("durable transport sent %v, want every entry due within 15 minutes %v", sqs.sent(), want)
	}
}

// slowRecorder is a durable transport whose every Send takes delay.
type slowRecorder struct {
	recorder
	delay time.Duration
}

func (r *slowRecorder) Send(ctx context.Context, items []work.Item) []error {
	time.Sleep(r.delay)
	return r.recorder.Send(ctx, items)
}

// TestSweepStopsBeforeItsDeadline: a sweep under a deadline (a Lambda
// invocation's) stops cleanly before a page it might not finish, instead of
// being cut off in one; the next run hands the rest.
func TestSweepStopsBeforeItsDeadline(t *testing.T) {
	e := newEnv(t)
	e.commit("test.work", -10*time.Second, -9*time.Second, -8*time.Second, -7*time.Second, -6*time.Second,
		-5*time.Second, -4*time.Second, -3*time.Second, -2*time.Second, -time.Second)
	tr := &slowRecorder{recorder: recorder{durable: true}, delay: 100 * time.Millisecond}
	r := e.relay(tr)
	r.BatchSize = 1
	ctx, cancel := context.WithTimeout(e.ctx, 350*time.Millisecond)
	defer cancel()
	n, err := r.Sweep(ctx)
	if err != nil || ctx.Err() != nil {
		t.Fatalf("Sweep = (%d, %v), ctx %v: want a clean stop before the deadline", n, err, ctx.Err())
	}
	if n < 1 || n >= 10 {
		t.Fatalf("Sweep handed %d of 10, want some and not all", n)
	}
	if left := len(e.pending()); left != 10-n {
		t.Fatalf("%d pending after handing %d of 10", left, n)
	}
	if n2, err := r.Sweep(e.ctx); err != nil || n2 != 10-n {
		t.Fatalf("next Sweep = (%d, %v), want the other %d", n2, err, 10-n)
	}
}

// TestSweepLooksAheadForADurableTransportWithDelay: SQS holds items back up
// to its MaxDelay, so the sweep hands entries due within it (with their due
// time: the transport delays them) and leaves later ones for a later run:
// a message scheduled days ahead goes out on time, not at the first sweep
// after its sendAt.
func TestSweepLooksAheadForADurableTransportWithDelay(t *testing.T) {
	e := newEnv(t)
	soon := e.commit("test.work", 5*time.Minute)
	later := e.commit("test.work", 20*time.Minute)
	tr := &recorder{durable: true, maxDelay: 15 * time.Minute}
	r := e.relay(tr)
	r.Grace = 10 * time.Second
	if n, err := r.Sweep(e.ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = (%d, %v), want the entry due in 5 minutes", n, err)
	}
	if got := tr.sent(); len(got) != 1 || !reflect.DeepEqual(got[0], idsOf(soon)) {
		t.Fatalf("sent %v, want %v", got, idsOf(soon))
	}
	if !tr.batches[0][0].DueAt.Equal(soon[0].DueAt) {
		t.Fatalf("handed with due %s, want %s (the transport delays it)", tr.batches[0][0].DueAt, soon[0].DueAt)
	}
	if got := idsOf(e.pending()); !reflect.DeepEqual(got, idsOf(later)) {
		t.Fatalf("pending %v, want only the entry due in 20 minutes", got)
	}
	e.clock.Advance(6 * time.Minute)
	if n, err := r.Sweep(e.ctx); err != nil || n != 1 || len(e.pending()) != 0 {
		t.Fatalf("Sweep 6 minutes later = (%d, %v), pending %v", n, err, idsOf(e.pending()))
	}
}
