package capacity

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

type item = map[string]types.AttributeValue

func outboxItem(id, shard, due string) item {
	return item{"pk": s("T#t1#W#" + id), "sk": s("W"), "gsi1pk": s("OUTBOX#" + shard), "gsi1sk": s(due + "#" + id), "type": s("x")}
}

func TestValueSize(t *testing.T) {
	for _, c := range []struct {
		name string
		v    types.AttributeValue
		want int
	}{
		{"string bytes", s("héllo"), 6},
		{"binary", &types.AttributeValueMemberB{Value: make([]byte, 10)}, 10},
		{"number 1 digit", n("7"), 2},
		{"number 4 digits", n("1234"), 3},
		{"number leading zeros and sign", n("-0012.50"), 3},
		{"number 20 digits", n("12345678901234567890"), 11},
		{"bool", &types.AttributeValueMemberBOOL{Value: true}, 1},
		{"null", &types.AttributeValueMemberNULL{Value: true}, 1},
		{"list", &types.AttributeValueMemberL{Value: []types.AttributeValue{s("ab"), s("c")}}, 3 + 3 + 2},
		{"map", &types.AttributeValueMemberM{Value: item{"k": s("vv")}}, 3 + 1 + 1 + 2},
		{"string set", &types.AttributeValueMemberSS{Value: []string{"a", "bc"}}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := dynamostore.ValueSize(c.v); got != c.want {
				t.Fatalf("ValueSize = %d, want %d", got, c.want)
			}
		})
	}
	if got := dynamostore.ItemSize(item{"pk": s("abc"), "n": n("10")}); got != 2+3+1+2 {
		t.Fatalf("ItemSize = %d", got)
	}
}

func TestWriteUnits(t *testing.T) {
	for _, c := range []struct {
		size int
		want float64
	}{{0, 1}, {1, 1}, {1024, 1}, {1025, 2}, {4096, 4}, {4097, 5}} {
		if got := WriteUnits(c.size); got != c.want {
			t.Errorf("WriteUnits(%d) = %v, want %v", c.size, got, c.want)
		}
	}
}

// call is one request given to Record.
type call struct {
	params, result any
	err            error
}

