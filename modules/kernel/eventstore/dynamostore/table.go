package dynamostore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// tableWaitTimeout bounds EnsureTable's wait for ACTIVE when ctx has no deadline.
const tableWaitTimeout = 5 * time.Minute

// TableInput is the one definition of the table: on-demand billing, string
// keys pk/sk, the outbox index gsi1 (gsi1pk/gsi1sk) and the list indexes
// list1..list6 (list<N>pk/list<N>sk), all sparse and KEYS_ONLY: reads through
// them fetch the items from the table (strongly consistent BatchGetItem), so
// the indexes carry no copy of the data. The TTL on expiresAt is set
// separately (UpdateTimeToLive), as CreateTable cannot carry it. infra/ and
// tests build the table from this.
func TableInput(table string) *dynamodb.CreateTableInput {
	attrs := []types.AttributeDefinition{
		{AttributeName: aws.String(AttrPK), AttributeType: types.ScalarAttributeTypeS},
		{AttributeName: aws.String(AttrSK), AttributeType: types.ScalarAttributeTypeS},
		{AttributeName: aws.String(AttrGSI1PK), AttributeType: types.ScalarAttributeTypeS},
		{AttributeName: aws.String(AttrGSI1SK), AttributeType: types.ScalarAttributeTypeS},
	}
	gsis := []types.GlobalSecondaryIndex{keysOnlyIndex(IndexOutbox, AttrGSI1PK, AttrGSI1SK)}
	for slot := 1; slot <= eventstore.MaxListSlots; slot++ {
		attrs = append(attrs,
			types.AttributeDefinition{AttributeName: aws.String(ListAttrPK(slot)), AttributeType: types.ScalarAttributeTypeS},
			types.AttributeDefinition{AttributeName: aws.String(ListAttrSK(slot)), AttributeType: types.ScalarAttributeTypeS},
		)
		gsis = append(gsis, keysOnlyIndex(ListIndex(slot), ListAttrPK(slot), ListAttrSK(slot)))
	}
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: attrs,
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: gsis,
	}
}

func keysOnlyIndex(name, pk, sk string) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(name),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
	}
}

// EnsureTable creates table (TableInput, then TTL on expiresAt) when it does
// not exist and waits until it and its index are ACTIVE. An existing table is
// left as it is (only waited for). Safe to call concurrently.
func EnsureTable(ctx context.Context, client *dynamodb.Client, table string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, tableWaitTimeout)
		defer cancel()
	}
	_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err == nil {
		return waitActive(ctx, client, table)
	}
	if !isCode[*types.ResourceNotFoundException](err) {
		return fmt.Errorf("ensure table %s: %w", table, err)
	}
	_, err = client.CreateTable(ctx, TableInput(table))
	created := err == nil
	if err != nil && !isCode[*types.ResourceInUseException](err) { // in use: created concurrently
		return fmt.Errorf("ensure table %s: create: %w", table, err)
	}
	if err := waitActive(ctx, client, table); err != nil {
		return err
	}
	if created {
		_, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(table),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{
				AttributeName: aws.String(AttrExpiresAt),
				Enabled:       aws.Bool(true),
			},
		})
		if err != nil {
			// Tolerated: some emulators do not implement TTL, and expiry does
			// not depend on it (reads and the commit condition compare the
			// exact expiry); TTL only removes old idempotency records.
			slog.WarnContext(ctx, "ensure table: enabling TTL failed", slog.String("table", table), slog.Any("error", err))
		}
	}
	return nil
}

// waitActive polls DescribeTable until the table and its indexes are ACTIVE.
func waitActive(ctx context.Context, client *dynamodb.Client, table string) error {
	delay := 50 * time.Millisecond
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil && !isCode[*types.ResourceNotFoundException](err) {
			return fmt.Errorf("ensure table %s: describe: %w", table, err)
		}
		if err == nil && active(out.Table) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure table %s: waiting for ACTIVE: %w", table, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func active(t *types.TableDescription) bool {
	if t == nil || t.TableStatus != types.TableStatusActive {
		return false
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}
