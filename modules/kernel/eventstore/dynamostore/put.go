package dynamostore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

const (
	batchWriteMax      = 25 // BatchWriteItem's limit of requests per call
	putConcurrency     = 4  // BatchWriteItem calls of one PutRecords at a time
	putUnprocessedMax  = 8  // rounds of re-sending unprocessed items before giving up
	putRetryBaseMillis = 10
)

// PutRecords implements eventstore.RecordWriter with BatchWriteItem: the rows
// are validated and encoded as a commit's records (one item each, its list
// keys on it), then written 25 per call, at most putConcurrency calls at a
// time, re-sending the items DynamoDB leaves unprocessed (throttling) with
// a jittered backoff. A write of one item costs its size in write units plus
// one per list index it is in, half what the same row costs in a
// transaction.
func (s *Store) PutRecords(ctx context.Context, tenantID string, rows []eventstore.Record) error {
	if err := checkTenant(tenantID); err != nil {
		return fmt.Errorf("put records: %w", err)
	}
	reqs := make([]types.WriteRequest, 0, len(rows))
	seen := make(map[string]bool, len(rows))
	for i := range rows {
		r := &rows[i]
		what := "record " + r.Collection + "/" + r.Key
		if r.Collection == "" || r.Key == "" || strings.Contains(r.Collection, keySep) {
			return fmt.Errorf("put records: %s: empty collection or key, or %q in the collection: %w", what, keySep, eventstore.ErrInvalid)
		}
		if err := eventstore.ValidatePut(*r); err != nil {
			return fmt.Errorf("put records: %w", err)
		}
		if seen[r.Collection+keySep+r.Key] {
			return fmt.Errorf("put records: %s twice: %w", what, eventstore.ErrInvalid)
		}
		seen[r.Collection+keySep+r.Key] = true
		item, err := putItem(tenantID, r, what)
		if err != nil {
			return fmt.Errorf("put records: %w", err)
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(putConcurrency)
	for len(reqs) > 0 {
		batch := reqs[:min(len(reqs), batchWriteMax)]
		reqs = reqs[len(batch):]
		g.Go(func() error { return s.batchWrite(gctx, batch) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("put records: %w", err)
	}
	return nil
}

// batchWrite writes one batch, re-sending what DynamoDB leaves unprocessed.
func (s *Store) batchWrite(ctx context.Context, batch []types.WriteRequest) error {
	for round := 0; ; round++ {
		res, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{s.table: batch},
		})
		if err != nil {
			return fmt.Errorf("batch write: %w", err)
		}
		batch = res.UnprocessedItems[s.table]
		if len(batch) == 0 {
			return nil
		}
		if round == putUnprocessedMax {
			return fmt.Errorf("batch write: %d items still unprocessed after %d rounds (throttled)", len(batch), round+1)
		}
		backoff := time.Duration(putRetryBaseMillis<<round)*time.Millisecond + rand.N(putRetryBaseMillis*time.Millisecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
}
