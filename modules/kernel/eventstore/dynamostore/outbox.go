package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"golang.org/x/sync/errgroup"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// ackConcurrency bounds the parallel conditional deletes of one AckOutbox.
const ackConcurrency = 16

// outboxShardLimit is how many index keys PendingOutbox and ParkedOutbox
// read from each of shards shards for a page of limit entries: about twice
// the page in all (at least 2 a shard), not limit from every shard.
func outboxShardLimit(limit, shards int) int {
	return max(2, (2*limit+shards-1)/shards)
}

// PendingOutbox implements eventstore.Outbox: it queries every shard of the
// outbox index (gsi1) in parallel (at most outboxQueryConcurrency at a time) for
// its earliest entries due by dueBy (outboxShardLimit of them each, about
// twice the page in all), merges them by due time and fetches them from the
// table in that order (consistent BatchGetItem) until the page is full.
// Entries acknowledged, rescheduled past dueBy or parked since the index
// read are skipped and the next keys take their place; items that do not
// decode are logged and taken out of the index (quarantineOutbox). The
// page is in due order and holds each shard's earliest
// entries; across shards the order is approximate (an entry of a shard whose
// earlier entries filled its share waits for a later page). limit <= 0
// means 100. Parked entries (eventstore.ParkedAt) are never pending. The
// index is eventually consistent: an entry committed a moment ago may show
// up on a later call, and a page may hold fewer than limit entries while
// more are due.
func (s *Store) PendingOutbox(ctx context.Context, dueBy time.Time, limit int) ([]eventstore.OutboxEntry, error) {
	if limit <= 0 {
		limit = defaultOutboxLimit
	}
	// '$' sorts right after '#': every "<dueBy>#<id>" is below the bound.
	bound := fmtDueAt(dueBy) + "$"
	if parked := fmtDueAt(eventstore.ParkedAt); bound > parked {
		bound = parked
	}
	out, err := s.readOutbox(ctx, limit, "#sk < :b", bound, func(e eventstore.OutboxEntry) bool {
		return !e.DueAt.After(dueBy) && e.DueAt.Before(eventstore.ParkedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	return out, nil
}

// ParkedOutbox implements eventstore.Outbox: the parked entries (DueAt =
// eventstore.ParkedAt) of every shard of gsi1, read like PendingOutbox
// (each shard's in id order). limit <= 0 means 100.
func (s *Store) ParkedOutbox(ctx context.Context, limit int) ([]eventstore.OutboxEntry, error) {
	if limit <= 0 {
		limit = defaultOutboxLimit
	}
	out, err := s.readOutbox(ctx, limit, "#sk >= :b", fmtDueAt(eventstore.ParkedAt), func(e eventstore.OutboxEntry) bool {
		return e.DueAt.Equal(eventstore.ParkedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("parked outbox: %w", err)
	}
	return out, nil
}

// readOutbox reads the earliest entries of gsi1 whose gsi1sk satisfies cond
// (against :b = bound) on every shard (outboxShardLimit each), merges them by
// gsi1sk and fetches them from the table in that order until limit current
// items for which keep holds are found, and returns those in the order of
// their current gsi1sk.
func (s *Store) readOutbox(ctx context.Context, limit int, cond, bound string, keep func(eventstore.OutboxEntry) bool) ([]eventstore.OutboxEntry, error) {
	keys, err := s.queryShards(ctx, s.outboxShards, outboxQueryConcurrency, outboxShardLimit(limit, s.outboxShards), func(shard int) *dynamodb.QueryInput {
		return &dynamodb.QueryInput{
			TableName:                 &s.table,
			IndexName:                 aws.String(IndexOutbox),
			KeyConditionExpression:    aws.String("#pk = :pk AND " + cond),
			ExpressionAttributeNames:  map[string]string{"#pk": AttrGSI1PK, "#sk": AttrGSI1SK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(gsi1Prefix + strconv.Itoa(shard)), ":b": str(bound)},
		}
	}, AttrGSI1PK, AttrGSI1SK)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b indexKey) int { return strings.Compare(a.sk, b.sk) })
	type keyed struct {
		sk string
		e  eventstore.OutboxEntry
	}
	got := make([]keyed, 0, min(limit, len(keys)))
	seen := make(map[string]bool, min(limit, len(keys))) // a lagging index may list an entry twice
	var bad []map[string]types.AttributeValue
	for first := true; len(keys) > 0 && len(got) < limit; first = false {
		// The first call fetches what the page needs; once entries were
		// skipped, full batches, so that a lagging index costs few calls.
		n := batchGetMax
		if first {
			n = limit - len(got)
		}
		n = min(n, batchGetMax, len(keys))
		batch := keys[:n]
		keys = keys[n:]
		items, err := s.batchGet(ctx, batch)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it == nil || len(got) == limit {
				continue // acknowledged since the index was read, or the page is full
			}
			pk := getS(it, AttrPK)
			if seen[pk] {
				continue
			}
			seen[pk] = true
			e, err := decodeOutbox(it)
			if err != nil {
				// One bad item must not stop the work path: log its key
				// (never its payload), take it out of the index and go on.
				slog.Default().ErrorContext(ctx, "outbox item does not decode; taken out of the outbox index, kept in the table",
					slog.String("pk", pk), slog.Any("error", err))
				bad = append(bad, it)
				continue
			}
			if keep(e) {
				got = append(got, keyed{sk: getS(it, AttrGSI1SK), e: e})
			}
		}
	}
	for _, it := range bad {
		s.quarantineOutbox(ctx, it)
	}
	// The current items' order (an entry may have moved since the index read).
	slices.SortFunc(got, func(a, b keyed) int { return strings.Compare(a.sk, b.sk) })
	out := make([]eventstore.OutboxEntry, len(got))
	for i, k := range got {
		out[i] = k.e
	}
	return out, nil
}

// attrQuarantinedAt marks an outbox item taken out of the outbox index
// because it does not decode (RFC 3339 time).
const attrQuarantinedAt = "outboxQuarantinedAt"

// quarantineOutbox takes an outbox item that does not decode out of the
// outbox index (REMOVE gsi1pk, gsi1sk; the item stays in the table with
// outboxQuarantinedAt, for an operator): the sweep reads a few index keys a
// shard, so items left in it would hide every later entry of their shard
// from every sweep (review finding). Only while the item still has the
// index key it was read with; failures are logged (the next read tries
// again).
func (s *Store) quarantineOutbox(ctx context.Context, it map[string]types.AttributeValue) {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       map[string]types.AttributeValue{AttrPK: it[AttrPK], AttrSK: it[AttrSK]},
		UpdateExpression:          aws.String("REMOVE #gpk, #gsk SET #q = :now"),
		ConditionExpression:       aws.String("#gsk = :sk"),
		ExpressionAttributeNames:  map[string]string{"#gpk": AttrGSI1PK, "#gsk": AttrGSI1SK, "#q": attrQuarantinedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":sk": str(getS(it, AttrGSI1SK)), ":now": str(s.clock.Now().UTC().Format(time.RFC3339Nano))},
	})
	var cfe *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &cfe) {
		slog.Default().ErrorContext(ctx, "outbox item does not decode and could not be taken out of the index",
			slog.String("pk", getS(it, AttrPK)), slog.Any("error", err))
	}
}

