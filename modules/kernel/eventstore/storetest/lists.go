package storetest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// Lists of the suite. Their slots are those of real lists too: the suite's
// tenants are fresh, so they never meet.
var (
	rowsList    = eventstore.List{Name: "storetest-rows", Slot: 1}
	rowsListX   = eventstore.List{Name: "storetest-rowsx", Slot: 1} // its name extends rowsList's
	statusList  = eventstore.List{Name: "storetest-status", Slot: 3}
	shardedList = eventstore.List{Name: "storetest-sharded", Slot: 2, Shards: 8}
)

func entry(l eventstore.List, partition, sort string) eventstore.ListEntry {
	return eventstore.ListEntry{List: l, Partition: partition, Sort: sort}
}

func row(coll, key, data string, lists ...eventstore.ListEntry) eventstore.Record {
	return eventstore.Record{Collection: coll, Key: key, Data: json.RawMessage(data), Lists: lists}
}

// listing is the result of paging through one list partition.
type listing struct {
	keys  []string // row keys in page order
	data  []string // row data, parallel to keys
	pages []int    // rows per page
}

// listAll pages through q (q.Cursor is the start) until next is "", failing
// the test on an error or an impossible page (more rows than the limit, a
// cursor that does not end).
func listAll(t *testing.T, s eventstore.Store, tnt string, q eventstore.ListQuery) listing {
	t.Helper()
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	var out listing
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("list %s/%s limit %d: pagination does not end", q.List.Name, q.Partition, q.Limit)
		}
		rows, next, err := s.ListRecords(context.Background(), tnt, q)
		if err != nil {
			t.Fatalf("list %s/%s limit %d desc %v: %v", q.List.Name, q.Partition, q.Limit, q.Descending, err)
		}
		if len(rows) > min(limit, 100) {
			t.Fatalf("list %s/%s limit %d: page of %d rows", q.List.Name, q.Partition, q.Limit, len(rows))
		}
		out.pages = append(out.pages, len(rows))
		for _, r := range rows {
			out.keys = append(out.keys, r.Key)
			out.data = append(out.data, string(r.Data))
		}
		if next == "" {
			return out
		}
		q.Cursor = next
	}
}

// wantPages is the page sizes of n rows in pages of limit: full pages, then
// the rest (one empty page when n is 0).
func wantPages(n, limit int) []int {
	var out []int
	for ; n > limit; n -= limit {
		out = append(out, limit)
	}
	return append(out, n)
}

