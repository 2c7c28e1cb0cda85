// Package dynamostore is the DynamoDB adapter of the eventstore port: the whole
// store lives in one table (see schema.go for its key names and EnsureTable /
// TableInput for its definition).
//
// # Items
//
// Every partition key of tenant data starts with "T#<tenant>#" (tenant ids
// must not contain '#', so no key of one tenant can be read as another's).
// Rows are keyed by entity: every row is an item (a partition) of its own, so
// no collection shares a partition (collections must not contain '#'):
//
//	stream head   pk "T#<tenant>#S#<stream>"           sk "HEAD"                  version
//	event         pk "T#<tenant>#S#<stream>"           sk "E#<20-digit version>"  eventId, type, ..., data | dataz
//	record        pk "T#<tenant>#R#<collection>#<key>" sk "R"                     data | dataz, list<N>pk, list<N>sk, expiresAt (TTL), streamVersion
//	global record pk "G#R#<collection>#<key>"          sk "R"                     data | dataz
//	idempotency   pk "T#<namespace>#I#<key>"           sk "I"                     ..., expiresAt (TTL)
//	outbox entry  pk "T#<tenant>#W#<work id>"          sk "W"                     ..., payload | payloadz, lastError, gsi1pk, gsi1sk
//
// The JSON of an event or a row (data) and an outbox entry's payload are
// binary attributes. A value of at least 512 bytes (blobCompressMin) that
// raw DEFLATE (RFC 1951, no header; compress/flate at the default level)
// makes at least 10% smaller is stored compressed under dataz / payloadz
// instead; any other value plainly under data / payload. An item has one
// of the two, or neither for an empty value. Readers take either
// (items written before compression have the plain one only) and refuse a
// compressed value that does not inflate or inflates beyond 400 KB
// (DynamoDB's item limit): an error, never a panic (PendingOutbox and
// ParkedOutbox log and skip such an entry, like any that does not decode).
// The indexes are KEYS_ONLY and project neither; these attributes are only
// ever written with the whole item (RescheduleOutbox's UpdateItem leaves
// the payload alone), so no stale plain value can remain beside a
// compressed one. Item sizes, and so the commit's checks of DynamoDB's
// item and transaction limits and the write units, are those of the stored
// form (ItemSize of the encoded item); the port's limits
// (eventstore.MaxItemBytes, MaxOutboxPayload) apply to the plain value.
// Idempotency bodies are stored plain.
//
// The idempotency namespace is the record's TenantID, else the commit's
// tenant (the operator uses eventstore.OperatorNamespace). Records and
// idempotency records with an expiry carry the TTL attribute expiresAt
// (seconds, rounded up) and expiresAtNs (exact), which reads check: an item
// past it reads as missing until DynamoDB's TTL deletes it.
//
// # Indexes
//
// Every index is sparse and KEYS_ONLY: a read through one queries the index
// for keys, then fetches the items from the table with one strongly
// consistent BatchGetItem (items gone meanwhile are skipped). Nothing in this
// package scans the table.
//
// Lists (eventstore.ListEntry): a row in list slot N carries list<N>pk
// "T#<tenant>#L#<list name>#<partition>#<shard>" (shard = FNV-1a of the row
// key modulo the list's Shards) and list<N>sk "<entry sort>#<row key>", so it
// is in the index "list<N>". Every Put of a row writes exactly its current
// memberships; slots it is not in are absent, which takes it out of those
// indexes. ListRecords queries every shard of a partition in parallel (one
// row more than the page each), merges by list<N>sk and fetches the page's
// rows, skipping those whose current list<N>pk / list<N>sk is no longer the
// index entry that found them (the index lags the table); its cursor
// (eventstore.EncodeListCursor) holds the last entry's list<N>sk and its
// row's pk, the tie-break of rows of two collections with one list<N>sk.
//
// Outbox: entries carry gsi1pk "OUTBOX#<shard>" (shard = FNV-1a of the work
// id modulo the outbox shard count, DefaultOutboxShards unless
// WithOutboxShards) and gsi1sk "<dueAt, fixed-width UTC>#<work id>", so
// PendingOutbox queries every shard by due time (in parallel, a few keys
// each) and merges. AckOutbox deletes an entry only while its dueAt is the
// acknowledged one (conditional DeleteItem), so that an entry requeued with
// a new due time meanwhile is kept.
// Parked entries (eventstore.ParkedAt) sort after every due time and are
// read by ParkedOutbox through the same index. The shard count may be raised
// (entries in lower shards are still swept) but never lowered: entries in
// shards at or above the new count would never be swept again.
//
// # Commits
//
// A Commit is exactly one TransactWriteItems call. Its conditions carry the
// optimistic concurrency (the head's version), IfAbsent records and the
// idempotency record. An append that names a row of its commit as its
// HeadRecord has no head item: that row's Put carries the stream's version
// (streamVersion) and the condition (absent for a new stream; else present
// with the expected version, or without one, for a row written without an
// append, when each event's attribute_not_exists alone keeps two appends at
// one version apart: ADR 0008); the cancellation reasons DynamoDB returns are mapped to
// eventstore.ErrConflict and eventstore.ErrDuplicate. Validation (sizes, item
// count, list slots, malformed commits) happens before any network call. The
// SDK sets a ClientRequestToken, so its own retries of a transaction are
// idempotent; transactions cancelled by a concurrent transaction
// (TransactionConflict) are retried a few times so that the loser sees the
// winner's outcome.
package dynamostore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"golang.org/x/sync/errgroup"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// Store is the DynamoDB eventstore.Store. It is safe for concurrent use.
type Store struct {
	client       *dynamodb.Client
	table        string
	clock        clock.Clock
	outboxShards int
}

