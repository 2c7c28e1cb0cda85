package capacity

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
)

// Unlabelled is the workload operation of requests whose context carries no
// label (WithOp) and that the Recorder's Fallback does not label either.
const Unlabelled = "(unlabelled)"

// Index describes one global secondary index of the table.
type Index struct {
	Name       string
	PK, SK     string               // key attributes (SK "" when the index has none)
	Projection types.ProjectionType // KEYS_ONLY, INCLUDE or ALL
	NonKey     []string             // the projected attributes of INCLUDE
}

// Schema is what the Recorder needs of the table: its key attributes and its
// global secondary indexes.
type Schema struct {
	PK, SK  string
	Indexes []Index
}

// SchemaOf reads the schema from a table definition.
func SchemaOf(in *dynamodb.CreateTableInput) Schema {
	var s Schema
	for _, k := range in.KeySchema {
		if k.KeyType == types.KeyTypeHash {
			s.PK = aws.ToString(k.AttributeName)
		} else {
			s.SK = aws.ToString(k.AttributeName)
		}
	}
	for _, g := range in.GlobalSecondaryIndexes {
		ix := Index{Name: aws.ToString(g.IndexName), Projection: types.ProjectionTypeAll}
		for _, k := range g.KeySchema {
			if k.KeyType == types.KeyTypeHash {
				ix.PK = aws.ToString(k.AttributeName)
			} else {
				ix.SK = aws.ToString(k.AttributeName)
			}
		}
		if g.Projection != nil {
			ix.Projection = g.Projection.ProjectionType
			ix.NonKey = g.Projection.NonKeyAttributes
		}
		s.Indexes = append(s.Indexes, ix)
	}
	return s
}

// StoreSchema is the schema of dynamostore's table (dynamostore.TableInput).
func StoreSchema() Schema { return SchemaOf(dynamostore.TableInput("capacity")) }

// Units are the capacity units one request spent on one partition key.
type Units struct {
	Index string  // "" for the table, else the index name
	PK    string  // the partition key value
	Read  float64 // read units (DynamoDB's figure)
	Write float64 // write units (computed from item sizes)
}

// Key names the partition: the table's pk value, or "<index>:<index pk value>".
func (u Units) Key() string {
	if u.Index == "" {
		return u.PK
	}
	return u.Index + ":" + u.PK
}

// WriteKind is what a write did to one item (or index entry).
type WriteKind string

// The kinds of item writes.
const (
	WritePut    WriteKind = "put"    // PutItem, a Put in a batch or a transaction; an index entry added
	WriteUpdate WriteKind = "update" // UpdateItem or an Update in a transaction; an index entry rewritten in place
	WriteDelete WriteKind = "delete" // DeleteItem, a Delete in a batch or a transaction; an index entry removed
	WriteCheck  WriteKind = "check"  // a ConditionCheck in a transaction (charged like a write)
)

// ItemWrite is one item a request wrote, with its write units: a table item,
// or an entry of a global secondary index. The Units of a request are these
// summed per partition key; ItemWrites keep them per item, so that a report
// can say what the units are made of (which items, how many, in a
// transaction or not).
type ItemWrite struct {
	Index string // "" for a table item, else the index name
	// PK is the partition key value written: the table's, or the index's
	// for an index entry (Units.PK of the same write).
	PK string
	// ItemPK and ItemSK are the table key of the item (for an index entry:
	// of the item the entry stands for).
	ItemPK, ItemSK string
	Kind           WriteKind
	// Transactional: written by TransactWriteItems (a table write's units
	// are doubled; an index entry's are not).
	Transactional bool
	// Size is the bytes the units were computed from (ItemSize: the larger
	// of the old and the new item, the deleted item, the index entry's
	// projection).
	Size  int
	Units float64
}

