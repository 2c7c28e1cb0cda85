package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
)

const (
	tenantA = "tnt_01JD0000000000000000000TA1"
	tenantB = "tnt_01JD0000000000000000000TB1"
)

func appendTo(stream string, eventID string) eventstore.StreamAppend {
	return eventstore.StreamAppend{StreamID: stream, Events: []eventstore.Event{
		{ID: eventID, Type: "test.happened", SchemaVersion: 1, Data: json.RawMessage(`{}`)},
	}}
}

func record(key string) eventstore.Record {
	return eventstore.Record{Collection: "things", Key: key, Data: json.RawMessage(`{"k":"` + key + `"}`)}
}

func entry(id string) eventstore.OutboxEntry {
	return eventstore.OutboxEntry{ID: id, Type: "test.work", Payload: json.RawMessage(`{}`)}
}

func TestUnitStageMerges(t *testing.T) {
	u := eventstore.NewUnit(tenantA)
	if got := u.Commit(); got.TenantID != tenantA || !got.Empty() {
		t.Fatalf("new unit commit = %+v, want empty of %s", got, tenantA)
	}
	first := &eventstore.Commit{TenantID: tenantA,
		Appends: []eventstore.StreamAppend{appendTo("s1", "evt_1")},
		Records: []eventstore.Record{record("r1")},
		Outbox:  []eventstore.OutboxEntry{entry("wrk_1")},
	}
	second := &eventstore.Commit{TenantID: tenantA,
		Appends: []eventstore.StreamAppend{appendTo("s2", "evt_2"), appendTo("s3", "evt_3")},
		Records: []eventstore.Record{record("r2")},
	}
	third := &eventstore.Commit{TenantID: tenantA, Outbox: []eventstore.OutboxEntry{entry("wrk_2")}}
	for i, c := range []*eventstore.Commit{first, second, third} {
		if err := u.Stage(c); err != nil {
			t.Fatalf("Stage #%d: %v", i+1, err)
		}
	}
	got := u.Commit()
	want := &eventstore.Commit{TenantID: tenantA,
		Appends: []eventstore.StreamAppend{appendTo("s1", "evt_1"), appendTo("s2", "evt_2"), appendTo("s3", "evt_3")},
		Records: []eventstore.Record{record("r1"), record("r2")},
		Outbox:  []eventstore.OutboxEntry{entry("wrk_1"), entry("wrk_2")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("staged commit = %+v\nwant %+v", got, want)
	}
	if got.Idempotency != nil {
		t.Fatal("a unit never stages an idempotency record itself")
	}
}

func TestUnitRejectsSecondAppendToAStream(t *testing.T) {
	u := eventstore.NewUnit(tenantA)
	if err := u.Stage(&eventstore.Commit{TenantID: tenantA, Appends: []eventstore.StreamAppend{appendTo("s1", "evt_1")}}); err != nil {
		t.Fatal(err)
	}
	before := u.Commit()
	err := u.Stage(&eventstore.Commit{TenantID: tenantA,
		Appends: []eventstore.StreamAppend{appendTo("s2", "evt_2"), appendTo("s1", "evt_3")},
		Records: []eventstore.Record{record("r1")},
		Outbox:  []eventstore.OutboxEntry{entry("wrk_1")},
	})
	if !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("second append to s1: err = %v, want ErrInvalid", err)
	}
	// A rejected Stage stages nothing, not even its other parts.
	if after := u.Commit(); !reflect.DeepEqual(after, before) {
		t.Fatalf("rejected Stage changed the unit: %+v, was %+v", after, before)
	}
}

func TestUnitRejectsAnotherTenant(t *testing.T) {
	u := eventstore.NewUnit(tenantA)
	err := u.Stage(&eventstore.Commit{TenantID: tenantB, Records: []eventstore.Record{record("r1")}})
	if !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("stage of another tenant: err = %v, want ErrInvalid", err)
	}
	if got := u.Commit(); got.TenantID != tenantA || !got.Empty() {
		t.Fatalf("unit after a rejected tenant = %+v", got)
	}
}

