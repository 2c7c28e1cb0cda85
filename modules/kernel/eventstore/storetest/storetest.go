// Package storetest is the contract test suite of the eventstore port. Every
// adapter (bbolt, DynamoDB) runs Run from its own tests and Bench from its
// benchmarks, so all adapters behave alike.
//
// Every subtest uses fresh random tenant ids, so one shared store (one
// DynamoDB table) may serve the whole suite. Checks of PendingOutbox,
// ParkedOutbox, ListRecords and eventually consistent reads poll with a
// deadline, because indexes may be eventually consistent (DynamoDB GSIs). Outbox entries of the suite use DueAt windows far from the
// present (year 2000 for entries that must be pending, 1990 for entries that
// must never be written), so leftovers of other subtests do not interfere.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// base is the fixed time of the suite's events and records.
var base = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)

// pendingWindow is where outbox entries that must be pending are due.
var pendingWindow = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// neverWindow is where outbox entries that must never be written are due.
var neverWindow = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

// pollTimeout bounds the wait for an eventually consistent outbox index.
const pollTimeout = 10 * time.Second

var gen = ids.NewULIDs()

// Run runs the contract suite. newStore returns the store of one subtest: a
// fresh one, or a shared one (every subtest uses its own tenant ids).
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s eventstore.Store)
	}{
		{"append-and-read-back", testAppendReadBack},
		{"read-from-version-and-limit", testReadFromAndLimit},
		{"read-missing-stream", testReadMissing},
		{"conflict-wrong-version-writes-nothing", testConflictWritesNothing},
		{"conflict-expected-zero-on-existing", testConflictZeroOnExisting},
		{"conflict-expected-ahead", testConflictAhead},
		{"head-record", testHeadRecord},
		{"record-source", testRecordSource},
		{"concurrent-appends-one-wins", testConcurrentAppends},
		{"multi-stream-commit-atomic", testMultiStreamAtomic},
		{"idempotency-round-trip", testIdempotencyRoundTrip},
		{"idempotency-duplicate-writes-nothing", testIdempotencyDuplicate},
		{"idempotency-concurrent-one-wins", testIdempotencyConcurrent},
		{"idempotency-expired", testIdempotencyExpired},
		{"idempotency-namespace", testIdempotencyNamespace},
		{"records-put-get-overwrite-delete", testRecordsBasic},
		{"records-if-absent", testRecordsIfAbsent},
		{"records-global", testRecordsGlobal},
		{"records-global-several-keys-and-eventually", testRecordsGlobalKeys},
		{"lists-membership-and-paging", testListPaging},
		{"lists-limit-default-and-max", testListLimits},
		{"lists-sharded", testListSharded},
		{"lists-rewrite-moves-and-leaves", testListRewrite},
		{"lists-delete-leaves", testListDelete},
		{"lists-tenant-isolation", testListTenantIsolation},
		{"lists-cursor-names-its-list", testListCursorNamesItsList},
		{"lists-invalid", testListInvalid},
		{"lists-shared-name-across-collections", testListSharedName},
		{"tenant-isolation", testTenantIsolation},
		{"large-payloads", testLargePayloads},
		{"invalid-commits", testInvalid},
		{"outbox", testOutbox},
		{"outbox-parked", testOutboxParked},
		{"outbox-ack-keeps-rescheduled", testOutboxAckKeepsRescheduled},
		{"outbox-ack-keeps-recommitted", testOutboxAckKeepsRecommitted},
		{"outbox-last-error", testOutboxLastError},
		{"outbox-payload-limit", testOutboxPayloadLimit},
		{"read-stream-many-events", testReadMany},
		{"put-records", testPutRecords},
		{"records-expiry", testRecordsExpiry},
		{"lists-sort-bounds", testListSortBounds},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

// ---- helpers ----

func tenant() string { return gen.New(ids.Tenant) }

func meta() invocation.Meta {
	return invocation.Meta{
		InvocationID: gen.New(ids.Invocation),
		ActionID:     "01J9Z3K6X5YB2W1Q0V8N4M7R2T",
		TraceID:      "4bf92f3577b34da6a3ce929d0e0736ae",
		Principal:    "service_account:" + gen.New(ids.ServiceAccount),
	}
}

func event(typ string, n int) eventstore.Event {
	return eventstore.Event{
		ID:            gen.New(ids.Event),
		Type:          typ,
		SchemaVersion: 1,
		OccurredAt:    base.Add(time.Duration(n) * time.Second),
		Invocation:    meta(),
		Data:          json.RawMessage(fmt.Sprintf(`{"n":%d,"s":"v\u00e9\"x"}`, n)),
	}
}

func events(typ string, n int) []eventstore.Event {
	out := make([]eventstore.Event, n)
	for i := range out {
		out[i] = event(typ, i)
	}
	return out
}

func appendCommit(tnt, stream string, expected int64, evs ...eventstore.Event) *eventstore.Commit {
	return &eventstore.Commit{TenantID: tnt, Appends: []eventstore.StreamAppend{{StreamID: stream, ExpectedVersion: expected, Events: evs}}}
}

func mustCommit(t *testing.T, s eventstore.Store, c *eventstore.Commit) {
	t.Helper()
	if err := s.Commit(context.Background(), c); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func read(t *testing.T, s eventstore.Store, tnt, stream string, from int64, limit int) []eventstore.Event {
	t.Helper()
	evs, err := s.ReadStream(context.Background(), tnt, stream, from, limit)
	if err != nil {
		t.Fatalf("read %s from %d limit %d: %v", stream, from, limit, err)
	}
	return evs
}

func versions(evs []eventstore.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

func seq(from, to int64) []int64 {
	var out []int64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

func wantVersions(t *testing.T, evs []eventstore.Event, want []int64) {
	t.Helper()
	if got := versions(evs); !slices.Equal(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}
}

func sameMs(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

func checkEvent(t *testing.T, got, want eventstore.Event, tnt, stream string, version int64) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.SchemaVersion != want.SchemaVersion {
		t.Errorf("event v%d: id/type/schema = %q/%q/%d, want %q/%q/%d", version, got.ID, got.Type, got.SchemaVersion, want.ID, want.Type, want.SchemaVersion)
	}
	if got.TenantID != tnt || got.StreamID != stream || got.Version != version {
		t.Errorf("event v%d: tenant/stream/version = %q/%q/%d, want %q/%q/%d", version, got.TenantID, got.StreamID, got.Version, tnt, stream, version)
	}
	if !sameMs(got.OccurredAt, want.OccurredAt) {
		t.Errorf("event v%d: occurredAt = %v, want %v", version, got.OccurredAt, want.OccurredAt)
	}
	if got.Invocation != want.Invocation {
		t.Errorf("event v%d: invocation = %+v, want %+v", version, got.Invocation, want.Invocation)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("event v%d: data = %s, want %s", version, got.Data, want.Data)
	}
}

func getRecord(t *testing.T, s eventstore.Store, tnt, coll, key string) (eventstore.Record, error) {
	t.Helper()
	return s.GetRecord(context.Background(), tnt, coll, key)
}

func wantRecordData(t *testing.T, s eventstore.Store, tnt, coll, key, data string) {
	t.Helper()
	r, err := getRecord(t, s, tnt, coll, key)
	if err != nil {
		t.Fatalf("get record %s/%s: %v", coll, key, err)
	}
	if r.Collection != coll || r.Key != key || string(r.Data) != data {
		t.Fatalf("record = %s/%s %s, want %s/%s %s", r.Collection, r.Key, r.Data, coll, key, data)
	}
}

func wantNoRecord(t *testing.T, s eventstore.Store, tnt, coll, key string) {
	t.Helper()
	_, err := getRecord(t, s, tnt, coll, key)
	wantErr(t, err, eventstore.ErrNotFound, "get record "+coll+"/"+key)
}

func wantNoIdem(t *testing.T, s eventstore.Store, tnt, key string) {
	t.Helper()
	_, err := s.GetIdempotency(context.Background(), tnt, key)
	wantErr(t, err, eventstore.ErrNotFound, "get idempotency "+key)
}

func idem(key string) *eventstore.Idempotency {
	return &eventstore.Idempotency{
		Key:         key,
		Fingerprint: "sha256:" + strings.Repeat("ab", 32),
		Status:      201,
		Body:        json.RawMessage(`{"id":"scp_x","name":"n\u00e4me"}`),
		CreatedAt:   base,
		ExpiresAt:   time.Now().Add(48 * time.Hour).Truncate(time.Second),
	}
}

func outbox(tnt string, due time.Time) eventstore.OutboxEntry {
	return eventstore.OutboxEntry{
		ID:         gen.New(ids.Work),
		TenantID:   tnt,
		Type:       "storetest.do-something",
		Payload:    json.RawMessage(`{"to":"x","n":1}`),
		DueAt:      due,
		Attempt:    0,
		Invocation: meta(),
	}
}

// pending returns the pending entries of the given tenants due by dueBy
// (PendingOutbox spans all tenants; others' entries are filtered out).
func pending(t *testing.T, s eventstore.Store, dueBy time.Time, limit int, tenants ...string) []eventstore.OutboxEntry {
	t.Helper()
	all, err := s.PendingOutbox(context.Background(), dueBy, limit)
	if err != nil {
		t.Fatalf("pending outbox: %v", err)
	}
	if limit > 0 && len(all) > limit {
		t.Fatalf("pending outbox: %d entries, limit %d", len(all), limit)
	}
	var out []eventstore.OutboxEntry
	for i, e := range all {
		if e.DueAt.After(dueBy) {
			t.Fatalf("pending outbox: entry %s due %v after dueBy %v", e.ID, e.DueAt, dueBy)
		}
		if i > 0 && e.DueAt.Before(all[i-1].DueAt) {
			t.Fatalf("pending outbox: entry %s due %v before previous %v", e.ID, e.DueAt, all[i-1].DueAt)
		}
		if slices.Contains(tenants, e.TenantID) {
			out = append(out, e)
		}
	}
	return out
}

func entryIDs(es []eventstore.OutboxEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// eventuallyPending polls until the pending entries of tenants are exactly wantIDs, in order.
func eventuallyPending(t *testing.T, s eventstore.Store, dueBy time.Time, limit int, wantIDs []string, tenants ...string) []eventstore.OutboxEntry {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		got := pending(t, s, dueBy, limit, tenants...)
		if slices.Equal(entryIDs(got), wantIDs) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending outbox (dueBy %v, limit %d) = %v, want %v", dueBy, limit, entryIDs(got), wantIDs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- streams ----

func testAppendReadBack(t *testing.T, s eventstore.Store) {
	tnt, stream := tenant(), "scope-"+gen.New(ids.Scope)
	first := events("storetest.created", 3)
	c := appendCommit(tnt, stream, 0, first...)
	mustCommit(t, s, c)
	for i, e := range c.Appends[0].Events {
		if e.Version != int64(i+1) {
			t.Fatalf("commit event %d: version = %d, want %d", i, e.Version, i+1)
		}
	}
	second := []eventstore.Event{event("storetest.renamed", 10), event("storetest.renamed", 11)}
	c = appendCommit(tnt, stream, 3, second...)
	mustCommit(t, s, c)
	if v := versions(c.Appends[0].Events); !slices.Equal(v, []int64{4, 5}) {
		t.Fatalf("second commit versions = %v, want [4 5]", v)
	}
	got := read(t, s, tnt, stream, 1, 0)
	wantVersions(t, got, seq(1, 5))
	all := append(first, second...)
	for i := range got {
		checkEvent(t, got[i], all[i], tnt, stream, int64(i+1))
	}
}

func testReadFromAndLimit(t *testing.T, s eventstore.Store) {
	tnt, stream := tenant(), "tenant"
	mustCommit(t, s, appendCommit(tnt, stream, 0, events("storetest.e", 5)...))
	wantVersions(t, read(t, s, tnt, stream, 3, 0), seq(3, 5))
	wantVersions(t, read(t, s, tnt, stream, 3, 2), seq(3, 4))
	wantVersions(t, read(t, s, tnt, stream, 0, 0), seq(1, 5))
	wantVersions(t, read(t, s, tnt, stream, 1, 1), seq(1, 1))
	wantVersions(t, read(t, s, tnt, stream, 5, 10), seq(5, 5))
	wantVersions(t, read(t, s, tnt, stream, 6, 0), nil)
	wantVersions(t, read(t, s, tnt, stream, 1, -1), seq(1, 5))
	// A stream whose id is a prefix of another's is not mixed with it.
	mustCommit(t, s, appendCommit(tnt, stream+"-x", 0, events("storetest.e", 2)...))
	wantVersions(t, read(t, s, tnt, stream, 1, 0), seq(1, 5))
	wantVersions(t, read(t, s, tnt, stream+"-x", 1, 0), seq(1, 2))
}

func testReadMissing(t *testing.T, s eventstore.Store) {
	if got := read(t, s, tenant(), "nothing-here", 1, 0); len(got) != 0 {
		t.Fatalf("missing stream: %d events, want 0", len(got))
	}
}

func testConflictWritesNothing(t *testing.T, s eventstore.Store) {
	tnt, stream := tenant(), "tenant"
	mustCommit(t, s, appendCommit(tnt, stream, 0, events("storetest.e", 2)...))
	key := gen.New(ids.Scope)
	entry := outbox(tnt, neverWindow.Add(time.Hour))
	c := appendCommit(tnt, stream, 1, event("storetest.late", 9))
	c.Records = []eventstore.Record{{Collection: "things", Key: key, Data: json.RawMessage(`{"a":1}`)}}
	c.Outbox = []eventstore.OutboxEntry{entry}
	c.Idempotency = idem("idem-" + key)
	wantErr(t, s.Commit(context.Background(), c), eventstore.ErrConflict, "commit at stale version")
	wantVersions(t, read(t, s, tnt, stream, 1, 0), seq(1, 2))
	wantNoRecord(t, s, tnt, "things", key)
	wantNoIdem(t, s, tnt, "idem-"+key)
	if got := pending(t, s, neverWindow.Add(24*time.Hour), 100, tnt); len(got) != 0 {
		t.Fatalf("outbox of a failed commit is pending: %v", entryIDs(got))
	}
	// The right version then works.
	mustCommit(t, s, appendCommit(tnt, stream, 2, event("storetest.e", 3)))
	wantVersions(t, read(t, s, tnt, stream, 1, 0), seq(1, 3))
}

func testConflictZeroOnExisting(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	mustCommit(t, s, appendCommit(tnt, "tenant", 0, event("storetest.e", 1)))
	wantErr(t, s.Commit(context.Background(), appendCommit(tnt, "tenant", 0, event("storetest.e", 2))), eventstore.ErrConflict, "expected 0 on existing stream")
	wantVersions(t, read(t, s, tnt, "tenant", 1, 0), seq(1, 1))
}

func testConflictAhead(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	wantErr(t, s.Commit(context.Background(), appendCommit(tnt, "tenant", 3, event("storetest.e", 1))), eventstore.ErrConflict, "expected 3 on missing stream")
	wantVersions(t, read(t, s, tnt, "tenant", 1, 0), nil)
	mustCommit(t, s, appendCommit(tnt, "tenant", 0, events("storetest.e", 2)...))
	wantErr(t, s.Commit(context.Background(), appendCommit(tnt, "tenant", 5, event("storetest.e", 3))), eventstore.ErrConflict, "expected 5 on stream at 2")
	wantErr(t, s.Commit(context.Background(), appendCommit(tnt, "tenant", 3, event("storetest.e", 3))), eventstore.ErrConflict, "expected 3 on stream at 2")
	wantVersions(t, read(t, s, tnt, "tenant", 1, 0), seq(1, 2))
}

// An append whose version is kept on a row of its commit (HeadRecord) has the
// guarantees of any other: one creator, conflicts on a version behind or
// ahead, the row written with the events; a row rewritten without an append
// (a rebuild) does not stop the next append; a HeadRecord that names no row
// of the commit is invalid.
func testHeadRecord(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	tnt := tenant()
	ref := &eventstore.RecordRef{Collection: "storetest-things", Key: "t1"}
	row := func(data string) eventstore.Record {
		return eventstore.Record{Collection: ref.Collection, Key: ref.Key, Data: json.RawMessage(data)}
	}
	commit := func(expected int64, n int) *eventstore.Commit {
		c := appendCommit(tnt, "thing", expected, events("storetest.e", n)...)
		c.Appends[0].HeadRecord = ref
		c.Records = []eventstore.Record{row(fmt.Sprintf(`{"version":%d}`, expected+int64(n)))}
		return c
	}
	wantErr(t, s.Commit(ctx, commit(3, 1)), eventstore.ErrConflict, "expected 3 on a missing stream")
	mustCommit(t, s, commit(0, 2))
	wantErr(t, s.Commit(ctx, commit(0, 1)), eventstore.ErrConflict, "a second creator")
	wantErr(t, s.Commit(ctx, commit(5, 1)), eventstore.ErrConflict, "expected 5 on a stream at 2")
	wantErr(t, s.Commit(ctx, commit(1, 1)), eventstore.ErrConflict, "expected 1 on a stream at 2")
	mustCommit(t, s, commit(2, 1))
	wantVersions(t, read(t, s, tnt, "thing", 1, 0), seq(1, 3))
	if r, err := s.GetRecord(ctx, tnt, ref.Collection, ref.Key); err != nil || string(r.Data) != `{"version":3}` {
		t.Fatalf("row = %s, %v; want the last commit's", r.Data, err)
	}
	// A rebuild writes the row alone; the next append goes on, and one at a
	// version behind still conflicts.
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Records: []eventstore.Record{row(`{"rebuilt":true}`)}})
	mustCommit(t, s, commit(3, 1))
	wantErr(t, s.Commit(ctx, commit(3, 1)), eventstore.ErrConflict, "expected 3 on a stream at 4, after a rebuild")
	wantVersions(t, read(t, s, tnt, "thing", 1, 0), seq(1, 4))
	// The row must be one the commit writes.
	c := appendCommit(tnt, "other", 0, event("storetest.e", 1))
	c.Appends[0].HeadRecord = ref
	wantErr(t, s.Commit(ctx, c), eventstore.ErrInvalid, "a head record the commit does not write")
	c.Records = []eventstore.Record{{Collection: ref.Collection, Key: ref.Key, Delete: true}}
	wantErr(t, s.Commit(ctx, c), eventstore.ErrInvalid, "a head record the commit deletes")
	// Two appends cannot keep their versions on one row.
	c = commit(4, 1)
	c.Appends = append(c.Appends, eventstore.StreamAppend{StreamID: "other", Events: []eventstore.Event{event("storetest.e", 1)}, HeadRecord: ref})
	wantErr(t, s.Commit(ctx, c), eventstore.ErrInvalid, "one head record for two appends")
	wantVersions(t, read(t, s, tnt, "other", 1, 0), nil)
}

// A row rebuilt from its stream (Record.Source) is written while the stream
// is not past the version it was derived from, and afterwards an append
// ahead of the stream still conflicts (the row keeps the version).
func testRecordSource(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	tnt := tenant()
	ref := &eventstore.RecordRef{Collection: "storetest-things", Key: "t1"}
	row := func(data string, src *eventstore.StreamVersion) eventstore.Record {
		return eventstore.Record{Collection: ref.Collection, Key: ref.Key, Data: json.RawMessage(data), Source: src}
	}
	at := func(v int64) *eventstore.StreamVersion {
		return &eventstore.StreamVersion{StreamID: "thing", Version: v}
	}
	commit := func(expected int64, n int) *eventstore.Commit {
		c := appendCommit(tnt, "thing", expected, events("storetest.e", n)...)
		c.Appends[0].HeadRecord = ref
		c.Records = []eventstore.Record{row(fmt.Sprintf(`{"version":%d}`, expected+int64(n)), nil)}
		return c
	}
	rebuild := func(data string, src *eventstore.StreamVersion) *eventstore.Commit {
		return &eventstore.Commit{TenantID: tnt, Records: []eventstore.Record{row(data, src)}}
	}
	mustCommit(t, s, commit(0, 2))
	// Derived from the stream as it is: written.
	mustCommit(t, s, rebuild(`{"rebuilt":2}`, at(2)))
	wantRecordData(t, s, tnt, ref.Collection, ref.Key, `{"rebuilt":2}`)
	// Derived from an older version: refused, the newer row stays.
	mustCommit(t, s, commit(2, 1))
	wantErr(t, s.Commit(ctx, rebuild(`{"rebuilt":2}`, at(2))), eventstore.ErrConflict, "a row derived at 2 of a stream at 3")
	wantRecordData(t, s, tnt, ref.Collection, ref.Key, `{"version":3}`)
	mustCommit(t, s, rebuild(`{"rebuilt":3}`, at(3)))
	// After the rebuild, appends keep their whole check: ahead and behind conflict.
	wantErr(t, s.Commit(ctx, commit(4, 1)), eventstore.ErrConflict, "expected 4 on a stream at 3, after a rebuild")
	wantErr(t, s.Commit(ctx, commit(2, 1)), eventstore.ErrConflict, "expected 2 on a stream at 3, after a rebuild")
	mustCommit(t, s, commit(3, 1))
	wantVersions(t, read(t, s, tnt, "thing", 1, 0), seq(1, 4))
	// A missing row is written (a rebuild restores it).
	other := eventstore.Record{Collection: ref.Collection, Key: "t2", Data: json.RawMessage(`{"restored":true}`), Source: &eventstore.StreamVersion{StreamID: "thing2", Version: 1}}
	mustCommit(t, s, appendCommit(tnt, "thing2", 0, event("storetest.e", 1)))
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Records: []eventstore.Record{other}})
	wantRecordData(t, s, tnt, ref.Collection, "t2", `{"restored":true}`)
	// Invalid: a version below 1, no stream, with IfAbsent, on a head record of the commit.
	for name, r := range map[string]eventstore.Record{
		"version 0": row(`{}`, at(0)),
		"no stream": row(`{}`, &eventstore.StreamVersion{Version: 1}),
		"IfAbsent":  {Collection: ref.Collection, Key: "t3", IfAbsent: true, Data: json.RawMessage(`{}`), Source: at(1)},
		"Delete":    {Collection: ref.Collection, Key: ref.Key, Delete: true, Source: at(1)},
		"Global":    {Collection: ref.Collection, Key: "t4", Global: true, Data: json.RawMessage(`{}`), Source: at(1)},
	} {
		wantErr(t, s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Records: []eventstore.Record{r}}), eventstore.ErrInvalid, name)
	}
	c := commit(4, 1)
	c.Records[0].Source = at(4)
	wantErr(t, s.Commit(ctx, c), eventstore.ErrInvalid, "a source on the append's head record")
}

