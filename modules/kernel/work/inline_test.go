package work_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

func (e *env) inline(h work.Handler) *work.Inline {
	return &work.Inline{Handler: handlerFunc(h), Store: e.store, Clock: e.clock, Logger: e.logger}
}

func TestInlineSuccessAcks(t *testing.T) {
	e := newEnv(t)
	var s seen
	tr := e.inline(func(ctx context.Context, it work.Item) error { s.add(ctx, it); return nil })
	if tr.Durable() {
		t.Fatal("Inline must not be durable: it acks after the handler itself")
	}
	items := e.commit("test.work", 0, 0)
	send(t, e.ctx, tr, items)
	// Synchronous: done when Send returns.
	if got := e.pending(); len(got) != 0 {
		t.Fatalf("pending after Send = %v, want none", idsOf(got))
	}
	if got := idsOf(s.items); !reflect.DeepEqual(got, idsOf(items)) {
		t.Fatalf("handled %v, want %v in order", got, idsOf(items))
	}
	for i, c := range s.ctxs {
		if s.items[i].Attempt != 1 {
			t.Errorf("attempt = %d, want 1", s.items[i].Attempt)
		}
		if c.Trigger != "worker" || c.Principal.Kind != invocation.KindSystem || c.TenantID() != e.tenant ||
			c.InvocationID != items[i].Invocation.InvocationID {
			t.Errorf("handler ctx = %+v", c)
		}
	}
}

func TestInlineFailureReschedules(t *testing.T) {
	e := newEnv(t)
	boom := errors.New("boom")
	tr := e.inline(func(_ context.Context, it work.Item) error {
		if it.Type == "test.fail" {
			return boom
		}
		return nil
	})
	bad := e.commit("test.fail", 0)
	good := e.commit("test.work", 0)
	results := tr.Send(e.ctx, append(append([]work.Item{}, bad...), good...))
	if len(results) != 2 || !errors.Is(results[0], boom) || !strings.Contains(results[0].Error(), bad[0].ID) || results[1] != nil {
		t.Fatalf("Send = %v, want the handler error naming %s, then nil", results, bad[0].ID)
	}
	// The items after a failed one still ran and were acked.
	if _, found := e.stored(good[0].ID); found {
		t.Fatal("the good item was not acked")
	}
	got, found := e.stored(bad[0].ID)
	if !found {
		t.Fatal("the failed item was acked")
	}
	assertRescheduled(t, got, 1)
	if due := e.pendingBy(t0.Add(499 * time.Millisecond)); len(due) != 0 {
		t.Fatalf("failed item is due again at once: %v", idsOf(due))
	}
	if !strings.Contains(e.logs.String(), "will retry") {
		t.Fatalf("logs = %q, want the failure logged", e.logs.String())
	}
	// A second failure moves it on with a longer backoff.
	e.clock.Set(got.DueAt)
	if results := tr.Send(e.ctx, []work.Item{got}); !errors.Is(results[0], boom) {
		t.Fatalf("second Send = %v", results)
	}
	if again, _ := e.stored(bad[0].ID); again.LastError != "boom" {
		t.Fatalf("LastError = %q, want the handler's error", again.LastError)
	}
	again, _ := e.stored(bad[0].ID)
	if again.Attempt != 2 || again.DueAt.Before(got.DueAt.Add(time.Second)) || again.DueAt.After(got.DueAt.Add(2*time.Second)) {
		t.Fatalf("after a second failure stored = %+v, want attempt 2 due 1-2 s after %v", again, got.DueAt)
	}
}

func TestInlineResultsPerItem(t *testing.T) {
	e := newEnv(t)
	first, second := errors.New("first"), errors.New("second")
	n := 0
	tr := e.inline(func(context.Context, work.Item) error {
		n++
		if n == 1 {
			return first
		}
		return second
	})
	items := e.commit("test.work", 0, 0)
	results := tr.Send(e.ctx, items)
	if len(results) != 2 || !errors.Is(results[0], first) || !errors.Is(results[1], second) || n != 2 {
		t.Fatalf("Send = %v after %d runs, want each item's error after both ran", results, n)
	}
	for _, it := range items {
		if got, found := e.stored(it.ID); !found || got.Attempt != 1 {
			t.Fatalf("item %s stored = (%+v, %v), want rescheduled at attempt 1", it.ID, got, found)
		}
	}
}

