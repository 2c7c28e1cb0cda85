// Package eventstore is the port to Switchboard's source of truth: per-entity
// event streams in one store (one DynamoDB table in AWS, one bbolt file in
// local mode), with the records that must change atomically with them.
//
// # The commit
//
// Everything one invocation changes is one Commit, written atomically (one
// DynamoDB TransactWriteItems, one bbolt transaction):
//
//   - Appends: events for one or more streams, each with the version the writer
//     expects the stream to be at (optimistic concurrency). 0 means "new stream".
//   - Records: read-model rows derived from those events (CQRS views kept in
//     step synchronously) and lookup rows (API key -> tenant).
//   - Outbox: work items to hand to the asynchronous work path after commit.
//   - Idempotency: the record of the invocation's response under its key.
//
// Either all of it is written or none of it. Errors:
//
//   - ErrConflict: a stream is not at its expected version (another writer
//     won), or a record written with IfAbsent exists. Re-read and retry.
//   - ErrDuplicate: the idempotency record already exists (a concurrent
//     duplicate committed first). Read it and replay its response.
//   - ErrTooLarge: an event, a record or the idempotency record's Body
//     exceeds MaxItemBytes, an outbox payload MaxOutboxPayload, or all of
//     them together MaxCommitBytes (CheckCommitBytes); the DynamoDB adapter
//     also refuses a commit whose stored items exceed its transaction limit.
//   - ErrInvalid: the commit is malformed (empty tenant, duplicate stream, ...).
//
// # Keys and tenancy
//
// Every key contains the tenant id: no read can return another tenant's data.
// The only exception is Global records, lookups that resolve a tenant from a
// globally unique credential id before the tenant is known (API keys).
//
// # Ordering
//
// A stream's events have versions 1, 2, 3, ... without gaps, in append order.
// Reads of one stream are strongly consistent. Lists of records are ordered by
// key; ids are ULIDs, so descending key order is newest first.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Errors of the store. Adapters wrap them with an operation prefix; test with errors.Is.
var (
	ErrConflict  = errors.New("eventstore: version conflict")
	ErrDuplicate = errors.New("eventstore: idempotency record exists")
	ErrNotFound  = errors.New("eventstore: not found")
	ErrTooLarge  = errors.New("eventstore: item too large")
	ErrInvalid   = errors.New("eventstore: invalid commit")
)

// OperatorNamespace is the tenant id under which operator invocations keep
// their idempotency records. It is not a valid tnt_ id, so no tenant can collide.
const OperatorNamespace = "_operator"

// MaxItemBytes bounds one event's or one record's payload (Data). DynamoDB's item
// limit is 400 KB; the rest is headroom for keys and attributes.
const MaxItemBytes = 350 * 1024

// MaxCommitBytes bounds the bytes of one commit's values together (events'
// and records' Data, outbox payloads, the idempotency Body): DynamoDB's
// transactions take 4 MB.
const MaxCommitBytes = 4 * 1024 * 1024

// MaxCommitItems bounds the items of one commit (DynamoDB transactions take 100;
// one is the stream head of each append).
const MaxCommitItems = 100

// Event is one fact in a stream. Type is an explicit, stable string
// ("tenancy.tenant-onboarded"); never derived by reflection.
type Event struct {
	ID            string          `json:"eventId"`  // evt_<ULID>
	TenantID      string          `json:"tenantId"` // set by the store from the commit
	StreamID      string          `json:"streamId"` // e.g. "tenant", "scope-scp_..."; set by the store
	Version       int64           `json:"version"`  // set by the store: expected+1, +2, ...
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schemaVersion"`
	OccurredAt    time.Time       `json:"occurredAt"`
	Invocation    invocation.Meta `json:"invocation"`
	Data          json.RawMessage `json:"data"`
}

// StreamAppend appends events to one stream.
type StreamAppend struct {
	StreamID        string
	ExpectedVersion int64 // the stream's current version; 0 for a new stream
	Events          []Event
	// HeadRecord, when set, names a row of the same commit (a tenant row,
	// written, not deleted) that the stream's version may be kept on: the
	// DynamoDB adapter then checks ExpectedVersion on that row and writes no
	// head item of its own (one item less per append; ADR 0008). The
	// embedded adapters keep their heads and ignore it. A stream must name
	// the same row in every append. What every adapter guarantees is
	// unchanged: a new stream (ExpectedVersion 0) exists once, and an append
	// at a version other than the stream's fails with ErrConflict, with one
	// exception on DynamoDB: after the row was written without an append
	// and without a Source (Record.Source, which read-model rebuilds set),
	// or before versions were kept on rows, the next append at a version
	// ahead of the stream is not detected (two appends at the same version still
	// conflict: each event's position is written once).
	HeadRecord *RecordRef
}

