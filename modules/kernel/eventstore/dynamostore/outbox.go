package dynamostore

import (
	"context"
	"fmt"
	"slices"
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
// outbox index (gsi1) for entries due by dueBy, earliest first, and merges
// them. limit <= 0 means 100. The index is eventually consistent: an entry
// committed a moment ago may show up on a later call.
func (s *Store) PendingOutbox(ctx context.Context, dueBy time.Time, limit int) ([]eventstore.OutboxEntry, error) {
	if limit <= 0 {
		limit = defaultOutboxLimit
	}
	// '$' sorts right after '#': every "<dueBy>#<id>" is below the bound.
	bound := fmtDueAt(dueBy) + "$"
	type keyed struct {
		sk string
		e  eventstore.OutboxEntry
	}
	var all []keyed
	for shard := range OutboxShards {
		in := &dynamodb.QueryInput{
			TableName:                 &s.table,
			IndexName:                 aws.String(IndexOutbox),
			KeyConditionExpression:    aws.String("#pk = :pk AND #sk < :bound"),
			ExpressionAttributeNames:  map[string]string{"#pk": AttrGSI1PK, "#sk": AttrGSI1SK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(fmt.Sprintf("%s%d", gsi1Prefix, shard)), ":bound": str(bound)},
		}
		got := 0
		for got < limit {
			in.Limit = aws.Int32(int32(limit - got))
			res, err := s.client.Query(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("pending outbox: shard %d: %w", shard, err)
			}
			for _, it := range res.Items {
				e, err := decodeOutbox(it)
				if err != nil {
					return nil, fmt.Errorf("pending outbox: shard %d: %w", shard, err)
				}
				all = append(all, keyed{sk: getS(it, AttrGSI1SK), e: e})
				got++
			}
			if len(res.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = res.LastEvaluatedKey
		}
	}
	slices.SortFunc(all, func(a, b keyed) int { return strings.Compare(a.sk, b.sk) })
	out := make([]eventstore.OutboxEntry, 0, min(limit, len(all)))
	for _, k := range all[:min(limit, len(all))] {
		out = append(out, k.e)
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

// RescheduleOutbox implements eventstore.Outbox: it sets DueAt and Attempt of
// the entry identified by TenantID and ID (moving it in the index). A missing
// entry is no error and is not created.
func (s *Store) RescheduleOutbox(ctx context.Context, e eventstore.OutboxEntry) error {
	if e.ID == "" {
		return fmt.Errorf("reschedule outbox: entry without id: %w", eventstore.ErrInvalid)
	}
	if err := checkTenant(e.TenantID); err != nil {
		return fmt.Errorf("reschedule outbox %s: %w", e.ID, err)
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.table,
		Key:                 itemKey(outboxPK(e.TenantID, e.ID), skOutbox),
		ConditionExpression: aws.String("attribute_exists(pk)"),
		UpdateExpression:    aws.String("SET #due = :due, #attempt = :attempt, #gsk = :gsk"),
		ExpressionAttributeNames: map[string]string{
			"#due": attrDueAt, "#attempt": attrAttempt, "#gsk": AttrGSI1SK,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":due":     str(fmtDueAt(e.DueAt)),
			":attempt": num(int64(e.Attempt)),
			":gsk":     str(outboxGSI1SK(e.DueAt, e.ID)),
		},
	})
	if err != nil && !isCode[*types.ConditionalCheckFailedException](err) {
		return fmt.Errorf("reschedule outbox %s: %w", e.ID, err)
	}
	return nil
}