func testConcurrentAppends(t *testing.T, s eventstore.Store) {
	const n = 8
	tnt, stream := tenant(), "tenant"
	mustCommit(t, s, appendCommit(tnt, stream, 0, event("storetest.e", 1)))
	errsC := make(chan error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errsC <- s.Commit(context.Background(), appendCommit(tnt, stream, 1, event("storetest.race", 100+i)))
		}()
	}
	close(start)
	wg.Wait()
	close(errsC)
	ok := 0
	for err := range errsC {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, eventstore.ErrConflict):
		default:
			t.Errorf("concurrent append: unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("concurrent appends: %d succeeded, want exactly 1", ok)
	}
	wantVersions(t, read(t, s, tnt, stream, 1, 0), seq(1, 2))
}

func testMultiStreamAtomic(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	mustCommit(t, s, appendCommit(tnt, "b", 0, event("storetest.e", 1)))
	c := &eventstore.Commit{TenantID: tnt, Appends: []eventstore.StreamAppend{
		{StreamID: "a", ExpectedVersion: 0, Events: events("storetest.e", 2)},
		{StreamID: "b", ExpectedVersion: 0, Events: events("storetest.e", 1)},
	}}
	wantErr(t, s.Commit(context.Background(), c), eventstore.ErrConflict, "multi-stream commit with one stale stream")
	wantVersions(t, read(t, s, tnt, "a", 1, 0), nil)
	wantVersions(t, read(t, s, tnt, "b", 1, 0), seq(1, 1))
	c = &eventstore.Commit{TenantID: tnt, Appends: []eventstore.StreamAppend{
		{StreamID: "a", ExpectedVersion: 0, Events: events("storetest.e", 2)},
		{StreamID: "b", ExpectedVersion: 1, Events: events("storetest.e", 1)},
	}}
	mustCommit(t, s, c)
	wantVersions(t, read(t, s, tnt, "a", 1, 0), seq(1, 2))
	wantVersions(t, read(t, s, tnt, "b", 1, 0), seq(1, 2))
	if v := versions(c.Appends[1].Events); !slices.Equal(v, []int64{2}) {
		t.Fatalf("second stream versions = %v, want [2]", v)
	}
}