func TestRecordWrites(t *testing.T) {
	big := strings.Repeat("x", 1500)
	canceled := &types.TransactionCanceledException{Message: aws.String("cancelled [ConditionalCheckFailed]")}
	for _, c := range []struct {
		name   string
		before []call // earlier requests (fill the shadow)
		last   call
		want   map[string]float64 // write units per key of the last request
		approx bool
		failed bool
	}{
		{
			name: "put of a small item",
			last: call{params: &dynamodb.PutItemInput{Item: item{"pk": s("T#t1#R#c#k"), "sk": s("R")}}, result: &dynamodb.PutItemOutput{}},
			want: map[string]float64{"T#t1#R#c#k": 1},
		},
		{
			name: "put of 1.5 KB",
			last: call{params: &dynamodb.PutItemInput{Item: item{"pk": s("p"), "sk": s("R"), "data": s(big)}}, result: &dynamodb.PutItemOutput{}},
			want: map[string]float64{"p": 2},
		},
		{
			name:   "overwrite costs the larger of old and new",
			before: []call{{params: &dynamodb.PutItemInput{Item: item{"pk": s("p"), "sk": s("R"), "data": s(big)}}, result: &dynamodb.PutItemOutput{}}},
			last:   call{params: &dynamodb.PutItemInput{Item: item{"pk": s("p"), "sk": s("R")}}, result: &dynamodb.PutItemOutput{}},
			want:   map[string]float64{"p": 2},
		},
		{
			name: "transaction doubles items, not index writes",
			last: call{params: &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{Item: item{"pk": s("T#t1#S#tenant"), "sk": s("HEAD"), "version": n("1")}}},
				{Put: &types.Put{Item: outboxItem("w1", "3", "2025")}},
			}}, result: &dynamodb.TransactWriteItemsOutput{}},
			want: map[string]float64{"T#t1#S#tenant": 2, "T#t1#W#w1": 2, "gsi1:OUTBOX#3": 1},
		},
		{
			name: "five small puts in a transaction are 10 units",
			last: call{params: &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{Item: item{"pk": s("a"), "sk": s("1")}}},
				{Put: &types.Put{Item: item{"pk": s("a"), "sk": s("2")}}},
				{Put: &types.Put{Item: item{"pk": s("a"), "sk": s("3")}}},
				{Put: &types.Put{Item: item{"pk": s("a"), "sk": s("4")}}},
				{Put: &types.Put{Item: item{"pk": s("a"), "sk": s("5")}}},
			}}, result: &dynamodb.TransactWriteItemsOutput{ConsumedCapacity: []types.ConsumedCapacity{{CapacityUnits: aws.Float64(4)}}}},
			want: map[string]float64{"a": 10},
		},
		{
			name: "list membership: put into two list indexes",
			last: call{params: &dynamodb.PutItemInput{Item: item{"pk": s("T#t1#R#m#k"), "sk": s("R"),
				"list2pk": s("T#t1#L#msgs##3"), "list2sk": s("k#k"), "list3pk": s("T#t1#L#other##0"), "list3sk": s("k#k")}}, result: &dynamodb.PutItemOutput{}},
			want: map[string]float64{"T#t1#R#m#k": 1, "list2:T#t1#L#msgs##3": 1, "list3:T#t1#L#other##0": 1},
		},
		{
			name: "rewrite with the same index keys: no KEYS_ONLY index write",
			before: []call{{params: &dynamodb.PutItemInput{Item: item{"pk": s("T#t1#R#m#k"), "sk": s("R"), "data": s("a"),
				"list2pk": s("T#t1#L#msgs##3"), "list2sk": s("k#k")}}, result: &dynamodb.PutItemOutput{}}},
			last: call{params: &dynamodb.PutItemInput{Item: item{"pk": s("T#t1#R#m#k"), "sk": s("R"), "data": s("b"),
				"list2pk": s("T#t1#L#msgs##3"), "list2sk": s("k#k")}}, result: &dynamodb.PutItemOutput{}},
			want: map[string]float64{"T#t1#R#m#k": 1},
		},
		{
			name: "rewrite moving to another list partition: index delete and put",
			before: []call{{params: &dynamodb.PutItemInput{Item: item{"pk": s("T#t1#R#m#k"), "sk": s("R"),
				"list2pk": s("T#t1#L#msgs#a#3"), "list2sk": s("k#k")}}, result: &dynamodb.PutItemOutput{}}},
			last: call{params: &dynamodb.PutItemInput{Item: item{"pk": s("T#t1#R#m#k"), "sk": s("R"),
				"list2pk": s("T#t1#L#msgs#b#3"), "list2sk": s("k#k")}}, result: &dynamodb.PutItemOutput{}},
			want: map[string]float64{"T#t1#R#m#k": 1, "list2:T#t1#L#msgs#a#3": 1, "list2:T#t1#L#msgs#b#3": 1},
		},
		{
			name:   "batch delete of a known outbox entry",
			before: []call{{params: &dynamodb.PutItemInput{Item: outboxItem("w2", "7", "2025")}, result: &dynamodb.PutItemOutput{}}},
			last: call{params: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t": {
				{DeleteRequest: &types.DeleteRequest{Key: item{"pk": s("T#t1#W#w2"), "sk": s("W")}}},
			}}}, result: &dynamodb.BatchWriteItemOutput{}},
			want: map[string]float64{"T#t1#W#w2": 1, "gsi1:OUTBOX#7": 1},
		},
		{
			name: "batch write skips unprocessed requests",
			last: call{params: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t": {
				{PutRequest: &types.PutRequest{Item: item{"pk": s("x"), "sk": s("1")}}},
				{PutRequest: &types.PutRequest{Item: item{"pk": s("y"), "sk": s("1")}}},
			}}}, result: &dynamodb.BatchWriteItemOutput{UnprocessedItems: map[string][]types.WriteRequest{"t": {
				{PutRequest: &types.PutRequest{Item: item{"pk": s("y"), "sk": s("1")}}},
			}}}},
			want: map[string]float64{"x": 1},
		},
		{
			name:   "delete of an unknown item",
			last:   call{params: &dynamodb.DeleteItemInput{Key: item{"pk": s("T#t1#W#nope"), "sk": s("W")}}, result: &dynamodb.DeleteItemOutput{}},
			want:   map[string]float64{"T#t1#W#nope": 1},
			approx: true,
		},
		{
			name:   "delete in a transaction",
			before: []call{{params: &dynamodb.PutItemInput{Item: outboxItem("w3", "9", "2025")}, result: &dynamodb.PutItemOutput{}}},
			last: call{params: &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Delete: &types.Delete{Key: item{"pk": s("T#t1#W#w3"), "sk": s("W")}}},
			}}, result: &dynamodb.TransactWriteItemsOutput{}},
			want: map[string]float64{"T#t1#W#w3": 2, "gsi1:OUTBOX#9": 1},
		},
		{
			name:   "update moving the index sort key: index delete and put",
			before: []call{{params: &dynamodb.PutItemInput{Item: outboxItem("w4", "5", "2025")}, result: &dynamodb.PutItemOutput{}}},
			last: call{params: &dynamodb.UpdateItemInput{
				Key:                       item{"pk": s("T#t1#W#w4"), "sk": s("W")},
				UpdateExpression:          aws.String("SET #due = :due, #attempt = :attempt, #gsk = :gsk REMOVE #err"),
				ExpressionAttributeNames:  map[string]string{"#due": "dueAt", "#attempt": "attempt", "#gsk": "gsi1sk", "#err": "lastError"},
				ExpressionAttributeValues: item{":due": s("2026"), ":attempt": n("1"), ":gsk": s("2026#w4")},
			}, result: &dynamodb.UpdateItemOutput{}},
			want: map[string]float64{"T#t1#W#w4": 1, "gsi1:OUTBOX#5": 2},
		},
		{
			name: "failed transaction: items charged, no index writes",
			last: call{params: &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{Item: outboxItem("w5", "1", "2025")}},
			}}, err: canceled},
			want:   map[string]float64{"T#t1#W#w5": 2},
			failed: true,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewRecorder(StoreSchema())
			ctx := WithOp(context.Background(), "op")
			for _, b := range c.before {
				r.Record(ctx, b.params, b.result, b.err)
			}
			r.Record(ctx, c.last.params, c.last.result, c.last.err)
			reqs := r.Requests()
			last := reqs[len(reqs)-1]
			got := map[string]float64{}
			for _, u := range last.Units {
				if u.Write != 0 {
					got[u.Key()] += u.Write
				}
			}
			if !equal(got, c.want) {
				t.Fatalf("write units %v, want %v", got, c.want)
			}
			if last.Approximate != c.approx || last.Failed != c.failed {
				t.Fatalf("approximate %v failed %v, want %v %v", last.Approximate, last.Failed, c.approx, c.failed)
			}
		})
	}
}