// eventuallyList polls until paging through q yields exactly want (keys in
// order) in pages of q.Limit, and returns the listing.
func eventuallyList(t *testing.T, s eventstore.Store, tnt string, q eventstore.ListQuery, want []string) listing {
	t.Helper()
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	deadline := time.Now().Add(pollTimeout)
	for {
		got := listAll(t, s, tnt, q)
		if slices.Equal(got.keys, want) && slices.Equal(got.pages, wantPages(len(want), min(limit, 100))) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("list %s/%s (limit %d, desc %v) = %v in pages %v\nwant %v in pages %v",
				q.List.Name, q.Partition, q.Limit, q.Descending, got.keys, got.pages, want, wantPages(len(want), min(limit, 100)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func testListPaging(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	const n = 23
	var keys []string
	var rs []eventstore.Record
	for i := range n {
		k := gen.New(ids.Channel) // ascending
		keys = append(keys, k)
		// Groups of three share a sort value: the row key breaks the tie.
		rs = append(rs, row("rows", k, fmt.Sprintf(`{"i":%d}`, i), entry(rowsList, "p", fmt.Sprintf("%03d", i/3))))
	}
	// Neighbours that must not show up: other partitions of the list (one
	// extending the name, one containing '#'), a list whose name extends this
	// one in the same slot, a row of the same list without membership.
	rs = append(rs,
		row("rows", gen.New(ids.Channel), `{"n":1}`, entry(rowsList, "pq", "000")),
		row("rows", gen.New(ids.Channel), `{"n":2}`, entry(rowsList, "p#0", "000")),
		row("rows", gen.New(ids.Channel), `{"n":3}`, entry(rowsList, "", "000")),
		row("rows", gen.New(ids.Channel), `{"n":4}`, entry(rowsListX, "p", "000")),
		row("rows", gen.New(ids.Channel), `{"n":5}`),
	)
	slices.Reverse(rs) // write order must not matter
	mustCommit(t, s, recordsCommit(tnt, rs...))
	// Another tenant's row in the same partition.
	mustCommit(t, s, recordsCommit(tenant(), row("rows", keys[0], `{}`, entry(rowsList, "p", "000"))))

	q := eventstore.ListQuery{List: rowsList, Partition: "p"}
	got := eventuallyList(t, s, tnt, q, keys)
	for i, d := range got.data {
		if d != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("list row %d: data %s", i, d)
		}
	}
	rows, _, err := s.ListRecords(context.Background(), tnt, eventstore.ListQuery{List: rowsList, Partition: "p", Page: eventstore.Page{Limit: 1}})
	if err != nil || len(rows) != 1 || rows[0].Collection != "rows" || rows[0].Key != keys[0] || rows[0].Global {
		t.Fatalf("first row = %+v, %v", rows, err)
	}
	for _, desc := range []bool{false, true} {
		for _, limit := range []int{1, 7, 22, 23, 100} {
			want := keys
			if desc {
				want = reversed(keys)
			}
			eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList, Partition: "p", Page: eventstore.Page{Limit: limit, Descending: desc}}, want)
		}
	}
	// A cursor continues after its row in both directions.
	rows, next, err := s.ListRecords(context.Background(), tnt, eventstore.ListQuery{List: rowsList, Partition: "p", Page: eventstore.Page{Limit: 10}})
	if err != nil || len(rows) != 10 || next == "" {
		t.Fatalf("page 1: %d rows, next %q, %v", len(rows), next, err)
	}
	got = listAll(t, s, tnt, eventstore.ListQuery{List: rowsList, Partition: "p", Page: eventstore.Page{Limit: 5, Cursor: next}})
	if !slices.Equal(got.keys, keys[10:]) {
		t.Fatalf("after cursor: %v, want %v", got.keys, keys[10:])
	}
	got = listAll(t, s, tnt, eventstore.ListQuery{List: rowsList, Partition: "p", Page: eventstore.Page{Limit: 5, Cursor: next, Descending: true}})
	if !slices.Equal(got.keys, reversed(keys[:9])) {
		t.Fatalf("before cursor, descending: %v, want %v", got.keys, reversed(keys[:9]))
	}
	// The other partitions hold their own rows; a missing partition is empty.
	for _, p := range []string{"pq", "p#0", ""} {
		eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList, Partition: p}, []string{rs[slices.IndexFunc(rs, func(r eventstore.Record) bool {
			return len(r.Lists) == 1 && r.Lists[0].List == rowsList && r.Lists[0].Partition == p
		})].Key})
	}
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList, Partition: "nothing", Page: eventstore.Page{Limit: 10}}, nil)
	// A cursor that does not decode is ErrInvalid.
	for _, c := range []string{"!!", "%%%not-a-cursor"} {
		_, _, err = s.ListRecords(context.Background(), tnt, eventstore.ListQuery{List: rowsList, Partition: "p", Page: eventstore.Page{Cursor: c}})
		wantErr(t, err, eventstore.ErrInvalid, "list with cursor "+c)
	}
}

func testListLimits(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	const n = 130
	var keys []string
	var rs []eventstore.Record
	for range n {
		k := gen.New(ids.Scope)
		keys = append(keys, k)
		rs = append(rs, row("rows", k, `{}`, entry(rowsList, "", k)))
	}
	mustCommit(t, s, recordsCommit(tnt, rs[:65]...))
	mustCommit(t, s, recordsCommit(tnt, rs[65:]...))
	// Limit <= 0 means 50; more than 100 means 100.
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList}, keys)
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList, Page: eventstore.Page{Limit: -1, Descending: true}}, reversed(keys))
	got := eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList, Page: eventstore.Page{Limit: 500}}, keys)
	if !slices.Equal(got.pages, []int{100, 30}) {
		t.Fatalf("limit 500: pages %v, want [100 30]", got.pages)
	}
}