// Request is one recorded DynamoDB request.
type Request struct {
	Op        string // the workload operation (WithOp, the Fallback, or Unlabelled)
	Tenant    string // the operation's tenant (WithTenant, the Fallback, or inferred from its keys)
	Instance  string // the operation instance (WithOp, or the Fallback's); "" when unknown
	Operation string // the DynamoDB API operation, e.g. "TransactWriteItems"
	Units     []Units
	// Writes are the items (and index entries) the request wrote, one per
	// write, with the same units as Units (failed requests: the table
	// writes that AWS charges, no index entries).
	Writes []ItemWrite
	// Failed: the request failed its condition (ConditionalCheckFailed,
	// TransactionCanceled); its table write units are still counted (AWS
	// charges them), its index writes are not (nothing changed).
	Failed bool
	// ReportedWrite is the write units DynamoDB (Local) reported, kept for
	// comparison only: the report never uses it.
	ReportedWrite float64
	// Approximate: a write whose cost depended on an item the Recorder had
	// not seen written (a delete or update of an unknown item: 1 unit per
	// started KB of what is known, no index deletes).
	Approximate bool
}

// Recorder is a DynamoDB client middleware that records the capacity units
// of every request (see the package doc). It is safe for concurrent use.
//
// Write units follow AWS's published rules:
//
//   - a Put, Update or Delete costs one unit per started KB of the item
//     (ItemSize; for a replaced or updated item the larger of the old and the
//     new size, for a delete the deleted item's size), doubled inside
//     TransactWriteItems; a ConditionCheck in a transaction costs like a
//     transactional write of the checked item;
//   - every index the write touches costs a standard (not doubled) write of
//     the index entry, one unit per started KB of its projection (table keys
//     plus index keys for KEYS_ONLY; plus the included attributes for
//     INCLUDE; the item for ALL): a put when the item enters the index, a
//     delete when it leaves, both when its index keys change, one write when
//     its keys stay but a projected attribute changes (never for KEYS_ONLY).
//
// To know an item's old size and index keys, the Recorder keeps the last
// written image of every item written through it (a shadow of the table; it
// grows with the items written). An UpdateItem is applied to that image
// approximately: top-level SET and ADD paths take the value of the first
// placeholder of their right-hand side (so "a = a + :n" sets a to :n and
// "a = if_not_exists(a, :v)" to :v), REMOVE drops the attribute, DELETE and
// nested paths are ignored. A delete or update of an item the Recorder has
// not seen is costed from what the request carries, without index deletes,
// and marked Approximate.
type Recorder struct {
	// Fallback labels requests whose context has no WithOp label (e.g. work
	// run by background goroutines): the workload operation, its tenant, and
	// an id of the operation instance ("" when the operation was counted
	// elsewhere: a request without instance adds units, not operations). It
	// returns op "" to leave a request Unlabelled. Set it before the first
	// request.
	Fallback func(ctx context.Context) (op, tenant, instance string)

	schema   Schema
	mu       sync.Mutex
	requests []Request
	shadow   map[[2]string]map[string]types.AttributeValue
}

// NewRecorder returns a Recorder for a table of schema s (StoreSchema for
// dynamostore's table).
func NewRecorder(s Schema) *Recorder {
	return &Recorder{schema: s, shadow: map[[2]string]map[string]types.AttributeValue{}}
}

// Option installs the Recorder on a DynamoDB client
// (dynamodb.NewFromConfig(cfg, r.Option())): a middleware of the Initialize
// step that sets ReturnConsumedCapacity to INDEXES on every input that has
// it (on a copy: the caller's input is not changed), and reads the typed
// output once the call returned (after the Deserialize step and the retries).
func (r *Recorder) Option() func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("capacity.Recorder", r.handle), middleware.After)
		})
	}
}

// Requests returns a copy of the records so far.
func (r *Recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Reset drops the records (the shadow of the table is kept).
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

// Report computes the report of the records so far with the given limits
// (DefaultLimits when zero).
func (r *Recorder) Report(l Limits) *Report { return NewReport(r.Requests(), l) }

func (r *Recorder) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	in.Parameters = withConsumedCapacity(in.Parameters)
	out, md, err := next.HandleInitialize(ctx, in)
	r.Record(ctx, in.Parameters, out.Result, err)
	return out, md, err
}

// withConsumedCapacity returns a copy of params asking for INDEXES.
func withConsumedCapacity(params any) any {
	const all = types.ReturnConsumedCapacityIndexes
	switch v := params.(type) {
	case *dynamodb.GetItemInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	case *dynamodb.QueryInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	case *dynamodb.ScanInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	case *dynamodb.BatchGetItemInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	case *dynamodb.TransactGetItemsInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	case *dynamodb.TransactWriteItemsInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	case *dynamodb.BatchWriteItemInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	case *dynamodb.PutItemInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	case *dynamodb.UpdateItemInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	case *dynamodb.DeleteItemInput:
		c := *v
		c.ReturnConsumedCapacity = all
		return &c
	}
	return params
}