func TestRecordReads(t *testing.T) {
	cc := func(u float64) *types.ConsumedCapacity {
		return &types.ConsumedCapacity{TableName: aws.String("t"), CapacityUnits: aws.Float64(u)}
	}
	for _, c := range []struct {
		name string
		last call
		want map[string]float64
	}{
		{
			name: "get item",
			last: call{params: &dynamodb.GetItemInput{Key: item{"pk": s("G#R#api-keys#k1"), "sk": s("R")}}, result: &dynamodb.GetItemOutput{ConsumedCapacity: cc(0.5)}},
			want: map[string]float64{"G#R#api-keys#k1": 0.5},
		},
		{
			name: "query of an index with a placeholder name",
			last: call{params: &dynamodb.QueryInput{IndexName: aws.String("gsi1"), KeyConditionExpression: aws.String("#pk = :pk AND #sk < :b"),
				ExpressionAttributeNames:  map[string]string{"#pk": "gsi1pk", "#sk": "gsi1sk"},
				ExpressionAttributeValues: item{":pk": s("OUTBOX#5"), ":b": s("z")}}, result: &dynamodb.QueryOutput{ConsumedCapacity: cc(0.5)}},
			want: map[string]float64{"gsi1:OUTBOX#5": 0.5},
		},
		{
			name: "query of the table with a literal name",
			last: call{params: &dynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
				ExpressionAttributeValues: item{":pk": s("T#t1#S#tenant"), ":from": s("a"), ":to": s("b")}}, result: &dynamodb.QueryOutput{ConsumedCapacity: cc(1)}},
			want: map[string]float64{"T#t1#S#tenant": 1},
		},
		{
			name: "batch get split over the processed keys",
			last: call{params: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{"t": {Keys: []map[string]types.AttributeValue{
				{"pk": s("a"), "sk": s("R")}, {"pk": s("b"), "sk": s("R")}, {"pk": s("c"), "sk": s("R")}, {"pk": s("d"), "sk": s("R")},
			}}}}, result: &dynamodb.BatchGetItemOutput{
				ConsumedCapacity: []types.ConsumedCapacity{*cc(3)},
				UnprocessedKeys:  map[string]types.KeysAndAttributes{"t": {Keys: []map[string]types.AttributeValue{{"pk": s("d"), "sk": s("R")}}}},
			}},
			want: map[string]float64{"a": 1, "b": 1, "c": 1},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewRecorder(StoreSchema())
			r.Record(context.Background(), c.last.params, c.last.result, c.last.err)
			got := map[string]float64{}
			for _, u := range r.Requests()[0].Units {
				got[u.Key()] += u.Read
			}
			if !equal(got, c.want) {
				t.Fatalf("read units %v, want %v", got, c.want)
			}
		})
	}
}