func testListSharded(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	const n = 50
	var keys []string
	var rs []eventstore.Record
	for range n {
		k := gen.New(ids.Scope)
		keys = append(keys, k)
		rs = append(rs, row("rows", k, `{"k":"`+k+`"}`, entry(shardedList, "all", k)))
	}
	slices.Reverse(rs)
	mustCommit(t, s, recordsCommit(tnt, rs...))
	for _, desc := range []bool{false, true} {
		for _, limit := range []int{1, 7, 50, 0} {
			want := keys
			if desc {
				want = reversed(keys)
			}
			got := eventuallyList(t, s, tnt, eventstore.ListQuery{List: shardedList, Partition: "all", Page: eventstore.Page{Limit: limit, Descending: desc}}, want)
			for i, d := range got.data {
				if d != `{"k":"`+got.keys[i]+`"}` {
					t.Fatalf("sharded row %s: data %s", got.keys[i], d)
				}
			}
		}
	}
}

func testListRewrite(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	k1, k2 := gen.New(ids.Scope), gen.New(ids.Scope)
	open := func(k string) eventstore.ListEntry { return entry(statusList, "open", k) }
	closed := func(k string) eventstore.ListEntry { return entry(statusList, "closed", k) }
	mustCommit(t, s, recordsCommit(tnt,
		row("tickets", k1, `{"s":"open"}`, open(k1), entry(rowsList, "", k1)),
		row("tickets", k2, `{"s":"open"}`, open(k2)),
	))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "open"}, []string{k1, k2})
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList}, []string{k1})
	// A rewrite moves k1 to "closed" and out of the slot-1 list it no longer names.
	mustCommit(t, s, recordsCommit(tnt, row("tickets", k1, `{"s":"closed"}`, closed(k1))))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "open"}, []string{k2})
	got := eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "closed"}, []string{k1})
	if got.data[0] != `{"s":"closed"}` {
		t.Fatalf("moved row data = %s", got.data[0])
	}
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList}, nil)
	// A new sort value moves the row within its partition.
	mustCommit(t, s, recordsCommit(tnt, row("tickets", k2, `{"s":"closed"}`, entry(statusList, "closed", "0"))))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "closed"}, []string{k2, k1})
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "open"}, nil)
	// A rewrite without Lists leaves every list; the row stays.
	mustCommit(t, s, recordsCommit(tnt, row("tickets", k1, `{"s":"archived"}`)))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "closed"}, []string{k2})
	wantRecordData(t, s, tnt, "tickets", k1, `{"s":"archived"}`)
	// And it can join again.
	mustCommit(t, s, recordsCommit(tnt, row("tickets", k1, `{"s":"open"}`, open(k1))))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "open"}, []string{k1})
	// A rewrite in the same lists (the embedded adapters then leave its
	// entries alone) shows the new data through them; one that keeps one
	// list and leaves another moves only that one.
	mustCommit(t, s, recordsCommit(tnt, row("tickets", k1, `{"s":"open","n":2}`, open(k1))))
	if got := eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "open"}, []string{k1}); got.data[0] != `{"s":"open","n":2}` {
		t.Fatalf("rewritten row data = %s", got.data[0])
	}
	mustCommit(t, s, recordsCommit(tnt, row("tickets", k1, `{"s":"open","n":3}`, open(k1), entry(rowsList, "", k1))))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList}, []string{k1})
	mustCommit(t, s, recordsCommit(tnt, row("tickets", k1, `{"s":"closed","n":4}`, entry(rowsList, "", k1), closed(k1))))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "open"}, nil)
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "closed"}, []string{k2, k1})
	if got := eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList}, []string{k1}); got.data[0] != `{"s":"closed","n":4}` {
		t.Fatalf("kept entry shows %s", got.data[0])
	}
}