// Record records one request: its input, its typed output (nil on error) and
// its error. The middleware calls it; tests may call it directly.
func (r *Recorder) Record(ctx context.Context, params, result any, err error) {
	l := from(ctx)
	if l.op == "" && r.Fallback != nil {
		l.op, l.tenant, l.instance = r.Fallback(ctx)
	}
	if l.op == "" {
		l.op = Unlabelled
	}
	failed := err != nil && conditionFailed(err)
	if err != nil && !failed {
		return // nothing was read or written (or we cannot tell what)
	}
	req := Request{Op: l.op, Tenant: l.tenant, Instance: l.instance, Failed: failed}

	r.mu.Lock()
	defer r.mu.Unlock()
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		req.Operation = "GetItem"
		if out, ok := result.(*dynamodb.GetItemOutput); ok && out != nil {
			req.add(Units{PK: keyString(in.Key[r.schema.PK]), Read: units(out.ConsumedCapacity)})
		}
	case *dynamodb.QueryInput:
		req.Operation = "Query"
		if out, ok := result.(*dynamodb.QueryOutput); ok && out != nil {
			index := aws.ToString(in.IndexName)
			req.add(Units{Index: index, PK: queryPK(in, r.pkOf(index)), Read: units(out.ConsumedCapacity)})
		}
	case *dynamodb.ScanInput:
		req.Operation = "Scan"
		if out, ok := result.(*dynamodb.ScanOutput); ok && out != nil {
			req.add(Units{Index: aws.ToString(in.IndexName), PK: "(scan)", Read: units(out.ConsumedCapacity)})
		}
	case *dynamodb.BatchGetItemInput:
		req.Operation = "BatchGetItem"
		if out, ok := result.(*dynamodb.BatchGetItemOutput); ok && out != nil {
			r.batchGet(&req, in, out)
		}
	case *dynamodb.TransactGetItemsInput:
		req.Operation = "TransactGetItems"
		if out, ok := result.(*dynamodb.TransactGetItemsOutput); ok && out != nil {
			var pks []string
			for _, it := range in.TransactItems {
				if it.Get != nil {
					pks = append(pks, keyString(it.Get.Key[r.schema.PK]))
				}
			}
			req.split(pks, total(out.ConsumedCapacity))
		}
	case *dynamodb.PutItemInput:
		req.Operation = "PutItem"
		r.put(&req, in.Item, 1, !failed)
		if out, ok := result.(*dynamodb.PutItemOutput); ok && out != nil {
			req.ReportedWrite = units(out.ConsumedCapacity)
		}
	case *dynamodb.UpdateItemInput:
		req.Operation = "UpdateItem"
		r.update(&req, in.Key, aws.ToString(in.UpdateExpression), in.ExpressionAttributeNames, in.ExpressionAttributeValues, 1, !failed)
		if out, ok := result.(*dynamodb.UpdateItemOutput); ok && out != nil {
			req.ReportedWrite = units(out.ConsumedCapacity)
		}
	case *dynamodb.DeleteItemInput:
		req.Operation = "DeleteItem"
		r.delete(&req, in.Key, 1, !failed)
		if out, ok := result.(*dynamodb.DeleteItemOutput); ok && out != nil {
			req.ReportedWrite = units(out.ConsumedCapacity)
		}
	case *dynamodb.BatchWriteItemInput:
		req.Operation = "BatchWriteItem"
		out, _ := result.(*dynamodb.BatchWriteItemOutput)
		for table, reqs := range in.RequestItems {
			var unprocessed []types.WriteRequest
			if out != nil {
				unprocessed = out.UnprocessedItems[table]
			}
			for _, w := range reqs {
				if containsWrite(unprocessed, w) {
					continue
				}
				switch {
				case w.PutRequest != nil:
					r.put(&req, w.PutRequest.Item, 1, true)
				case w.DeleteRequest != nil:
					r.delete(&req, w.DeleteRequest.Key, 1, true)
				}
			}
		}
		if out != nil {
			req.ReportedWrite = total(out.ConsumedCapacity)
		}
	case *dynamodb.TransactWriteItemsInput:
		req.Operation = "TransactWriteItems"
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				r.put(&req, it.Put.Item, 2, !failed)
			case it.Update != nil:
				r.update(&req, it.Update.Key, aws.ToString(it.Update.UpdateExpression), it.Update.ExpressionAttributeNames, it.Update.ExpressionAttributeValues, 2, !failed)
			case it.Delete != nil:
				r.delete(&req, it.Delete.Key, 2, !failed)
			case it.ConditionCheck != nil:
				id := r.id(it.ConditionCheck.Key)
				old, ok := r.shadow[id]
				if !ok {
					old, req.Approximate = it.ConditionCheck.Key, true
				}
				req.write(id, WriteCheck, 2, dynamostore.ItemSize(old))
			}
		}
		if out, ok := result.(*dynamodb.TransactWriteItemsOutput); ok && out != nil {
			req.ReportedWrite = total(out.ConsumedCapacity)
		}
	default:
		return // control plane (DescribeTable, ...): no capacity
	}
	if req.Tenant == "" {
		for _, u := range req.Units {
			if t := KeyTenant(u.PK); t != "" {
				req.Tenant = t
				break
			}
		}
	}
	r.requests = append(r.requests, req)
}

