package dynamostore

// The single table's key schema. infra/ builds the same table from these names;
// local mode creates it when missing (EnsureTable). Changing any of them is a
// data migration.
const (
	AttrPK        = "pk"        // partition key (S)
	AttrSK        = "sk"        // sort key (S)
	IndexOutbox   = "gsi1"      // sparse GSI over pending outbox entries
	AttrGSI1PK    = "gsi1pk"    // (S) "OUTBOX#<shard>"
	AttrGSI1SK    = "gsi1sk"    // (S) "<dueAt UTC 2006-01-02T15:04:05.000000000Z (fixed width)>#<work id>"
	AttrExpiresAt = "expiresAt" // (N) epoch seconds; the table's TTL attribute
	OutboxShards  = 4           // outbox GSI partitions, queried in turn by the sweep
)