// ---- idempotency ----

func testIdempotencyRoundTrip(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	key := gen.New(ids.ServiceAccount) + ":" + gen.New(ids.Invocation)
	wantNoIdem(t, s, tnt, key)
	want := idem(key)
	c := appendCommit(tnt, "tenant", 0, event("storetest.e", 1))
	c.Idempotency = want
	mustCommit(t, s, c)
	got, err := s.GetIdempotency(context.Background(), tnt, key)
	if err != nil {
		t.Fatalf("get idempotency: %v", err)
	}
	if got.Key != key || got.Fingerprint != want.Fingerprint || got.Status != want.Status || !bytes.Equal(got.Body, want.Body) {
		t.Fatalf("idempotency = %+v, want %+v", got, *want)
	}
	if !sameMs(got.CreatedAt, want.CreatedAt) || !got.ExpiresAt.Truncate(time.Second).Equal(want.ExpiresAt) {
		t.Fatalf("idempotency times = %v/%v, want %v/%v", got.CreatedAt, got.ExpiresAt, want.CreatedAt, want.ExpiresAt)
	}
	// Records-only commits carry idempotency too.
	key2 := key + "-2"
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Records: []eventstore.Record{{Collection: "c", Key: "k", Data: json.RawMessage(`{}`)}}, Idempotency: idem(key2)})
	if _, err := s.GetIdempotency(context.Background(), tnt, key2); err != nil {
		t.Fatalf("get idempotency of records-only commit: %v", err)
	}
}

