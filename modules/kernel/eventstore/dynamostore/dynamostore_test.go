package dynamostore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/storetest"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

var (
	endpoint string // DynamoDB Local of this run
	table    string // the table of this run
	client   *dynamodb.Client
	store    *dynamostore.Store
	gen      = ids.NewULIDs()
)

func TestMain(m *testing.M) {
	var err error
	if endpoint, err = dynamotest.Endpoint(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	client = newClient(nil)
	table = fmt.Sprintf("switchboard-test-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if err := dynamostore.EnsureTable(ctx, client, table); err != nil {
		cancel()
		fmt.Fprintf(os.Stderr, "DynamoDB at %s: %v\n", endpoint, err)
		os.Exit(1)
	}
	store = dynamostore.New(client, table)
	code := m.Run()
	_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table})
	cancel()
	os.Exit(code)
}

// newClient returns a client of the test endpoint, sending through hc when it is not nil.
func newClient(hc *http.Client) *dynamodb.Client { return dynamotest.Client(endpoint, hc) }

// contractOutboxShards is the outbox shard count of the contract suite: its
// checks poll PendingOutbox and ParkedOutbox, which query every shard, so a
// few shards (still several, to merge across them) keep the suite fast on
// DynamoDB Local. TestOutboxSweepAtDefaultShards reads the production count.
const contractOutboxShards = 16

func TestContract(t *testing.T) {
	s := dynamostore.New(client, table, dynamostore.WithOutboxShards(contractOutboxShards))
	storetest.Run(t, func(t *testing.T) eventstore.Store { return s })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, store)
}

// countingTransport counts the DynamoDB operations sent over HTTP and keeps
// their request bodies.
type countingTransport struct {
	mu     sync.Mutex
	ops    []string
	bodies []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	op := r.Header.Get("X-Amz-Target")
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	c.mu.Lock()
	c.ops = append(c.ops, strings.TrimPrefix(op, "DynamoDB_20120810."))
	c.bodies = append(c.bodies, string(body))
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops, c.bodies = nil, nil
	return ops
}

// takeBodies returns the request bodies sent since the last take.
func (c *countingTransport) takeBodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bodies
	c.ops, c.bodies = nil, nil
	return b
}

func event(typ string) eventstore.Event {
	return eventstore.Event{
		ID: gen.New(ids.Event), Type: typ, SchemaVersion: 1,
		OccurredAt: time.Now().UTC(), Data: json.RawMessage(`{"a":1}`),
	}
}