var _ eventstore.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock that decides whether an idempotency record has
// expired (default clock.System).
func WithClock(c clock.Clock) Option { return func(s *Store) { s.clock = c } }

// WithOutboxShards sets the number of outbox index partitions new entries
// are spread over and PendingOutbox reads (default DefaultOutboxShards; n < 1
// keeps the default). It may be raised, never lowered: entries already in
// shards at or above a lowered count would never be swept.
func WithOutboxShards(n int) Option {
	return func(s *Store) {
		if n >= 1 {
			s.outboxShards = n
		}
	}
}

// New returns the store over table, which must exist with the schema of
// TableInput (see EnsureTable).
func New(client *dynamodb.Client, table string, opts ...Option) *Store {
	s := &Store{client: client, table: table, clock: clock.System{}, outboxShards: DefaultOutboxShards}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Default and maximum page sizes of ListRecords (eventstore.Page).
const (
	defaultPageLimit = 50
	maxPageLimit     = 100
	// defaultOutboxLimit is PendingOutbox's and ParkedOutbox's limit when
	// they are given <= 0.
	defaultOutboxLimit = 100
	// listQueryConcurrency bounds the parallel queries of one list page
	// over its shards: the widest list (32 shards) in one round.
	listQueryConcurrency = 32
	// outboxQueryConcurrency bounds the parallel queries of one
	// PendingOutbox or ParkedOutbox over the outbox shards: at
	// DefaultOutboxShards a page is 40 rounds of queries instead of 160 at
	// 16 (on AWS each round is one round trip, a few milliseconds). The
	// fan-out stays bounded whatever the shard count.
	outboxQueryConcurrency = 64
	// batchGetMax is DynamoDB's limit of keys in one BatchGetItem.
	batchGetMax = 100
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
	return s.getRecord(ctx, eventstore.Record{Collection: collection, Key: key}, tenantID, true)
}

// GetGlobalRecord implements eventstore.RecordReader: a consistent read, or
// an eventually consistent one with eventstore.Eventually.
func (s *Store) GetGlobalRecord(ctx context.Context, collection, key string, opts ...eventstore.ReadOption) (eventstore.Record, error) {
	return s.getRecord(ctx, eventstore.Record{Collection: collection, Key: key, Global: true}, "", !slices.Contains(opts, eventstore.Eventually))
}

func (s *Store) getRecord(ctx context.Context, r eventstore.Record, tenantID string, consistent bool) (eventstore.Record, error) {
	what := r.Collection + "/" + r.Key
	if r.Global {
		what = "global " + what
	}
	if r.Collection == "" || r.Key == "" || strings.Contains(r.Collection, keySep) {
		return eventstore.Record{}, fmt.Errorf("get record %s: empty collection or key, or %q in the collection: %w", what, keySep, eventstore.ErrInvalid)
	}
	res, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            getKey(encodeRecord(tenantID, &r)),
		ConsistentRead: aws.Bool(consistent),
	})
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("get record %s: %w", what, err)
	}
	if res.Item == nil || expiredAt(res.Item, s.clock.Now()) {
		return eventstore.Record{}, fmt.Errorf("get record %s: %w", what, eventstore.ErrNotFound)
	}
	if r.Data, err = getBlob(res.Item, attrData, attrDataZ); err != nil {
		return eventstore.Record{}, fmt.Errorf("get record %s: %w", what, err)
	}
	return r, nil
}

