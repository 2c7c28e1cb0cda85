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