func TestCommitIsOneTransactWriteItems(t *testing.T) {
	ctx := context.Background()
	ct := &countingTransport{}
	s := dynamostore.New(newClient(&http.Client{Transport: ct}), table)
	tnt := gen.New(ids.Tenant)
	c := &eventstore.Commit{
		TenantID: tnt,
		Appends: []eventstore.StreamAppend{
			{StreamID: "a", Events: []eventstore.Event{event("t.a"), event("t.b")}},
			{StreamID: "b", Events: []eventstore.Event{event("t.c")}},
		},
		Records: []eventstore.Record{
			{Collection: "rows", Key: "k1", Data: json.RawMessage(`{}`)},
			{Collection: "names", Key: "n", IfAbsent: true, Data: json.RawMessage(`{}`)},
			{Collection: "gone", Key: "x", Delete: true},
		},
		Outbox:      []eventstore.OutboxEntry{{ID: gen.New(ids.Work), Type: "t.work", DueAt: time.Now()}},
		Idempotency: &eventstore.Idempotency{Key: "k", Status: 200, ExpiresAt: time.Now().Add(time.Hour)},
	}
	if err := s.Commit(ctx, c); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if ops := ct.take(); len(ops) != 1 || ops[0] != "TransactWriteItems" {
		t.Fatalf("commit sent %v, want exactly [TransactWriteItems]", ops)
	}
	// A conflicting commit is one call too, and a duplicate as well.
	err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Appends: []eventstore.StreamAppend{{StreamID: "a", ExpectedVersion: 1, Events: []eventstore.Event{event("t.d")}}}})
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("stale commit: err = %v, want ErrConflict", err)
	}
	err = s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Appends: []eventstore.StreamAppend{{StreamID: "c", Events: []eventstore.Event{event("t.d")}}},
		Idempotency: &eventstore.Idempotency{Key: "k", Status: 500}})
	if !errors.Is(err, eventstore.ErrDuplicate) {
		t.Fatalf("duplicate commit: err = %v, want ErrDuplicate", err)
	}
	if ops := ct.take(); len(ops) != 2 || ops[0] != "TransactWriteItems" || ops[1] != "TransactWriteItems" {
		t.Fatalf("failing commits sent %v, want one TransactWriteItems each", ops)
	}
	// Invalid and empty commits make no call.
	for _, c := range []*eventstore.Commit{
		{TenantID: tnt, Appends: []eventstore.StreamAppend{{StreamID: "a", Events: []eventstore.Event{{}}}}},
		{TenantID: tnt, Records: []eventstore.Record{{Collection: "big", Key: "k", Data: make(json.RawMessage, eventstore.MaxItemBytes+1)}}},
		{TenantID: "tnt#x", Records: []eventstore.Record{{Collection: "c", Key: "k"}}},
		{TenantID: tnt, Records: []eventstore.Record{{Collection: "c", Key: "k"}, {Collection: "c", Key: "k", Delete: true}}},
		{TenantID: tnt, Records: []eventstore.Record{{Collection: "c", Key: "k", Lists: []eventstore.ListEntry{{List: eventstore.List{Name: "l", Slot: 7}}}}}},
		{TenantID: tnt, Records: []eventstore.Record{{Collection: "c", Key: "k", Global: true, Lists: []eventstore.ListEntry{{List: eventstore.List{Name: "l", Slot: 1}}}}}},
		{TenantID: tnt, Records: []eventstore.Record{{Collection: "c#d", Key: "k"}}},
		{TenantID: tnt, Outbox: []eventstore.OutboxEntry{{ID: "wrk_x", Type: "t", Payload: make(json.RawMessage, eventstore.MaxOutboxPayload+1)}}},
	} {
		if err := s.Commit(ctx, c); !errors.Is(err, eventstore.ErrInvalid) && !errors.Is(err, eventstore.ErrTooLarge) {
			t.Fatalf("invalid commit: err = %v", err)
		}
	}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt}); err != nil {
		t.Fatalf("empty commit: %v", err)
	}
	if ops := ct.take(); len(ops) != 0 {
		t.Fatalf("invalid and empty commits sent %v, want nothing", ops)
	}
}

// getItem reads one raw item of the table.
func getItem(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: &table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			dynamostore.AttrPK: &types.AttributeValueMemberS{Value: pk},
			dynamostore.AttrSK: &types.AttributeValueMemberS{Value: sk},
		},
	})
	if err != nil {
		t.Fatalf("get item %s %s: %v", pk, sk, err)
	}
	if out.Item == nil {
		t.Fatalf("no item %s %s", pk, sk)
	}
	return out.Item
}

func attr(t *testing.T, item map[string]types.AttributeValue, name string) string {
	t.Helper()
	switch v := item[name].(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberB:
		return string(v.Value)
	}
	t.Fatalf("item has no attribute %s: %v", name, item)
	return ""
}

