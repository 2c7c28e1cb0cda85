package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

var (
	putList    = eventstore.List{Name: "storetest-put", Slot: 4, Shards: 4}
	boundsList = eventstore.List{Name: "storetest-bounds", Slot: 5}
)

// testPutRecords: PutRecords writes any number of rows with their list
// memberships, outside a commit; writing them again changes nothing; rows
// it cannot write as given are ErrInvalid.
func testPutRecords(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	tnt, other := tenant(), tenant()
	// Rows more than a commit's bytes together are written all the same
	// (review finding: the embedded adapters refused them in one commit).
	var bigRows []eventstore.Record
	for i := range 15 {
		bigRows = append(bigRows, eventstore.Record{Collection: "put-big", Key: fmt.Sprintf("b%02d", i), Data: bigData(300 * 1024)})
	}
	if err := s.PutRecords(ctx, tnt, bigRows); err != nil {
		t.Fatalf("put %d rows of 300 KiB: %v", len(bigRows), err)
	}
	for _, r := range bigRows {
		if got, err := s.GetRecord(ctx, tnt, r.Collection, r.Key); err != nil || len(got.Data) != len(r.Data) {
			t.Fatalf("row %s: %d bytes, %v", r.Key, len(got.Data), err)
		}
	}
	var rows []eventstore.Record
	var want []string
	for i := range 130 { // more than a DynamoDB batch (25) and a commit (100)
		k := fmt.Sprintf("k%03d", i)
		rows = append(rows, row("put", k, fmt.Sprintf(`{"n":%d}`, i), entry(putList, "", k)))
		want = append(want, k)
	}
	for range 2 {
		if err := s.PutRecords(ctx, tnt, rows); err != nil {
			t.Fatalf("put records: %v", err)
		}
	}
	r, err := s.GetRecord(ctx, tnt, "put", "k129")
	if err != nil || string(r.Data) != `{"n":129}` {
		t.Fatalf("get k129: %+v %v", r, err)
	}
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: putList, Page: eventstore.Page{Limit: 40}}, want)
	eventuallyList(t, s, other, eventstore.ListQuery{List: putList, Page: eventstore.Page{Limit: 40}}, nil)
	if _, err := s.GetRecord(ctx, other, "put", "k001"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("another tenant reads the row: %v", err)
	}

	// A row written again with other data and lists replaces the first.
	moved := row("put", "k000", `{"n":"moved"}`, entry(putList, "other", "k000"))
	if err := s.PutRecords(ctx, tnt, []eventstore.Record{moved}); err != nil {
		t.Fatal(err)
	}
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: putList, Partition: "other"}, []string{"k000"})
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: putList, Page: eventstore.Page{Limit: 100}}, want[1:])

	if err := s.PutRecords(ctx, tnt, nil); err != nil {
		t.Fatalf("no rows: %v", err)
	}
	for name, bad := range map[string]eventstore.Record{
		"if absent":           {Collection: "put", Key: "x", Data: []byte(`1`), IfAbsent: true},
		"delete":              {Collection: "put", Key: "x", Delete: true},
		"global":              {Collection: "put", Key: "x", Data: []byte(`1`), Global: true},
		"no key":              {Collection: "put", Data: []byte(`1`)},
		"slot twice":          row("put", "x", `1`, entry(putList, "", "a"), entry(eventstore.List{Name: "b", Slot: 4}, "", "b")),
		"bad list":            row("put", "x", `1`, entry(eventstore.List{Name: "a#b", Slot: 1}, "", "a")),
		"# in the collection": {Collection: "put#x", Key: "x", Data: []byte(`1`)},
	} {
		if err := s.PutRecords(ctx, tnt, []eventstore.Record{bad}); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := s.PutRecords(ctx, "", rows[:1]); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("no tenant: %v, want ErrInvalid", err)
	}
	big := row("put", "big", ``)
	big.Data = []byte(`"` + string(slices.Repeat([]byte("x"), eventstore.MaxItemBytes)) + `"`)
	if err := s.PutRecords(ctx, tnt, []eventstore.Record{big}); !errors.Is(err, eventstore.ErrTooLarge) {
		t.Errorf("too large: %v, want ErrTooLarge", err)
	}
}

// testRecordsExpiry: a row past its ExpiresAt is read by nobody, whether a
// commit or PutRecords wrote it; a row before it reads as written.
func testRecordsExpiry(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	tnt := tenant()
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	live := row("exp", "live", `"live"`, entry(putList, "", "2"))
	live.ExpiresAt = future
	gone := row("exp", "gone", `"gone"`, entry(putList, "", "1"))
	gone.ExpiresAt = past
	mustCommit(t, s, &eventstore.Commit{TenantID: tnt, Records: []eventstore.Record{live, gone}})
	putLive, putGone := live, gone
	putLive.Key, putGone.Key = "put-live", "put-gone"
	putLive.Lists, putGone.Lists = []eventstore.ListEntry{entry(putList, "", "4")}, []eventstore.ListEntry{entry(putList, "", "3")}
	if err := s.PutRecords(ctx, tnt, []eventstore.Record{putLive, putGone}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"live", "put-live"} {
		if r, err := s.GetRecord(ctx, tnt, "exp", k); err != nil || string(r.Data) != `"live"` {
			t.Fatalf("%s: %+v %v", k, r, err)
		}
	}
	for _, k := range []string{"gone", "put-gone"} {
		if _, err := s.GetRecord(ctx, tnt, "exp", k); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("%s past its expiry: %v, want ErrNotFound", k, err)
		}
	}
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: putList}, []string{"live", "put-live"})

	// A global row cannot expire.
	g := eventstore.Record{Collection: "exp", Key: "g", Global: true, Data: []byte(`1`), ExpiresAt: future}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Records: []eventstore.Record{g}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("expiring global row: %v, want ErrInvalid", err)
	}
}

// testListSortBounds: From and To bound a list read by the entries' Sort
// (From <= Sort < To), in both directions and across pages.
func testListSortBounds(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	var rows []eventstore.Record
	for i := 1; i <= 20; i++ {
		sort := fmt.Sprintf("%02d", i)
		rows = append(rows, row("bounds", "r"+sort, `1`, entry(boundsList, "p", sort)))
	}
	if err := s.PutRecords(context.Background(), tnt, rows); err != nil {
		t.Fatal(err)
	}
	keys := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("r%02d", i))
		}
		return out
	}
	q := func(from, to string, desc bool, limit int) eventstore.ListQuery {
		return eventstore.ListQuery{List: boundsList, Partition: "p", From: from, To: to, Page: eventstore.Page{Limit: limit, Descending: desc}}
	}
	eventuallyList(t, s, tnt, q("", "", false, 50), keys(1, 21))
	for _, limit := range []int{2, 3, 50} {
		eventuallyList(t, s, tnt, q("05", "10", false, limit), keys(5, 10))
		eventuallyList(t, s, tnt, q("05", "10", true, limit), reversed(keys(5, 10)))
		eventuallyList(t, s, tnt, q("15", "", true, limit), reversed(keys(15, 21)))
		eventuallyList(t, s, tnt, q("", "04", true, limit), reversed(keys(1, 4)))
		eventuallyList(t, s, tnt, q("", "04", false, limit), keys(1, 4))
		// A bound between sorts, and sorts that extend a bound.
		eventuallyList(t, s, tnt, q("095", "1", false, limit), keys(10, 10))
		eventuallyList(t, s, tnt, q("1", "2", true, limit), reversed(keys(10, 20)))
	}
	eventuallyList(t, s, tnt, q("10", "05", false, 5), nil) // empty range
}