// testIdempotencyNamespace: a record with its own TenantID (the operator's
// namespace) lives there, not under the commit's tenant, and guards duplicates there.
func testIdempotencyNamespace(t *testing.T, s eventstore.Store) {
	tnt, ns := tenant(), "_operator"
	key := "operator:" + gen.New(ids.Invocation)
	want := idem(key)
	want.TenantID = ns
	c := appendCommit(tnt, "tenant", 0, event("storetest.e", 1))
	c.Idempotency = want
	mustCommit(t, s, c)
	if got, err := s.GetIdempotency(context.Background(), ns, key); err != nil || got.Status != want.Status {
		t.Fatalf("get idempotency in namespace: %+v %v", got, err)
	}
	wantNoIdem(t, s, tnt, key)
	dup := appendCommit(tenant(), "tenant", 0, event("storetest.e", 1))
	dup.Idempotency = idem(key)
	dup.Idempotency.TenantID = ns
	wantErr(t, s.Commit(context.Background(), dup), eventstore.ErrDuplicate, "duplicate in namespace")
}

func testIdempotencyDuplicate(t *testing.T, s eventstore.Store) {
	tnt, key := tenant(), "dup-"+gen.New(ids.Invocation)
	c := appendCommit(tnt, "one", 0, event("storetest.e", 1))
	c.Idempotency = idem(key)
	mustCommit(t, s, c)
	c = appendCommit(tnt, "two", 0, event("storetest.e", 2))
	c.Records = []eventstore.Record{{Collection: "things", Key: "k", Data: json.RawMessage(`{}`)}}
	c.Outbox = []eventstore.OutboxEntry{outbox(tnt, neverWindow.Add(2*time.Hour))}
	second := idem(key)
	second.Status = 500
	c.Idempotency = second
	wantErr(t, s.Commit(context.Background(), c), eventstore.ErrDuplicate, "second commit with the same key")
	wantVersions(t, read(t, s, tnt, "two", 1, 0), nil)
	wantNoRecord(t, s, tnt, "things", "k")
	if got := pending(t, s, neverWindow.Add(24*time.Hour), 100, tnt); len(got) != 0 {
		t.Fatalf("outbox of a duplicate commit is pending: %v", entryIDs(got))
	}
	got, err := s.GetIdempotency(context.Background(), tnt, key)
	if err != nil || got.Status != 201 {
		t.Fatalf("idempotency after duplicate = %+v, %v; want the first (status 201)", got, err)
	}
}