func TestRelayWithInlineSweepRunsWork(t *testing.T) {
	e := newEnv(t)
	var s seen
	r := e.relay(e.inline(func(ctx context.Context, it work.Item) error { s.add(ctx, it); return nil }))
	e.commit("test.work", -time.Second, 0, time.Hour)
	n, err := r.Sweep(e.ctx)
	if err != nil || n != 2 || s.count() != 2 {
		t.Fatalf("Sweep = (%d, %v), handled %d; want 2 due items run", n, err, s.count())
	}
	if len(e.pending()) != 1 {
		t.Fatalf("pending = %v, want the future item", idsOf(e.pending()))
	}
}

func TestInlineParksAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	tr := e.inline(func(context.Context, work.Item) error { return errors.New("poison") })
	tr.MaxAttempts = 2
	items := e.commit("test.work", 0)
	items[0].Attempt = 1 // one attempt already failed: this is the last
	if results := tr.Send(e.ctx, items); results[0] == nil {
		t.Fatal("Send of a failing item returned nil")
	}
	got, ok := e.stored(items[0].ID)
	if !ok || got.Attempt != 2 || !got.DueAt.Equal(eventstore.ParkedAt) {
		t.Fatalf("stored = %+v (found %v), want attempt 2 parked", got, ok)
	}
}

// An item whose run ends the invocation (a Lambda timeout, a crash) must
// still count: its attempt is recorded, and due later, before its handler
// runs (review finding: such an item was never counted, never parked, and
// headed every sweep).
func TestInlineRecordsTheAttemptBeforeRunning(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", 0)
	var during work.Item
	tr := e.inline(func(context.Context, work.Item) error {
		during, _ = e.stored(items[0].ID)
		return nil
	})
	send(t, e.ctx, tr, items)
	if during.Attempt != 1 || !during.DueAt.After(t0) || !strings.Contains(during.LastError, "did not finish") {
		t.Fatalf("stored while running = %+v, want attempt 1 recorded, due later, with why it may not finish", during)
	}
	if _, found := e.stored(items[0].ID); found {
		t.Fatal("the item was not acknowledged after it succeeded")
	}
}

func TestInlineParksAnItemWhoseLastAttemptNeverFinished(t *testing.T) {
	e := newEnv(t)
	it := e.commit("test.work", 0)[0]
	ran := 0
	tr := e.inline(func(context.Context, work.Item) error { ran++; return nil })
	// As the store holds it after attempts that each ended their invocation.
	it.Attempt, it.LastError = work.DefaultMaxAttempts, "attempt 8 did not finish: the invocation ended while it ran"
	if err := e.store.RescheduleOutbox(e.ctx, it); err != nil {
		t.Fatal(err)
	}
	if results := tr.Send(e.ctx, []work.Item{it}); results[0] == nil || ran != 0 {
		t.Fatalf("Send = %v after %d runs, want a refusal without a run", results, ran)
	}
	got, found := e.stored(it.ID)
	if !found || !got.DueAt.Equal(eventstore.ParkedAt) || got.Attempt != work.DefaultMaxAttempts || !strings.Contains(got.LastError, "did not finish") {
		t.Fatalf("stored = %+v (found %v), want parked", got, found)
	}
}

func TestInlineKeepsTheInvocationsDeadline(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", 0, 0)
	var runDeadline time.Time
	tr := e.inline(func(ctx context.Context, _ work.Item) error {
		runDeadline, _ = ctx.Deadline()
		<-ctx.Done() // a handler that runs into the deadline
		return ctx.Err()
	})
	tr.DeadlineMargin = 200 * time.Millisecond
	deadline := time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithDeadline(e.ctx, deadline)
	defer cancel()
	results := tr.Send(ctx, items)
	if !runDeadline.Equal(deadline.Add(-200 * time.Millisecond)) {
		t.Fatalf("the handler's deadline = %v, want %v (the margin before the invocation's)", runDeadline, deadline.Add(-200*time.Millisecond))
	}
	// The first ran into its deadline and was rescheduled all the same; the
	// second was not started: less than the margin was left.
	if !errors.Is(results[0], context.DeadlineExceeded) || !errors.Is(results[1], work.ErrNoTime) {
		t.Fatalf("Send = %v, want the deadline's error, then ErrNoTime", results)
	}
	first, _ := e.stored(items[0].ID)
	if first.Attempt != 1 || first.LastError != context.DeadlineExceeded.Error() {
		t.Fatalf("first stored = %+v, want attempt 1 with the deadline's error", first)
	}
	if second, _ := e.stored(items[1].ID); second.Attempt != 0 || !second.DueAt.Equal(items[1].DueAt) {
		t.Fatalf("second stored = %+v, want it left as it was", second)
	}
}
