package pebblestore

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// commandCommit is a commit shaped like an rpc command's: one event to a new
// stream, one row in a list, one outbox entry and an idempotency record.
func commandCommit(tenant string, n int64) *eventstore.Commit {
	id := fmt.Sprintf("%020d", n)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return &eventstore.Commit{
		TenantID: tenant,
		Appends: []eventstore.StreamAppend{{StreamID: "scope-" + id, Events: []eventstore.Event{{
			ID: "evt_" + id, Type: "bench.created", SchemaVersion: 1, OccurredAt: now,
			Data: json.RawMessage(`{"scopeId":"scp_` + id + `","name":"bench"}`),
		}}}},
		Records: []eventstore.Record{{
			Collection: "scopes", Key: "scp_" + id, Data: json.RawMessage(`{"name":"bench"}`),
			Lists: []eventstore.ListEntry{{List: eventstore.List{Name: "scopes", Slot: 1}, Sort: id}},
		}},
		Outbox:      []eventstore.OutboxEntry{{ID: "wrk_" + id, Type: "bench.work", Payload: json.RawMessage(`{}`), DueAt: now}},
		Idempotency: &eventstore.Idempotency{Key: "idem-" + id, Status: 200, Body: json.RawMessage(`{}`), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)},
	}
}

// BenchmarkConcurrentCommit measures command-shaped commits, each synced
// to disk before it returns, from one goroutine and from 32 (b.RunParallel);
// commits/s is the store's throughput. With group commit the 32 share their
// batches and log syncs. (The same benchmark as boltstore's, to compare the
// two; commits/tx is commits per batch; busy-ms/tx is the committer's time
// per batch, and sync-ms/tx the time from applying a batch to its sync,
// which the committer spends on the next batch: pebble's log writer may
// cover several batches with one fdatasync.)
func BenchmarkConcurrentCommit(b *testing.B) {
	ctx := context.Background()
	b.Run("clients-1", func(b *testing.B) {
		s, _ := openTemp(b)
		b.ReportAllocs()
		var n int64
		start := time.Now()
		for b.Loop() {
			n++
			if err := s.Commit(ctx, commandCommit("tnt_bench", n)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "commits/s")
	})
	b.Run("clients-32", func(b *testing.B) {
		s, _ := openTemp(b)
		var seq atomic.Int64
		// RunParallel starts parallelism × GOMAXPROCS goroutines.
		b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		var mu sync.Mutex
		var lat []time.Duration
		start, txs, st0 := time.Now(), s.w.txs.Load(), s.WriteStats()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				t0 := time.Now()
				if err := s.Commit(ctx, commandCommit("tnt_bench", seq.Add(1))); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		b.ReportMetric(float64(seq.Load())/time.Since(start).Seconds(), "commits/s")
		b.ReportMetric(float64(seq.Load())/float64(s.w.txs.Load()-txs), "commits/tx")
		st := s.WriteStats()
		if n := st.Syncs - st0.Syncs; n > 0 {
			b.ReportMetric(float64(st.Busy-st0.Busy)/float64(st.Transactions-st0.Transactions)/float64(time.Millisecond), "busy-ms/tx")
			b.ReportMetric(float64(st.SyncTime-st0.SyncTime)/float64(n)/float64(time.Millisecond), "sync-ms/tx")
		}
		if len(lat) > 0 {
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100])/float64(time.Millisecond), "p99-ms")
		}
	})
}