func testIdempotencyConcurrent(t *testing.T, s eventstore.Store) {
	const n = 8
	tnt, key := tenant(), "race-"+gen.New(ids.Invocation)
	errsC := make(chan error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := appendCommit(tnt, fmt.Sprintf("stream-%d", i), 0, event("storetest.e", i))
			c.Idempotency = idem(key)
			<-start
			errsC <- s.Commit(context.Background(), c)
		}()
	}
	close(start)
	wg.Wait()
	close(errsC)
	ok := 0
	for err := range errsC {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, eventstore.ErrDuplicate):
		default:
			t.Errorf("concurrent duplicate: unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("concurrent commits with one key: %d succeeded, want exactly 1", ok)
	}
	written := 0
	for i := range n {
		written += len(read(t, s, tnt, fmt.Sprintf("stream-%d", i), 1, 0))
	}
	if written != 1 {
		t.Fatalf("concurrent commits with one key wrote %d events, want 1", written)
	}
}

func testIdempotencyExpired(t *testing.T, s eventstore.Store) {
	tnt, key := tenant(), "old-"+gen.New(ids.Invocation)
	old := idem(key)
	old.CreatedAt = time.Now().Add(-49 * time.Hour)
	old.ExpiresAt = time.Now().Add(-time.Hour).Truncate(time.Second)
	c := appendCommit(tnt, "one", 0, event("storetest.e", 1))
	c.Idempotency = old
	mustCommit(t, s, c)
	wantNoIdem(t, s, tnt, key)
	c = appendCommit(tnt, "two", 0, event("storetest.e", 2))
	fresh := idem(key)
	fresh.Status = 202
	c.Idempotency = fresh
	mustCommit(t, s, c)
	got, err := s.GetIdempotency(context.Background(), tnt, key)
	if err != nil || got.Status != 202 {
		t.Fatalf("idempotency after re-commit = %+v, %v; want status 202", got, err)
	}
}

// ---- records ----

func recordsCommit(tnt string, rs ...eventstore.Record) *eventstore.Commit {
	return &eventstore.Commit{TenantID: tnt, Records: rs}
}

