package dynamostore

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// ListPageAt assembles a page of ListRecords from one list index entry, as
// if the index had returned the row (rowKey, collection) in shard shard of
// partition under sort, whatever the row's current memberships: it lets
// tests play a lagging index deterministically.
func (s *Store) ListPageAt(ctx context.Context, tenantID, collection, rowKey string, l eventstore.List, partition string, shard int, sort string) ([]eventstore.Record, error) {
	k := indexKey{
		pk:  listPK(tenantID, l, partition, shard),
		sk:  listSK(sort, rowKey),
		key: map[string]types.AttributeValue{AttrPK: str(recordPK(tenantID, collection, rowKey)), AttrSK: str(skRecord)},
	}
	return s.listPage(ctx, tenantID, l.Slot, []indexKey{k})
}

// OutboxQueryConcurrency is the bound of PendingOutbox's parallel queries.
const OutboxQueryConcurrency = outboxQueryConcurrency

// Realistic values of the compression tests (blob_internal_test.go).
var (
	PublicationPayload = publicationPayload
	EmailPayload       = emailPayload
	RandomBytes        = randomBytes
)

// BlobCompressMin is the size from which values are stored compressed.
const BlobCompressMin = blobCompressMin
