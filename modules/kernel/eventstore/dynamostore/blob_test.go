package dynamostore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// blobShards is the outbox shard count of the compression tests (few:
// their sweeps query every shard).
const blobShards = 4

// storedForm returns which of the attributes plain and z (persisted names)
// the raw item has: "plain", "z", "none" or "both".
func storedForm(t *testing.T, item map[string]types.AttributeValue, plain, z string) string {
	t.Helper()
	_, p := item[plain]
	_, c := item[z]
	switch {
	case p && c:
		return "both"
	case p:
		return "plain"
	case c:
		return "z"
	}
	return "none"
}

func b64(n int) []byte {
	return []byte(`{"blob":"` + base64.StdEncoding.EncodeToString(dynamostore.RandomBytes(uint64(n), n)) + `"}`)
}

// TestCompressedAttributesRoundTrip: large compressible data and payloads
// are stored as dataz / payloadz (raw DEFLATE), small or incompressible
// ones plainly as data / payload, and every read path returns the bytes
// written.
func TestCompressedAttributesRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := dynamostore.New(client, table, dynamostore.WithOutboxShards(blobShards))
	tnt := gen.New(ids.Tenant)
	due := time.Date(1966, 1, 1, 0, 0, 0, 0, time.UTC) // a window of its own
	email := dynamostore.EmailPayload(21, 20<<10)
	pub := dynamostore.PublicationPayload(22)
	random := dynamostore.RandomBytes(23, 4096)
	small := json.RawMessage(`{"small":true}`)
	if len(small) >= dynamostore.BlobCompressMin || len(email) < 20<<10 || len(pub) < 1200 {
		t.Fatalf("sizes: small %d, email %d, publication %d", len(small), len(email), len(pub))
	}
	l := eventstore.List{Name: "mail", Slot: 2, Shards: 2}
	in := func(sort string) []eventstore.ListEntry { return []eventstore.ListEntry{{List: l, Sort: sort}} }

	ev := func(data []byte) eventstore.Event {
		e := event("t.mail")
		e.Data = data
		return e
	}
	events := []eventstore.Event{ev(email), ev(small), ev(random), ev(pub)}
	rows := []eventstore.Record{
		{Collection: "mail", Key: "email", Data: email, Lists: in("1")},
		{Collection: "mail", Key: "small", Data: small, Lists: in("2")},
		{Collection: "mail", Key: "random", Data: random, Lists: in("3")},
		{Collection: "mail", Key: "b64", Data: b64(4096), Lists: in("4")},
		{Collection: "blobs", Key: tnt, Global: true, Data: email},
	}
	work := []eventstore.OutboxEntry{
		{ID: gen.New(ids.Work), Type: "t.publish", Payload: pub, DueAt: due.Add(1 * time.Second)},
		{ID: gen.New(ids.Work), Type: "t.publish", Payload: small, DueAt: due.Add(2 * time.Second)},
		{ID: gen.New(ids.Work), Type: "t.publish", Payload: random, DueAt: due.Add(3 * time.Second)},
		{ID: gen.New(ids.Work), Type: "t.publish", Payload: email, DueAt: due.Add(4 * time.Second)},
	}
	err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt,
		Appends: []eventstore.StreamAppend{{StreamID: "mail", Events: events}},
		Records: rows, Outbox: work,
	})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), work) })

	// What is stored.
	for i, want := range []string{"z", "plain", "plain", "z"} {
		it := getItem(t, "T#"+tnt+"#S#mail", "E#0000000000000000000"+string(rune('1'+i)))
		if got := storedForm(t, it, "data", "dataz"); got != want {
			t.Errorf("event %d stored %s, want %s", i+1, got, want)
		}
	}
	// Random base64 is compressible: 64 byte values, ~6 bits each.
	for key, want := range map[string]string{"email": "z", "small": "plain", "random": "plain", "b64": "z"} {
		if got := storedForm(t, getItem(t, "T#"+tnt+"#R#mail#"+key, "R"), "data", "dataz"); got != want {
			t.Errorf("row %s stored %s, want %s", key, got, want)
		}
	}
	if got := storedForm(t, getItem(t, "G#R#blobs#"+tnt, "R"), "data", "dataz"); got != "z" {
		t.Errorf("global row stored %s, want z", got)
	}
	for i, want := range []string{"z", "plain", "plain", "z"} {
		it := getItem(t, "T#"+tnt+"#W#"+work[i].ID, "W")
		if got := storedForm(t, it, "payload", "payloadz"); got != want {
			t.Errorf("outbox entry %d stored %s, want %s", i, got, want)
		}
		if want == "z" && dynamostore.ItemSize(it) >= len(work[i].Payload) {
			t.Errorf("outbox entry %d: item of %d bytes for a payload of %d", i, dynamostore.ItemSize(it), len(work[i].Payload))
		}
	}

	// ReadStream.
	got, err := s.ReadStream(ctx, tnt, "mail", 1, 0)
	if err != nil || len(got) != len(events) {
		t.Fatalf("read stream: %d events, %v", len(got), err)
	}
	for i := range events {
		if !bytes.Equal(got[i].Data, events[i].Data) {
			t.Errorf("event %d: %d bytes read, %d written", i+1, len(got[i].Data), len(events[i].Data))
		}
	}
	// GetRecord, GetGlobalRecord.
	for _, r := range rows {
		var g eventstore.Record
		if r.Global {
			g, err = s.GetGlobalRecord(ctx, r.Collection, r.Key)
			if err == nil {
				var e eventstore.Record
				if e, err = s.GetGlobalRecord(ctx, r.Collection, r.Key, eventstore.Eventually); err == nil && !bytes.Equal(e.Data, r.Data) {
					t.Errorf("eventually consistent global row: %d bytes", len(e.Data))
				}
			}
		} else {
			g, err = s.GetRecord(ctx, tnt, r.Collection, r.Key)
		}
		if err != nil || !bytes.Equal(g.Data, r.Data) {
			t.Errorf("get %s/%s: %d bytes, %v; want %d", r.Collection, r.Key, len(g.Data), err, len(r.Data))
		}
	}
	// ListRecords, and PutRecords (BatchWriteItem) of a large row in the list.
	put := eventstore.Record{Collection: "mail", Key: "put", Data: dynamostore.EmailPayload(24, 30<<10), Lists: in("5")}
	if err := s.PutRecords(ctx, tnt, []eventstore.Record{put}); err != nil {
		t.Fatalf("put records: %v", err)
	}
	if got := storedForm(t, getItem(t, "T#"+tnt+"#R#mail#put", "R"), "data", "dataz"); got != "z" {
		t.Errorf("put row stored %s, want z", got)
	}
	listed, _, err := s.ListRecords(ctx, tnt, eventstore.ListQuery{List: l})
	if err != nil || len(listed) != 5 {
		t.Fatalf("list: %d rows, %v", len(listed), err)
	}
	for i, want := range append(rows[:4:4], put) {
		if listed[i].Key != want.Key || !bytes.Equal(listed[i].Data, want.Data) {
			t.Errorf("listed row %d: %s of %d bytes, want %s of %d", i, listed[i].Key, len(listed[i].Data), want.Key, len(want.Data))
		}
	}
	// PendingOutbox.
	pending, err := s.PendingOutbox(ctx, due.Add(time.Hour), 100)
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	var mine []eventstore.OutboxEntry
	for _, e := range pending {
		if e.TenantID == tnt {
			mine = append(mine, e)
		}
	}
	if len(mine) != len(work) {
		t.Fatalf("pending: %d of %d entries", len(mine), len(work))
	}
	for i, e := range mine {
		if e.ID != work[i].ID || !bytes.Equal(e.Payload, work[i].Payload) {
			t.Errorf("pending %d: %s of %d bytes, want %s of %d", i, e.ID, len(e.Payload), work[i].ID, len(work[i].Payload))
		}
	}
	// RescheduleOutbox (UpdateItem) leaves the compressed payload as it is;
	// ParkedOutbox reads it.
	parked := mine[0]
	parked.DueAt, parked.Attempt, parked.LastError = eventstore.ParkedAt, 5, "gave up"
	if err := s.RescheduleOutbox(ctx, parked); err != nil {
		t.Fatalf("park: %v", err)
	}
	t.Cleanup(func() { _ = s.AckOutbox(context.Background(), []eventstore.OutboxEntry{parked}) })
	if got := storedForm(t, getItem(t, "T#"+tnt+"#W#"+parked.ID, "W"), "payload", "payloadz"); got != "z" {
		t.Errorf("parked entry stored %s, want z", got)
	}
	all, err := s.ParkedOutbox(ctx, 100)
	if err != nil {
		t.Fatalf("parked: %v", err)
	}
	found := false
	for _, e := range all {
		if e.ID == parked.ID {
			found = true
			if !bytes.Equal(e.Payload, pub) || e.Attempt != 5 {
				t.Errorf("parked entry: %d bytes, attempt %d", len(e.Payload), e.Attempt)
			}
		}
	}
	if !found {
		t.Errorf("parked entry %s not read", parked.ID)
	}
}