func testRecordsBasic(t *testing.T, s eventstore.Store) {
	tnt, key := tenant(), gen.New(ids.Scope)
	wantNoRecord(t, s, tnt, "scopes", key)
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "scopes", Key: key, Data: json.RawMessage(`{"name":"a"}`)}))
	wantRecordData(t, s, tnt, "scopes", key, `{"name":"a"}`)
	if r, _ := getRecord(t, s, tnt, "scopes", key); r.Global || r.IfAbsent || r.Delete {
		t.Fatalf("read record has flags set: %+v", r)
	}
	wantNoRecord(t, s, tnt, "other", key)
	wantNoRecord(t, s, tnt, "scopes", key+"x")
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "scopes", Key: key, Data: json.RawMessage(`{"name":"b"}`)}))
	wantRecordData(t, s, tnt, "scopes", key, `{"name":"b"}`)
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "scopes", Key: key, Delete: true}))
	wantNoRecord(t, s, tnt, "scopes", key)
	// Deleting a missing row is not an error.
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "scopes", Key: key, Delete: true}))
	// Records commit with events.
	c := appendCommit(tnt, "scope-"+key, 0, event("storetest.e", 1))
	c.Records = []eventstore.Record{{Collection: "scopes", Key: key, Data: json.RawMessage(`{"name":"c"}`)}}
	mustCommit(t, s, c)
	wantRecordData(t, s, tnt, "scopes", key, `{"name":"c"}`)
}

func testRecordsIfAbsent(t *testing.T, s eventstore.Store) {
	tnt, key := tenant(), gen.New(ids.Scope)
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "names", Key: key, IfAbsent: true, Data: json.RawMessage(`{"v":1}`)}))
	wantRecordData(t, s, tnt, "names", key, `{"v":1}`)
	c := appendCommit(tnt, "tenant", 0, event("storetest.e", 1))
	c.Records = []eventstore.Record{
		{Collection: "other", Key: key, Data: json.RawMessage(`{}`)},
		{Collection: "names", Key: key, IfAbsent: true, Data: json.RawMessage(`{"v":2}`)},
	}
	c.Idempotency = idem("ifabsent-" + key)
	wantErr(t, s.Commit(context.Background(), c), eventstore.ErrConflict, "IfAbsent on an existing row")
	wantRecordData(t, s, tnt, "names", key, `{"v":1}`)
	wantNoRecord(t, s, tnt, "other", key)
	wantVersions(t, read(t, s, tnt, "tenant", 1, 0), nil)
	wantNoIdem(t, s, tnt, "ifabsent-"+key)
	// After a delete, IfAbsent succeeds again.
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "names", Key: key, Delete: true}))
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "names", Key: key, IfAbsent: true, Data: json.RawMessage(`{"v":3}`)}))
	wantRecordData(t, s, tnt, "names", key, `{"v":3}`)
	// A row past its expiry is absent for IfAbsent, as reads see it (the
	// store removes it some time later); a row that expires later is not.
	for _, c := range []struct {
		key     string
		expires time.Time
		err     error
	}{{gen.New(ids.Scope), time.Now().Add(-time.Minute), nil}, {gen.New(ids.Scope), time.Now().Add(time.Hour), eventstore.ErrConflict}} {
		mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "names", Key: c.key, Data: json.RawMessage(`{"v":1}`), ExpiresAt: c.expires}))
		err := s.Commit(context.Background(), recordsCommit(tnt, eventstore.Record{Collection: "names", Key: c.key, IfAbsent: true, Data: json.RawMessage(`{"v":2}`)}))
		if !errors.Is(err, c.err) {
			t.Fatalf("IfAbsent over a row expiring at %v: %v, want %v", c.expires, err, c.err)
		}
		if c.err == nil {
			wantRecordData(t, s, tnt, "names", c.key, `{"v":2}`) // and it no longer expires
		}
	}
}

func testRecordsGlobal(t *testing.T, s eventstore.Store) {
	tnt, key := tenant(), gen.New(ids.APIKey)
	ctx := context.Background()
	if _, err := s.GetGlobalRecord(ctx, "apikeys", key); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("missing global record: err = %v, want ErrNotFound", err)
	}
	data := `{"tenantId":"` + tnt + `"}`
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "apikeys", Key: key, Global: true, IfAbsent: true, Data: json.RawMessage(data)}))
	r, err := s.GetGlobalRecord(ctx, "apikeys", key)
	if err != nil {
		t.Fatalf("get global record: %v", err)
	}
	if r.Collection != "apikeys" || r.Key != key || string(r.Data) != data || !r.Global {
		t.Fatalf("global record = %+v", r)
	}
	wantNoRecord(t, s, tnt, "apikeys", key)
	// IfAbsent applies to global rows across tenants.
	err = s.Commit(ctx, recordsCommit(tenant(), eventstore.Record{Collection: "apikeys", Key: key, Global: true, IfAbsent: true, Data: json.RawMessage(`{}`)}))
	wantErr(t, err, eventstore.ErrConflict, "IfAbsent on an existing global row")
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "apikeys", Key: key, Global: true, Delete: true}))
	if _, err := s.GetGlobalRecord(ctx, "apikeys", key); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("deleted global record: err = %v, want ErrNotFound", err)
	}
}

// ---- tenancy, sizes, validation ----

func testTenantIsolation(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	a, b := tenant(), tenant()
	const key = "shared-key"
	ca := appendCommit(a, "tenant", 0, events("storetest.a", 2)...)
	ca.Records = []eventstore.Record{{Collection: "things", Key: "k1", Data: json.RawMessage(`{"t":"a"}`)}}
	ca.Idempotency = idem(key)
	mustCommit(t, s, ca)

	wantVersions(t, read(t, s, b, "tenant", 1, 0), nil)
	wantNoRecord(t, s, b, "things", "k1")
	wantNoIdem(t, s, b, key)

	cb := appendCommit(b, "tenant", 0, events("storetest.b", 1)...)
	cb.Records = []eventstore.Record{{Collection: "things", Key: "k1", IfAbsent: true, Data: json.RawMessage(`{"t":"b"}`)}}
	ib := idem(key)
	ib.Status = 299
	cb.Idempotency = ib
	mustCommit(t, s, cb)

	ea, eb := read(t, s, a, "tenant", 1, 0), read(t, s, b, "tenant", 1, 0)
	wantVersions(t, ea, seq(1, 2))
	wantVersions(t, eb, seq(1, 1))
	if ea[0].TenantID != a || eb[0].TenantID != b || eb[0].Type != "storetest.b" {
		t.Fatalf("events mixed between tenants: %+v / %+v", ea[0], eb[0])
	}
	wantRecordData(t, s, a, "things", "k1", `{"t":"a"}`)
	wantRecordData(t, s, b, "things", "k1", `{"t":"b"}`)
	ia, err := s.GetIdempotency(ctx, a, key)
	if err != nil || ia.Status != 201 {
		t.Fatalf("tenant a idempotency = %+v, %v", ia, err)
	}
	got, err := s.GetIdempotency(ctx, b, key)
	if err != nil || got.Status != 299 {
		t.Fatalf("tenant b idempotency = %+v, %v", got, err)
	}
	// A stale version in one tenant does not see the other's stream.
	wantErr(t, s.Commit(ctx, appendCommit(b, "tenant", 2, event("storetest.b", 2))), eventstore.ErrConflict, "tenant b at tenant a's version")
}