func testListDelete(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	k1, k2 := gen.New(ids.Scope), gen.New(ids.Scope)
	mustCommit(t, s, recordsCommit(tnt,
		row("rows", k1, `{}`, entry(rowsList, "", k1), entry(statusList, "x", k1)),
		row("rows", k2, `{}`, entry(rowsList, "", k2)),
	))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList}, []string{k1, k2})
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "rows", Key: k1, Delete: true}))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList}, []string{k2})
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "x"}, nil)
	wantNoRecord(t, s, tnt, "rows", k1)
	// Written again, the row joins only the lists it names now.
	mustCommit(t, s, recordsCommit(tnt, row("rows", k1, `{"v":2}`, entry(statusList, "x", k1))))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: statusList, Partition: "x"}, []string{k1})
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList}, []string{k2})
}

func testListTenantIsolation(t *testing.T, s eventstore.Store) {
	a, b := tenant(), tenant()
	ka, kb := gen.New(ids.Scope), gen.New(ids.Scope)
	mustCommit(t, s, recordsCommit(a, row("rows", ka, `{"t":"a"}`, entry(rowsList, "", ka)), row("rows", "shared", `{"t":"a"}`, entry(rowsList, "", "z"))))
	mustCommit(t, s, recordsCommit(b, row("rows", kb, `{"t":"b"}`, entry(rowsList, "", kb)), row("rows", "shared", `{"t":"b"}`, entry(rowsList, "", "z"))))
	ga := eventuallyList(t, s, a, eventstore.ListQuery{List: rowsList}, []string{ka, "shared"})
	gb := eventuallyList(t, s, b, eventstore.ListQuery{List: rowsList}, []string{kb, "shared"})
	for i := range 2 {
		if ga.data[i] != `{"t":"a"}` || gb.data[i] != `{"t":"b"}` {
			t.Fatalf("rows mixed between tenants: %v / %v", ga.data, gb.data)
		}
	}
	// A cursor of one tenant's list is not one of the other's.
	_, next, err := s.ListRecords(context.Background(), a, eventstore.ListQuery{List: rowsList, Page: eventstore.Page{Limit: 1}})
	if err != nil || next == "" {
		t.Fatalf("tenant a page 1: next %q, %v", next, err)
	}
	rows, _, err := s.ListRecords(context.Background(), b, eventstore.ListQuery{List: rowsList, Page: eventstore.Page{Limit: 1, Cursor: next}})
	wantErr(t, err, eventstore.ErrInvalid, "tenant b with tenant a's cursor")
	if len(rows) > 0 {
		t.Fatalf("tenant b with tenant a's cursor listed %+v", rows)
	}
}

