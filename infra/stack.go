package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/trigger"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// Lambda environment variables the lambdalith reads in Lambda mode.
const (
	EnvTable             = "SWITCHBOARD_TABLE"
	EnvStore             = "SWITCHBOARD_STORE"
	EnvWorkQueueURL      = "SWITCHBOARD_WORK_QUEUE_URL"
	EnvOperatorKeySHA256 = "SWITCHBOARD_OPERATOR_KEY_SHA256"
	EnvLogLevel          = "SWITCHBOARD_LOG_LEVEL"
	EnvPublicURL         = "SWITCHBOARD_PUBLIC_URL"
	EnvKMSKeyID          = "SWITCHBOARD_KMS_KEY_ID"
)

// Sizing and the scheduled job (names shared with the code, so they cannot
// drift). FunctionTimeoutSeconds drives the queue's
// visibility timeout (6x, the AWS recommendation for SQS event sources).
const (
	FunctionMemoryMB       = 256
	FunctionTimeoutSeconds = 30
	WorkBatchSize          = 10
	WorkMaxReceiveCount    = 5
	DLQRetentionDays       = 14
	// RestStageName is the REST API stage; LocalStack URLs embed it:
	// http://localhost:4566/restapis/<id>/prod/_user_request_/healthz
	RestStageName = "prod"
	// ScheduleSource and ScheduleDetailType mark the minute tick the rule
	// sends; the lambdalith's trigger router recognizes them.
	ScheduleSource     = trigger.SchedulerSource
	ScheduleDetailType = trigger.JobDetailType
	// JobOutboxSweep is the job the minute tick runs.
	JobOutboxSweep = work.SweepJob
)

// SwitchboardStackProps configures NewSwitchboardStack.
type SwitchboardStackProps struct {
	awscdk.StackProps
	// Config is the resolved configuration; see ConfigFromContext.
	Config Config
}

