package storetest

import (
	"bytes"
	"context"
	"encoding/json"
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
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{e1, e2, e3}) })
	got := eventuallyParked(t, s, 0, []string{e3.ID}, tnt)
	if got[0].Attempt != 5 || got[0].LastError != "gave up" || !bytes.Equal(got[0].Payload, e3.Payload) || got[0].Invocation != e3.Invocation {
		t.Fatalf("parked entry = %+v", got[0])
	}
	eventuallyPending(t, s, w.Add(time.Hour), 100, []string{e1.ID, e2.ID}, tnt)

	// Parking an entry: it leaves the pending entries, even for a dueBy past ParkedAt.
	p := e2
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
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{e1, e2, e3}); err != nil {
		t.Fatalf("ack: %v", err)
	}
	eventuallyParked(t, s, 100, nil, tnt)
}

func testOutboxLastError(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	w := pendingWindow.Add(30 * time.Minute)
	dueBy := w.Add(time.Hour)
	tnt := tenant()
	e := outbox(tnt, w)
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{e}})
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{e}) })
	lastError := func() string {
		t.Helper()
		got := eventuallyPending(t, s, dueBy, 100, []string{e.ID}, tnt)
		return got[0].LastError
	}
	if got := lastError(); got != "" {
		t.Fatalf("new entry LastError = %q", got)
	}
	r := e
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