// conditionFailed reports whether err is a failed condition, which AWS
// charges for.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	var tce *types.TransactionCanceledException
	return errors.As(err, &ccf) || errors.As(err, &tce)
}

func (q *Request) add(u Units) {
	for i := range q.Units {
		if q.Units[i].Index == u.Index && q.Units[i].PK == u.PK {
			q.Units[i].Read += u.Read
			q.Units[i].Write += u.Write
			return
		}
	}
	q.Units = append(q.Units, u)
}

// split spreads read units equally over the table keys pks.
func (q *Request) split(pks []string, read float64) {
	if len(pks) == 0 {
		if read > 0 {
			q.add(Units{PK: "(unknown)", Read: read})
		}
		return
	}
	for _, pk := range pks {
		q.add(Units{PK: pk, Read: read / float64(len(pks))})
	}
}

func (r *Recorder) batchGet(req *Request, in *dynamodb.BatchGetItemInput, out *dynamodb.BatchGetItemOutput) {
	for _, cc := range out.ConsumedCapacity {
		table := aws.ToString(cc.TableName)
		ka, ok := in.RequestItems[table]
		if !ok && len(in.RequestItems) == 1 {
			for _, v := range in.RequestItems {
				ka = v
			}
		}
		unprocessed := out.UnprocessedKeys[table].Keys
		var pks []string
		for _, k := range ka.Keys {
			if !containsKey(unprocessed, k) {
				pks = append(pks, keyString(k[r.schema.PK]))
			}
		}
		req.split(pks, units(&cc))
	}
}

// id is the shadow's key of an item (or of a key).
func (r *Recorder) id(item map[string]types.AttributeValue) [2]string {
	return [2]string{keyString(item[r.schema.PK]), keyString(item[r.schema.SK])}
}

func (r *Recorder) pkOf(index string) string {
	if index == "" {
		return r.schema.PK
	}
	for _, ix := range r.schema.Indexes {
		if ix.Name == index {
			return ix.PK
		}
	}
	return r.schema.PK
}

// put costs writing item (factor 2 in a transaction); apply updates the
// shadow and costs the index writes.
func (r *Recorder) put(req *Request, item map[string]types.AttributeValue, factor float64, apply bool) {
	id := r.id(item)
	old := r.shadow[id]
	req.write(id, WritePut, factor, max(dynamostore.ItemSize(item), dynamostore.ItemSize(old)))
	if !apply {
		return
	}
	r.indexWrites(req, id, factor > 1, old, item)
	r.shadow[id] = maps.Clone(item)
}

func (r *Recorder) delete(req *Request, key map[string]types.AttributeValue, factor float64, apply bool) {
	id := r.id(key)
	old, known := r.shadow[id]
	if !known {
		req.Approximate = true
		req.write(id, WriteDelete, factor, 0)
		return
	}
	req.write(id, WriteDelete, factor, dynamostore.ItemSize(old))
	if !apply {
		return
	}
	r.indexWrites(req, id, factor > 1, old, nil)
	delete(r.shadow, id)
}