// AckOutbox implements eventstore.Outbox with one conditional DeleteItem per
// entry (at most ackConcurrency at a time; BatchWriteItem takes no
// conditions). Entries are identified by TenantID and ID, as PendingOutbox
// returns them, and an entry is deleted only if its stored dueAt is still
// the acknowledged entry's DueAt: an entry rescheduled, parked, replayed or
// re-committed since has another DueAt and is kept. A missing or kept entry
// is no error. Throttled deletes are retried by the SDK's retryer; the first
// failure cancels the deletes not yet sent and fails the call (the entries
// not deleted are handed again; consumers dedupe).
func (s *Store) AckOutbox(ctx context.Context, entries []eventstore.OutboxEntry) error {
	type ack struct {
		id, pk, due string
	}
	seen := make(map[ack]bool, len(entries))
	acks := make([]ack, 0, len(entries))
	for _, e := range entries {
		if e.ID == "" {
			return fmt.Errorf("ack outbox: entry without id: %w", eventstore.ErrInvalid)
		}
		if err := checkTenant(e.TenantID); err != nil {
			return fmt.Errorf("ack outbox %s: %w", e.ID, err)
		}
		a := ack{id: e.ID, pk: outboxPK(e.TenantID, e.ID), due: fmtDueAt(e.DueAt)}
		if !seen[a] {
			seen[a] = true
			acks = append(acks, a)
		}
	}
	if len(acks) == 0 {
		return nil
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(ackConcurrency)
	for _, a := range acks {
		g.Go(func() error {
			_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName:                 &s.table,
				Key:                       itemKey(a.pk, skOutbox),
				ConditionExpression:       aws.String("#due = :due"),
				ExpressionAttributeNames:  map[string]string{"#due": attrDueAt},
				ExpressionAttributeValues: map[string]types.AttributeValue{":due": str(a.due)},
			})
			if err != nil && !isCode[*types.ConditionalCheckFailedException](err) {
				return fmt.Errorf("%s: %w", a.id, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("ack outbox: %w", err)
	}
	return nil
}

// RescheduleOutbox implements eventstore.Outbox: it sets DueAt, Attempt and
// LastError (truncated to eventstore.MaxLastError bytes; "" removes it) of the
// entry identified by TenantID and ID, moving it in the index. A missing entry
// is no error and is not created.
func (s *Store) RescheduleOutbox(ctx context.Context, e eventstore.OutboxEntry) error {
	if e.ID == "" {
		return fmt.Errorf("reschedule outbox: entry without id: %w", eventstore.ErrInvalid)
	}
	if err := checkTenant(e.TenantID); err != nil {
		return fmt.Errorf("reschedule outbox %s: %w", e.ID, err)
	}
	names := map[string]string{"#due": attrDueAt, "#attempt": attrAttempt, "#gsk": AttrGSI1SK, "#err": attrLastError}
	values := map[string]types.AttributeValue{
		":due":     str(fmtDueAt(e.DueAt)),
		":attempt": num(int64(e.Attempt)),
		":gsk":     str(outboxGSI1SK(e.DueAt, e.ID)),
	}
	update := "SET #due = :due, #attempt = :attempt, #gsk = :gsk"
	if msg := eventstore.TruncateLastError(e.LastError); msg != "" {
		update += ", #err = :err"
		values[":err"] = str(msg)
	} else {
		update += " REMOVE #err"
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(outboxPK(e.TenantID, e.ID), skOutbox),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		UpdateExpression:          aws.String(update),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil && !isCode[*types.ConditionalCheckFailedException](err) {
		return fmt.Errorf("reschedule outbox %s: %w", e.ID, err)
	}
	return nil
}
