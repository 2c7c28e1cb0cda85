package dynamostore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// Items of the outbox index that do not decode must not hide the entries
// behind them: the sweep reads a few keys a shard, so two of them at the
// front of a shard stalled it for every sweep (review finding). They are
// taken out of the index and kept in the table.
func TestUndecodableOutboxItemsDoNotStallTheirShard(t *testing.T) {
	client, table := dynamotest.Table(t, "quarantine")
	s := dynamostore.New(client, table, dynamostore.WithOutboxShards(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tnt := gen.New(ids.Tenant)
	good := eventstore.OutboxEntry{ID: gen.New(ids.Work), TenantID: tnt, Type: "test.work", Payload: json.RawMessage(`{}`),
		DueAt: time.Now().Add(-time.Minute).UTC()}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Outbox: []eventstore.OutboxEntry{good}}); err != nil {
		t.Fatal(err)
	}
	bad := []string{"BAD#1", "BAD#2"}
	for i, pk := range bad {
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: map[string]types.AttributeValue{
			dynamostore.AttrPK:     &types.AttributeValueMemberS{Value: pk},
			dynamostore.AttrSK:     &types.AttributeValueMemberS{Value: "OUTBOX"},
			dynamostore.AttrGSI1PK: &types.AttributeValueMemberS{Value: "OUTBOX#0"},
			dynamostore.AttrGSI1SK: &types.AttributeValueMemberS{Value: "2000-01-01T00:00:0" + string(rune('0'+i)) + ".000000000Z#wrk_bad"},
			"dueAt":                &types.AttributeValueMemberS{Value: "not a time"},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	found := false
	for range 20 { // the index is eventually consistent
		got, err := s.PendingOutbox(ctx, time.Now(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0].ID == good.ID {
			found = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !found {
		t.Fatal("the entry behind two undecodable items was never returned")
	}
	for _, pk := range bad {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, ConsistentRead: new(true), Key: map[string]types.AttributeValue{
			dynamostore.AttrPK: &types.AttributeValueMemberS{Value: pk}, dynamostore.AttrSK: &types.AttributeValueMemberS{Value: "OUTBOX"}}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Item == nil || out.Item[dynamostore.AttrGSI1PK] != nil || out.Item["outboxQuarantinedAt"] == nil {
			t.Fatalf("item %s = %v, want it kept, out of the index, marked", pk, out.Item)
		}
	}
}