// TestItemLayout pins the persisted key design (a change is a data migration).
func TestItemLayout(t *testing.T) {
	ctx := context.Background()
	tnt := gen.New(ids.Tenant)
	due := time.Date(2030, 5, 6, 7, 8, 9, 120000000, time.UTC)
	expires := time.Date(2031, 1, 1, 0, 0, 0, 500, time.UTC)
	work := eventstore.OutboxEntry{ID: gen.New(ids.Work), Type: "t.work", DueAt: due, Payload: json.RawMessage(`{"p":1}`), LastError: "e"}
	lists := []eventstore.ListEntry{
		{List: eventstore.List{Name: "all", Slot: 1}, Sort: "s1"},
		{List: eventstore.List{Name: "by-status", Slot: 4, Shards: 8}, Partition: "open", Sort: "s2"},
	}
	c := &eventstore.Commit{
		TenantID:    tnt,
		Appends:     []eventstore.StreamAppend{{StreamID: "tenant", Events: []eventstore.Event{event("t.a"), event("t.b")}}},
		Records:     []eventstore.Record{{Collection: "rows", Key: "k1", Data: json.RawMessage(`{"r":1}`), Lists: lists}, {Collection: "keys", Key: "g1", Global: true, Data: json.RawMessage(`{"g":1}`)}},
		Outbox:      []eventstore.OutboxEntry{work},
		Idempotency: &eventstore.Idempotency{Key: "sva_1:k", Status: 201, ExpiresAt: expires},
	}
	if err := store.Commit(ctx, c); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if got := attr(t, getItem(t, "T#"+tnt+"#S#tenant", "HEAD"), "version"); got != "2" {
		t.Errorf("head version = %s, want 2", got)
	}
	ev := getItem(t, "T#"+tnt+"#S#tenant", "E#00000000000000000002")
	if attr(t, ev, "type") != "t.b" || attr(t, ev, "data") != `{"a":1}` {
		t.Errorf("event item = %v", ev)
	}
	rec := getItem(t, "T#"+tnt+"#R#rows#k1", "R")
	if got := attr(t, rec, "data"); got != `{"r":1}` {
		t.Errorf("record data = %s", got)
	}
	// The shard is FNV-1a of the row key modulo the list's Shards (pinned: a change is a migration).
	for name, want := range map[string]string{
		dynamostore.ListAttrPK(1): "T#" + tnt + "#L#all##0",
		dynamostore.ListAttrSK(1): "s1#k1",
		dynamostore.ListAttrPK(4): "T#" + tnt + "#L#by-status#open#" + fnvShard("k1", 8),
		dynamostore.ListAttrSK(4): "s2#k1",
	} {
		if got := attr(t, rec, name); got != want {
			t.Errorf("record %s = %s, want %s", name, got, want)
		}
	}
	for _, slot := range []int{2, 3, 5, 6} {
		if _, ok := rec[dynamostore.ListAttrPK(slot)]; ok {
			t.Errorf("record has %s", dynamostore.ListAttrPK(slot))
		}
	}
	if got := attr(t, getItem(t, "G#R#keys#g1", "R"), "data"); got != `{"g":1}` {
		t.Errorf("global record data = %s", got)
	}
	idem := getItem(t, "T#"+tnt+"#I#sva_1:k", "I")
	if got, want := attr(t, idem, dynamostore.AttrExpiresAt), fmt.Sprint(expires.Unix()+1); got != want {
		t.Errorf("idempotency TTL = %s, want %s (rounded up)", got, want)
	}
	w := getItem(t, "T#"+tnt+"#W#"+work.ID, "W")
	if got, want := attr(t, w, dynamostore.AttrGSI1PK), "OUTBOX#"+fnvShard(work.ID, dynamostore.DefaultOutboxShards); got != want {
		t.Errorf("outbox gsi1pk = %s, want %s", got, want)
	}
	if got := attr(t, w, "lastError"); got != "e" {
		t.Errorf("outbox lastError = %s", got)
	}
	if got, want := attr(t, w, dynamostore.AttrGSI1SK), "2030-05-06T07:08:09.120000000Z#"+work.ID; got != want {
		t.Errorf("outbox gsi1sk = %s, want %s", got, want)
	}
	// The events carry their assigned identity.
	for i, e := range c.Appends[0].Events {
		if e.Version != int64(i+1) || e.TenantID != tnt || e.StreamID != "tenant" {
			t.Errorf("event %d after commit: %+v", i, e)
		}
	}
}