func TestLabels(t *testing.T) {
	r := NewRecorder(StoreSchema())
	get := &dynamodb.GetItemInput{Key: item{"pk": s("T#t9#R#c#k"), "sk": s("R")}}
	out := &dynamodb.GetItemOutput{}
	r.Record(context.Background(), get, out, nil)
	ctx := WithTenant(WithOp(context.Background(), "a"), "t1")
	r.Record(ctx, get, out, nil)
	r.Fallback = func(context.Context) (string, string, string) { return "bg", "t2", "i1" }
	r.Record(context.Background(), get, out, nil)
	reqs := r.Requests()
	for i, want := range []Request{{Op: Unlabelled, Tenant: "t9"}, {Op: "a", Tenant: "t1"}, {Op: "bg", Tenant: "t2", Instance: "i1"}} {
		if reqs[i].Op != want.Op || reqs[i].Tenant != want.Tenant || (want.Instance != "" && reqs[i].Instance != want.Instance) {
			t.Errorf("request %d: op %q tenant %q instance %q, want %+v", i, reqs[i].Op, reqs[i].Tenant, reqs[i].Instance, want)
		}
	}
	if reqs[1].Instance == "" || WithOp(ctx, "a") == nil {
		t.Fatal("WithOp gives no instance")
	}
	if op, tenant := OpFrom(ctx); op != "a" || tenant != "t1" {
		t.Fatalf("OpFrom = %q %q", op, tenant)
	}
}