func (r *Recorder) update(req *Request, key map[string]types.AttributeValue, expr string, names map[string]string, values map[string]types.AttributeValue, factor float64, apply bool) {
	id := r.id(key)
	old, known := r.shadow[id]
	if !known {
		req.Approximate = true
	}
	base := old
	if !known {
		base = key
	}
	item := ApplyUpdate(base, expr, names, values)
	req.write(id, WriteUpdate, factor, max(dynamostore.ItemSize(item), dynamostore.ItemSize(old)))
	if !apply {
		return
	}
	r.indexWrites(req, id, factor > 1, old, item)
	r.shadow[id] = item
}

// write records one table write of size bytes of the item id: factor (2
// inside a transaction) times the standard units of size.
func (q *Request) write(id [2]string, kind WriteKind, factor float64, size int) {
	units := factor * WriteUnits(size)
	q.add(Units{PK: id[0], Write: units})
	q.Writes = append(q.Writes, ItemWrite{PK: id[0], ItemPK: id[0], ItemSK: id[1], Kind: kind, Transactional: factor > 1, Size: size, Units: units})
}

// indexWrites adds the index writes of replacing old by item (nil: absent),
// the item id's (tx: inside a transaction, which does not double them).
func (r *Recorder) indexWrites(req *Request, id [2]string, tx bool, old, item map[string]types.AttributeValue) {
	entry := func(ix Index, pk string, kind WriteKind, of map[string]types.AttributeValue) {
		size := dynamostore.ItemSize(r.projection(ix, of))
		u := WriteUnits(size)
		req.add(Units{Index: ix.Name, PK: pk, Write: u})
		req.Writes = append(req.Writes, ItemWrite{Index: ix.Name, PK: pk, ItemPK: id[0], ItemSK: id[1], Kind: kind, Transactional: tx, Size: size, Units: u})
	}
	for _, ix := range r.schema.Indexes {
		oldIn, newIn := r.inIndex(ix, old), r.inIndex(ix, item)
		oldPK, newPK := keyString(old[ix.PK]), keyString(item[ix.PK])
		switch {
		case oldIn && newIn && oldPK == newPK && keyString(old[ix.SK]) == keyString(item[ix.SK]):
			if ix.Projection != types.ProjectionTypeKeysOnly && !reflect.DeepEqual(r.projection(ix, old), r.projection(ix, item)) {
				entry(ix, newPK, WriteUpdate, item)
			}
		default:
			if oldIn {
				entry(ix, oldPK, WriteDelete, old)
			}
			if newIn {
				entry(ix, newPK, WritePut, item)
			}
		}
	}
}

// inIndex: an item is in a (sparse) index when it has the index's keys.
func (r *Recorder) inIndex(ix Index, item map[string]types.AttributeValue) bool {
	if item == nil {
		return false
	}
	if _, ok := item[ix.PK]; !ok {
		return false
	}
	if ix.SK != "" {
		if _, ok := item[ix.SK]; !ok {
			return false
		}
	}
	return true
}

// projection is the index entry of item: table and index keys, plus the
// projected attributes.
func (r *Recorder) projection(ix Index, item map[string]types.AttributeValue) map[string]types.AttributeValue {
	if ix.Projection == types.ProjectionTypeAll {
		return item
	}
	p := map[string]types.AttributeValue{}
	for _, a := range append([]string{r.schema.PK, r.schema.SK, ix.PK, ix.SK}, ix.NonKey...) {
		if v, ok := item[a]; ok && a != "" {
			p[a] = v
		}
	}
	return p
}

var (
	clauseRE      = regexp.MustCompile(`(?i)\b(SET|REMOVE|ADD|DELETE)\b`)
	placeholderRE = regexp.MustCompile(`:[A-Za-z0-9_]+`)
	equalityRE    = regexp.MustCompile(`([#A-Za-z0-9_.]+)\s*=\s*(:[A-Za-z0-9_]+)`)
)

