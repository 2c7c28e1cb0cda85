// Package adapters keeps the audit log in the event store (rows outside any
// commit, eventstore.RecordWriter) and records the rpc audit hook's entries
// through a buffered Writer.
package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/audit/app"
	"github.com/switchboard-dev/switchboard/modules/audit/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// Collection is the rows' collection. Persisted.
const Collection = "audit"

// ListShards spreads each audit list partition over this many write shards:
// every API call of a tenant writes one entry into three lists (all, its
// principal's, its outcome's), and one principal or one outcome may take
// all of a tenant's traffic, so each list is sharded like the tenant's
// busiest lists (ADR 0007: about 1,000 writes/s per shard).
const ListShards = 32

// The audit lists. Name, Slot and Shards are persisted.
var (
	ListAll         = eventstore.List{Name: "audit", Slot: 1, Shards: ListShards}
	ListByPrincipal = eventstore.List{Name: "audit-by-principal", Slot: 2, Shards: ListShards}
	ListByOutcome   = eventstore.List{Name: "audit-by-outcome", Slot: 3, Shards: ListShards}
)

// sortLayout orders entries by time in text order (fixed width, UTC).
const sortLayout = "2006-01-02T15:04:05.000000000Z"

// Store is what the log needs of the event store.
type Store interface {
	eventstore.RecordWriter
	eventstore.RecordReader
}

// Log implements app.Log: each entry is a row keyed by its audit id (one
// item each on DynamoDB), in the lists all, by principal (when there is
// one) and by outcome, sorted by At; it expires at At + Retention.
type Log struct {
	Store     Store
	Retention time.Duration // <= 0: kept forever
}

var _ app.Log = (*Log)(nil)

// Append implements app.Log.
func (l *Log) Append(ctx context.Context, tenantID string, entries []domain.Entry) error {
	rows := make([]eventstore.Record, 0, len(entries))
	for _, e := range entries {
		stored := e
		stored.AuditID, stored.TenantID = "", "" // the row's key and tenant (an item under 1 KB: 1 write unit)
		data, err := eventstore.MarshalJSON(stored)
		if err != nil {
			return fmt.Errorf("append audit entries: %s: %w", e.AuditID, err)
		}
		sort := e.At.UTC().Format(sortLayout)
		r := eventstore.Record{Collection: Collection, Key: e.AuditID, Data: data, Lists: []eventstore.ListEntry{
			{List: ListAll, Sort: sort},
			{List: ListByOutcome, Partition: e.Outcome, Sort: sort},
		}}
		if e.Principal != "" {
			r.Lists = append(r.Lists, eventstore.ListEntry{List: ListByPrincipal, Partition: e.Principal, Sort: sort})
		}
		if l.Retention > 0 {
			r.ExpiresAt = e.At.Add(l.Retention)
		}
		rows = append(rows, r)
	}
	err := l.Store.PutRecords(ctx, tenantID, rows)
	if !refused(err) {
		if err != nil {
			return fmt.Errorf("append audit entries: %w", err)
		}
		return nil
	}
	// One row refused for good refuses the call: write them one by one.
	var bad []string
	for i, r := range rows {
		err := l.Store.PutRecords(ctx, tenantID, []eventstore.Record{r})
		switch {
		case refused(err):
			bad = append(bad, entries[i].InvocationID)
		case err != nil:
			return fmt.Errorf("append audit entries: %w", err)
		}
	}
	return fmt.Errorf("append audit entries: invocations %v: %w", bad, app.ErrEntriesRefused)
}

// refused reports a store error that no retry mends.
func refused(err error) bool {
	return errors.Is(err, eventstore.ErrTooLarge) || errors.Is(err, eventstore.ErrInvalid)
}

// List implements app.Log.
func (l *Log) List(ctx context.Context, tenantID string, q app.Query) ([]domain.Entry, string, error) {
	lq := eventstore.ListQuery{List: ListAll, Page: eventstore.Page{Limit: q.Limit, Cursor: q.Cursor, Descending: true}}
	switch {
	case q.Principal != "":
		lq.List, lq.Partition = ListByPrincipal, q.Principal
	case q.Outcome != "":
		lq.List, lq.Partition = ListByOutcome, q.Outcome
	}
	if !q.From.IsZero() {
		lq.From = q.From.UTC().Format(sortLayout)
	}
	if !q.To.IsZero() {
		lq.To = q.To.UTC().Format(sortLayout)
	}
	rows, next, err := l.Store.ListRecords(ctx, tenantID, lq)
	if err != nil {
		if q.Cursor != "" && errors.Is(err, eventstore.ErrInvalid) {
			return nil, "", app.ErrInvalidCursor.Wrap(err)
		}
		return nil, "", fmt.Errorf("list audit entries: %w", err)
	}
	out := make([]domain.Entry, 0, len(rows))
	for _, r := range rows {
		var e domain.Entry
		if err := json.Unmarshal(r.Data, &e); err != nil {
			return nil, "", fmt.Errorf("list audit entries: decode %s: %w", r.Key, err)
		}
		e.AuditID, e.TenantID = r.Key, tenantID
		out = append(out, e)
	}
	return out, next, nil
}
