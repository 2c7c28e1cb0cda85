package main

// table.go: the single DynamoDB table, built from dynamostore.TableInput
// (the one definition local mode creates too), so that the code and the
// infrastructure cannot drift: composite key, exactly the GSIs the code
// queries, TTL on dynamostore.AttrExpiresAt.

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
)

// TableActions are the DynamoDB actions the store uses (dynamostore):
// GetItem, BatchGetItem and Query to read; TransactWriteItems (authorized
// as its PutItem, UpdateItem, DeleteItem and ConditionCheckItem parts),
// UpdateItem and DeleteItem to write. No Scan, no table management (local
// mode's EnsureTable never runs in Lambda mode).
var TableActions = []string{
	"dynamodb:GetItem",
	"dynamodb:BatchGetItem",
	"dynamodb:Query",
	"dynamodb:PutItem",
	"dynamodb:UpdateItem",
	"dynamodb:DeleteItem",
	"dynamodb:ConditionCheckItem",
}

// TableKeyActions are what a principal needs on the table's key to read and
// write the table (DynamoDB calls KMS with the caller's permissions); the
// grant holds only for calls made through DynamoDB (kms:ViaService).
var TableKeyActions = []string{
	"kms:Decrypt",
	"kms:DescribeKey",
	"kms:Encrypt",
	"kms:GenerateDataKey*",
	"kms:ReEncrypt*",
}

// newTable is the table: on-demand, point-in-time recovery, deletion
// protection and retention with removalPolicy=retain, encrypted with key.
// The physical name is left to CloudFormation (a fixed name plus RETAIN
// would block re-creating the stack); the functions learn it from
// SWITCHBOARD_TABLE.
func newTable(scope constructs.Construct, cfg Config, key awskms.IKey) awsdynamodb.Table {
	def := dynamostore.TableInput("unused")
	if def.BillingMode != ddbtypes.BillingModePayPerRequest {
		panic(fmt.Sprintf("new table: billing mode %q: infra supports only on-demand", def.BillingMode))
	}
	pk, sk := keyAttributes(def.KeySchema, def.AttributeDefinitions)
	table := awsdynamodb.NewTable(scope, jsii.String("Table"), &awsdynamodb.TableProps{
		PartitionKey:        pk,
		SortKey:             sk,
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String(dynamostore.AttrExpiresAt),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		Encryption:         awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
		EncryptionKey:      key,
		DeletionProtection: jsii.Bool(cfg.RetainData),
		RemovalPolicy:      cfg.RemovalPolicy(),
	})
	for _, gsi := range def.GlobalSecondaryIndexes {
		gpk, gsk := keyAttributes(gsi.KeySchema, def.AttributeDefinitions)
		props := &awsdynamodb.GlobalSecondaryIndexProps{
			IndexName:    gsi.IndexName,
			PartitionKey: gpk,
			SortKey:      gsk,
		}
		if p := gsi.Projection; p != nil {
			switch p.ProjectionType {
			case ddbtypes.ProjectionTypeAll, "":
				props.ProjectionType = awsdynamodb.ProjectionType_ALL
			case ddbtypes.ProjectionTypeKeysOnly:
				props.ProjectionType = awsdynamodb.ProjectionType_KEYS_ONLY
			case ddbtypes.ProjectionTypeInclude:
				props.ProjectionType = awsdynamodb.ProjectionType_INCLUDE
				props.NonKeyAttributes = jsii.Strings(p.NonKeyAttributes...)
			}
		}
		table.AddGlobalSecondaryIndex(props)
	}
	return table
}

// grantTable lets grantee use the table (TableActions on it and its
// indexes) and its key through DynamoDB.
func grantTable(grantee awsiam.IGrantable, table awsdynamodb.Table, key awskms.IKey) {
	actions := make([]*string, 0, len(TableActions))
	for _, a := range TableActions {
		actions = append(actions, jsii.String(a))
	}
	table.Grant(grantee, actions...)
	grantee.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("TableKeyThroughDynamoDB"),
		Actions:   jsii.Strings(TableKeyActions...),
		Resources: &[]*string{key.KeyArn()},
		Conditions: &map[string]any{
			"StringEquals": map[string]any{
				"kms:ViaService": awscdk.Fn_Sub(jsii.String("dynamodb.${AWS::Region}.${AWS::URLSuffix}"), nil),
			},
		},
	}))
}

// keyAttributes returns the HASH and RANGE (nil if none) attributes of a key
// schema with their types from defs. It panics on a schema CDK cannot
// express, which only a broken dynamostore.TableInput can produce.
func keyAttributes(schema []ddbtypes.KeySchemaElement, defs []ddbtypes.AttributeDefinition) (hash, rng *awsdynamodb.Attribute) {
	attrTypes := map[string]ddbtypes.ScalarAttributeType{}
	for _, d := range defs {
		attrTypes[*d.AttributeName] = d.AttributeType
	}
	for _, k := range schema {
		var t awsdynamodb.AttributeType
		switch attrTypes[*k.AttributeName] {
		case ddbtypes.ScalarAttributeTypeS:
			t = awsdynamodb.AttributeType_STRING
		case ddbtypes.ScalarAttributeTypeN:
			t = awsdynamodb.AttributeType_NUMBER
		case ddbtypes.ScalarAttributeTypeB:
			t = awsdynamodb.AttributeType_BINARY
		default:
			panic(fmt.Sprintf("key attribute %s: no or unknown attribute definition", *k.AttributeName))
		}
		a := &awsdynamodb.Attribute{Name: k.AttributeName, Type: t}
		switch k.KeyType {
		case ddbtypes.KeyTypeHash:
			hash = a
		case ddbtypes.KeyTypeRange:
			rng = a
		}
	}
	if hash == nil {
		panic("key schema has no HASH key")
	}
	return hash, rng
}