// testListCursorNamesItsList: a list takes back only the cursors it issued,
// for the tenant and partition it issued them for. A cursor made up, or
// issued by another list, another partition (another filter of a module's
// list) or another tenant, is ErrInvalid, never a position to page from.
func testListCursorNamesItsList(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	a, b := tenant(), tenant()
	var keys []string
	for range 3 {
		k := gen.New(ids.Scope)
		keys = append(keys, k)
		for _, tnt := range []string{a, b} {
			mustCommit(t, s, recordsCommit(tnt, row("rows", k, `{}`, entry(rowsList, "p", k), entry(shardedList, "p", k))))
			mustCommit(t, s, recordsCommit(tnt, row("other", k, `{}`, entry(rowsListX, "p", k), entry(statusList, "p", k))))
		}
	}
	for _, l := range []eventstore.List{rowsList, shardedList} {
		eventuallyList(t, s, a, eventstore.ListQuery{List: l, Partition: "p", Page: eventstore.Page{Limit: 1}}, keys)
	}
	page := func(tnt string, l eventstore.List, partition, cursor string, desc bool) ([]eventstore.Record, string, error) {
		return s.ListRecords(ctx, tnt, eventstore.ListQuery{List: l, Partition: partition, Page: eventstore.Page{Limit: 1, Cursor: cursor, Descending: desc}})
	}
	for _, l := range []eventstore.List{rowsList, shardedList} {
		_, cur, err := page(a, l, "p", "", false)
		if err != nil || cur == "" {
			t.Fatalf("%s page 1: next %q, %v", l.Name, cur, err)
		}
		// The list that issued it takes it, in both directions.
		if got := listAll(t, s, a, eventstore.ListQuery{List: l, Partition: "p", Page: eventstore.Page{Limit: 1, Cursor: cur}}); !slices.Equal(got.keys, keys[1:]) {
			t.Fatalf("%s after its cursor: %v, want %v", l.Name, got.keys, keys[1:])
		}
		if rows, _, err := page(a, l, "p", cur, true); err != nil || len(rows) != 0 {
			t.Fatalf("%s before its first row, descending: %+v, %v", l.Name, rows, err)
		}
		// Anyone else does not.
		others := []struct {
			what, tnt string
			l         eventstore.List
			partition string
		}{
			{"another tenant", b, l, "p"},
			{"another partition", a, l, "q"},
			{"the whole list", a, l, ""},
			{"another list, same slot", a, rowsListX, "p"},
			{"another list", a, statusList, "p"},
		}
		if l == rowsList {
			others = append(others, struct {
				what, tnt string
				l         eventstore.List
				partition string
			}{"the sharded list", a, shardedList, "p"})
		}
		for _, o := range others {
			for _, desc := range []bool{false, true} {
				rows, next, err := page(o.tnt, o.l, o.partition, cur, desc)
				wantErr(t, err, eventstore.ErrInvalid, fmt.Sprintf("%s's cursor for %s (desc %v)", l.Name, o.what, desc))
				if len(rows) > 0 || next != "" {
					t.Fatalf("%s's cursor for %s: rows %+v, next %q", l.Name, o.what, rows, next)
				}
			}
		}
		// Nor a cursor made up, or one of ours altered.
		raw, _ := base64.RawURLEncoding.DecodeString(cur)
		altered := func(f func(b []byte) []byte) string {
			return base64.RawURLEncoding.EncodeToString(f(slices.Clone(raw)))
		}
		forged := map[string]string{
			"one byte":                 "_w",
			"three zero bytes":         "AAAA",
			"not base64url":            "%%%not-a-cursor",
			"padded":                   cur + "=",
			"a bare position":          base64.RawURLEncoding.EncodeToString([]byte(keys[0] + "#" + keys[0])),
			"342 bytes 0xff":           base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 342))),
			"another version":          altered(func(b []byte) []byte { b[0]++; return b }),
			"a tag bit flipped":        altered(func(b []byte) []byte { b[3] ^= 1; return b }),
			"the tag without position": altered(func(b []byte) []byte { return b[:9] }),
		}
		for what, c := range forged {
			_, _, err := page(a, l, "p", c, false)
			wantErr(t, err, eventstore.ErrInvalid, fmt.Sprintf("%s: cursor %s", l.Name, what))
		}
		// A cursor forged in the list's own name holds at most a position in
		// the caller's own list: a page or ErrInvalid, never a failure.
		for _, pos := range []string{strings.Repeat("\xff", 342), strings.Repeat("z", 2000), "\x00"} {
			c := eventstore.EncodeListCursor(a, l, "p", []byte(pos))
			if _, _, err := page(a, l, "p", c, false); err != nil && !errors.Is(err, eventstore.ErrInvalid) {
				t.Fatalf("%s: a position of %d bytes in the list's own name: %v", l.Name, len(pos), err)
			}
		}
	}
}