// ApplyUpdate returns a copy of item with an update expression applied
// approximately (see Recorder): top-level SET and ADD take the value of the
// first placeholder of their right-hand side, REMOVE drops the attribute;
// DELETE clauses and nested paths are ignored.
func ApplyUpdate(item map[string]types.AttributeValue, expr string, names map[string]string, values map[string]types.AttributeValue) map[string]types.AttributeValue {
	out := maps.Clone(item)
	if out == nil {
		out = map[string]types.AttributeValue{}
	}
	locs := clauseRE.FindAllStringSubmatchIndex(expr, -1)
	for i, loc := range locs {
		end := len(expr)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		verb := strings.ToUpper(expr[loc[2]:loc[3]])
		for _, action := range splitTop(expr[loc[1]:end]) {
			switch verb {
			case "SET":
				path, rhs, ok := strings.Cut(action, "=")
				if !ok {
					continue
				}
				name, ok := topName(path, names)
				if !ok {
					continue
				}
				if v, ok := values[placeholderRE.FindString(rhs)]; ok {
					out[name] = v
				}
			case "ADD":
				fields := strings.Fields(action)
				if len(fields) != 2 {
					continue
				}
				name, ok := topName(fields[0], names)
				if !ok {
					continue
				}
				if v, ok := values[fields[1]]; ok {
					out[name] = v
				}
			case "REMOVE":
				if name, ok := topName(action, names); ok {
					delete(out, name)
				}
			}
		}
	}
	return out
}

// splitTop splits s at the commas outside parentheses, trimmed, dropping empties.
func splitTop(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch s[i] {
			case '(':
				depth++
				continue
			case ')':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		if p := strings.TrimSpace(s[start:i]); p != "" {
			parts = append(parts, p)
		}
		start = i + 1
	}
	return parts
}

// topName resolves a top-level attribute path ("#n" or "name"); nested paths
// are not.
func topName(path string, names map[string]string) (string, bool) {
	path = strings.TrimSpace(path)
	if path == "" || strings.ContainsAny(path, ".[ ") {
		return "", false
	}
	if strings.HasPrefix(path, "#") {
		n, ok := names[path]
		return n, ok
	}
	return path, true
}

// queryPK finds the value the query's key condition gives the partition key
// attribute pkAttr ("#pk = :pk" or "pk = :pk", or the legacy KeyConditions).
func queryPK(in *dynamodb.QueryInput, pkAttr string) string {
	for _, m := range equalityRE.FindAllStringSubmatch(aws.ToString(in.KeyConditionExpression), -1) {
		name := m[1]
		if strings.HasPrefix(name, "#") {
			name = in.ExpressionAttributeNames[name]
		}
		if name == pkAttr {
			return keyString(in.ExpressionAttributeValues[m[2]])
		}
	}
	if c, ok := in.KeyConditions[pkAttr]; ok && len(c.AttributeValueList) > 0 {
		return keyString(c.AttributeValueList[0])
	}
	return "(unknown)"
}

// keyString is a key attribute's value as text ("" when absent).
func keyString(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberB:
		return string(v.Value)
	}
	return ""
}

// units is the capacity units of one ConsumedCapacity (0 when absent).
func units(cc *types.ConsumedCapacity) float64 {
	if cc == nil {
		return 0
	}
	if cc.CapacityUnits != nil {
		return *cc.CapacityUnits
	}
	return aws.ToFloat64(cc.ReadCapacityUnits) + aws.ToFloat64(cc.WriteCapacityUnits)
}

func total(ccs []types.ConsumedCapacity) float64 {
	n := 0.0
	for i := range ccs {
		n += units(&ccs[i])
	}
	return n
}

func containsKey(keys []map[string]types.AttributeValue, k map[string]types.AttributeValue) bool {
	for _, x := range keys {
		if reflect.DeepEqual(x, k) {
			return true
		}
	}
	return false
}

func containsWrite(ws []types.WriteRequest, w types.WriteRequest) bool {
	for _, x := range ws {
		if reflect.DeepEqual(x, w) {
			return true
		}
	}
	return false
}

// KeyTenant returns the tenant of a partition key value that starts with
// "T#<tenant>#" (a table pk or a list index pk), else "".
func KeyTenant(pk string) string {
	rest, ok := strings.CutPrefix(pk, "T#")
	if !ok {
		return ""
	}
	t, _, ok := strings.Cut(rest, "#")
	if !ok {
		return ""
	}
	return t
}
