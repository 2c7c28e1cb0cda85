// Package dynamostore is the DynamoDB adapter of the eventstore port: the whole
// store lives in one table (see schema.go for its key names and EnsureTable /
// TableInput for its definition).
//
// # Items
//
// Every partition key of tenant data starts with "T#<tenant>#" (tenant ids
// must not contain '#', so no key of one tenant can be read as another's):
//
//	stream head   pk "T#<tenant>#S#<stream>"     sk "HEAD"                  version
//	event         pk "T#<tenant>#S#<stream>"     sk "E#<20-digit version>"  eventId, type, ...
//	record        pk "T#<tenant>#R#<collection>" sk <key>                   data
//	global record pk "G#R#<collection>"          sk <key>                   data
//	idempotency   pk "T#<namespace>#I#<key>"     sk "I"                     ..., expiresAt (TTL)
//	outbox entry  pk "T#<tenant>#W#<work id>"    sk "W"                     ..., gsi1pk, gsi1sk
//
// The idempotency namespace is the record's TenantID, else the commit's
// tenant (the operator uses eventstore.OperatorNamespace).
//
// Outbox entries are also in the sparse index gsi1: gsi1pk "OUTBOX#<shard>"
// (shard = FNV-1a of the work id modulo OutboxShards) and gsi1sk
// "<dueAt, fixed-width UTC>#<work id>", so the sweep queries every shard by
// due time. Nothing in this package scans the table.
//
// # Commits
//
// A Commit is exactly one TransactWriteItems call. Its conditions carry the
// optimistic concurrency (the head's version), IfAbsent records and the
// idempotency record; the cancellation reasons DynamoDB returns are mapped to
// eventstore.ErrConflict and eventstore.ErrDuplicate. Validation (sizes, item
// count, malformed commits) happens before any network call. The SDK sets a
// ClientRequestToken, so its own retries of a transaction are idempotent;
// transactions cancelled by a concurrent transaction (TransactionConflict) are
// retried a few times so that the loser sees the winner's outcome.
package dynamostore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// Store is the DynamoDB eventstore.Store. It is safe for concurrent use.
type Store struct {
	client *dynamodb.Client
	table  string
	clock  clock.Clock
}

var _ eventstore.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock that decides whether an idempotency record has
// expired (default clock.System).
func WithClock(c clock.Clock) Option { return func(s *Store) { s.clock = c } }