// tieReadLimit is the page size of the reads past a shard's limit, through
// the entries that share its last sort key (rows of several collections
// with one Sort and key; rare).
const tieReadLimit = 10

// indexKey is one entry read from a KEYS_ONLY index: the index partition
// and sort keys, and the item's table key.
type indexKey struct {
	pk, sk string
	key    map[string]types.AttributeValue
}

// ListRecords implements eventstore.RecordReader through the list index of
// the list's slot: it queries every shard of the partition in parallel (at
// most listQueryConcurrency at a time), each for one entry more than the page,
// merges them by the index sort key, and fetches the page's rows with one
// consistent BatchGetItem. The index lags the table: rows deleted meanwhile
// are skipped, and so are rows whose current membership of the slot
// (list<N>pk, list<N>sk) is no longer the index entry that found them (they
// moved to another partition or sort, or left the list): a row shows only
// where it belongs now, never on two pages. A page may therefore hold fewer
// rows than the limit while a next cursor follows. The cursor
// (eventstore.EncodeListCursor) names the tenant, list and partition and
// holds the page's last index sort key and its row's table key (entries
// are merged in that order; a cursor of the format before, the sort key
// alone, still reads on after it); a cursor issued for another is
// ErrInvalid.
func (s *Store) ListRecords(ctx context.Context, tenantID string, q eventstore.ListQuery) ([]eventstore.Record, string, error) {
	rows, next, err := s.listRecords(ctx, tenantID, q)
	if err != nil {
		return nil, "", fmt.Errorf("list records %s/%s: %w", q.List.Name, q.Partition, err)
	}
	return rows, next, nil
}