func TestApplyUpdate(t *testing.T) {
	names := map[string]string{"#a": "a", "#b": "b"}
	values := item{":v": s("new"), ":n": n("1"), ":w": s("w")}
	for _, c := range []struct {
		name, expr string
		want       item
	}{
		{"set", "SET #a = :v", item{"a": s("new"), "b": s("old"), "c": s("old")}},
		{"set and remove", "SET #a = :v REMOVE #b, c", item{"a": s("new")}},
		{"arithmetic and functions", "set #a = #a + :n, #b = if_not_exists(#b, :w)", item{"a": n("1"), "b": s("w"), "c": s("old")}},
		{"add", "ADD d :n", item{"a": s("old"), "b": s("old"), "c": s("old"), "d": n("1")}},
		{"nested paths ignored", "SET a.x = :v REMOVE b[0]", item{"a": s("old"), "b": s("old"), "c": s("old")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			old := item{"a": s("old"), "b": s("old"), "c": s("old")}
			got := ApplyUpdate(old, c.expr, names, values)
			if len(got) != len(c.want) {
				t.Fatalf("got %d attributes %v, want %v", len(got), keys(got), keys(c.want))
			}
			for k, v := range c.want {
				if keyString(got[k]) != keyString(v) {
					t.Fatalf("%s = %v, want %v", k, keyString(got[k]), keyString(v))
				}
			}
			if keyString(old["a"]) != "old" || len(old) != 3 {
				t.Fatal("ApplyUpdate changed its input")
			}
		})
	}
}

func TestKeyTenant(t *testing.T) {
	for pk, want := range map[string]string{
		"T#t1#S#tenant": "t1", "T#_operator#I#k": "_operator", "G#R#api-keys#k": "", "OUTBOX#3": "", "T#x": "",
	} {
		if got := KeyTenant(pk); got != want {
			t.Errorf("KeyTenant(%q) = %q, want %q", pk, got, want)
		}
	}
}

// req is a synthetic request of one op instance.
func req(op, tenant, instance string, units ...Units) Request {
	return Request{Op: op, Tenant: tenant, Instance: instance, Units: units}
}

