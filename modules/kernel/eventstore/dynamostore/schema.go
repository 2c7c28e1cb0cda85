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
	// WithOutboxShards). Every outbox entry writes its index partition twice
	// (the put and the acknowledging delete, 1 WCU each, mostly within the
	// same second); a delivered message makes 9 entries: 18 index writes
	// (ADR 0008). At 1,000 WCU/s per partition, 2,560 shards take about
	// 124,000 delivered messages/s before the busiest shard's mean plus 3σ
	// of its 1-second load reaches the limit (142,000/s at an even spread),
	// against 100,000/s required; 2,048 would take 99,500/s, 512 about
	// 25,000/s. The cost is on the read side: PendingOutbox and ParkedOutbox
	// query every shard (an idle sweep page is 2,560 queries; on AWS 0.5 RCU
	// each). It may be raised, never lowered. Raised from 512 before any
	// table was deployed, so no migration was needed; raising it on a table
	// in use needs none either (entries in lower shards are still swept).
	DefaultOutboxShards = 2560

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