func TestEmptyUnitAdoptsFirstTenant(t *testing.T) {
	u := eventstore.NewUnit("")
	if err := u.Stage(&eventstore.Commit{TenantID: tenantB, Records: []eventstore.Record{record("r1")}}); err != nil {
		t.Fatalf("first Stage: %v", err)
	}
	if got := u.Commit().TenantID; got != tenantB {
		t.Fatalf("tenant = %q, want the first staged tenant %q", got, tenantB)
	}
	if err := u.Stage(&eventstore.Commit{TenantID: tenantA, Records: []eventstore.Record{record("r2")}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("then another tenant: err = %v, want ErrInvalid", err)
	}
	if err := u.Stage(&eventstore.Commit{TenantID: tenantB, Records: []eventstore.Record{record("r3")}}); err != nil {
		t.Fatalf("same tenant again: %v", err)
	}
	if got := len(u.Commit().Records); got != 2 {
		t.Fatalf("records = %d, want 2", got)
	}
}

func TestUnitConcurrentStage(t *testing.T) {
	u := eventstore.NewUnit(tenantA)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := u.Stage(&eventstore.Commit{TenantID: tenantA, Records: []eventstore.Record{record("r")}}); err != nil {
				t.Error(err)
			}
			_ = u.Commit()
		}()
	}
	wg.Wait()
	if got := len(u.Commit().Records); got != 50 {
		t.Fatalf("records = %d, want 50", got)
	}
}

func TestUnitFrom(t *testing.T) {
	if _, ok := eventstore.UnitFrom(context.Background()); ok {
		t.Fatal("UnitFrom(bare ctx) found a unit")
	}
	if _, ok := eventstore.UnitFrom(eventstore.WithUnit(context.Background(), nil)); ok {
		t.Fatal("UnitFrom found a nil unit")
	}
	u := eventstore.NewUnit(tenantA)
	if got, ok := eventstore.UnitFrom(eventstore.WithUnit(context.Background(), u)); !ok || got != u {
		t.Fatalf("UnitFrom = (%p, %v), want (%p, true)", got, ok, u)
	}
}

func openStore(t *testing.T) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestWriteStagesInUnit(t *testing.T) {
	s := openStore(t)
	u := eventstore.NewUnit(tenantA)
	ctx := eventstore.WithUnit(testCtx(t), u)
	c := &eventstore.Commit{TenantID: tenantA,
		Appends: []eventstore.StreamAppend{appendTo("s1", "evt_1")},
		Records: []eventstore.Record{record("r1")},
	}
	if err := eventstore.Write(ctx, s, c); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// Nothing reached the store: the edge commits the unit later.
	if evs, err := s.ReadStream(ctx, tenantA, "s1", 1, 0); err != nil || len(evs) != 0 {
		t.Fatalf("store stream after a staged Write = (%v, %v), want empty", evs, err)
	}
	if _, err := s.GetRecord(ctx, tenantA, "things", "r1"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("store record after a staged Write: err = %v, want ErrNotFound", err)
	}
	if got := u.Commit(); len(got.Appends) != 1 || len(got.Records) != 1 {
		t.Fatalf("unit = %+v, want the write staged", got)
	}
	// Stage errors come back from Write.
	if err := eventstore.Write(ctx, s, c); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("second Write to s1 in the unit: err = %v, want ErrInvalid", err)
	}
	// Committing the unit writes everything at once.
	if err := s.Commit(ctx, u.Commit()); err != nil {
		t.Fatalf("commit unit: %v", err)
	}
	if evs, err := s.ReadStream(ctx, tenantA, "s1", 1, 0); err != nil || len(evs) != 1 || evs[0].Version != 1 {
		t.Fatalf("stream after committing the unit = (%+v, %v)", evs, err)
	}
}

func TestWriteCommitsWithoutUnit(t *testing.T) {
	s := openStore(t)
	ctx := testCtx(t)
	c := &eventstore.Commit{TenantID: tenantA,
		Appends: []eventstore.StreamAppend{appendTo("s1", "evt_1")},
		Records: []eventstore.Record{record("r1")},
	}
	if err := eventstore.Write(ctx, s, c); err != nil {
		t.Fatalf("Write: %v", err)
	}
	evs, err := s.ReadStream(ctx, tenantA, "s1", 1, 0)
	if err != nil || len(evs) != 1 || evs[0].ID != "evt_1" || evs[0].Version != 1 || evs[0].TenantID != tenantA {
		t.Fatalf("stream after a direct Write = (%+v, %v)", evs, err)
	}
	if c.Appends[0].Events[0].Version != 1 {
		t.Fatal("a direct Write must report assigned versions like Commit")
	}
	if _, err := s.GetRecord(ctx, tenantA, "things", "r1"); err != nil {
		t.Fatalf("record after a direct Write: %v", err)
	}
	// Store errors come back from Write.
	again := &eventstore.Commit{TenantID: tenantA, Appends: []eventstore.StreamAppend{appendTo("s1", "evt_2")}}
	if err := eventstore.Write(ctx, s, again); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("direct Write at a stale version: err = %v, want ErrConflict", err)
	}
}