// RecordRef names a tenant row by collection and key.
type RecordRef struct {
	Collection string
	Key        string
}

// CheckHeadRecords checks the HeadRecord of every append of c: it must name
// a row c writes (not Global, not Delete), and no other append's; and the
// Source of every row (see Record.Source). Adapters call it with their
// other checks; the error wraps ErrInvalid.
func CheckHeadRecords(c *Commit) error {
	if err := checkSources(c); err != nil {
		return err
	}
	named := map[RecordRef]bool{}
	for _, a := range c.Appends {
		h := a.HeadRecord
		if h == nil {
			continue
		}
		if named[*h] {
			return fmt.Errorf("append %s: head record %s/%s of another append too: %w", a.StreamID, h.Collection, h.Key, ErrInvalid)
		}
		named[*h] = true
		found := false
		for _, r := range c.Records {
			if r.Collection == h.Collection && r.Key == h.Key && !r.Global && !r.Delete {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("append %s: head record %s/%s is not a row this commit writes: %w", a.StreamID, h.Collection, h.Key, ErrInvalid)
		}
	}
	return nil
}

// checkSources checks the Source of every row of c.
func checkSources(c *Commit) error {
	for _, r := range c.Records {
		src := r.Source
		if src == nil {
			continue
		}
		what := "record " + r.Collection + "/" + r.Key
		switch {
		case src.StreamID == "" || src.Version < 1:
			return fmt.Errorf("%s: source stream %q at version %d: %w", what, src.StreamID, src.Version, ErrInvalid)
		case r.IfAbsent || r.Delete || r.Global:
			return fmt.Errorf("%s: a source with IfAbsent, Delete or Global: %w", what, ErrInvalid)
		}
		for _, a := range c.Appends {
			if h := a.HeadRecord; h != nil && h.Collection == r.Collection && h.Key == r.Key {
				return fmt.Errorf("%s: a source on the head record of %s: %w", what, a.StreamID, ErrInvalid)
			}
		}
	}
	return nil
}

// Record is a read-model or lookup row written with the commit. Rows are keyed
// by entity: each (tenant, collection, key) is an item of its own, so no
// collection of rows shares one partition. Lists of rows are served by the
// list indexes (Lists, ListRecords), never by reading a collection.
type Record struct {
	Collection string          // e.g. "scopes"; with Key, the row's identity
	Key        string          // the entity's key within the collection
	Global     bool            // a tenant-less lookup row (credential -> tenant), one item per key; use sparingly
	IfAbsent   bool            // fail the commit with ErrConflict if the row exists (a row past its ExpiresAt counts as absent)
	Delete     bool            // remove the row (and its list entries) instead of writing it
	Data       json.RawMessage // the row (ignored for Delete)
	// ExpiresAt, when set, is the end of the row's life: from then on no
	// read returns it (GetRecord: ErrNotFound; ListRecords skips it), and the
	// store removes it and its list entries some time later (DynamoDB's TTL
	// on expiresAt, typically within days; bbolt's purger). Not for Global
	// rows. Reads return it as written.
	ExpiresAt time.Time
	// Lists are the row's memberships in keyed lists. Every write of a row
	// replaces its memberships with these (a row written without Lists leaves
	// every list). At most one entry per slot; not for Global rows.
	Lists []ListEntry
	// Source, when set, is the stream and version the row was derived from,
	// for a row written outside its stream's appends (a read-model
	// rebuild), and is meant for the row the stream's appends name as
	// their HeadRecord. The commit fails with ErrConflict when the stream
	// is past that version (a newer row was written meanwhile): the
	// embedded adapters compare the stream's head, the DynamoDB adapter
	// the version kept on the row (so a row written without one, or none,
	// is written). The row then keeps the version as an append naming it
	// as its HeadRecord does, so the next append keeps its whole check. Not
	// with IfAbsent, Delete, Global, nor on a row an append of the same
	// commit names as its HeadRecord.
	Source *StreamVersion
}

// StreamVersion is a version of one stream of the commit's tenant.
type StreamVersion struct {
	StreamID string
	Version  int64 // >= 1
}

// MaxListSlots is how many list indexes the store has (one per slot, 1..MaxListSlots).
const MaxListSlots = 6

// List names a keyed list of rows: a list index slot, a stable name, and how
// many write shards each of its partitions is spread over.
//
// One partition of a list (a tenant's whole list, or the rows of one scope,
// one status, ...) takes about 1,000 writes/s on DynamoDB; a list expected to
// take more gets Shards > 1: the store spreads its rows over that many
// partitions by a hash of the row key and a query reads every shard in
// parallel and merges them. Name, Slot and Shards are persisted: changing
// them is a migration.
type List struct {
	Name   string // stable, e.g. "scopes"
	Slot   int    // 1..MaxListSlots; the lists one row belongs to need distinct slots
	Shards int    // write shards per partition; <= 1 means one
}

// ListEntry is a row's membership in one partition of a list.
type ListEntry struct {
	List      List
	Partition string // "" for the whole tenant, else e.g. a scope id or a status
	// Sort orders the rows of a partition (text order; use fixed-width
	// values such as ULIDs or fixed-width times so newest first is descending).
	// The row key breaks ties.
	Sort string
}

// ListQuery asks for one page of one partition of a list.
type ListQuery struct {
	List      List
	Partition string
	// From and To bound the entries' Sort: From <= Sort < To ("": no
	// bound). Both directions and the cursor honour them; the query reads
	// only entries within them.
	From, To string
	Page
}

// OutboxEntry is a unit of asynchronous work, committed with the events that
// cause it and handed to the work path after commit. See package work.
type OutboxEntry struct {
	ID         string          `json:"id"` // wrk_<ULID>; consumers dedupe by it
	TenantID   string          `json:"tenantId"`
	Type       string          `json:"type"` // stable work type, e.g. "tenancy.provision-tenant"
	Payload    json.RawMessage `json:"payload"`
	DueAt      time.Time       `json:"dueAt"` // not handed over before this time
	Attempt    int             `json:"attempt"`
	Invocation invocation.Meta `json:"invocation"`
	// LastError is the last failure of the entry (hand-off or handler),
	// truncated to MaxLastError bytes (TruncateLastError); "" while it never
	// failed.
	LastError string `json:"lastError,omitempty"`
}

// ParkedAt is the DueAt of an outbox entry that exhausted its attempts: it is
// kept in the outbox, never handed again until an operator replays it, and
// listed by ParkedOutbox.
var ParkedAt = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxOutboxPayload bounds an outbox entry's Payload, so that the encoded entry
// always fits the work transport (SQS takes 256 KiB per message). A larger
// payload fails the commit with ErrTooLarge; store large data in an event or a
// record and pass its key.
const MaxOutboxPayload = 200 * 1024

// MaxLastError bounds OutboxEntry.LastError.
const MaxLastError = 500

// Idempotency is the stored outcome of an invocation under an Idempotency-Key.
//
// TenantID is the namespace of the record: "" means the commit's tenant. The
// operator, who has no tenant, keeps its records under OperatorNamespace while
// the commit (onboard-tenant) writes a new tenant's streams.
type Idempotency struct {
	TenantID    string          `json:"tenantId,omitempty"`
	Key         string          `json:"key"`         // scope + key, e.g. "sva_...:01J..."; unique per tenant
	Fingerprint string          `json:"fingerprint"` // hash of command name + body
	Status      int             `json:"status"`      // HTTP status of the first response
	Body        json.RawMessage `json:"body"`        // body of the first response
	CreatedAt   time.Time       `json:"createdAt"`
	ExpiresAt   time.Time       `json:"expiresAt"` // kept at least until then
}

// Commit is everything one invocation writes, atomically.
type Commit struct {
	TenantID    string
	Appends     []StreamAppend
	Records     []Record
	Outbox      []OutboxEntry
	Idempotency *Idempotency
}

// Empty reports whether the commit writes nothing.
func (c *Commit) Empty() bool {
	return len(c.Appends) == 0 && len(c.Records) == 0 && len(c.Outbox) == 0 && c.Idempotency == nil
}

// Page asks for one page of a list.
type Page struct {
	Limit      int    // 1..100; adapters treat <=0 as 50
	Cursor     string // opaque, from a previous page's NextCursor; "" for the first page
	Descending bool   // newest first when keys are ULIDs
}

// Appender commits.
type Appender interface {
	// Commit writes c atomically. See the package doc for errors.
	// On success, the events in c.Appends carry their assigned versions.
	Commit(ctx context.Context, c *Commit) error
}

// StreamReader reads streams.
type StreamReader interface {
	// ReadStream returns up to limit events of a stream with version >= from,
	// oldest first (limit <= 0: all). A missing stream is no events, no error.
	ReadStream(ctx context.Context, tenantID, streamID string, from int64, limit int) ([]Event, error)
}

// ReadOption tunes a read.
type ReadOption int

// Eventually allows an eventually consistent read (DynamoDB: half the cost; a
// write of the last second may not show yet). Reads are strongly consistent
// without it.
const Eventually ReadOption = 1

// RecordReader reads read-model rows.
type RecordReader interface {
	// GetRecord returns one row (strongly consistent), or ErrNotFound.
	GetRecord(ctx context.Context, tenantID, collection, key string) (Record, error)
	// GetGlobalRecord returns one Global row, or ErrNotFound.
	GetGlobalRecord(ctx context.Context, collection, key string, opts ...ReadOption) (Record, error)
	// ListRecords returns one page of one partition of a list, ordered by the
	// entries' Sort (then row key), with the rows' current data, and the
	// cursor of the next page ("" when there is none). It reads only the page
	// (from every shard of the partition), never a whole collection. A row is
	// listed only under its current membership: a row moved to another
	// partition or sort, or out of the list, does not show where it was, and
	// no row shows on two pages, so callers need not filter on the data.
	// Additions are eventually consistent: a row written (or moved) a moment
	// ago may show on a later call, and a page may then hold fewer rows than
	// the limit while a next cursor follows. A cursor the list did not issue
	// is ErrInvalid.
	ListRecords(ctx context.Context, tenantID string, q ListQuery) (rows []Record, next string, err error)
}

// RecordWriter writes rows outside any commit, for records that belong to
// no stream and need no atomicity (the audit log).
type RecordWriter interface {
	// PutRecords writes rows of one tenant, each on its own: after an error
	// some may be written, and writing the same rows again is harmless (a
	// row with the same collection and key is replaced, list memberships
	// included). Rows are validated as in a Commit; IfAbsent, Delete and
	// Global rows are ErrInvalid. Any number of rows; the adapter batches them.
	PutRecords(ctx context.Context, tenantID string, rows []Record) error
}

// IdempotencyReader reads idempotency records.
type IdempotencyReader interface {
	// GetIdempotency returns the record under key, or ErrNotFound (also when expired).
	GetIdempotency(ctx context.Context, tenantID, key string) (Idempotency, error)
}

// Outbox is the store side of the work path.
type Outbox interface {
	// PendingOutbox returns up to limit entries, across all tenants, due at or
	// before dueBy, roughly earliest first: the page is in due order, but an
	// adapter that spreads the outbox over shards reads each shard's earliest
	// entries, so a due entry may wait for a later page while later ones are
	// handed. It may return fewer than limit entries even when more are due
	// (its index lags, entries went meanwhile); callers page until an empty
	// page. It uses an index, never a table scan. An entry that does not
	// decode is logged and skipped.
	PendingOutbox(ctx context.Context, dueBy time.Time, limit int) ([]OutboxEntry, error)
	// AckOutbox removes entries that were handed over (or processed),
	// identified by TenantID and ID as read: it removes each entry unless it
	// was rescheduled or re-committed with another DueAt since (every
	// requeue, reschedule, parking and replay sets a new DueAt, so DueAt
	// identifies the version handed). Acknowledging a missing or such a
	// changed entry is not an error (acks are idempotent).
	AckOutbox(ctx context.Context, entries []OutboxEntry) error
	// RescheduleOutbox sets a pending entry's DueAt, Attempt and LastError
	// (retries, parking with DueAt = ParkedAt, replays). Give it a DueAt
	// other than the one handed: a late acknowledgement of the version
	// handed would remove it (see AckOutbox). A missing entry is not an error
	// and is not created.
	RescheduleOutbox(ctx context.Context, e OutboxEntry) error
	// ParkedOutbox returns up to limit parked entries (DueAt = ParkedAt), of
	// all tenants, through the same index (never a scan), read like
	// PendingOutbox (possibly fewer than limit while more are parked).
	ParkedOutbox(ctx context.Context, limit int) ([]OutboxEntry, error)
}

// Store is the whole port; application code should depend on the narrow
// interfaces above.
type Store interface {
	Appender
	StreamReader
	RecordReader
	RecordWriter
	IdempotencyReader
	Outbox
}
