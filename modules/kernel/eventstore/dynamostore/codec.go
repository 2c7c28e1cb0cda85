package dynamostore

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Key parts. Persisted: changing any of them is a data migration.
const (
	keySep      = "#"
	skHead      = "HEAD"
	skIdem      = "I"
	skOutbox    = "W"
	skRecord    = "R"
	eventSKMax  = "E#99999999999999999999"
	gsi1Prefix  = "OUTBOX#"
	dueAtLayout = "2006-01-02T15:04:05.000000000Z" // fixed width, sorts as text
)

// Attribute names of the items (besides the keys of schema.go). Persisted.
const (
	attrVersion = "version" // head: the stream's version (N)
	// attrStreamVersion is the version of the stream whose appends name
	// this row as their HeadRecord (N; absent on other rows).
	attrStreamVersion = "streamVersion"
	attrEventID       = "eventId"       // event (S)
	attrType          = "type"          // event, outbox (S)
	attrSchemaVersion = "schemaVersion" // event (N)
	attrOccurredAt    = "occurredAt"    // event (S, RFC 3339 nano UTC)
	attrData          = "data"          // event, record (B: the JSON bytes, when stored plain)
	attrDataZ         = "dataz"         // event, record (B: the JSON bytes, raw DEFLATE; instead of data, see blob.go)
	attrInvocationID  = "invocationId"  // event, outbox (S)
	attrActionID      = "actionId"      // event, outbox (S)
	attrTraceID       = "traceId"       // event, outbox (S)
	attrPrincipal     = "principal"     // event, outbox (S)
	attrFingerprint   = "fingerprint"   // idempotency (S)
	attrStatus        = "status"        // idempotency (N)
	attrBody          = "body"          // idempotency (B)
	attrCreatedAt     = "createdAt"     // idempotency (S, RFC 3339 nano UTC)
	attrExpiresAtNs   = "expiresAtNs"   // idempotency (N, unix nanoseconds; exact expiry)
	attrWorkID        = "id"            // outbox (S)
	attrTenantID      = "tenantId"      // outbox (S)
	attrPayload       = "payload"       // outbox (B, when stored plain)
	attrPayloadZ      = "payloadz"      // outbox (B: raw DEFLATE; instead of payload, see blob.go)
	attrDueAt         = "dueAt"         // outbox (S, fixed-width UTC)
	attrAttempt       = "attempt"       // outbox (N)
	attrLastError     = "lastError"     // outbox (S; absent while it never failed)
)

func streamPK(tenant, stream string) string { return "T#" + tenant + "#S#" + stream }
func idemPK(tenant, key string) string      { return "T#" + tenant + "#I#" + key }
func outboxPK(tenant, id string) string     { return "T#" + tenant + "#W#" + id }
func eventSK(version int64) string          { return fmt.Sprintf("E#%020d", version) }

// recordPK is the partition key of a tenant's row: one item per row. The
// collection contains no '#', so the key is unambiguous.
func recordPK(tenant, coll, key string) string {
	return recordPrefix(tenant) + coll + keySep + key
}

// recordPrefix is what every record partition key of tenant starts with.
func recordPrefix(tenant string) string { return "T#" + tenant + "#R#" }

// globalPK is the partition key of a Global row: one item per row.
func globalPK(coll, key string) string { return globalPrefix + coll + keySep + key }

const globalPrefix = "G#R#"

// splitRecordPK returns the collection and key of a record partition key
// that starts with prefix.
func splitRecordPK(pk, prefix string) (coll, key string, ok bool) {
	rest, ok := strings.CutPrefix(pk, prefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, keySep)
}

// shardOf spreads keys over n shards by FNV-1a (n <= 1: one shard, 0).
func shardOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

func outboxGSI1PK(id string, shards int) string {
	return gsi1Prefix + strconv.Itoa(shardOf(id, shards))
}

// listPK is the list index partition key of one shard of a list partition.
func listPK(tenant string, l eventstore.List, partition string, shard int) string {
	return "T#" + tenant + "#L#" + l.Name + keySep + partition + keySep + strconv.Itoa(shard)
}

// listSK is the list index sort key of a row: the entry's sort, then the row key.
func listSK(sort, rowKey string) string { return sort + keySep + rowKey }

func listShards(l eventstore.List) int { return max(l.Shards, 1) }