func (s *Store) listRecords(ctx context.Context, tenantID string, q eventstore.ListQuery) ([]eventstore.Record, string, error) {
	if err := checkTenant(tenantID); err != nil {
		return nil, "", err
	}
	if err := eventstore.ValidateList(q.List); err != nil {
		return nil, "", err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultPageLimit
	}
	limit = min(limit, maxPageLimit)
	var after, afterPK string
	if q.Cursor != "" {
		b, err := eventstore.DecodeListCursor(tenantID, q.List, q.Partition, q.Cursor)
		if err != nil {
			return nil, "", err
		}
		// A cursor we issued holds the last entry's sort key and, since
		// ties were seen, NUL and its row's table key (sort keys and row
		// keys hold no NUL): valid UTF-8 within DynamoDB's key bounds.
		// Anything else is forged (400, never a 500 from the query).
		sk, pk, _ := strings.Cut(string(b), "\x00")
		if sk == "" || len(sk) > maxSKBytes || len(pk) > maxPKBytes || !utf8.ValidString(sk) || !utf8.ValidString(pk) {
			return nil, "", fmt.Errorf("bad cursor: %w", eventstore.ErrInvalid)
		}
		after, afterPK = sk, pk
	}
	slot := q.List.Slot
	// The range of list<N>sk to read: lo and hi, each inclusive or not ("":
	// none), from the bounds and the cursor. A cursor with its row's key
	// reads its own sort key again: rows of two collections may share a
	// sort key (the same Sort and row key), and those after the cursor's
	// row in (sort key, table key) order are on the next page.
	lo, loIncl, hi, hiIncl := q.From, true, q.To, false
	switch {
	case after != "" && q.Descending && (hi == "" || after < hi):
		hi, hiIncl = after, afterPK != ""
	case after != "" && !q.Descending && (lo == "" || after >= lo):
		lo, loIncl = after, afterPK != ""
	}
	if lo != "" && hi != "" && (lo > hi || lo == hi && !(loIncl && hiIncl)) {
		return nil, "", nil // an empty range
	}
	cond, values := "#pk = :pk", map[string]types.AttributeValue{}
	switch {
	case lo != "" && hi != "":
		// BETWEEN is inclusive at both ends: the entries at an exclusive
		// end (one per shard at most, each) are dropped below.
		cond += " AND #sk BETWEEN :lo AND :hi"
		values[":lo"], values[":hi"] = str(lo), str(hi)
	case lo != "" && loIncl:
		cond += " AND #sk >= :lo"
		values[":lo"] = str(lo)
	case lo != "":
		cond += " AND #sk > :lo"
		values[":lo"] = str(lo)
	case hi != "" && hiIncl:
		cond += " AND #sk <= :hi"
		values[":hi"] = str(hi)
	case hi != "":
		cond += " AND #sk < :hi"
		values[":hi"] = str(hi)
	}
	shards := listShards(q.List)
	// The entries at an exclusive end, and those of the cursor's sort key
	// up to its row (in paging order), were on earlier pages; each shard
	// is read until limit+3 others, with every tie of its last.
	order := func(a, b indexKey) int {
		c := cmp.Or(strings.Compare(a.sk, b.sk), strings.Compare(getS(a.key, AttrPK), getS(b.key, AttrPK)))
		if q.Descending {
			return -c
		}
		return c
	}
	cursorKey := indexKey{sk: after, key: map[string]types.AttributeValue{AttrPK: str(afterPK)}}
	keep := func(k indexKey) bool {
		return !((hi != "" && !hiIncl && k.sk == hi) || (lo != "" && !loIncl && k.sk == lo) ||
			(afterPK != "" && k.sk == after && order(k, cursorKey) <= 0))
	}
	keys, err := s.queryShardsKeeping(ctx, shards, listQueryConcurrency, limit+3, func(shard int) *dynamodb.QueryInput {
		in := &dynamodb.QueryInput{
			TableName:                 &s.table,
			IndexName:                 aws.String(ListIndex(slot)),
			KeyConditionExpression:    aws.String(cond),
			ExpressionAttributeNames:  map[string]string{"#pk": ListAttrPK(slot), "#sk": ListAttrSK(slot)},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(listPK(tenantID, q.List, q.Partition, shard))},
			ScanIndexForward:          aws.Bool(!q.Descending),
		}
		for k, v := range values {
			in.ExpressionAttributeValues[k] = v
		}
		if len(values) == 0 {
			delete(in.ExpressionAttributeNames, "#sk")
		}
		return in
	}, ListAttrPK(slot), ListAttrSK(slot), keep)
	if err != nil {
		return nil, "", err
	}
	slices.SortFunc(keys, order)
	next := ""
	if len(keys) > limit {
		keys = keys[:limit]
		last := keys[limit-1]
		next = eventstore.EncodeListCursor(tenantID, q.List, q.Partition, []byte(last.sk+"\x00"+getS(last.key, AttrPK)))
	}
	rows, err := s.listPage(ctx, tenantID, slot, keys)
	if err != nil {
		return nil, "", err
	}
	return rows, next, nil
}

// listPage fetches the rows of the list index entries keys (of list slot
// slot) from the table, in the order of keys, skipping the rows deleted since
// the index was read and those whose current membership of the slot is not
// the entry that found them (the index lags the table).
func (s *Store) listPage(ctx context.Context, tenantID string, slot int, keys []indexKey) ([]eventstore.Record, error) {
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	prefix := recordPrefix(tenantID)
	now := s.clock.Now()
	pkAttr, skAttr := ListAttrPK(slot), ListAttrSK(slot)
	rows := make([]eventstore.Record, 0, len(items))
	for i, it := range items {
		if it == nil || expiredAt(it, now) {
			continue // deleted since the index was read, or past its expiry
		}
		if getS(it, pkAttr) != keys[i].pk || getS(it, skAttr) != keys[i].sk {
			continue // moved or left since: it shows where it belongs now
		}
		pk := getS(it, AttrPK)
		coll, key, ok := splitRecordPK(pk, prefix)
		if !ok {
			return nil, fmt.Errorf("list entry of item %q, not a row of the tenant", pk)
		}
		data, err := getBlob(it, attrData, attrDataZ)
		if err != nil {
			return nil, fmt.Errorf("row %s/%s: %w", coll, key, err)
		}
		rows = append(rows, eventstore.Record{Collection: coll, Key: key, Data: data})
	}
	return rows, nil
}

