// Package capacity measures what a workload costs on the single DynamoDB
// table, per workload operation and per partition key, and derives the
// design's throughput ceilings from it.
//
// # Recording
//
// A Recorder is installed on the DynamoDB client (Recorder.Option). It asks
// every request for its consumed capacity (ReturnConsumedCapacity = INDEXES)
// and records, per request, the DynamoDB operation, the workload operation it
// served (the label the caller put on the request's context with WithOp, and
// the tenant with WithTenant) and its units per partition key:
//
//   - Read units are DynamoDB's own figures (ConsumedCapacity), attributed to
//     the key read: GetItem to the item's pk, Query to the queried partition
//     ("<index>:<pk>" for an index), BatchGetItem split equally over the keys
//     of each table.
//   - Write units are computed from item sizes by AWS's published rules,
//     because DynamoDB Local's figures for writes follow no AWS rule (it
//     reports 4 units for a transaction of one small Put and 4 for five). See
//     dynamostore.ItemSize and the Recorder's doc for the rules.
//
// Each request also keeps its writes item by item (Request.Writes: the table
// item or index entry, put, update, delete or condition check, in a
// transaction or not, and its units), so that a report can say what the
// write units are made of. An operation that spans several contexts (one
// message's lifecycle: its request, then its work items) is counted once
// when its requests carry the same instance id (WithInstance).
//
// Keys are written as the table's partition key value ("T#<tenant>#S#tenant")
// or, for an index, "<index>:<index partition key value>" ("gsi1:OUTBOX#17").
//
// # Reporting
//
// Recorder.Report (or NewReport over records) sums the units per workload
// operation and per key, marks the keys the workload touched for two or more
// tenants as shared, and computes ceilings: the rate of an operation at which
// its busiest key reaches DynamoDB's per-partition limit (Limits: 1,000 write
// units/s and 3,000 read units/s per partition), platform-wide (over shared
// keys: keys of one tenant scale out with the number of tenants) and for one
// tenant (over all keys that tenant's operations touch). The ceilings follow
// from the measured share of each key, so they are as good as the workload is
// representative: a small sample overstates the imbalance of hashed shards.
//
// NewReportWith takes the table's hashed families (Families: keys whose
// shard is a hash of the item written, such as the outbox index shards and
// the partitions of write-sharded lists). Its write ceilings count such a
// family as a whole: the family's measured units per operation spread over
// its shards, up to the rate at which a shard's mean load plus SpreadSigmas
// standard deviations of its load in one second reach the limit (operations
// arriving at random; each item's writes landing on its shard together).
// Every other key keeps its measured per-key share, and the sample's per-key
// figures stay in the report (OpStats.SamplePlatformWrite,
// SampleTenantWrite) for comparison.
package capacity