func TestIdempotencyExpiryFollowsClock(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	clk := clock.NewFixed(now)
	s := dynamostore.New(client, table, dynamostore.WithClock(clk))
	tnt := gen.New(ids.Tenant)
	rec := &eventstore.Idempotency{Key: "k", Status: 201, Body: json.RawMessage(`{"x":1}`), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Idempotency: rec}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	got, err := s.GetIdempotency(ctx, tnt, "k")
	if err != nil || got.Status != 201 || !bytes.Equal(got.Body, rec.Body) || !got.ExpiresAt.Equal(rec.ExpiresAt) || !got.CreatedAt.Equal(now) {
		t.Fatalf("get = %+v, %v", got, err)
	}
	clk.Advance(time.Hour - time.Nanosecond)
	if _, err := s.GetIdempotency(ctx, tnt, "k"); err != nil {
		t.Fatalf("get just before expiry: %v", err)
	}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Idempotency: &eventstore.Idempotency{Key: "k", Status: 202}}); !errors.Is(err, eventstore.ErrDuplicate) {
		t.Fatalf("commit just before expiry: err = %v, want ErrDuplicate", err)
	}
	clk.Advance(time.Nanosecond)
	if _, err := s.GetIdempotency(ctx, tnt, "k"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("get at expiry: err = %v, want ErrNotFound", err)
	}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Idempotency: &eventstore.Idempotency{Key: "k", Status: 202}}); err != nil {
		t.Fatalf("commit over an expired record: %v", err)
	}
	// Without ExpiresAt a record never expires.
	clk.Advance(1000 * time.Hour)
	if got, err := s.GetIdempotency(ctx, tnt, "k"); err != nil || got.Status != 202 {
		t.Fatalf("record without expiry: %+v, %v", got, err)
	}
}

// fnvShard is FNV-1a of key modulo n, as a string.
func fnvShard(key string, n int) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return fmt.Sprint(h.Sum32() % uint32(n))
}

