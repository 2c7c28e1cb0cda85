package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// parked returns the parked entries of the given tenants (ParkedOutbox spans
// all tenants; others' entries are filtered out).
func parked(t *testing.T, s eventstore.Store, limit int, tenants ...string) []eventstore.OutboxEntry {
	t.Helper()
	all, err := s.ParkedOutbox(context.Background(), limit)
	if err != nil {
		t.Fatalf("parked outbox: %v", err)
	}
	if n := max(limit, 0); (n > 0 && len(all) > n) || (n == 0 && len(all) > 100) {
		t.Fatalf("parked outbox: %d entries, limit %d", len(all), limit)
	}
	var out []eventstore.OutboxEntry
	for _, e := range all {
		if !e.DueAt.Equal(eventstore.ParkedAt) {
			t.Fatalf("parked outbox: entry %s due %v", e.ID, e.DueAt)
		}
		if slices.Contains(tenants, e.TenantID) {
			out = append(out, e)
		}
	}
	return out
}

// eventuallyParked polls until the parked entries of tenants are exactly wantIDs, in id order.
func eventuallyParked(t *testing.T, s eventstore.Store, limit int, wantIDs []string, tenants ...string) []eventstore.OutboxEntry {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		got := parked(t, s, limit, tenants...)
		if slices.Equal(entryIDs(got), wantIDs) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("parked outbox (limit %d) = %v, want %v", limit, entryIDs(got), wantIDs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testOutboxParked(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	w := pendingWindow
	tnt := tenant()
	e1, e2, e3 := outbox(tnt, w.Add(time.Minute)), outbox(tnt, w.Add(2*time.Minute)), outbox(tnt, eventstore.ParkedAt)
	e3.Attempt, e3.LastError = 5, "gave up"
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{e1, e2, e3}})
	p := e2 // e2 as parked and replayed below
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{e1, e2, e3, p}) })
	got := eventuallyParked(t, s, 0, []string{e3.ID}, tnt)
	if got[0].Attempt != 5 || got[0].LastError != "gave up" || !bytes.Equal(got[0].Payload, e3.Payload) || got[0].Invocation != e3.Invocation {
		t.Fatalf("parked entry = %+v", got[0])
	}
	eventuallyPending(t, s, w.Add(time.Hour), 100, []string{e1.ID, e2.ID}, tnt)

	// Parking an entry: it leaves the pending entries, even for a dueBy past ParkedAt.
	p.DueAt, p.Attempt, p.LastError = eventstore.ParkedAt, 8, "handler failed"
	if err := s.RescheduleOutbox(ctx, p); err != nil {
		t.Fatalf("park: %v", err)
	}
	want := []string{e2.ID, e3.ID}
	if e3.ID < e2.ID {
		want = []string{e3.ID, e2.ID}
	}
	got = eventuallyParked(t, s, 100, want, tnt)
	if i := slices.Index(entryIDs(got), e2.ID); got[i].Attempt != 8 || got[i].LastError != "handler failed" {
		t.Fatalf("parked entry = %+v", got[i])
	}
	eventuallyPending(t, s, w.Add(time.Hour), 100, []string{e1.ID}, tnt)
	eventuallyPending(t, s, eventstore.ParkedAt.Add(time.Hour), 100, []string{e1.ID}, tnt)
	// ParkedOutbox honours its limit.
	if all, err := s.ParkedOutbox(ctx, 1); err != nil || len(all) != 1 {
		t.Fatalf("parked outbox limit 1: %d entries, %v", len(all), err)
	}

	// Replaying it makes it pending again.
	p.DueAt, p.Attempt, p.LastError = w.Add(3*time.Minute), 0, ""
	if err := s.RescheduleOutbox(ctx, p); err != nil {
		t.Fatalf("replay: %v", err)
	}
	eventuallyParked(t, s, 100, []string{e3.ID}, tnt)
	got = eventuallyPending(t, s, w.Add(time.Hour), 100, []string{e1.ID, e2.ID}, tnt)
	if got[1].LastError != "" || got[1].Attempt != 0 {
		t.Fatalf("replayed entry = %+v", got[1])
	}
	// Acks name the versions read (e2 was replayed as p).
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{e1, p, e3}); err != nil {
		t.Fatalf("ack: %v", err)
	}
	eventuallyParked(t, s, 100, nil, tnt)
	eventuallyPending(t, s, w.Add(time.Hour), 100, nil, tnt)
}