// New returns the store over table, which must exist with the schema of
// TableInput (see EnsureTable).
func New(client *dynamodb.Client, table string, opts ...Option) *Store {
	s := &Store{client: client, table: table, clock: clock.System{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Default and maximum page sizes of ListRecords (eventstore.Page).
const (
	defaultPageLimit = 50
	maxPageLimit     = 100
	// defaultOutboxLimit is PendingOutbox's limit when it is given <= 0.
	defaultOutboxLimit = 100
)

// ReadStream implements eventstore.StreamReader with consistent reads, paging
// through DynamoDB's 1 MB query pages as needed.
func (s *Store) ReadStream(ctx context.Context, tenantID, streamID string, from int64, limit int) ([]eventstore.Event, error) {
	if err := checkTenant(tenantID); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	if streamID == "" {
		return nil, fmt.Errorf("read stream: empty stream id: %w", eventstore.ErrInvalid)
	}
	from = max(from, 1)
	pk := streamPK(tenantID, streamID)
	var out []eventstore.Event
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		ConsistentRead:         aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   str(pk),
			":from": str(eventSK(from)),
			":to":   str(eventSKMax),
		},
	}
	for {
		if limit > 0 {
			in.Limit = aws.Int32(int32(min(limit-len(out), 1000)))
		}
		res, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", streamID, err)
		}
		for _, it := range res.Items {
			e, err := decodeEvent(it, tenantID, streamID)
			if err != nil {
				return nil, fmt.Errorf("read stream %s: %w", streamID, err)
			}
			out = append(out, e)
		}
		if len(res.LastEvaluatedKey) == 0 || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// GetRecord implements eventstore.RecordReader (consistent read).
func (s *Store) GetRecord(ctx context.Context, tenantID, collection, key string) (eventstore.Record, error) {
	if err := checkTenant(tenantID); err != nil {
		return eventstore.Record{}, fmt.Errorf("get record %s/%s: %w", collection, key, err)
	}
	return s.getRecord(ctx, recordPK(tenantID, collection), collection, key, false)
}

// GetGlobalRecord implements eventstore.RecordReader (consistent read).
func (s *Store) GetGlobalRecord(ctx context.Context, collection, key string) (eventstore.Record, error) {
	return s.getRecord(ctx, globalPK(collection), collection, key, true)
}

func (s *Store) getRecord(ctx context.Context, pk, collection, key string, global bool) (eventstore.Record, error) {
	if collection == "" || key == "" {
		return eventstore.Record{}, fmt.Errorf("get record %s/%s: empty collection or key: %w", collection, key, eventstore.ErrInvalid)
	}
	res, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(pk, key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("get record %s/%s: %w", collection, key, err)
	}
	if res.Item == nil {
		return eventstore.Record{}, fmt.Errorf("get record %s/%s: %w", collection, key, eventstore.ErrNotFound)
	}
	return eventstore.Record{Collection: collection, Key: key, Global: global, Data: getB(res.Item, attrData)}, nil
}

// ListRecords implements eventstore.RecordReader. Reads are consistent. It
// asks DynamoDB for one row more than the page so that the returned cursor
// never points at an empty page; the cursor is the base64url of the last key.
func (s *Store) ListRecords(ctx context.Context, tenantID, collection string, p eventstore.Page) ([]eventstore.Record, string, error) {
	if err := checkTenant(tenantID); err != nil {
		return nil, "", fmt.Errorf("list records %s: %w", collection, err)
	}
	if collection == "" {
		return nil, "", fmt.Errorf("list records: empty collection: %w", eventstore.ErrInvalid)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = defaultPageLimit
	}
	limit = min(limit, maxPageLimit)
	pk := recordPK(tenantID, collection)
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
		ScanIndexForward:          aws.Bool(!p.Descending),
	}
	if p.Cursor != "" {
		after, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil || len(after) == 0 {
			return nil, "", fmt.Errorf("list records %s: bad cursor: %w", collection, eventstore.ErrInvalid)
		}
		in.ExclusiveStartKey = itemKey(pk, string(after))
	}
	var rows []eventstore.Record
	for {
		in.Limit = aws.Int32(int32(limit + 1 - len(rows)))
		res, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, "", fmt.Errorf("list records %s: %w", collection, err)
		}
		for _, it := range res.Items {
			rows = append(rows, eventstore.Record{Collection: collection, Key: getS(it, AttrSK), Data: getB(it, attrData)})
		}
		if len(rows) > limit {
			rows = rows[:limit]
			return rows, base64.RawURLEncoding.EncodeToString([]byte(rows[limit-1].Key)), nil
		}
		if len(res.LastEvaluatedKey) == 0 {
			return rows, "", nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// GetIdempotency implements eventstore.IdempotencyReader (consistent read);
// tenantID is the record's namespace (a tenant or eventstore.OperatorNamespace)
// and is set on the result. A record whose ExpiresAt is not after the clock's
// now is ErrNotFound.
func (s *Store) GetIdempotency(ctx context.Context, tenantID, key string) (eventstore.Idempotency, error) {
	if err := checkTenant(tenantID); err != nil {
		return eventstore.Idempotency{}, fmt.Errorf("get idempotency %s: %w", key, err)
	}
	if key == "" {
		return eventstore.Idempotency{}, fmt.Errorf("get idempotency: empty key: %w", eventstore.ErrInvalid)
	}
	res, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            itemKey(idemPK(tenantID, key), skIdem),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return eventstore.Idempotency{}, fmt.Errorf("get idempotency %s: %w", key, err)
	}
	if res.Item == nil {
		return eventstore.Idempotency{}, fmt.Errorf("get idempotency %s: %w", key, eventstore.ErrNotFound)
	}
	rec, expiresNs, err := decodeIdem(res.Item, tenantID, key)
	if err != nil {
		return eventstore.Idempotency{}, fmt.Errorf("get idempotency %s: %w", key, err)
	}
	if expiresNs != 0 && s.clock.Now().UnixNano() >= expiresNs {
		return eventstore.Idempotency{}, fmt.Errorf("get idempotency %s: expired: %w", key, eventstore.ErrNotFound)
	}
	return rec, nil
}

// checkTenant rejects tenant ids that would make keys ambiguous.
func checkTenant(tenantID string) error {
	if tenantID == "" {
		return fmt.Errorf("empty tenant id: %w", eventstore.ErrInvalid)
	}
	if strings.Contains(tenantID, keySep) {
		return fmt.Errorf("tenant id %q contains %q: %w", tenantID, keySep, eventstore.ErrInvalid)
	}
	return nil
}

// isCode reports whether err is an API error of the given DynamoDB error type.
func isCode[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}
