package dynamostore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// batchWriteMax is DynamoDB's limit of requests in one BatchWriteItem.
const batchWriteMax = 25

// PendingOutbox implements eventstore.Outbox: it queries every shard of the
// outbox index (gsi1) in parallel (at most queryConcurrency at a time) for
// up to limit entries due by dueBy each, merges them by due time, and fetches
// the first limit entries from the table (one consistent BatchGetItem per 100;
// entries acknowledged or moved past dueBy meanwhile are skipped). limit <= 0
// means 100. Parked entries (eventstore.ParkedAt) are never pending. The index
// is eventually consistent: an entry committed a moment ago may show up on a
// later call.
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
// eventstore.ParkedAt) of every shard of gsi1, read like PendingOutbox.
// limit <= 0 means 100.
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

// readOutbox reads up to limit entries of gsi1 whose gsi1sk satisfies cond
// (against :b = bound) on every shard, earliest first, fetches them from the
// table and keeps those for which keep (on the current item) holds.
func (s *Store) readOutbox(ctx context.Context, limit int, cond, bound string, keep func(eventstore.OutboxEntry) bool) ([]eventstore.OutboxEntry, error) {
	keys, err := s.queryShards(ctx, s.outboxShards, limit, func(shard int) *dynamodb.QueryInput {
		return &dynamodb.QueryInput{
			TableName:                 &s.table,
			IndexName:                 aws.String(IndexOutbox),
			KeyConditionExpression:    aws.String("#pk = :pk AND " + cond),
			ExpressionAttributeNames:  map[string]string{"#pk": AttrGSI1PK, "#sk": AttrGSI1SK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(gsi1Prefix + strconv.Itoa(shard)), ":b": str(bound)},
		}
	}, AttrGSI1SK)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b indexKey) int { return strings.Compare(a.sk, b.sk) })
	keys = keys[:min(limit, len(keys))]
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	type keyed struct {
		sk string
		e  eventstore.OutboxEntry
	}
	got := make([]keyed, 0, len(items))
	for _, it := range items {
		if it == nil {
			continue // acknowledged since the index was read
		}
		e, err := decodeOutbox(it)
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", getS(it, AttrPK), err)
		}
		if keep(e) {
			got = append(got, keyed{sk: getS(it, AttrGSI1SK), e: e})
		}
	}
	// The current items' order (an entry may have moved since the index read).
	slices.SortFunc(got, func(a, b keyed) int { return strings.Compare(a.sk, b.sk) })
	out := make([]eventstore.OutboxEntry, len(got))
	for i, k := range got {
		out[i] = k.e
	}
	return out, nil
}

// AckOutbox implements eventstore.Outbox with BatchWriteItem deletes (25 at a
// time, unprocessed deletes re-sent). Entries are identified by TenantID and
// ID, as PendingOutbox returns them. Deleting a missing entry is no error.
func (s *Store) AckOutbox(ctx context.Context, entries []eventstore.OutboxEntry) error {
	seen := make(map[string]bool, len(entries))
	reqs := make([]types.WriteRequest, 0, len(entries))
	for _, e := range entries {
		if e.ID == "" {
			return fmt.Errorf("ack outbox: entry without id: %w", eventstore.ErrInvalid)
		}
		if err := checkTenant(e.TenantID); err != nil {
			return fmt.Errorf("ack outbox %s: %w", e.ID, err)
		}
		pk := outboxPK(e.TenantID, e.ID)
		if seen[pk] {
			continue // BatchWriteItem rejects a key twice
		}
		seen[pk] = true
		reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: itemKey(pk, skOutbox)}})
	}
	for len(reqs) > 0 {
		batch := reqs[:min(batchWriteMax, len(reqs))]
		reqs = reqs[len(batch):]
		for attempt := 0; len(batch) > 0; attempt++ {
			res, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{s.table: batch},
			})
			if err != nil {
				return fmt.Errorf("ack outbox: %w", err)
			}
			batch = res.UnprocessedItems[s.table]
			if len(batch) == 0 {
				break
			}
			if attempt >= 8 {
				return fmt.Errorf("ack outbox: %d deletes still unprocessed after %d attempts", len(batch), attempt+1)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("ack outbox: %w", ctx.Err())
			case <-time.After(time.Duration(10<<attempt) * time.Millisecond):
			}
		}
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
	if msg := truncateError(e.LastError); msg != "" {
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