func TestListRecordsCursorNeverPointsAtEmptyPage(t *testing.T) {
	ctx := context.Background()
	tnt := gen.New(ids.Tenant)
	l := eventstore.List{Name: "c", Slot: 1}
	var rs []eventstore.Record
	for i := range 4 {
		k := fmt.Sprintf("k%d", i)
		rs = append(rs, eventstore.Record{Collection: "c", Key: k, Data: json.RawMessage(`{}`), Lists: []eventstore.ListEntry{{List: l, Sort: k}}})
	}
	if err := store.Commit(ctx, &eventstore.Commit{TenantID: tnt, Records: rs}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	rows, next, err := store.ListRecords(ctx, tnt, eventstore.ListQuery{List: l, Page: eventstore.Page{Limit: 2}})
	if err != nil || len(rows) != 2 || next == "" {
		t.Fatalf("page 1: %d rows, next %q, %v", len(rows), next, err)
	}
	rows, next, err = store.ListRecords(ctx, tnt, eventstore.ListQuery{List: l, Page: eventstore.Page{Limit: 2, Cursor: next}})
	if err != nil || len(rows) != 2 || rows[1].Key != "k3" || next != "" {
		t.Fatalf("page 2: %d rows, next %q, %v; want k2, k3 and no next", len(rows), next, err)
	}
	if _, _, err := store.ListRecords(ctx, tnt, eventstore.ListQuery{List: l, Page: eventstore.Page{Cursor: "!!"}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("bad cursor: err = %v, want ErrInvalid", err)
	}
}

// TestRecordsKeyedByEntity: the rows of one collection, and global rows, are
// items of their own partitions, and one list page is a query per shard plus
// one BatchGetItem.
func TestRecordsKeyedByEntity(t *testing.T) {
	ctx := context.Background()
	tnt := gen.New(ids.Tenant)
	l := eventstore.List{Name: "all", Slot: 2, Shards: 4}
	var rs []eventstore.Record
	for i := range 5 {
		k := fmt.Sprintf("k%d", i)
		rs = append(rs,
			eventstore.Record{Collection: "rows", Key: k, Data: json.RawMessage(`{}`), Lists: []eventstore.ListEntry{{List: l, Sort: k}}},
			eventstore.Record{Collection: "keys", Key: tnt + k, Global: true, Data: json.RawMessage(`{}`)})
	}
	if err := store.Commit(ctx, &eventstore.Commit{TenantID: tnt, Records: rs}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	pks := map[string]bool{}
	for _, r := range rs {
		pk := "T#" + tnt + "#R#" + r.Collection + "#" + r.Key
		if r.Global {
			pk = "G#R#" + r.Collection + "#" + r.Key
		}
		getItem(t, pk, "R")
		// Each partition holds exactly that one item.
		out, err := client.Query(ctx, &dynamodb.QueryInput{
			TableName: &table, ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		})
		if err != nil || len(out.Items) != 1 {
			t.Fatalf("partition %s: %d items, %v", pk, len(out.Items), err)
		}
		pks[pk] = true
	}
	if len(pks) != len(rs) {
		t.Fatalf("%d rows in %d partitions", len(rs), len(pks))
	}

	ct := &countingTransport{}
	s := dynamostore.New(newClient(&http.Client{Transport: ct}), table)
	rows, next, err := s.ListRecords(ctx, tnt, eventstore.ListQuery{List: l, Page: eventstore.Page{Limit: 3}})
	if err != nil || len(rows) != 3 || rows[0].Key != "k0" || rows[2].Key != "k2" || next == "" {
		t.Fatalf("list: %+v, next %q, %v", rows, next, err)
	}
	ops := ct.take()
	slices.Sort(ops)
	if want := []string{"BatchGetItem", "Query", "Query", "Query", "Query"}; !slices.Equal(ops, want) {
		t.Fatalf("list sent %v, want %v", ops, want)
	}
}

// TestOutboxShards: WithOutboxShards spreads entries over that many index
// partitions and the sweep reads them all.
func TestOutboxShards(t *testing.T) {
	ctx := context.Background()
	const n = 3
	s := dynamostore.New(client, table, dynamostore.WithOutboxShards(n))
	tnt := gen.New(ids.Tenant)
	due := time.Date(1985, 1, 1, 0, 0, 0, 0, time.UTC) // a window of its own
	var entries []eventstore.OutboxEntry
	for i := range 12 {
		entries = append(entries, eventstore.OutboxEntry{ID: gen.New(ids.Work), TenantID: tnt, Type: "t.work", DueAt: due.Add(time.Duration(i) * time.Second)})
	}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Outbox: entries}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), entries) })
	used := map[string]bool{}
	for _, e := range entries {
		pk := attr(t, getItem(t, "T#"+tnt+"#W#"+e.ID, "W"), dynamostore.AttrGSI1PK)
		if pk != "OUTBOX#"+fnvShard(e.ID, n) {
			t.Fatalf("entry %s: gsi1pk %s, want shard of 0..%d", e.ID, pk, n-1)
		}
		used[pk] = true
	}
	if len(used) < 2 {
		t.Fatalf("12 entries in %d shards", len(used))
	}
	got, err := s.PendingOutbox(ctx, due.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, e := range got {
		if e.TenantID == tnt {
			gotIDs = append(gotIDs, e.ID)
		}
	}
	if len(gotIDs) != len(entries) {
		t.Fatalf("pending: %d of %d entries", len(gotIDs), len(entries))
	}
	for i, e := range entries {
		if gotIDs[i] != e.ID {
			t.Fatalf("pending order %v", gotIDs)
		}
	}
	// With a limit, the order across shards is approximate: each shard's
	// earliest entries, in due order.
	got, err = s.PendingOutbox(ctx, due.Add(time.Hour), 5)
	if err != nil || len(got) != 5 {
		t.Fatalf("pending limit 5: %d entries, %v", len(got), err)
	}
	for i, e := range got {
		if !slices.ContainsFunc(entries, func(x eventstore.OutboxEntry) bool { return x.ID == e.ID }) || (i > 0 && e.DueAt.Before(got[i-1].DueAt)) {
			t.Fatalf("pending limit 5: %v", got)
		}
	}
}