func bigData(n int) json.RawMessage {
	return json.RawMessage(`{"blob":"` + strings.Repeat("x", n) + `"}`)
}

func testLargePayloads(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	tnt := tenant()
	e := event("storetest.big", 1)
	e.Data = bigData(300 * 1024)
	mustCommit(t, s, appendCommit(tnt, "big", 0, e))
	got := read(t, s, tnt, "big", 1, 0)
	if len(got) != 1 || !bytes.Equal(got[0].Data, e.Data) {
		t.Fatalf("300 KiB event did not round-trip (%d events)", len(got))
	}

	tooBig := event("storetest.big", 2)
	tooBig.Data = bigData(eventstore.MaxItemBytes + 1)
	wantErr(t, s.Commit(ctx, appendCommit(tnt, "big", 1, tooBig)), eventstore.ErrTooLarge, "event over MaxItemBytes")
	wantVersions(t, read(t, s, tnt, "big", 1, 0), seq(1, 1))

	c := appendCommit(tnt, "big", 1, event("storetest.e", 3))
	c.Records = []eventstore.Record{{Collection: "big", Key: "k", Data: bigData(eventstore.MaxItemBytes + 1)}}
	wantErr(t, s.Commit(ctx, c), eventstore.ErrTooLarge, "record over MaxItemBytes")
	wantVersions(t, read(t, s, tnt, "big", 1, 0), seq(1, 1))
	wantNoRecord(t, s, tnt, "big", "k")

	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "big", Key: "k", Data: bigData(300 * 1024)}))
	r, err := s.GetRecord(ctx, tnt, "big", "k")
	if err != nil || len(r.Data) != 300*1024+len(`{"blob":""}`) {
		t.Fatalf("300 KiB record: %d bytes, %v", len(r.Data), err)
	}

	// What DynamoDB refuses, every adapter refuses (review finding: the
	// embedded ones took both).
	idem := recordsCommit(tnt, eventstore.Record{Collection: "big", Key: "idem", Data: json.RawMessage(`{}`)})
	idem.Idempotency = &eventstore.Idempotency{Key: "big-body", Fingerprint: "f", Status: 200, Body: bigData(eventstore.MaxItemBytes + 1)}
	wantErr(t, s.Commit(ctx, idem), eventstore.ErrTooLarge, "idempotency body over MaxItemBytes")
	wantNoRecord(t, s, tnt, "big", "idem")
	var many []eventstore.Record
	for i := 0; len(many)*330*1024 <= eventstore.MaxCommitBytes; i++ {
		many = append(many, eventstore.Record{Collection: "big", Key: fmt.Sprintf("m%02d", i), Data: bigData(330 * 1024)})
	}
	wantErr(t, s.Commit(ctx, recordsCommit(tnt, many...)), eventstore.ErrTooLarge, "values over MaxCommitBytes together")
	wantNoRecord(t, s, tnt, "big", "m00")
}

func testInvalid(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	tnt := tenant()
	many := func(n int) []eventstore.Record {
		rs := make([]eventstore.Record, n)
		for i := range rs {
			rs[i] = eventstore.Record{Collection: "many", Key: fmt.Sprintf("k%03d", i), Data: json.RawMessage(`{}`)}
		}
		return rs
	}
	noType := event("", 1)
	cases := []struct {
		name string
		c    *eventstore.Commit
	}{
		{"empty tenant", appendCommit("", "tenant", 0, event("storetest.e", 1))},
		{"stream appended twice", &eventstore.Commit{TenantID: tnt, Appends: []eventstore.StreamAppend{
			{StreamID: "dup", Events: events("storetest.e", 1)},
			{StreamID: "dup", ExpectedVersion: 1, Events: events("storetest.e", 1)},
		}}},
		{"event without type", appendCommit(tnt, "notype", 0, noType)},
		{"empty stream id", appendCommit(tnt, "", 0, event("storetest.e", 1))},
		{"negative expected version", appendCommit(tnt, "neg", -1, event("storetest.e", 1))},
		{"more than MaxCommitItems records", recordsCommit(tnt, many(eventstore.MaxCommitItems+1)...)},
		// Each append costs one item for the stream head: 100 events + head > 100.
		{"MaxCommitItems events in one append", appendCommit(tnt, "many", 0, events("storetest.e", eventstore.MaxCommitItems)...)},
	}
	for _, tc := range cases {
		wantErr(t, s.Commit(ctx, tc.c), eventstore.ErrInvalid, tc.name)
	}
	for _, stream := range []string{"dup", "notype", "neg", "many"} {
		wantVersions(t, read(t, s, tnt, stream, 1, 0), nil)
	}
	wantNoRecord(t, s, tnt, "many", "k000")
	// The largest valid single append: 99 events + its head.
	mustCommit(t, s, appendCommit(tnt, "many", 0, events("storetest.e", eventstore.MaxCommitItems-1)...))
	wantVersions(t, read(t, s, tnt, "many", 1, 0), seq(1, eventstore.MaxCommitItems-1))
}

// ---- outbox ----

func drainWindow(t *testing.T, s eventstore.Store, until time.Time) {
	t.Helper()
	for range 50 {
		es, err := s.PendingOutbox(context.Background(), until, 100)
		if err != nil {
			t.Fatalf("drain outbox: %v", err)
		}
		if len(es) == 0 {
			return
		}
		if err := s.AckOutbox(context.Background(), es); err != nil {
			t.Fatalf("drain outbox: %v", err)
		}
	}
	t.Fatalf("drain outbox: entries keep coming")
}

