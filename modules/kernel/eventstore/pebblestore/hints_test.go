package pebblestore

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/internal/kvlayout"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// TestOutboxLowWaterMark: after enough acknowledgements the outbox's mark
// moves up, but never past a live entry, and an entry written below it (or
// rescheduled below it) is still pending.
func TestOutboxLowWaterMark(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	due := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	entry := func(id string, at time.Time) eventstore.OutboxEntry {
		return eventstore.OutboxEntry{ID: id, Type: "x", DueAt: at}
	}
	commit := func(es ...eventstore.OutboxEntry) {
		t.Helper()
		for len(es) > 0 {
			chunk := es[:min(len(es), 99)]
			es = es[len(chunk):]
			if err := s.Commit(ctx, &eventstore.Commit{TenantID: "tnt_a", Outbox: chunk}); err != nil {
				t.Fatal(err)
			}
		}
	}
	pendingIDs := func() []string {
		t.Helper()
		es, err := s.PendingOutbox(ctx, due.Add(1000*time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		return ids
	}
	through := func(from, n int) {
		t.Helper()
		var es []eventstore.OutboxEntry
		for i := range n {
			es = append(es, entry(fmt.Sprintf("wrk_%06d", from+i), due.Add(time.Duration(from+i)*time.Second)))
		}
		commit(es...)
		for len(es) > 0 {
			chunk := es[:min(len(es), 100)]
			es = es[len(chunk):]
			if err := s.AckOutbox(ctx, chunk); err != nil {
				t.Fatal(err)
			}
		}
	}
	// mark raises the mark now (on the committer) and returns it.
	mark := func() string {
		t.Helper()
		if err := s.w.write(0, func(*pebble.Batch) error { s.w.outboxDels = outboxRaiseEvery; return nil }); err != nil {
			t.Fatal(err)
		}
		if low := s.w.outboxLow.Load(); low != nil {
			return string(*low)
		}
		return ""
	}

	// A stuck entry at the front holds the mark.
	stuck := entry("wrk_stuck", due.Add(500*time.Millisecond))
	commit(stuck)
	through(1, 2*outboxRaiseEvery)
	if m := mark(); m != string(kvlayout.OutboxKey(stuck.DueAt, stuck.ID)) {
		t.Fatalf("mark %q, want the stuck entry's key", m)
	}
	if got := pendingIDs(); !slices.Equal(got, []string{"wrk_stuck"}) {
		t.Fatalf("pending %v, want the stuck entry", got)
	}
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{stuck}); err != nil {
		t.Fatal(err)
	}
	// Nothing live: the mark goes above every key.
	through(10000, outboxRaiseEvery)
	if m := mark(); m != "\xff" {
		t.Fatalf("mark %q with nothing pending, want 0xff", m)
	}
	if got := pendingIDs(); len(got) != 0 {
		t.Fatalf("pending %v, want none", got)
	}
	// Written below the mark: pending.
	early := entry("wrk_early", due.Add(-time.Hour))
	commit(early)
	if got := pendingIDs(); !slices.Equal(got, []string{"wrk_early"}) {
		t.Fatalf("pending %v, want the early entry", got)
	}
	// Raised above a later entry, then one rescheduled below it: pending.
	late := entry("wrk_late", due.Add(100*time.Hour))
	commit(late)
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{early}); err != nil {
		t.Fatal(err)
	}
	through(20000, outboxRaiseEvery)
	if m := mark(); m != string(kvlayout.OutboxKey(late.DueAt, late.ID)) {
		t.Fatalf("mark %q, want the late entry's key", m)
	}
	late.DueAt = due.Add(-2 * time.Hour)
	if err := s.RescheduleOutbox(ctx, late); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(); !slices.Equal(got, []string{"wrk_late"}) {
		t.Fatalf("pending %v, want the rescheduled entry", got)
	}
}

// TestPurgeLowWaterMark: Purge starts where the last one ended, and an
// expiry written below that point (before or after a Purge in the same
// batch) is purged all the same.
func TestPurgeLowWaterMark(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFixed(now)
	s, _ := openTemp(t, WithClock(clk))
	ctx := context.Background()
	idem := func(key string, exp time.Time) *eventstore.Commit {
		return &eventstore.Commit{TenantID: "tnt_a", Idempotency: &eventstore.Idempotency{Key: key, Status: 200, Body: json.RawMessage(`{}`), ExpiresAt: exp}}
	}
	for i := range 5 {
		if err := s.Commit(ctx, idem(fmt.Sprintf("k%d", i), now.Add(time.Duration(i+1)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(10 * time.Hour)
	// One batch: a commit (expiry 1h30), the Purge, a commit (expiry 2h30).
	release, queued := holdCommitter(t, s)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	n := 0
	for i, f := range []func() error{
		func() error { return s.Commit(ctx, idem("before", now.Add(90*time.Minute))) },
		func() (err error) { n, err = s.Purge(ctx, clk.Now(), 0); return err },
		func() error { return s.Commit(ctx, idem("after", now.Add(150*time.Minute))) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
		waitQueued(t, queued, i+1)
	}
	release()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != 6 {
		t.Fatalf("purge in the batch: %d, want 6 (k0-k4 and the one before it)", n)
	}
	if low := string(s.w.expiryLow); low > string(kvlayout.ExpiryKey(now.Add(150*time.Minute), key2(kvlayout.IdemPK("tnt_a", "after")))) {
		t.Fatalf("mark %q above the entry written after the Purge", low)
	}
	if n, err := s.Purge(ctx, clk.Now(), 0); err != nil || n != 1 {
		t.Fatalf("purge after the batch: %d, %v; want 1 (the one after it)", n, err)
	}
	// The mark moved past it; a record that expired long ago, written now, goes too.
	if err := s.Commit(ctx, idem("old", now.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx, clk.Now(), 0); err != nil || n != 1 {
		t.Fatalf("purge of a record written below the mark: %d, %v; want 1", n, err)
	}
	if n := count(t, s, nsExpiry) + count(t, s, nsData); n != 0 {
		t.Fatalf("%d keys left", n)
	}
}