func fmtDueAt(t time.Time) string { return t.UTC().Format(dueAtLayout) }

func outboxGSI1SK(due time.Time, id string) string { return fmtDueAt(due) + keySep + id }

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: str(pk), AttrSK: str(sk)}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// putS, putB set an attribute unless the value is empty (an absent attribute
// reads back as the zero value).
func putS(m map[string]types.AttributeValue, name, v string) {
	if v != "" {
		m[name] = str(v)
	}
}

func putB(m map[string]types.AttributeValue, name string, v []byte) {
	if len(v) > 0 {
		m[name] = &types.AttributeValueMemberB{Value: v}
	}
}

func putTime(m map[string]types.AttributeValue, name string, t time.Time) {
	m[name] = str(t.UTC().Format(time.RFC3339Nano))
}

func putInvocation(m map[string]types.AttributeValue, inv invocation.Meta) {
	putS(m, attrInvocationID, inv.InvocationID)
	putS(m, attrActionID, inv.ActionID)
	putS(m, attrTraceID, inv.TraceID)
	putS(m, attrPrincipal, inv.Principal)
}

func getS(m map[string]types.AttributeValue, name string) string {
	if v, ok := m[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getB(m map[string]types.AttributeValue, name string) []byte {
	switch v := m[name].(type) {
	case *types.AttributeValueMemberB:
		return v.Value
	case *types.AttributeValueMemberS: // tolerated: JSON written as a string
		return []byte(v.Value)
	}
	return nil
}

func getN(m map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := m[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s: %w", name, err)
	}
	return n, nil
}

func getTime(m map[string]types.AttributeValue, name, layout string) (time.Time, error) {
	s := getS(m, name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("attribute %s: %w", name, err)
	}
	return t.UTC(), nil
}

func getInvocation(m map[string]types.AttributeValue) invocation.Meta {
	return invocation.Meta{
		InvocationID: getS(m, attrInvocationID),
		ActionID:     getS(m, attrActionID),
		TraceID:      getS(m, attrTraceID),
		Principal:    getS(m, attrPrincipal),
	}
}

func encodeEvent(pk string, version int64, e *eventstore.Event) map[string]types.AttributeValue {
	m := make(map[string]types.AttributeValue, 12)
	m[AttrPK] = str(pk)
	m[AttrSK] = str(eventSK(version))
	putS(m, attrEventID, e.ID)
	m[attrType] = str(e.Type)
	m[attrSchemaVersion] = num(int64(e.SchemaVersion))
	putTime(m, attrOccurredAt, e.OccurredAt)
	putInvocation(m, e.Invocation)
	putBlob(m, attrData, attrDataZ, e.Data)
	return m
}

func decodeEvent(m map[string]types.AttributeValue, tenant, stream string) (eventstore.Event, error) {
	sk := getS(m, AttrSK)
	if len(sk) != len(eventSKMax) {
		return eventstore.Event{}, fmt.Errorf("event item with sort key %q", sk)
	}
	version, err := strconv.ParseInt(sk[2:], 10, 64)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("event item with sort key %q: %w", sk, err)
	}
	schema, err := getN(m, attrSchemaVersion)
	if err != nil {
		return eventstore.Event{}, err
	}
	occurred, err := getTime(m, attrOccurredAt, time.RFC3339Nano)
	if err != nil {
		return eventstore.Event{}, err
	}
	data, err := getBlob(m, attrData, attrDataZ)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("event %d: %w", version, err)
	}
	return eventstore.Event{
		ID:            getS(m, attrEventID),
		TenantID:      tenant,
		StreamID:      stream,
		Version:       version,
		Type:          getS(m, attrType),
		SchemaVersion: int(schema),
		OccurredAt:    occurred,
		Invocation:    getInvocation(m),
		Data:          data,
	}, nil
}

// encodeRecord returns the item of a row: its data and, for a tenant's row,
// the keys of its current list memberships (the slots it is not in are
// absent, so the item leaves those indexes). Lists are validated before.
func encodeRecord(tenant string, r *eventstore.Record) map[string]types.AttributeValue {
	var m map[string]types.AttributeValue
	if r.Global {
		m = itemKey(globalPK(r.Collection, r.Key), skRecord)
	} else {
		m = itemKey(recordPK(tenant, r.Collection, r.Key), skRecord)
	}
	putBlob(m, attrData, attrDataZ, r.Data)
	putExpiry(m, r.ExpiresAt)
	for _, e := range r.Lists {
		m[ListAttrPK(e.List.Slot)] = str(listPK(tenant, e.List, e.Partition, shardOf(r.Key, listShards(e.List))))
		m[ListAttrSK(e.List.Slot)] = str(listSK(e.Sort, r.Key))
	}
	return m
}