func TestReportCeilings(t *testing.T) {
	inf := math.Inf(1)
	for _, c := range []struct {
		name                                   string
		reqs                                   []Request
		op                                     string
		platformW, platformR, tenantW, tenantR float64
		platformKey, tenantKey                 string
	}{
		{
			name: "a shared outbox shard bounds the platform, a tenant's head bounds the tenant",
			reqs: []Request{
				req("onboard", "t1", "1", Units{PK: "T#t1#S#tenant", Write: 2}, Units{Index: "gsi1", PK: "OUTBOX#1", Write: 1}),
				req("onboard", "t2", "2", Units{PK: "T#t2#S#tenant", Write: 2}, Units{Index: "gsi1", PK: "OUTBOX#1", Write: 1}),
				req("onboard", "t3", "3", Units{PK: "T#t3#S#tenant", Write: 2}, Units{Index: "gsi1", PK: "OUTBOX#2", Write: 1}),
				req("onboard", "t4", "4", Units{PK: "T#t4#S#tenant", Write: 2}, Units{Index: "gsi1", PK: "OUTBOX#3", Write: 1}),
			},
			op:        "onboard",
			platformW: 1000 / (2.0 / 4), platformR: inf, tenantW: inf, tenantR: inf,
			platformKey: "gsi1:OUTBOX#1",
		},
		{
			name: "a key the tenant's operations share bounds the tenant; a key one operation made does not",
			reqs: []Request{
				req("provision", "t1", "1", Units{PK: "T#t1#S#tenant", Write: 2}, Units{PK: "T#t1#S#new-1", Write: 4}),
				req("provision", "t1", "2", Units{PK: "T#t1#S#tenant", Write: 2}, Units{PK: "T#t1#S#new-2", Write: 4}),
			},
			op:        "provision",
			platformW: inf, platformR: inf, tenantW: 1000 / 2.0, tenantR: inf,
			tenantKey: "T#t1#S#tenant",
		},
		{
			name: "keys of one tenant never bound the platform",
			reqs: []Request{
				req("get", "t1", "1", Units{PK: "G#R#api-keys#k1", Read: 0.5}, Units{PK: "T#t1#R#tenants#t1", Read: 1}),
				req("get", "t1", "2", Units{PK: "G#R#api-keys#k1", Read: 0.5}, Units{PK: "T#t1#R#tenants#t1", Read: 1}),
				req("get", "t2", "3", Units{PK: "G#R#api-keys#k2", Read: 0.5}, Units{PK: "T#t2#R#tenants#t2", Read: 1}),
			},
			op:        "get",
			platformW: inf, platformR: inf, tenantW: inf, tenantR: 3000,
			tenantKey: "T#t1#R#tenants#t1",
		},
		{
			name: "a global key read for two tenants is shared",
			reqs: []Request{
				req("get", "t1", "1", Units{PK: "G#R#cfg#x", Read: 1}),
				req("get", "t2", "2", Units{PK: "G#R#cfg#x", Read: 1}),
			},
			op:        "get",
			platformW: inf, platformR: 3000, tenantW: inf, tenantR: inf,
			platformKey: "G#R#cfg#x",
		},
		{
			name: "one tenant's list shards",
			reqs: func() []Request {
				var rs []Request
				for i := range 8 {
					shard := []string{"0", "0", "0", "1", "1", "2", "3", "3"}[i]
					rs = append(rs, req("list", "t1", string(rune('a'+i)),
						Units{PK: "T#t1#R#m#" + shard + string(rune('a'+i)), Write: 2},
						Units{Index: "list2", PK: "T#t1#L#m##" + shard, Write: 1}))
				}
				return rs
			}(),
			op:        "list",
			platformW: inf, platformR: inf, tenantW: 1000 / (3.0 / 8), tenantR: inf,
			tenantKey: "list2:T#t1#L#m##0",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := NewReport(c.reqs, Limits{})
			s, ok := rep.Op(c.op)
			if !ok {
				t.Fatal("no op")
			}
			for _, x := range []struct {
				what string
				got  Ceiling
				want float64
			}{{"platform writes", s.PlatformWrite, c.platformW}, {"platform reads", s.PlatformRead, c.platformR},
				{"tenant writes", s.TenantWrite, c.tenantW}, {"tenant reads", s.TenantRead, c.tenantR}} {
				if math.Abs(x.got.PerSecond-x.want) > 1e-6 && !(math.IsInf(x.want, 1) && x.got.Unbounded()) {
					t.Errorf("%s = %v, want %v", x.what, x.got.PerSecond, x.want)
				}
			}
			if p, _ := rep.PlatformCeiling(c.op); p.Key != c.platformKey {
				t.Errorf("platform key %q, want %q", p.Key, c.platformKey)
			}
			if p, _ := rep.TenantCeiling(c.op); p.Key != c.tenantKey {
				t.Errorf("tenant key %q, want %q", p.Key, c.tenantKey)
			}
			text := rep.String()
			for _, want := range []string{"Capacity per operation", "Ceilings", c.op} {
				if !strings.Contains(text, want) {
					t.Errorf("report lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

func TestReportFigures(t *testing.T) {
	rep := NewReport([]Request{
		req("w", "t1", "1", Units{PK: "T#t1#W#a", Write: 2}, Units{Index: "gsi1", PK: "OUTBOX#1", Write: 1}),
		req("w", "t2", "2", Units{PK: "T#t2#W#b", Write: 2}, Units{Index: "gsi1", PK: "OUTBOX#1", Write: 1}),
		req("w", "", "", Units{Index: "gsi1", PK: "OUTBOX#1", Read: 0.5}), // a sweep: units, no operation
	}, Limits{})
	s, _ := rep.Op("w")
	if s.Count != 2 || s.Requests != 3 || s.TableWCU != 2 || s.IndexWCU != 1 || s.IndexRCU != 0.25 {
		t.Fatalf("figures %+v", s)
	}
	if s.BusiestWrite != (KeyLoad{Key: "T#t1#W#a", PerOp: 1}) && s.BusiestWrite != (KeyLoad{Key: "gsi1:OUTBOX#1", PerOp: 1}) {
		t.Fatalf("busiest write %+v", s.BusiestWrite)
	}
	shared := rep.SharedKeys()
	if len(shared) != 1 || shared[0].Key != "gsi1:OUTBOX#1" || shared[0].Tenants != 2 || math.Abs(shared[0].WriteShare-2.0/6) > 1e-9 || shared[0].ReadShare != 1 {
		t.Fatalf("shared keys %+v", shared)
	}
	if got := thousands(1234567.4); got != "1,234,567" {
		t.Fatalf("thousands = %s", got)
	}
}

// TestOption drives the middleware through a real client against a fake
// endpoint: the request asks for INDEXES and the typed output is recorded.
func TestOption(t *testing.T) {
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		bodies = append(bodies, m)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		switch r.Header.Get("X-Amz-Target") {
		case "DynamoDB_20120810.GetItem":
			_, _ = io.WriteString(w, `{"ConsumedCapacity":{"TableName":"t","CapacityUnits":0.5}}`)
		default:
			_, _ = io.WriteString(w, `{"ConsumedCapacity":[{"TableName":"t","CapacityUnits":4}]}`)
		}
	}))
	defer srv.Close()
	r := NewRecorder(StoreSchema())
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("a", "b", ""),
	}, r.Option())
	ctx := WithOp(context.Background(), "q")
	in := &dynamodb.GetItemInput{TableName: aws.String("t"), Key: item{"pk": s("T#t1#R#c#k"), "sk": s("R")}}
	if _, err := client.GetItem(ctx, in); err != nil {
		t.Fatal(err)
	}
	if in.ReturnConsumedCapacity != "" {
		t.Fatal("the caller's input was changed")
	}
	_, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String("t"), Item: outboxItem("w1", "2", "2025")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bodies {
		if b["ReturnConsumedCapacity"] != "INDEXES" {
			t.Errorf("request %d: ReturnConsumedCapacity %v", i, b["ReturnConsumedCapacity"])
		}
	}
	reqs := r.Requests()
	if len(reqs) != 2 || reqs[0].Op != "q" || reqs[0].Operation != "GetItem" || reqs[0].Units[0].Read != 0.5 {
		t.Fatalf("get: %+v", reqs)
	}
	if reqs[1].Operation != "TransactWriteItems" || reqs[1].ReportedWrite != 4 || len(reqs[1].Units) != 2 {
		t.Fatalf("transaction: %+v", reqs[1])
	}
}

func equal(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if math.Abs(b[k]-v) > 1e-9 {
			return false
		}
	}
	return true
}