func testListInvalid(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	tnt := tenant()
	k := gen.New(ids.Scope)
	bad := func(l eventstore.List) eventstore.Record { return row("rows", k, `{}`, entry(l, "", k)) }
	dupSlot := row("rows", k, `{}`, entry(rowsList, "", k), entry(eventstore.List{Name: "other", Slot: rowsList.Slot}, "", k))
	global := row("rows", k, `{}`, entry(rowsList, "", k))
	global.Global = true
	del := eventstore.Record{Collection: "rows", Key: k, Delete: true, Lists: []eventstore.ListEntry{entry(rowsList, "", k)}}
	cases := []struct {
		name string
		r    eventstore.Record
	}{
		{"slot 0", bad(eventstore.List{Name: "l", Slot: 0})},
		{"slot above MaxListSlots", bad(eventstore.List{Name: "l", Slot: eventstore.MaxListSlots + 1})},
		{"empty list name", bad(eventstore.List{Slot: 1})},
		{"list name with #", bad(eventstore.List{Name: "a#b", Slot: 1})},
		{"two entries in one slot", dupSlot},
		{"lists on a global row", global},
		{"lists on a delete", del},
	}
	for _, tc := range cases {
		c := appendCommit(tnt, "tenant", 0, event("storetest.e", 1))
		c.Records = []eventstore.Record{row("other", k, `{}`), tc.r}
		wantErr(t, s.Commit(ctx, c), eventstore.ErrInvalid, tc.name)
	}
	wantVersions(t, read(t, s, tnt, "tenant", 1, 0), nil)
	wantNoRecord(t, s, tnt, "rows", k)
	wantNoRecord(t, s, tnt, "other", k)
	// Every slot 1..MaxListSlots is valid, one entry each.
	var all []eventstore.ListEntry
	for slot := 1; slot <= eventstore.MaxListSlots; slot++ {
		all = append(all, entry(eventstore.List{Name: fmt.Sprintf("storetest-slot%d", slot), Slot: slot, Shards: slot}, "p", k))
	}
	mustCommit(t, s, recordsCommit(tnt, row("rows", k, `{"all":1}`, all...)))
	for _, e := range all {
		eventuallyList(t, s, tnt, eventstore.ListQuery{List: e.List, Partition: "p"}, []string{k})
	}
	// Reads of an invalid list are ErrInvalid too.
	for _, l := range []eventstore.List{{Name: "l"}, {Name: "l", Slot: eventstore.MaxListSlots + 1}, {Slot: 1}} {
		_, _, err := s.ListRecords(ctx, tnt, eventstore.ListQuery{List: l})
		if !errors.Is(err, eventstore.ErrInvalid) {
			t.Fatalf("list %+v: err = %v, want ErrInvalid", l, err)
		}
	}
}

// ---- global rows ----

func testRecordsGlobalKeys(t *testing.T, s eventstore.Store) {
	ctx := context.Background()
	tnt := tenant()
	keys := []string{gen.New(ids.APIKey), gen.New(ids.APIKey), gen.New(ids.APIKey)}
	var rs []eventstore.Record
	for i, k := range keys {
		rs = append(rs, eventstore.Record{Collection: "apikeys", Key: k, Global: true, IfAbsent: true, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
	}
	mustCommit(t, s, recordsCommit(tnt, rs...))
	for i, k := range keys {
		want := fmt.Sprintf(`{"i":%d}`, i)
		r, err := s.GetGlobalRecord(ctx, "apikeys", k)
		if err != nil || string(r.Data) != want || r.Key != k || !r.Global {
			t.Fatalf("global row %d: %+v, %v", i, r, err)
		}
		eventuallyGlobal(t, s, "apikeys", k, want)
	}
	// Deleting one leaves the others.
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "apikeys", Key: keys[1], Global: true, Delete: true}))
	if _, err := s.GetGlobalRecord(ctx, "apikeys", keys[1]); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("deleted global row: err = %v, want ErrNotFound", err)
	}
	eventuallyGlobal(t, s, "apikeys", keys[1], "")
	for _, i := range []int{0, 2} {
		if r, err := s.GetGlobalRecord(ctx, "apikeys", keys[i]); err != nil || string(r.Data) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("global row %d after deleting another: %+v, %v", i, r, err)
		}
	}
	// An unknown key is ErrNotFound with either read.
	if _, err := s.GetGlobalRecord(ctx, "apikeys", "nope", eventstore.Eventually); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("eventually read of a missing row: err = %v, want ErrNotFound", err)
	}
}