// queryShards runs the query of each shard 0..shards-1 (at most concurrency
// at a time), each for up to limit entries, and returns all entries read,
// with pkAttr and skAttr as their index keys. The first failure cancels the
// other queries and fails the read.
func (s *Store) queryShards(ctx context.Context, shards, concurrency, limit int, input func(shard int) *dynamodb.QueryInput, pkAttr, skAttr string) ([]indexKey, error) {
	return s.queryShardsKeeping(ctx, shards, concurrency, limit, input, pkAttr, skAttr, nil)
}

// queryShardsKeeping is queryShards counting only the entries keep accepts
// (nil: all) toward each shard's limit, and reading each shard on through
// the entries that share the index sort key of its last one, so that a
// merge by (sort key, table key) has every tie at each shard's end.
func (s *Store) queryShardsKeeping(ctx context.Context, shards, concurrency, limit int, input func(shard int) *dynamodb.QueryInput, pkAttr, skAttr string, keep func(indexKey) bool) ([]indexKey, error) {
	results := make([][]indexKey, shards)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for shard := range shards {
		g.Go(func() error {
			in := input(shard)
			// last is the sort key of the last entry read once the shard
			// has its limit ("" before): read on while entries share it.
			last, full := "", false
			for {
				want := limit - len(results[shard])
				if full {
					want = tieReadLimit
				}
				in.Limit = aws.Int32(int32(max(want, 1)))
				res, err := s.client.Query(ctx, in)
				if err != nil {
					return fmt.Errorf("shard %d: %w", shard, err)
				}
				for _, it := range res.Items {
					k := indexKey{pk: getS(it, pkAttr), sk: getS(it, skAttr), key: getKey(it)}
					if full && k.sk != last {
						return nil // past the ties
					}
					if keep == nil || keep(k) {
						results[shard] = append(results[shard], k)
					}
					if !full && len(results[shard]) >= limit {
						full, last = true, k.sk
						if keep == nil {
							return nil
						}
					}
				}
				if len(res.LastEvaluatedKey) == 0 {
					return nil
				}
				in.ExclusiveStartKey = res.LastEvaluatedKey
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var all []indexKey
	for _, r := range results {
		all = append(all, r...)
	}
	return all, nil
}

// batchGet fetches the items of keys from the table with consistent reads,
// batchGetMax keys per call, re-sending unprocessed keys. The result is
// parallel to keys; an item that does not exist is nil.
func (s *Store) batchGet(ctx context.Context, keys []indexKey) ([]map[string]types.AttributeValue, error) {
	out := make([]map[string]types.AttributeValue, len(keys))
	index := make(map[[2]string][]int, len(keys))
	for i, k := range keys {
		id := [2]string{getS(k.key, AttrPK), getS(k.key, AttrSK)}
		index[id] = append(index[id], i)
	}
	pending := make([]map[string]types.AttributeValue, 0, len(index))
	seen := make(map[[2]string]bool, len(index))
	for _, k := range keys {
		id := [2]string{getS(k.key, AttrPK), getS(k.key, AttrSK)}
		if !seen[id] { // BatchGetItem rejects a key twice
			seen[id] = true
			pending = append(pending, k.key)
		}
	}
	for len(pending) > 0 {
		batch := pending[:min(batchGetMax, len(pending))]
		pending = pending[len(batch):]
		for attempt := 0; len(batch) > 0; attempt++ {
			res, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: map[string]types.KeysAndAttributes{s.table: {Keys: batch, ConsistentRead: aws.Bool(true)}},
			})
			if err != nil {
				return nil, fmt.Errorf("batch get: %w", err)
			}
			for _, it := range res.Responses[s.table] {
				for _, i := range index[[2]string{getS(it, AttrPK), getS(it, AttrSK)}] {
					out[i] = it
				}
			}
			batch = res.UnprocessedKeys[s.table].Keys
			if len(batch) == 0 {
				break
			}
			if attempt >= 8 {
				return nil, fmt.Errorf("batch get: %d keys still unprocessed after %d attempts", len(batch), attempt+1)
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("batch get: %w", ctx.Err())
			case <-time.After(time.Duration(10<<attempt) * time.Millisecond):
			}
		}
	}
	return out, nil
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