func keys(m item) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestItemWrites(t *testing.T) {
	r := NewRecorder(StoreSchema())
	ctx := WithOp(context.Background(), "op")
	r.Record(ctx, &dynamodb.PutItemInput{Item: outboxItem("w1", "4", "2025")}, &dynamodb.PutItemOutput{}, nil)
	r.Record(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{Item: item{"pk": s("T#t1#S#s"), "sk": s("HEAD"), "version": n("1")}}},
		{Put: &types.Put{Item: item{"pk": s("T#t1#R#m#k"), "sk": s("R"), "list2pk": s("T#t1#L#msgs##3"), "list2sk": s("k#k")}}},
		{Delete: &types.Delete{Key: item{"pk": s("T#t1#W#w1"), "sk": s("W")}}},
		{ConditionCheck: &types.ConditionCheck{Key: item{"pk": s("T#t1#S#other"), "sk": s("HEAD")}}},
	}}, &dynamodb.TransactWriteItemsOutput{}, nil)
	reqs := r.Requests()
	entry := outboxItem("w1", "4", "2025")
	keysOnly := item{"pk": entry["pk"], "sk": entry["sk"], "gsi1pk": entry["gsi1pk"], "gsi1sk": entry["gsi1sk"]}
	if w := reqs[0].Writes; len(w) != 2 || w[0] != (ItemWrite{PK: "T#t1#W#w1", ItemPK: "T#t1#W#w1", ItemSK: "W", Kind: WritePut, Size: dynamostore.ItemSize(entry), Units: 1}) ||
		w[1] != (ItemWrite{Index: "gsi1", PK: "OUTBOX#4", ItemPK: "T#t1#W#w1", ItemSK: "W", Kind: WritePut, Size: dynamostore.ItemSize(keysOnly), Units: 1}) {
		t.Fatalf("put: writes %+v", w)
	}
	want := []ItemWrite{
		{PK: "T#t1#S#s", ItemPK: "T#t1#S#s", ItemSK: "HEAD", Kind: WritePut, Transactional: true, Units: 2},
		{PK: "T#t1#R#m#k", ItemPK: "T#t1#R#m#k", ItemSK: "R", Kind: WritePut, Transactional: true, Units: 2},
		{Index: "list2", PK: "T#t1#L#msgs##3", ItemPK: "T#t1#R#m#k", ItemSK: "R", Kind: WritePut, Transactional: true, Units: 1},
		{PK: "T#t1#W#w1", ItemPK: "T#t1#W#w1", ItemSK: "W", Kind: WriteDelete, Transactional: true, Units: 2},
		{Index: "gsi1", PK: "OUTBOX#4", ItemPK: "T#t1#W#w1", ItemSK: "W", Kind: WriteDelete, Transactional: true, Units: 1},
		{PK: "T#t1#S#other", ItemPK: "T#t1#S#other", ItemSK: "HEAD", Kind: WriteCheck, Transactional: true, Units: 2},
	}
	got := reqs[1].Writes
	if len(got) != len(want) {
		t.Fatalf("transaction: writes %+v", got)
	}
	sum, units := 0.0, 0.0
	for i := range want {
		if got[i].Size <= 0 {
			t.Errorf("transaction write %d: size %d", i, got[i].Size)
		}
		got[i].Size = 0
		if got[i] != want[i] {
			t.Errorf("transaction write %d: %+v, want %+v", i, got[i], want[i])
		}
		sum += got[i].Units
	}
	for _, u := range reqs[1].Units {
		units += u.Write
	}
	if sum != units {
		t.Fatalf("writes sum to %v units, the request's units to %v", sum, units)
	}
}