func testOutboxLastError(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	w := pendingWindow.Add(30 * time.Minute)
	dueBy := w.Add(time.Hour)
	tnt := tenant()
	e := outbox(tnt, w)
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{e}})
	r := e // e as rescheduled below
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{e, r}) })
	lastError := func() string {
		t.Helper()
		got := eventuallyPending(t, s, dueBy, 100, []string{e.ID}, tnt)
		return got[0].LastError
	}
	if got := lastError(); got != "" {
		t.Fatalf("new entry LastError = %q", got)
	}
	r.Attempt, r.DueAt, r.LastError = 1, w.Add(time.Minute), "hand-off: queue unavailable (\"é\")"
	if err := s.RescheduleOutbox(ctx, r); err != nil {
		t.Fatalf("reschedule: %v", err)
	}
	if got := lastError(); got != r.LastError {
		t.Fatalf("LastError = %q, want %q", got, r.LastError)
	}
	// Longer errors are cut to MaxLastError bytes (at a character boundary).
	long := strings.Repeat("é", eventstore.MaxLastError) // 2 bytes each
	r.Attempt, r.LastError = 2, "x"+long
	if err := s.RescheduleOutbox(ctx, r); err != nil {
		t.Fatalf("reschedule: %v", err)
	}
	got := lastError()
	if len(got) > eventstore.MaxLastError || len(got) < eventstore.MaxLastError-1 || !strings.HasPrefix(r.LastError, got) {
		t.Fatalf("long LastError: %d bytes %q", len(got), got)
	}
	// "" clears it.
	r.Attempt, r.LastError = 3, ""
	if err := s.RescheduleOutbox(ctx, r); err != nil {
		t.Fatalf("reschedule: %v", err)
	}
	deadline := time.Now().Add(pollTimeout)
	for {
		got := eventuallyPending(t, s, dueBy, 100, []string{e.ID}, tnt)
		if got[0].Attempt == 3 {
			if got[0].LastError != "" {
				t.Fatalf("cleared LastError = %q", got[0].LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry after reschedule = %+v", got[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	// LastError written with the commit round-trips too.
	e2 := outbox(tnt, w.Add(2*time.Minute))
	e2.LastError = "from commit"
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{e2}})
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{e2}) })
	pend := eventuallyPending(t, s, dueBy, 100, []string{e.ID, e2.ID}, tnt)
	if pend[1].LastError != "from commit" {
		t.Fatalf("committed LastError = %q", pend[1].LastError)
	}
}

func testOutboxPayloadLimit(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	w := pendingWindow.Add(45 * time.Minute)
	tnt := tenant()
	payload := func(n int) json.RawMessage { return bigData(n - len(`{"blob":""}`)) }
	tooBig := outbox(tnt, w)
	tooBig.Payload = payload(eventstore.MaxOutboxPayload + 1)
	c := appendCommit(tnt, "tenant", 0, event("storetest.e", 1))
	c.Outbox = []eventstore.OutboxEntry{tooBig}
	wantErr(t, s.Commit(ctx, c), eventstore.ErrTooLarge, "outbox payload over MaxOutboxPayload")
	wantVersions(t, read(t, s, tnt, "tenant", 1, 0), nil)

	fits := outbox(tnt, w)
	fits.Payload = payload(eventstore.MaxOutboxPayload)
	c.Outbox = []eventstore.OutboxEntry{fits}
	mustCommit(t, s, c)
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{fits}) })
	got := eventuallyPending(t, s, w.Add(time.Minute), 100, []string{fits.ID}, tnt)
	if !bytes.Equal(got[0].Payload, fits.Payload) {
		t.Fatalf("payload of %d bytes did not round-trip (%d bytes)", len(fits.Payload), len(got[0].Payload))
	}
}

