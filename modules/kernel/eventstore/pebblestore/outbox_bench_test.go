package pebblestore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// BenchmarkPendingOutboxAfterAcks measures a sweep's read (PendingOutbox,
// 100 entries) of an outbox through which n entries went (committed and
// acknowledged, as the work path does), with 10 pending behind them.
func BenchmarkPendingOutboxAfterAcks(b *testing.B) {
	for _, n := range []int{0, 20000, 100000} {
		b.Run(fmt.Sprintf("acked-%d", n), func(b *testing.B) {
			s, _ := openTemp(b)
			ctx := context.Background()
			due := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			seq := 0
			batch := func(k int) []eventstore.OutboxEntry {
				var es []eventstore.OutboxEntry
				for range k {
					seq++
					es = append(es, eventstore.OutboxEntry{ID: fmt.Sprintf("wrk_%08d", seq), Type: "x", DueAt: due.Add(time.Duration(seq) * time.Millisecond)})
				}
				return es
			}
			for done := 0; done < n; done += 99 {
				es := batch(99)
				if err := s.Commit(ctx, &eventstore.Commit{TenantID: "tnt_a", Outbox: es}); err != nil {
					b.Fatal(err)
				}
				if err := s.AckOutbox(ctx, es); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Commit(ctx, &eventstore.Commit{TenantID: "tnt_a", Outbox: batch(10)}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				es, err := s.PendingOutbox(ctx, due.Add(24*time.Hour), 100)
				if err != nil || len(es) != 10 {
					b.Fatalf("%d entries, %v", len(es), err)
				}
			}
		})
	}
}