func testOutbox(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	w := pendingWindow
	dueBy := w.Add(time.Hour)
	// Leftovers of earlier (crashed) runs in the window would take the limit.
	drainWindow(t, s, w.Add(24*time.Hour))

	a, b := tenant(), tenant()
	a1, a2 := outbox(a, w.Add(3*time.Minute+123456789)), outbox(a, w.Add(time.Minute))
	b1, b2 := outbox(b, w.Add(2*time.Minute)), outbox(b, w.Add(2*time.Hour))
	a2.Attempt = 2
	ca := appendCommit(a, "tenant", 0, event("storetest.e", 1))
	ca.Outbox = []eventstore.OutboxEntry{a1, a2}
	mustCommit(t, s, ca)
	mustCommit(t, s, &eventstore.Commit{TenantID: b, Outbox: []eventstore.OutboxEntry{b1, b2}})
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{a1, a2, b1, b2}) })

	got := eventuallyPending(t, s, dueBy, 100, []string{a2.ID, b1.ID, a1.ID}, a, b)
	for i, want := range []eventstore.OutboxEntry{a2, b1, a1} {
		e := got[i]
		if e.TenantID != want.TenantID || e.Type != want.Type || !bytes.Equal(e.Payload, want.Payload) ||
			!sameMs(e.DueAt, want.DueAt) || e.Attempt != want.Attempt || e.Invocation != want.Invocation {
			t.Fatalf("pending entry %d = %+v, want %+v", i, e, want)
		}
	}
	eventuallyPending(t, s, dueBy, 2, []string{a2.ID, b1.ID}, a, b)
	eventuallyPending(t, s, w.Add(90*time.Second), 100, []string{a2.ID}, a, b)
	eventuallyPending(t, s, w.Add(2*time.Minute), 100, []string{a2.ID, b1.ID}, a, b) // dueBy is inclusive

	// Reschedule moves an entry; a missing entry is not an error and is not created.
	r := got[0]
	r.DueAt, r.Attempt = w.Add(4*time.Minute), 3
	if err := s.RescheduleOutbox(ctx, r); err != nil {
		t.Fatalf("reschedule: %v", err)
	}
	got = eventuallyPending(t, s, dueBy, 100, []string{b1.ID, a1.ID, a2.ID}, a, b)
	if e := got[2]; e.Attempt != 3 || !sameMs(e.DueAt, r.DueAt) || !bytes.Equal(e.Payload, a2.Payload) || e.Invocation != a2.Invocation {
		t.Fatalf("rescheduled entry = %+v", e)
	}
	ghost := outbox(a, w.Add(30*time.Second))
	if err := s.RescheduleOutbox(ctx, ghost); err != nil {
		t.Fatalf("reschedule missing entry: %v", err)
	}

	// Ack removes; acks are idempotent.
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{got[0]}); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := s.AckOutbox(ctx, []eventstore.OutboxEntry{got[0], ghost}); err != nil {
		t.Fatalf("ack again and ack missing: %v", err)
	}
	if err := s.AckOutbox(ctx, nil); err != nil {
		t.Fatalf("ack nothing: %v", err)
	}
	eventuallyPending(t, s, dueBy, 100, []string{a1.ID, a2.ID}, a, b)
	if err := s.AckOutbox(ctx, got[1:]); err != nil {
		t.Fatalf("ack: %v", err)
	}
	eventuallyPending(t, s, dueBy, 100, nil, a, b)
	// The entry due later is still there once due.
	eventuallyPending(t, s, w.Add(3*time.Hour), 100, []string{b2.ID}, a, b)
}

// ---- long streams ----

func testReadMany(t *testing.T, s eventstore.Store) {
	tnt, stream := tenant(), "long"
	var all []eventstore.Event
	v := int64(0)
	for _, n := range []int{99, 99, 52} {
		evs := events("storetest.e", n)
		mustCommit(t, s, appendCommit(tnt, stream, v, evs...))
		v += int64(n)
		all = append(all, evs...)
	}
	got := read(t, s, tnt, stream, 1, 0)
	wantVersions(t, got, seq(1, 250))
	for i := range got {
		if got[i].ID != all[i].ID {
			t.Fatalf("event %d: id %s, want %s", i+1, got[i].ID, all[i].ID)
		}
	}
	wantVersions(t, read(t, s, tnt, stream, 200, 30), seq(200, 229))
	wantVersions(t, read(t, s, tnt, stream, 101, 150), seq(101, 250))
}

// ---- benchmarks ----

// Bench runs the store benchmarks against s: "commit-new-stream" (one event to
// a new stream), "commit-command" (one event at the stream's version with an
// idempotency record, one record and one outbox entry, like an rpc command) and
// "read-stream-10" (reading a 10-event stream).
func Bench(b *testing.B, s eventstore.Store) {
	ctx := context.Background()
	b.Run("commit-new-stream", func(b *testing.B) {
		tnt := tenant()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if err := s.Commit(ctx, appendCommit(tnt, fmt.Sprintf("s-%d", i), 0, event("storetest.e", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("commit-command", func(b *testing.B) {
		tnt := tenant()
		if err := s.Commit(ctx, appendCommit(tnt, "tenant", 0, event("storetest.e", 0))); err != nil {
			b.Fatal(err)
		}
		v := int64(1)
		b.ReportAllocs()
		for b.Loop() {
			key := gen.New(ids.Scope)
			c := appendCommit(tnt, "tenant", v, event("storetest.e", int(v)))
			c.Records = []eventstore.Record{{Collection: "scopes", Key: key, Data: json.RawMessage(`{"name":"bench"}`)}}
			c.Outbox = []eventstore.OutboxEntry{outbox(tnt, base)}
			c.Idempotency = idem("bench-" + key)
			if err := s.Commit(ctx, c); err != nil {
				b.Fatal(err)
			}
			v++
		}
	})
	b.Run("read-stream-10", func(b *testing.B) {
		tnt := tenant()
		if err := s.Commit(ctx, appendCommit(tnt, "tenant", 0, events("storetest.e", 10)...)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			evs, err := s.ReadStream(ctx, tnt, "tenant", 1, 0)
			if err != nil || len(evs) != 10 {
				b.Fatalf("read: %d events, %v", len(evs), err)
			}
		}
	})
}