// eventuallyPendingVersion polls until the pending entries of tnt are exactly
// one, with id want.ID and want's DueAt and Attempt, and returns it.
func eventuallyPendingVersion(t *testing.T, s eventstore.Store, dueBy time.Time, want eventstore.OutboxEntry, tnt string) eventstore.OutboxEntry {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		got := pending(t, s, dueBy, 100, tnt)
		if len(got) == 1 && got[0].ID == want.ID && got[0].DueAt.Equal(want.DueAt) && got[0].Attempt == want.Attempt {
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending outbox of %s = %+v, want only %s due %v attempt %d", tnt, got, want.ID, want.DueAt, want.Attempt)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testOutboxAckKeepsRescheduled: the relay reads an entry, hands it over and
// acknowledges it later; meanwhile the consumer ran it, failed and
// rescheduled it (or parked it). The late acknowledgement of the version
// handed must not remove the rescheduled entry.
func testOutboxAckKeepsRescheduled(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	w := pendingWindow.Add(50 * time.Minute)
	dueBy := w.Add(time.Hour)
	tnt := tenant()
	e := outbox(tnt, w.Add(123456789*time.Nanosecond)) // sub-second: the version must survive the round trip
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{e}})
	retried := e
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{e, retried}) })
	handed := eventuallyPendingVersion(t, s, dueBy, e, tnt) // as the relay reads it

	retried = handed
	retried.DueAt, retried.Attempt, retried.LastError = w.Add(time.Minute), 1, "handler failed"
	if err := s.RescheduleOutbox(ctx, retried); err != nil {
		t.Fatalf("reschedule: %v", err)
	}
	eventuallyPendingVersion(t, s, dueBy, retried, tnt)
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{handed}); err != nil {
		t.Fatalf("late ack: %v", err)
	}
	got := eventuallyPendingVersion(t, s, dueBy, retried, tnt)
	if got.LastError != "handler failed" || !bytes.Equal(got.Payload, e.Payload) {
		t.Fatalf("rescheduled entry after a late ack = %+v", got)
	}
	// Acknowledging the version it is now removes it.
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{got}); err != nil {
		t.Fatalf("ack: %v", err)
	}
	eventuallyPending(t, s, dueBy, 100, nil, tnt)

	// The same for an entry parked meanwhile.
	e2 := outbox(tnt, w.Add(2*time.Minute))
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{e2}})
	park := e2
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{e2, park}) })
	handed = eventuallyPendingVersion(t, s, dueBy, e2, tnt)
	park = handed
	park.DueAt, park.Attempt, park.LastError = eventstore.ParkedAt, 8, "gave up"
	if err := s.RescheduleOutbox(ctx, park); err != nil {
		t.Fatalf("park: %v", err)
	}
	eventuallyParked(t, s, 100, []string{e2.ID}, tnt)
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{handed}); err != nil {
		t.Fatalf("late ack: %v", err)
	}
	eventuallyParked(t, s, 100, []string{e2.ID}, tnt)
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{park}); err != nil {
		t.Fatalf("ack parked: %v", err)
	}
	eventuallyParked(t, s, 100, nil, tnt)
}

// testOutboxAckKeepsRecommitted: like testOutboxAckKeepsRescheduled, but the
// consumer re-commits the entry (same id, a later DueAt) with a Commit, where
// the adapter allows a commit over a pending entry.
func testOutboxAckKeepsRecommitted(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	w := pendingWindow.Add(55 * time.Minute)
	dueBy := w.Add(time.Hour)
	tnt := tenant()
	e := outbox(tnt, w.Add(987654321*time.Nanosecond))
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{e}})
	again := e
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{e, again}) })
	handed := eventuallyPendingVersion(t, s, dueBy, e, tnt)

	again = handed
	again.DueAt, again.Attempt, again.LastError = w.Add(time.Minute), 1, "handler failed"
	err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{again}})
	if errors.Is(err, eventstore.ErrConflict) {
		// An adapter may refuse to commit over a pending entry (bbolt does);
		// a requeue then reschedules it in place (work.Requeuer), which must
		// survive the late acknowledgement just the same.
		err = s.RescheduleOutbox(ctx, again)
	}
	if err != nil {
		t.Fatalf("re-commit: %v", err)
	}
	eventuallyPendingVersion(t, s, dueBy, again, tnt)
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{handed}); err != nil {
		t.Fatalf("late ack: %v", err)
	}
	got := eventuallyPendingVersion(t, s, dueBy, again, tnt)
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{got}); err != nil {
		t.Fatalf("ack: %v", err)
	}
	eventuallyPending(t, s, dueBy, 100, nil, tnt)
}