// NewSwitchboardStack defines the minimal Switchboard deployment: one
// DynamoDB table, the work queue with its DLQ, the lambdalith function
// (HTTP, SQS and schedule entry points in one binary), a REST API (v1)
// and optionally an HTTP API (v2) in front of it, a one-minute
// EventBridge rule for the outbox sweep, two alarms and the outputs.
//
// Like every CDK construct it panics on invalid input: here, a Config that
// fails Validate (e.g. no bootstrap binary).
//
// Later (seams, deliberately not code yet):
//   - siloed tenants: per-tenant work queues and KMS keys (customer managed
//     key on the queue, client-side envelope keys for credentials), created
//     by a per-tenant construct fed from a tenant list in context;
//   - an EventBridge event bus for domain events to tenants/integrations,
//     with archive and replay;
//   - a Secrets Manager secret holding the Ed25519 JWT signing keys (JWKS
//     rotation), granted read to the function;
//   - provider webhooks: inbound routes stay on the same API; provider
//     credentials in Secrets Manager;
//   - alarm actions: an SNS topic wired to both alarms (see addAlarms);
//   - custom domains (then publicUrl), WAF on the API, X-Ray tracing.
func NewSwitchboardStack(scope constructs.Construct, id string, props *SwitchboardStackProps) awscdk.Stack {
	if props == nil {
		props = &SwitchboardStackProps{Config: DefaultConfig()}
	}
	cfg := props.Config
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("new switchboard stack %s: %v", id, err))
	}
	sprops := props.StackProps
	if sprops.Description == nil {
		sprops.Description = jsii.String("Switchboard: multi-tenant messaging lambdalith (table, work queue, function, APIs)")
	}
	stack := awscdk.NewStack(scope, &id, &sprops)

	table := newTable(stack, cfg)
	dlq, queue := newWorkQueues(stack, cfg)
	dataKeys := newDataKeyKey(stack, cfg)
	fn := newFunction(stack, cfg, table, queue, dataKeys)

	restAPI := awsapigateway.NewLambdaRestApi(stack, jsii.String("RestApi"), &awsapigateway.LambdaRestApiProps{
		Handler:     fn,
		Proxy:       jsii.Bool(true),
		Description: jsii.String("Switchboard API (REST v1, Lambda proxy)"),
		// No account-wide CloudWatch role: access logging is a later seam.
		CloudWatchRole: jsii.Bool(false),
		DeployOptions: &awsapigateway.StageOptions{
			StageName: jsii.String(RestStageName),
		},
	})
	// RestApi adds its own "Endpoint" output; RestApiUrl below is the stable name.
	restAPI.Node().TryRemoveChild(jsii.String("Endpoint"))
	awscdk.NewCfnOutput(stack, jsii.String("RestApiUrl"), &awscdk.CfnOutputProps{
		Value:       restAPI.Url(),
		Description: jsii.String("REST API (v1) base URL"),
	})
	awscdk.NewCfnOutput(stack, jsii.String("RestApiId"), &awscdk.CfnOutputProps{
		Value:       restAPI.RestApiId(),
		Description: jsii.String("REST API id (LocalStack URL: <endpoint>/restapis/<id>/prod/_user_request_/)"),
	})

	if cfg.HTTPAPI {
		httpAPI := awsapigatewayv2.NewHttpApi(stack, jsii.String("HttpApi"), &awsapigatewayv2.HttpApiProps{
			Description: jsii.String("Switchboard API (HTTP v2, Lambda proxy)"),
			// Payload format 2.0 (explicit): the lambdalith's trigger router
			// decodes it, and the REST API's 1.0 proxy events, natively.
			DefaultIntegration: awsapigatewayv2integrations.NewHttpLambdaIntegration(
				jsii.String("Lambdalith"), fn, &awsapigatewayv2integrations.HttpLambdaIntegrationProps{
					PayloadFormatVersion: awsapigatewayv2.PayloadFormatVersion_VERSION_2_0(),
				}),
		})
		awscdk.NewCfnOutput(stack, jsii.String("HttpApiUrl"), &awscdk.CfnOutputProps{
			Value:       httpAPI.ApiEndpoint(),
			Description: jsii.String("HTTP API (v2) base URL"),
		})
	}

	newSchedule(stack, fn)
	addAlarms(stack, fn, dlq)

	awscdk.NewCfnOutput(stack, jsii.String("TableName"), &awscdk.CfnOutputProps{Value: table.TableName()})
	awscdk.NewCfnOutput(stack, jsii.String("WorkQueueUrl"), &awscdk.CfnOutputProps{Value: queue.QueueUrl()})
	awscdk.NewCfnOutput(stack, jsii.String("WorkDlqUrl"), &awscdk.CfnOutputProps{Value: dlq.QueueUrl()})
	awscdk.NewCfnOutput(stack, jsii.String("FunctionName"), &awscdk.CfnOutputProps{Value: fn.FunctionName()})
	return stack
}

// newTable is the single table, built from dynamostore.TableInput (the one
// definition local mode creates too) so the code and the infrastructure
// cannot drift; TTL uses dynamostore.AttrExpiresAt. The physical name is
// left to CloudFormation (a fixed name plus RETAIN would block re-creating
// the stack); the function learns it from SWITCHBOARD_TABLE.
func newTable(stack awscdk.Stack, cfg Config) awsdynamodb.Table {
	def := dynamostore.TableInput("unused")
	if def.BillingMode != ddbtypes.BillingModePayPerRequest {
		panic(fmt.Sprintf("new table: billing mode %q: infra supports only on-demand", def.BillingMode))
	}
	pk, sk := keyAttributes(def.KeySchema, def.AttributeDefinitions)
	table := awsdynamodb.NewTable(stack, jsii.String("Table"), &awsdynamodb.TableProps{
		PartitionKey:        pk,
		SortKey:             sk,
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String(dynamostore.AttrExpiresAt),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
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

// newWorkQueues is the shared (pooled) work queue and its DLQ.
func newWorkQueues(stack awscdk.Stack, cfg Config) (dlq, queue awssqs.Queue) {
	dlq = awssqs.NewQueue(stack, jsii.String("WorkDlq"), &awssqs.QueueProps{
		QueueName:       jsii.String(cfg.NamePrefix + "-work-dlq"),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(DLQRetentionDays)),
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
	})
	queue = awssqs.NewQueue(stack, jsii.String("WorkQueue"), &awssqs.QueueProps{
		QueueName:         jsii.String(cfg.NamePrefix + "-work"),
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(6 * FunctionTimeoutSeconds)),
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			Queue:           dlq,
			MaxReceiveCount: jsii.Number(WorkMaxReceiveCount),
		},
	})
	return dlq, queue
}

