package dynamostore

import "strconv"

// The single table's key schema. infra/ builds the same table from these names;
// local mode creates it when missing (EnsureTable). Changing any of them is a
// data migration.
const (
	AttrPK        = "pk"        // partition key (S)
	AttrSK        = "sk"        // sort key (S)
	IndexOutbox   = "gsi1"      // sparse GSI over pending outbox entries (KEYS_ONLY)
	AttrGSI1PK    = "gsi1pk"    // (S) "OUTBOX#<shard>"
	AttrGSI1SK    = "gsi1sk"    // (S) "<dueAt UTC 2006-01-02T15:04:05.000000000Z (fixed width)>#<work id>"
	AttrExpiresAt = "expiresAt" // (N) epoch seconds; the table's TTL attribute

	// DefaultOutboxShards is the number of outbox index partitions (see
	// WithOutboxShards). 100,000 work items/s make 200,000 index writes/s
	// (put and delete of each entry); at 1,000 writes/s per partition that
	// needs at least 200 partitions at perfect balance, and 512 leaves
	// headroom for hash imbalance. It may be raised, never lowered.
	DefaultOutboxShards = 512

	// ListIndexPrefix names the sparse list indexes: "list1" ..
	// "list<eventstore.MaxListSlots>", one per list slot (KEYS_ONLY), keyed by
	// ListAttrPK(slot) and ListAttrSK(slot).
	ListIndexPrefix = "list"
)

// ListIndex is the name of the list index of slot (1..eventstore.MaxListSlots).
func ListIndex(slot int) string { return ListIndexPrefix + strconv.Itoa(slot) }

// ListAttrPK is the partition key attribute (S) of the list index of slot:
// "T#<tenant>#L#<list name>#<partition>#<shard>".
func ListAttrPK(slot int) string { return ListIndex(slot) + "pk" }

// ListAttrSK is the sort key attribute (S) of the list index of slot:
// "<entry sort>#<row key>".
func ListAttrSK(slot int) string { return ListIndex(slot) + "sk" }
