package dynamostore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
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

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return store })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, store)
}

// countingTransport counts the DynamoDB operations sent over HTTP.
type countingTransport struct {
	mu  sync.Mutex
	ops []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	op := r.Header.Get("X-Amz-Target")
	c.mu.Lock()
	c.ops = append(c.ops, strings.TrimPrefix(op, "DynamoDB_20120810."))
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
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
	work := eventstore.OutboxEntry{ID: gen.New(ids.Work), Type: "t.work", DueAt: due, Payload: json.RawMessage(`{"p":1}`)}
	c := &eventstore.Commit{
		TenantID:    tnt,
		Appends:     []eventstore.StreamAppend{{StreamID: "tenant", Events: []eventstore.Event{event("t.a"), event("t.b")}}},
		Records:     []eventstore.Record{{Collection: "rows", Key: "k1", Data: json.RawMessage(`{"r":1}`)}, {Collection: "keys", Key: "g1", Global: true, Data: json.RawMessage(`{"g":1}`)}},
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
	if got := attr(t, getItem(t, "T#"+tnt+"#R#rows", "k1"), "data"); got != `{"r":1}` {
		t.Errorf("record data = %s", got)
	}
	if got := attr(t, getItem(t, "G#R#keys", "g1"), "data"); got != `{"g":1}` {
		t.Errorf("global record data = %s", got)
	}
	idem := getItem(t, "T#"+tnt+"#I#sva_1:k", "I")
	if got, want := attr(t, idem, dynamostore.AttrExpiresAt), fmt.Sprint(expires.Unix()+1); got != want {
		t.Errorf("idempotency TTL = %s, want %s (rounded up)", got, want)
	}
	w := getItem(t, "T#"+tnt+"#W#"+work.ID, "W")
	if got := attr(t, w, dynamostore.AttrGSI1PK); !strings.HasPrefix(got, "OUTBOX#") || len(got) != len("OUTBOX#0") || got[7] < '0' || got[7] >= '0'+dynamostore.OutboxShards {
		t.Errorf("outbox gsi1pk = %s", got)
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

func TestListRecordsCursorNeverPointsAtEmptyPage(t *testing.T) {
	ctx := context.Background()
	tnt := gen.New(ids.Tenant)
	var rs []eventstore.Record
	for i := range 4 {
		rs = append(rs, eventstore.Record{Collection: "c", Key: fmt.Sprintf("k%d", i), Data: json.RawMessage(`{}`)})
	}
	if err := store.Commit(ctx, &eventstore.Commit{TenantID: tnt, Records: rs}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	rows, next, err := store.ListRecords(ctx, tnt, "c", eventstore.Page{Limit: 2})
	if err != nil || len(rows) != 2 || next == "" {
		t.Fatalf("page 1: %d rows, next %q, %v", len(rows), next, err)
	}
	rows, next, err = store.ListRecords(ctx, tnt, "c", eventstore.Page{Limit: 2, Cursor: next})
	if err != nil || len(rows) != 2 || rows[1].Key != "k3" || next != "" {
		t.Fatalf("page 2: %d rows, next %q, %v; want k2, k3 and no next", len(rows), next, err)
	}
	if _, _, err := store.ListRecords(ctx, tnt, "c", eventstore.Page{Cursor: "!!"}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("bad cursor: err = %v, want ErrInvalid", err)
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
	if d.TableStatus != types.TableStatusActive || len(d.GlobalSecondaryIndexes) != 1 ||
		aws.ToString(d.GlobalSecondaryIndexes[0].IndexName) != dynamostore.IndexOutbox ||
		d.GlobalSecondaryIndexes[0].Projection.ProjectionType != types.ProjectionTypeAll {
		t.Fatalf("table = %+v", d)
	}
	if d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("billing mode = %+v", d.BillingModeSummary)
	}
}