// newFunction is the lambdalith: one provided.al2023/arm64 binary serving
// the APIs, the work queue and the schedule.
func newFunction(stack awscdk.Stack, cfg Config, table awsdynamodb.Table, queue awssqs.Queue, dataKeys awskms.Key) awslambda.Function {
	logs := awslogs.NewLogGroup(stack, jsii.String("FunctionLogs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: cfg.RemovalPolicy(),
	})
	env := map[string]*string{
		EnvTable:             table.TableName(),
		EnvStore:             jsii.String("dynamodb"),
		EnvWorkQueueURL:      queue.QueueUrl(),
		EnvOperatorKeySHA256: jsii.String(cfg.OperatorKeySHA256),
		EnvLogLevel:          jsii.String("info"),
		EnvKMSKeyID:          dataKeys.KeyArn(),
	}
	if cfg.PublicURL != "" {
		env[EnvPublicURL] = jsii.String(cfg.PublicURL)
	}
	fn := awslambda.NewFunction(stack, jsii.String("Lambdalith"), &awslambda.FunctionProps{
		Description:  jsii.String("Switchboard lambdalith (HTTP, work queue, schedule)"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String(BootstrapFile),
		Code:         awslambda.Code_FromAsset(jsii.String(cfg.BootstrapDir), nil),
		MemorySize:   jsii.Number(FunctionMemoryMB),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(FunctionTimeoutSeconds)),
		Environment:  &env,
		LogGroup:     logs,
	})
	table.GrantReadWriteData(fn)
	// Envelope encryption of secrets at rest (modules/kernel/secrets):
	// GenerateDataKey and Decrypt, nothing else.
	dataKeys.Grant(fn, jsii.String("kms:GenerateDataKey"), jsii.String("kms:Decrypt"))
	queue.GrantSendMessages(fn)
	queue.GrantConsumeMessages(fn)
	fn.AddEventSource(awslambdaeventsources.NewSqsEventSource(queue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(WorkBatchSize),
		ReportBatchItemFailures: jsii.Bool(true),
	}))
	return fn
}

// newDataKeyKey is the KMS key that wraps the tenants' data keys (ADR 0006):
// symmetric, rotated yearly by KMS; the function may only generate and
// decrypt data keys with it.
func newDataKeyKey(stack awscdk.Stack, cfg Config) awskms.Key {
	return awskms.NewKey(stack, jsii.String("DataKeys"), &awskms.KeyProps{
		Description:       jsii.String("Switchboard: wraps the per-tenant data keys of secrets at rest"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     cfg.RemovalPolicy(),
	})
}

// newSchedule is the minute tick. It is an EventBridge rule, not
// EventBridge Scheduler, because LocalStack does not invoke Scheduler
// targets. The input is a constant event the lambdalith recognizes by
// source and detail-type.
func newSchedule(stack awscdk.Stack, fn awslambda.Function) awsevents.Rule {
	return awsevents.NewRule(stack, jsii.String("OutboxSweepSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Switchboard outbox sweep, every minute"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(1))),
		Targets: &[]awsevents.IRuleTarget{
			awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
				Event: awsevents.RuleTargetInput_FromObject(map[string]any{
					"source":      ScheduleSource,
					"detail-type": ScheduleDetailType,
					"detail":      map[string]any{"job": JobOutboxSweep},
				}),
			}),
		},
	})
}

// addAlarms adds the two alarms of the minimal slice. They have no actions
// yet: the seam is an SNS topic passed to AddAlarmAction on both.
func addAlarms(stack awscdk.Stack, fn awslambda.Function, dlq awssqs.Queue) {
	awscloudwatch.NewAlarm(stack, jsii.String("WorkDlqNotEmpty"), &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String("Work items exhausted their retries and sit in the DLQ"),
		Metric: dlq.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
			Period:    awscdk.Duration_Minutes(jsii.Number(1)),
			Statistic: jsii.String("Maximum"),
		}),
		Threshold:          jsii.Number(0),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	awscloudwatch.NewAlarm(stack, jsii.String("FunctionErrors"), &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String("The lambdalith returned errors (crashes, timeouts, unhandled failures)"),
		Metric: fn.MetricErrors(&awscloudwatch.MetricOptions{
			Period:    awscdk.Duration_Minutes(jsii.Number(1)),
			Statistic: jsii.String("Sum"),
		}),
		Threshold:          jsii.Number(0),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
}
