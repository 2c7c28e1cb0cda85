package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/storetest"
)

func openTemp(t testing.TB, opts ...Option) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "switchboard.db")
	s, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		s, _ := openTemp(t)
		return s
	})
}

func BenchmarkStore(b *testing.B) {
	s, _ := openTemp(b)
	storetest.Bench(b, s)
}

func TestOpenCreatesPrivateFileAndReopens(t *testing.T) {
	s, path := openTemp(t)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("file mode = %o, want 600", perm)
	}
	ctx := context.Background()
	c := &eventstore.Commit{TenantID: "tnt_a", Appends: []eventstore.StreamAppend{{StreamID: "tenant", Events: []eventstore.Event{
		{ID: "evt_1", Type: "t.created", Data: json.RawMessage(`{"a":"<&>"}`)},
	}}}}
	if err := s.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	evs, err := s2.ReadStream(ctx, "tnt_a", "tenant", 1, 0)
	if err != nil || len(evs) != 1 || string(evs[0].Data) != `{"a":"<&>"}` {
		t.Fatalf("after reopen: %+v, %v", evs, err)
	}
}

func TestOpenLockedFails(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	s2, err := Open(path, WithOpenTimeout(100*time.Millisecond))
	if err == nil {
		s2.Close()
		t.Fatal("second open of a held file succeeded")
	}
	if !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("error does not say the file is locked: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("open took %v despite a 100ms timeout", d)
	}
}

func TestIdempotencyExpiryUsesClock(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFixed(now)
	s, _ := openTemp(t, WithClock(clk))
	ctx := context.Background()
	rec := &eventstore.Idempotency{Key: "k", Status: 200, Body: json.RawMessage(`{}`), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	commit := func() error {
		return s.Commit(ctx, &eventstore.Commit{TenantID: "tnt_a", Idempotency: rec})
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(24*time.Hour - time.Second)
	if _, err := s.GetIdempotency(ctx, "tnt_a", "k"); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	if err := commit(); !errors.Is(err, eventstore.ErrDuplicate) {
		t.Fatalf("commit before expiry: %v, want ErrDuplicate", err)
	}
	clk.Advance(time.Second)
	if _, err := s.GetIdempotency(ctx, "tnt_a", "k"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("at expiry: %v, want ErrNotFound", err)
	}
	if err := commit(); err != nil {
		t.Fatalf("commit after expiry: %v", err)
	}
}

func TestOutboxDueOrderAcrossSubsecondPrecision(t *testing.T) {
	// RFC3339Nano trims zeros ("...05Z" sorts after "...05.5Z"); the key layout must not.
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 0, 0, 5, 0, time.UTC)
	dues := []time.Time{t0.Add(550 * time.Millisecond), t0, t0.Add(500 * time.Millisecond), t0.Add(time.Second)}
	var entries []eventstore.OutboxEntry
	for i, d := range dues {
		entries = append(entries, eventstore.OutboxEntry{ID: "wrk_" + string(rune('a'+i)), Type: "x", DueAt: d})
	}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: "tnt_a", Outbox: entries}); err != nil {
		t.Fatal(err)
	}
	got, err := s.PendingOutbox(ctx, t0.Add(time.Second), 10)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range got {
		order = append(order, e.ID)
		if e.TenantID != "tnt_a" {
			t.Fatalf("entry %s tenant = %q, want the commit's", e.ID, e.TenantID)
		}
	}
	if strings.Join(order, ",") != "wrk_b,wrk_c,wrk_a,wrk_d" {
		t.Fatalf("order = %v", order)
	}
}
