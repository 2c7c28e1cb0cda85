package dynamostore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// An append that names its row as HeadRecord writes no head item: the row
// carries the stream's version (what the contract suite's "head-record"
// checks the behaviour of); an append without one writes its head.
func TestHeadRecordKeepsTheVersionOnTheRow(t *testing.T) {
	ctx := context.Background()
	s := dynamostore.New(client, table)
	tnt := gen.New(ids.Tenant)
	ev := func() eventstore.Event {
		return eventstore.Event{ID: gen.New(ids.Event), Type: "test.e", SchemaVersion: 1, OccurredAt: time.Now(), Data: json.RawMessage(`{}`)}
	}
	for v := int64(0); v < 2; v++ {
		err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt,
			Appends: []eventstore.StreamAppend{{StreamID: "thing", ExpectedVersion: v, Events: []eventstore.Event{ev()},
				HeadRecord: &eventstore.RecordRef{Collection: "things", Key: "t1"}}},
			Records: []eventstore.Record{{Collection: "things", Key: "t1", Data: json.RawMessage(`{}`)}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: tnt, Appends: []eventstore.StreamAppend{{StreamID: "plain", Events: []eventstore.Event{ev()}}}}); err != nil {
		t.Fatal(err)
	}
	get := func(pk, sk string) map[string]types.AttributeValue {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
			dynamostore.AttrPK: &types.AttributeValueMemberS{Value: pk}, dynamostore.AttrSK: &types.AttributeValueMemberS{Value: sk}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	if h := get("T#"+tnt+"#S#thing", "HEAD"); h != nil {
		t.Fatalf("a head item was written for a stream kept on its row: %v", h)
	}
	if h := get("T#"+tnt+"#S#plain", "HEAD"); h == nil {
		t.Fatal("no head item for a stream without a head record")
	}
	row := get("T#"+tnt+"#R#things#t1", "R")
	if v, ok := row["streamVersion"].(*types.AttributeValueMemberN); !ok || v.Value != "2" {
		t.Fatalf("row's streamVersion = %v, want 2", row["streamVersion"])
	}
}