// TestGlobalRecordConsistency: GetGlobalRecord reads consistently unless
// asked for eventually.
func TestGlobalRecordConsistency(t *testing.T) {
	ctx := context.Background()
	ct := &countingTransport{}
	s := dynamostore.New(newClient(&http.Client{Transport: ct}), table)
	_, _ = s.GetGlobalRecord(ctx, "keys", "x")
	_, _ = s.GetGlobalRecord(ctx, "keys", "x", eventstore.Eventually)
	b := ct.takeBodies()
	if len(b) != 2 || !strings.Contains(b[0], `"ConsistentRead":true`) || !strings.Contains(b[1], `"ConsistentRead":false`) {
		t.Fatalf("requests = %v", b)
	}
}

func TestReadsRejectAmbiguousTenant(t *testing.T) {
	ctx := context.Background()
	if _, err := store.ReadStream(ctx, "tnt#S#x", "y", 1, 0); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("read stream: err = %v, want ErrInvalid", err)
	}
	if _, err := store.GetRecord(ctx, "", "c", "k"); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("get record: err = %v, want ErrInvalid", err)
	}
}

func TestEnsureTable(t *testing.T) {
	ctx := context.Background()
	// An existing table is left alone.
	if err := dynamostore.EnsureTable(ctx, client, table); err != nil {
		t.Fatalf("ensure existing table: %v", err)
	}
	name := table + "-ensure"
	t.Cleanup(func() { _, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}) })
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = dynamostore.EnsureTable(ctx, client, name) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent ensure: %v", err)
		}
	}
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	d := out.Table
	if d.TableStatus != types.TableStatusActive || len(d.GlobalSecondaryIndexes) != 1+eventstore.MaxListSlots {
		t.Fatalf("table = %+v", d)
	}
	var names []string
	for _, g := range d.GlobalSecondaryIndexes {
		names = append(names, aws.ToString(g.IndexName))
		if g.Projection == nil || g.Projection.ProjectionType != types.ProjectionTypeKeysOnly {
			t.Fatalf("index %s: projection %+v, want KEYS_ONLY", aws.ToString(g.IndexName), g.Projection)
		}
	}
	slices.Sort(names)
	if want := []string{dynamostore.IndexOutbox, "list1", "list2", "list3", "list4", "list5", "list6"}; !slices.Equal(names, want) {
		t.Fatalf("indexes %v, want %v", names, want)
	}
	if d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("billing mode = %+v", d.BillingModeSummary)
	}
}