func TestWithInstance(t *testing.T) {
	r := NewRecorder(StoreSchema())
	get := &dynamodb.GetItemInput{Key: item{"pk": s("T#t1#R#c#k"), "sk": s("R")}}
	a := WithInstance(WithOp(context.Background(), "send"), "trace-1")
	b := WithInstance(WithOp(context.Background(), "dispatch"), "trace-1")
	r.Record(a, get, &dynamodb.GetItemOutput{}, nil)
	r.Record(b, get, &dynamodb.GetItemOutput{}, nil)
	r.Record(WithInstance(WithOp(context.Background(), "send"), ""), get, &dynamodb.GetItemOutput{}, nil)
	reqs := r.Requests()
	if reqs[0].Instance != "trace-1" || reqs[1].Instance != "trace-1" || reqs[1].Op != "dispatch" {
		t.Fatalf("instances %q %q (op %q), want trace-1 twice", reqs[0].Instance, reqs[1].Instance, reqs[1].Op)
	}
	if reqs[2].Instance == "" || reqs[2].Instance == "trace-1" {
		t.Fatalf(`WithInstance(ctx, "") replaced WithOp's instance: %q`, reqs[2].Instance)
	}
	for i := range reqs {
		reqs[i].Op = "message"
	}
	if s, _ := NewReport(reqs, Limits{}).Op("message"); s.Count != 2 {
		t.Fatalf("count %d, want 2 (one per instance)", s.Count)
	}
}