// putRaw writes item as it is, and deletes it when the test ends.
func putRaw(t *testing.T, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &table, Item: item}); err != nil {
		t.Fatalf("put: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: &table, Key: map[string]types.AttributeValue{
			dynamostore.AttrPK: item[dynamostore.AttrPK], dynamostore.AttrSK: item[dynamostore.AttrSK],
		}})
	})
}

func sAttr(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func bAttr(v []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: v} }
func nAttr(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

// rawItems are an event, a row in list slot 1 ("all", one shard) and an
// outbox entry (shard 0 of 1) of tenant, written as they are, each with the
// attributes of value (plain "data" / "payload", or "dataz" / "payloadz").
func rawItems(t *testing.T, tenant, workID string, due time.Time, dataAttr, payloadAttr string, value []byte) {
	t.Helper()
	putRaw(t, map[string]types.AttributeValue{
		"pk": sAttr("T#" + tenant + "#S#raw"), "sk": sAttr("E#00000000000000000001"),
		"eventId": sAttr(gen.New(ids.Event)), "type": sAttr("t.raw"), "schemaVersion": nAttr("1"),
		"occurredAt": sAttr("2024-01-02T03:04:05.123456789Z"), dataAttr: bAttr(value),
	})
	putRaw(t, map[string]types.AttributeValue{
		"pk": sAttr("T#" + tenant + "#R#raw#k"), "sk": sAttr("R"), dataAttr: bAttr(value),
		dynamostore.ListAttrPK(1): sAttr("T#" + tenant + "#L#all##0"), dynamostore.ListAttrSK(1): sAttr("s#k"),
	})
	putRaw(t, map[string]types.AttributeValue{
		"pk": sAttr("T#" + tenant + "#W#" + workID), "sk": sAttr("W"),
		"gsi1pk": sAttr("OUTBOX#0"), "gsi1sk": sAttr(due.Format("2006-01-02T15:04:05.000000000Z") + "#" + workID),
		"id": sAttr(workID), "tenantId": sAttr(tenant), "type": sAttr("t.raw"), "dueAt": sAttr(due.Format("2006-01-02T15:04:05.000000000Z")),
		"attempt": nAttr("0"), payloadAttr: bAttr(value),
	})
}

// TestPlainFormStillReads: items written before compression (a large
// value under the plain attribute) read as before on every path.
func TestPlainFormStillReads(t *testing.T) {
	ctx := context.Background()
	st := dynamostore.New(client, table, dynamostore.WithOutboxShards(1))
	tnt, workID := gen.New(ids.Tenant), gen.New(ids.Work)
	due := time.Date(1967, 1, 1, 0, 0, 0, 0, time.UTC) // a window of its own
	value := dynamostore.EmailPayload(25, 20<<10)
	rawItems(t, tnt, workID, due, "data", "payload", value)

	evs, err := st.ReadStream(ctx, tnt, "raw", 1, 0)
	if err != nil || len(evs) != 1 || !bytes.Equal(evs[0].Data, value) {
		t.Fatalf("read stream: %d events, %v", len(evs), err)
	}
	r, err := st.GetRecord(ctx, tnt, "raw", "k")
	if err != nil || !bytes.Equal(r.Data, value) {
		t.Fatalf("get record: %d bytes, %v", len(r.Data), err)
	}
	rows, _, err := st.ListRecords(ctx, tnt, eventstore.ListQuery{List: eventstore.List{Name: "all", Slot: 1}})
	if err != nil || len(rows) != 1 || !bytes.Equal(rows[0].Data, value) {
		t.Fatalf("list: %d rows, %v", len(rows), err)
	}
	pending, err := st.PendingOutbox(ctx, due.Add(time.Hour), 100)
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	for _, e := range pending {
		if e.ID == workID {
			if !bytes.Equal(e.Payload, value) {
				t.Fatalf("pending payload: %d bytes", len(e.Payload))
			}
			return
		}
	}
	t.Fatalf("pending: entry %s not read", workID)
}

// TestCorruptCompressedAttribute: a dataz that does not inflate fails the
// reads of its event and row with an error naming the attribute (no panic,
// no ErrNotFound); an outbox entry whose payloadz does not inflate is
// skipped (logged) like any undecodable entry, and the others are handed.
func TestCorruptCompressedAttribute(t *testing.T) {
	ctx := context.Background()
	st := dynamostore.New(client, table, dynamostore.WithOutboxShards(1))
	tnt, workID := gen.New(ids.Tenant), gen.New(ids.Work)
	due := time.Date(1968, 1, 1, 0, 0, 0, 0, time.UTC) // a window of its own
	rawItems(t, tnt, workID, due, "dataz", "payloadz", []byte("\xffnot deflate at all, just bytes"))
	good := eventstore.OutboxEntry{ID: gen.New(ids.Work), TenantID: tnt, Type: "t.raw", DueAt: due.Add(time.Second), Payload: dynamostore.PublicationPayload(26)}
	if err := st.Commit(ctx, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{good}}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	t.Cleanup(func() { _ = st.AckOutbox(context.Background(), []eventstore.OutboxEntry{good}) })

	check := func(what string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, eventstore.ErrNotFound) || !strings.Contains(err.Error(), "dataz") {
			t.Errorf("%s: err = %v, want an error naming dataz", what, err)
		}
	}
	_, err := st.ReadStream(ctx, tnt, "raw", 1, 0)
	check("read stream", err)
	_, err = st.GetRecord(ctx, tnt, "raw", "k")
	check("get record", err)
	_, _, err = st.ListRecords(ctx, tnt, eventstore.ListQuery{List: eventstore.List{Name: "all", Slot: 1}})
	check("list records", err)

	pending, err := st.PendingOutbox(ctx, due.Add(time.Hour), 100)
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	var mine []string
	for _, e := range pending {
		if e.TenantID == tnt {
			mine = append(mine, e.ID)
			if e.ID == good.ID && !bytes.Equal(e.Payload, good.Payload) {
				t.Errorf("good entry: %d bytes", len(e.Payload))
			}
		}
	}
	if len(mine) != 1 || mine[0] != good.ID {
		t.Fatalf("pending %v, want only %s", mine, good.ID)
	}
}