func encodeIdem(namespace string, rec *eventstore.Idempotency) map[string]types.AttributeValue {
	m := itemKey(idemPK(namespace, rec.Key), skIdem)
	putS(m, attrFingerprint, rec.Fingerprint)
	m[attrStatus] = num(int64(rec.Status))
	putB(m, attrBody, rec.Body)
	putTime(m, attrCreatedAt, rec.CreatedAt)
	putExpiry(m, rec.ExpiresAt)
	return m
}

// putExpiry sets the TTL of an item expiring at t (none when zero): the TTL
// attribute in whole seconds, rounded up so that DynamoDB never deletes
// early, and expiresAtNs, the exact expiry that reads (and the idempotency
// commit condition) use.
func putExpiry(m map[string]types.AttributeValue, t time.Time) {
	if t.IsZero() {
		return
	}
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	m[AttrExpiresAt] = num(sec)
	m[attrExpiresAtNs] = num(t.UnixNano())
}

// expiredAt reports whether the item m carries an expiry at or before now.
func expiredAt(m map[string]types.AttributeValue, now time.Time) bool {
	ns, err := getN(m, attrExpiresAtNs)
	return err == nil && ns != 0 && now.UnixNano() >= ns
}

// decodeIdem returns the record and its exact expiry in unix nanoseconds (0: none).
func decodeIdem(m map[string]types.AttributeValue, namespace, key string) (eventstore.Idempotency, int64, error) {
	status, err := getN(m, attrStatus)
	if err != nil {
		return eventstore.Idempotency{}, 0, err
	}
	created, err := getTime(m, attrCreatedAt, time.RFC3339Nano)
	if err != nil {
		return eventstore.Idempotency{}, 0, err
	}
	expiresNs, err := getN(m, attrExpiresAtNs)
	if err != nil {
		return eventstore.Idempotency{}, 0, err
	}
	rec := eventstore.Idempotency{
		TenantID:    namespace,
		Key:         key,
		Fingerprint: getS(m, attrFingerprint),
		Status:      int(status),
		Body:        getB(m, attrBody),
		CreatedAt:   created,
	}
	if expiresNs != 0 {
		rec.ExpiresAt = time.Unix(0, expiresNs).UTC()
	}
	return rec, expiresNs, nil
}

func encodeOutbox(e *eventstore.OutboxEntry, shards int) map[string]types.AttributeValue {
	m := itemKey(outboxPK(e.TenantID, e.ID), skOutbox)
	m[AttrGSI1PK] = str(outboxGSI1PK(e.ID, shards))
	m[AttrGSI1SK] = str(outboxGSI1SK(e.DueAt, e.ID))
	m[attrWorkID] = str(e.ID)
	m[attrTenantID] = str(e.TenantID)
	m[attrType] = str(e.Type)
	putBlob(m, attrPayload, attrPayloadZ, e.Payload)
	m[attrDueAt] = str(fmtDueAt(e.DueAt))
	m[attrAttempt] = num(int64(e.Attempt))
	putS(m, attrLastError, eventstore.TruncateLastError(e.LastError))
	putInvocation(m, e.Invocation)
	return m
}

func decodeOutbox(m map[string]types.AttributeValue) (eventstore.OutboxEntry, error) {
	due, err := getTime(m, attrDueAt, dueAtLayout)
	if err != nil {
		return eventstore.OutboxEntry{}, err
	}
	attempt, err := getN(m, attrAttempt)
	if err != nil {
		return eventstore.OutboxEntry{}, err
	}
	payload, err := getBlob(m, attrPayload, attrPayloadZ)
	if err != nil {
		return eventstore.OutboxEntry{}, err
	}
	return eventstore.OutboxEntry{
		ID:         getS(m, attrWorkID),
		TenantID:   getS(m, attrTenantID),
		Type:       getS(m, attrType),
		Payload:    payload,
		DueAt:      due,
		Attempt:    int(attempt),
		Invocation: getInvocation(m),
		LastError:  getS(m, attrLastError),
	}, nil
}