// TestListRecordsSkipsStaleIndexEntries: the list indexes lag the table; a
// row found through an index entry that no longer matches its current
// membership (moved to another partition, or to another sort) is not on the
// page: it shows where it now belongs.
func TestListRecordsSkipsStaleIndexEntries(t *testing.T) {
	ctx := context.Background()
	tnt := gen.New(ids.Tenant)
	l := eventstore.List{Name: "by-status", Slot: 3, Shards: 4}
	k := gen.New(ids.Scope)
	shard, _ := strconv.Atoi(fnvShard(k, l.Shards))
	put := func(partition, sort, data string) {
		t.Helper()
		r := eventstore.Record{Collection: "tickets", Key: k, Data: json.RawMessage(data), Lists: []eventstore.ListEntry{{List: l, Partition: partition, Sort: sort}}}
		if err := store.Commit(ctx, &eventstore.Commit{TenantID: tnt, Records: []eventstore.Record{r}}); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	page := func(partition, sort string) []eventstore.Record {
		t.Helper()
		rows, err := store.ListPageAt(ctx, tnt, "tickets", k, l, partition, shard, sort)
		if err != nil {
			t.Fatalf("page: %v", err)
		}
		return rows
	}
	put("queued", "s1", `{"s":"queued"}`)
	if rows := page("queued", "s1"); len(rows) != 1 || rows[0].Key != k || string(rows[0].Data) != `{"s":"queued"}` {
		t.Fatalf("current entry: %+v", rows)
	}
	// Moved to "sent": the stale "queued" entry finds nothing.
	put("sent", "s1", `{"s":"sent"}`)
	if rows := page("queued", "s1"); len(rows) != 0 {
		t.Fatalf("stale partition entry listed %+v", rows)
	}
	if rows := page("sent", "s1"); len(rows) != 1 || string(rows[0].Data) != `{"s":"sent"}` {
		t.Fatalf("current entry: %+v", rows)
	}
	// Re-sorted: the entry under the old sort finds nothing (no row on two pages).
	put("sent", "s2", `{"s":"sent","v":2}`)
	if rows := page("sent", "s1"); len(rows) != 0 {
		t.Fatalf("stale sort entry listed %+v", rows)
	}
	if rows := page("sent", "s2"); len(rows) != 1 {
		t.Fatalf("current entry: %+v", rows)
	}
	// Out of every list: nothing.
	if err := store.Commit(ctx, &eventstore.Commit{TenantID: tnt, Records: []eventstore.Record{{Collection: "tickets", Key: k, Data: json.RawMessage(`{}`)}}}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if rows := page("sent", "s2"); len(rows) != 0 {
		t.Fatalf("entry of a row in no list listed %+v", rows)
	}
}

// TestPendingOutboxPagesAcrossShards: PendingOutbox reads a bounded number of
// index keys per shard, fills its page, and paging (acknowledging each page)
// hands every due entry exactly once.
func TestPendingOutboxPagesAcrossShards(t *testing.T) {
	ctx := context.Background()
	const shards, n, limit = 16, 40, 10
	ct := &countingTransport{}
	s := dynamostore.New(newClient(&http.Client{Transport: ct}), table, dynamostore.WithOutboxShards(shards))
	tnt := gen.New(ids.Tenant)
	due := time.Date(1975, 1, 1, 0, 0, 0, 0, time.UTC) // a window of its own
	var entries []eventstore.OutboxEntry
	for i := range n {
		entries = append(entries, eventstore.OutboxEntry{ID: gen.New(ids.Work), Type: "t.work", DueAt: due.Add(time.Duration(i) * time.Second)})
	}
	for i := 0; i < n; i += 20 {
		if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Outbox: entries[i : i+20]}); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), entries) })
	dueBy := due.Add(time.Hour)
	ct.take()
	first, err := s.PendingOutbox(ctx, dueBy, limit)
	if err != nil || len(first) != limit {
		t.Fatalf("pending limit %d: %d entries, %v", limit, len(first), err)
	}
	// Each shard is asked for max(2, ceil(2*limit/shards)) = 2 keys, not limit.
	for _, body := range ct.takeBodies() {
		if strings.Contains(body, `"IndexName"`) && !strings.Contains(body, `"Limit":2`) {
			t.Fatalf("shard query %s, want Limit 2", body)
		}
	}
	seen := map[string]int{}
	page := first
	for pages := 0; len(page) > 0; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		if len(page) > limit {
			t.Fatalf("page of %d entries, limit %d", len(page), limit)
		}
		for i, e := range page {
			if e.TenantID != tnt {
				t.Fatalf("entry %s of tenant %s", e.ID, e.TenantID)
			}
			if i > 0 && e.DueAt.Before(page[i-1].DueAt) {
				t.Fatalf("page not in due order: %v before %v", e.DueAt, page[i-1].DueAt)
			}
			seen[e.ID]++
		}
		if err := s.AckOutbox(ctx, page); err != nil {
			t.Fatalf("ack: %v", err)
		}
		if page, err = s.PendingOutbox(ctx, dueBy, limit); err != nil {
			t.Fatalf("pending: %v", err)
		}
	}
	for _, e := range entries {
		if seen[e.ID] != 1 {
			t.Fatalf("entry %s handed %d times", e.ID, seen[e.ID])
		}
	}
	if len(seen) != n {
		t.Fatalf("%d entries handed, want %d", len(seen), n)
	}
}

