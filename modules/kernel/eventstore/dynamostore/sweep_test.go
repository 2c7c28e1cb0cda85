package dynamostore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/capacity"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// shardQueries records the outbox shards queried over HTTP and the most
// requests in flight at once.
type shardQueries struct {
	mu               sync.Mutex
	inFlight, most   int
	shards           map[string]int // "OUTBOX#<n>" -> queries
	queries, batches int
}

var outboxPK = regexp.MustCompile(`"(OUTBOX#\d+)"`)

func (c *shardQueries) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.mu.Lock()
	c.inFlight++
	c.most = max(c.most, c.inFlight)
	switch r.Header.Get("X-Amz-Target") {
	case "DynamoDB_20120810.Query":
		c.queries++
		if m := outboxPK.FindSubmatch(body); m != nil {
			c.shards[string(m[1])]++
		}
	case "DynamoDB_20120810.BatchGetItem":
		c.batches++
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	return http.DefaultTransport.RoundTrip(r)
}

// workIDInShard returns a new work id whose outbox shard (of n) satisfies ok.
func workIDInShard(n int, ok func(shard int) bool) string {
	for {
		id := gen.New(ids.Work)
		if s, _ := strconv.Atoi(fnvShard(id, n)); ok(s) {
			return id
		}
	}
}

// TestOutboxSweepAtDefaultShards: at the production shard count,
// PendingOutbox queries every shard exactly once, at most
// OutboxQueryConcurrency at a time, and finds entries in the highest shards.
func TestOutboxSweepAtDefaultShards(t *testing.T) {
	ctx := context.Background()
	const n = dynamostore.DefaultOutboxShards
	if n <= 512 {
		t.Fatalf("DefaultOutboxShards %d: the platform's 100,000 messages/s need more than 512 (ADR 0008)", n)
	}
	qt := &shardQueries{shards: map[string]int{}}
	s := dynamostore.New(newClient(&http.Client{Transport: qt}), table) // the default count
	tnt := gen.New(ids.Tenant)
	due := time.Date(1961, 1, 1, 0, 0, 0, 0, time.UTC) // a window of its own
	entries := []eventstore.OutboxEntry{
		{ID: workIDInShard(n, func(s int) bool { return s == n-1 }), TenantID: tnt, Type: "t.work", DueAt: due.Add(1 * time.Second)},
		{ID: workIDInShard(n, func(s int) bool { return s >= 512 && s < n-1 }), TenantID: tnt, Type: "t.work", DueAt: due.Add(2 * time.Second)},
		{ID: workIDInShard(n, func(s int) bool { return s < 512 }), TenantID: tnt, Type: "t.work", DueAt: due.Add(3 * time.Second)},
	}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Outbox: entries}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	t.Cleanup(func() {
		if err := s.AckOutbox(context.Background(), entries); err != nil {
			t.Errorf("ack: %v", err)
		}
	})
	for _, e := range entries {
		if pk := attr(t, getItem(t, "T#"+tnt+"#W#"+e.ID, "W"), dynamostore.AttrGSI1PK); pk != "OUTBOX#"+fnvShard(e.ID, n) {
			t.Fatalf("entry %s in %s, want shard %s of %d", e.ID, pk, fnvShard(e.ID, n), n)
		}
	}
	qt.mu.Lock()
	qt.shards, qt.queries, qt.batches, qt.most = map[string]int{}, 0, 0, 0
	qt.mu.Unlock()

	got, err := s.PendingOutbox(ctx, due.Add(time.Hour), 100)
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	if len(got) != len(entries) {
		t.Fatalf("pending: %d entries, want %d", len(got), len(entries))
	}
	for i, e := range got {
		if e.ID != entries[i].ID || e.TenantID != tnt {
			t.Fatalf("pending[%d] = %s of %s, want %s", i, e.ID, e.TenantID, entries[i].ID)
		}
	}
	qt.mu.Lock()
	defer qt.mu.Unlock()
	if qt.queries != n || len(qt.shards) != n {
		t.Fatalf("%d queries over %d shards, want each of the %d shards once", qt.queries, len(qt.shards), n)
	}
	for i := range n {
		if c := qt.shards["OUTBOX#"+strconv.Itoa(i)]; c != 1 {
			t.Fatalf("shard %d queried %d times", i, c)
		}
	}
	if qt.most > dynamostore.OutboxQueryConcurrency || qt.most < 2 {
		t.Fatalf("%d requests in flight at most, want 2..%d (a bounded fan-out)", qt.most, dynamostore.OutboxQueryConcurrency)
	}
	if qt.batches != 1 {
		t.Fatalf("%d BatchGetItem calls, want 1", qt.batches)
	}
}

// recordedClient is a client of the test endpoint with rec installed.
func recordedClient(rec *capacity.Recorder) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       dynamotest.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(dynamotest.AccessKey, dynamotest.SecretKey, ""),
		BaseEndpoint: aws.String(endpoint),
	}, rec.Option())
}

// BenchmarkOutboxSweep measures one page of the outbox sweep (PendingOutbox,
// 100 entries) at 512 shards and at DefaultOutboxShards: "idle", an index
// with nothing due; "due", one entry per shard due (a backlog: the page reads
// a key from every shard and fetches 100 entries). It reports the wall time
// (ns/op: DynamoDB Local on this machine, CPU-bound, not AWS's latency), the
// requests and the read units as DynamoDB Local reports them (it reports 0
// for a query that finds nothing; AWS charges at least 0.5).
func BenchmarkOutboxSweep(b *testing.B) {
	for _, shards := range []int{512, dynamostore.DefaultOutboxShards} {
		for _, backlog := range []bool{false, true} {
			name := fmt.Sprintf("shards=%d/idle", shards)
			if backlog {
				name = fmt.Sprintf("shards=%d/due", shards)
			}
			b.Run(name, func(b *testing.B) { benchSweep(b, shards, backlog) })
		}
	}
}

func benchSweep(b *testing.B, shards int, backlog bool) {
	ctx := context.Background()
	rec := capacity.NewRecorder(capacity.StoreSchema())
	s := dynamostore.New(recordedClient(rec), table, dynamostore.WithOutboxShards(shards))
	// Windows of their own, before every test's: an idle index before 1950,
	// entries due in 1950 (acknowledged before the next case).
	due := time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)
	want := 0
	var entries []eventstore.OutboxEntry
	if backlog {
		due = time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
		tnt := gen.New(ids.Tenant)
		for i := range shards {
			entries = append(entries, eventstore.OutboxEntry{ID: gen.New(ids.Work), TenantID: tnt, Type: "t.work", DueAt: due.Add(time.Duration(i) * time.Millisecond)})
		}
		for i := 0; i < len(entries); i += 50 {
			if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Outbox: entries[i:min(i+50, len(entries))]}); err != nil {
				b.Fatalf("commit: %v", err)
			}
		}
		want = 100
	}
	rec.Reset()
	b.ResetTimer()
	for b.Loop() {
		if got, err := s.PendingOutbox(ctx, due.Add(time.Hour), 100); err != nil || len(got) != want {
			b.Fatalf("pending: %d entries, %v; want %d", len(got), err, want)
		}
	}
	b.StopTimer()
	requests, rcu := 0, 0.0
	for _, q := range rec.Requests() {
		requests++
		for _, u := range q.Units {
			rcu += u.Read
		}
	}
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
	b.ReportMetric(rcu/float64(b.N), "RCU/op")
	if err := s.AckOutbox(ctx, entries); err != nil {
		b.Fatalf("ack: %v", err)
	}
}