// eventuallyGlobal polls an eventually consistent read of a global row until
// it has data want ("" = until it is ErrNotFound).
func eventuallyGlobal(t *testing.T, s eventstore.Store, coll, key, want string) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		r, err := s.GetGlobalRecord(context.Background(), coll, key, eventstore.Eventually)
		switch {
		case want == "" && errors.Is(err, eventstore.ErrNotFound):
			return
		case want != "" && err == nil && string(r.Data) == want && r.Key == key && r.Collection == coll && r.Global:
			return
		case err != nil && !errors.Is(err, eventstore.ErrNotFound):
			t.Fatalf("eventually get global %s/%s: %v", coll, key, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("eventually get global %s/%s = %+v, %v; want data %q", coll, key, r, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testListSharedName: rows of two collections with the same key may be in
// the same list partition with the same sort; each is a membership of its
// own, and rewriting one leaves the other's.
func testListSharedName(t *testing.T, s eventstore.Store) {
	tnt := tenant()
	k := gen.New(ids.Scope)
	mustCommit(t, s, recordsCommit(tnt,
		row("alpha", k, `{"c":"alpha"}`, entry(rowsList, "p", "same")),
		row("beta", k, `{"c":"beta"}`, entry(rowsList, "p", "same")),
	))
	got := eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList, Partition: "p"}, []string{k, k})
	data := slices.Sorted(slices.Values(got.data))
	if !slices.Equal(data, []string{`{"c":"alpha"}`, `{"c":"beta"}`}) {
		t.Fatalf("rows = %v, want one of each collection", got.data)
	}
	// Small pages, in both directions: ties (the same Sort and key in
	// several collections) fall on page boundaries and no row may be
	// skipped (review findings: the cursor held only the sort position;
	// then three collections or more still lost rows).
	tieKeys := []string{gen.New(ids.Scope), gen.New(ids.Scope), gen.New(ids.Scope)}
	var ties []eventstore.Record
	var want []string
	for _, c := range []string{"tie-a", "tie-b", "tie-c", "tie-d"} {
		for _, key := range tieKeys {
			ties = append(ties, row(c, key, `{"c":"`+c+`"}`, entry(rowsList, "ties", "same")))
			want = append(want, c+"/"+key)
		}
	}
	mustCommit(t, s, recordsCommit(tnt, ties...))
	slices.Sort(want)
	for _, desc := range []bool{false, true} {
		for _, limit := range []int{1, 2, 3, 5} {
			q := eventstore.ListQuery{List: rowsList, Partition: "ties", Page: eventstore.Page{Limit: limit, Descending: desc}}
			var got []string
			for deadline := time.Now().Add(pollTimeout); ; {
				got = got[:0]
				for page := 0; page < 2*len(want); page++ {
					rs, next, err := s.ListRecords(context.Background(), tnt, q)
					if err != nil {
						t.Fatalf("limit %d desc %v: %v", limit, desc, err)
					}
					for _, r := range rs {
						got = append(got, r.Collection+"/"+r.Key)
					}
					if next == "" {
						break
					}
					q.Cursor = next
				}
				q.Cursor = ""
				slices.Sort(got)
				if slices.Equal(got, want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pages of %d (descending %v) = %v, want every row of the tie once: %v", limit, desc, got, want)
			}
		}
	}
	// Row keys too long for a sort key still page (the cursor holds the
	// row's table key).
	long := strings.Repeat("k", 1001)
	mustCommit(t, s, recordsCommit(tnt, row("long-a", long, `{}`, entry(rowsList, "long", "s")), row("long-b", long, `{}`, entry(rowsList, "long", "t"))))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList, Partition: "long", Page: eventstore.Page{Limit: 1}}, []string{long, long})
	// One row leaves the list; the other stays.
	mustCommit(t, s, recordsCommit(tnt, row("alpha", k, `{"c":"alpha2"}`)))
	got = eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList, Partition: "p"}, []string{k})
	if got.data[0] != `{"c":"beta"}` {
		t.Fatalf("remaining row = %s, want beta's", got.data[0])
	}
	// And a delete of the other empties it.
	mustCommit(t, s, recordsCommit(tnt, eventstore.Record{Collection: "beta", Key: k, Delete: true}))
	eventuallyList(t, s, tnt, eventstore.ListQuery{List: rowsList, Partition: "p"}, nil)
}