// TestPendingOutboxSkipsUndecodableEntries: one outbox item that does not
// decode is logged and skipped; the others of the page are still handed.
func TestPendingOutboxSkipsUndecodableEntries(t *testing.T) {
	ctx := context.Background()
	s := dynamostore.New(client, table, dynamostore.WithOutboxShards(1))
	tnt := gen.New(ids.Tenant)
	due := time.Date(1976, 1, 1, 0, 0, 0, 0, time.UTC) // a window of its own
	good := eventstore.OutboxEntry{ID: gen.New(ids.Work), Type: "t.work", DueAt: due.Add(time.Second)}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{good}}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	badID := gen.New(ids.Work)
	bad := map[string]types.AttributeValue{
		dynamostore.AttrPK:     &types.AttributeValueMemberS{Value: "T#" + tnt + "#W#" + badID},
		dynamostore.AttrSK:     &types.AttributeValueMemberS{Value: "W"},
		dynamostore.AttrGSI1PK: &types.AttributeValueMemberS{Value: "OUTBOX#0"},
		dynamostore.AttrGSI1SK: &types.AttributeValueMemberS{Value: "1976-01-01T00:00:00.000000000Z#" + badID},
		"id":                   &types.AttributeValueMemberS{Value: badID},
		"tenantId":             &types.AttributeValueMemberS{Value: tnt},
		"dueAt":                &types.AttributeValueMemberS{Value: "not a time"},
		"attempt":              &types.AttributeValueMemberN{Value: "0"},
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: bad}); err != nil {
		t.Fatalf("put: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: &table, Key: map[string]types.AttributeValue{
			dynamostore.AttrPK: bad[dynamostore.AttrPK], dynamostore.AttrSK: bad[dynamostore.AttrSK],
		}})
		_ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{good})
	})
	got, err := s.PendingOutbox(ctx, due.Add(time.Hour), 10)
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	if len(got) != 1 || got[0].ID != good.ID {
		t.Fatalf("pending = %+v, want only %s", got, good.ID)
	}
}

// TestRowExpiryIsTheTTL: a row with an ExpiresAt carries the table's TTL
// attribute (whole seconds, rounded up) so that DynamoDB removes it, and
// PutRecords writes with BatchWriteItem, never a transaction.
func TestRowExpiryIsTheTTL(t *testing.T) {
	ct := &countingTransport{}
	s := dynamostore.New(newClient(&http.Client{Transport: ct}), table)
	tnt := gen.New(ids.Tenant)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	rows := []eventstore.Record{{Collection: "audit", Key: "a", Data: []byte(`1`), ExpiresAt: exp}, {Collection: "audit", Key: "b", Data: []byte(`1`)}}
	if err := s.PutRecords(context.Background(), tnt, rows); err != nil {
		t.Fatal(err)
	}
	if ops := ct.take(); len(ops) != 1 || ops[0] != "BatchWriteItem" {
		t.Fatalf("operations %v, want one BatchWriteItem", ops)
	}
	if got, want := attr(t, getItem(t, "T#"+tnt+"#R#audit#a", "R"), dynamostore.AttrExpiresAt), fmt.Sprint(exp.Unix()+1); got != want {
		t.Fatalf("TTL %s, want %s", got, want)
	}
	if _, ok := getItem(t, "T#"+tnt+"#R#audit#b", "R")[dynamostore.AttrExpiresAt]; ok {
		t.Fatal("a row without ExpiresAt has a TTL")
	}
}
