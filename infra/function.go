package main

// function.go: the lambdalith, deployed twice from the one asset that
// `make build-lambda` writes (provided.al2023, arm64):
//
//   - the API function serves API Gateway (every HTTP route);
//   - the worker function consumes the work queues (pooled and siloed) and
//     runs the scheduled jobs.
//
// Why two functions and not one with an event source maximum concurrency
// alone: the work side must not starve the API. The maximum concurrency of
// each event source mapping caps how many worker instances SQS may keep
// busy (PooledMaxConcurrency, and each siloed tenant's own cap); the
// second function adds what one function cannot: its own memory and
// timeout (a batch of work may take two minutes, a request must answer
// within API Gateway's 29 s), its own IAM role (the API cannot
// consume queues), its own log group, metrics and alarms (errors of the
// work side do not hide in the API's), and its own async settings for the
// schedules. The router in the binary answers whatever arrives, so both
// functions run the same code with the same configuration.

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// Lambda environment variables the lambdalith reads in Lambda mode (see the
// README's configuration table).
const (
	EnvTable             = "SWITCHBOARD_TABLE"
	EnvStore             = "SWITCHBOARD_STORE"
	EnvWorkQueueURL      = "SWITCHBOARD_WORK_QUEUE_URL"
	EnvOperatorKeySHA256 = "SWITCHBOARD_OPERATOR_KEY_SHA256"
	EnvLogLevel          = "SWITCHBOARD_LOG_LEVEL"
	EnvPublicURL         = "SWITCHBOARD_PUBLIC_URL"
	EnvKMSKeyID          = "SWITCHBOARD_KMS_KEY_ID"
	// EnvTenantResourcesPath is the SSM path under which each siloed tenant
	// has a parameter naming its queue and key (TenantParameterName).
	EnvTenantResourcesPath = "SWITCHBOARD_TENANT_RESOURCES_PATH"
	// EnvEventBus is the name of the integration event bus.
	EnvEventBus = "SWITCHBOARD_EVENT_BUS"
)

// Function sizing. Lambda gives CPU in proportion to memory (1,769 MB is one
// vCPU).
const (
	// APIMemoryMB: a request is a few DynamoDB round trips plus in-process
	// work (JSON, Cedar authorization, Ed25519 token signing; budget 50 µs
	// in process) and TLS handshakes on cold connections. 512 MB (about a
	// third of a vCPU) keeps that CPU time well below the round trips
	// without paying for a full vCPU that would sit idle on I/O.
	APIMemoryMB = 512
	// APITimeoutSeconds is half of API Gateway's 29-30 s integration limit:
	// a request normally takes milliseconds, and one that hangs ends as a
	// function timeout (the Errors alarm), not as a bare gateway 504.
	APITimeoutSeconds = 15
	// WorkerMemoryMB: work items are I/O as well (provider and subscriber
	// webhook calls, DynamoDB transactions, KMS); the same size as the API.
	WorkerMemoryMB = 512
	// WorkerTimeoutSeconds: the router runs a batch's records in order and
	// stops taking records DefaultDeadlineMargin (5 s) before the deadline.
	// A full batch of the slowest records (WorkBatchSize x the 20 s
	// provider call bound, messaging's ProviderCallTimeout) plus the margin
	// is 105 s, so 120 s lets a whole batch run even when every record hits
	// its time bound (TestWorkerTimeoutFitsABatch checks the arithmetic).
	WorkerTimeoutSeconds = 120
	// FunctionLogRetention keeps the functions' logs for a month.
	FunctionLogRetention = awslogs.RetentionDays_ONE_MONTH
)

// Work queue event source settings.
const (
	// WorkBatchSize: records of a batch run one after the other, so a
	// batch delays its last record by the others' time. Five keeps that
	// head-of-line wait short and a whole batch inside the worker's timeout
	// at the slowest records; the parallelism comes from concurrent
	// batches, not from batch size. (Invocation cost: 5 records per
	// invocation is $0.04 per million work items.)
	WorkBatchSize = 5
	// PooledMaxConcurrency caps the worker instances the pooled queue's
	// event source mapping keeps busy: a tenth of a region's default
	// concurrency quota (1,000), so that a burst of work never takes the
	// concurrency the API needs. Siloed tenants have their own caps
	// (Tenant.MaxConcurrency); keep the sum of all caps well below the
	// account's concurrency quota.
	PooledMaxConcurrency = 100
)

// Lambdalith is one deployment of the binary: its function, execution role
// and log group.
type Lambdalith struct {
	Function awslambda.Function
	Role     awsiam.Role
	Logs     awslogs.LogGroup
}

// Functions are the API and worker deployments of the lambdalith.
type Functions struct {
	API    *Lambdalith
	Worker *Lambdalith
}

// All returns both functions (API first).
func (f *Functions) All() []*Lambdalith { return []*Lambdalith{f.API, f.Worker} }

// functionDeps is what the functions use.
type functionDeps struct {
	table  awsdynamodb.Table
	keys   *Keys
	pooled *WorkQueues
	bus    awsevents.EventBus
	siloed bool // the manifest has siloed tenants
}

// TenantResourcesPath is the SSM path of the siloed tenants' parameters:
// /<prefix>/tenants/ (EnvTenantResourcesPath).
func TenantResourcesPath(prefix string) string { return "/" + prefix + "/tenants/" }

// TenantParameterName is a siloed tenant's parameter: /<prefix>/tenants/<id>.
func TenantParameterName(prefix, tenantID string) string {
	return TenantResourcesPath(prefix) + tenantID
}

// TenantQueueName is a siloed tenant's work queue: <prefix>-<tenant id>-work.
func TenantQueueName(prefix, tenantID string) string { return prefix + "-" + tenantID + "-work" }

// TenantDLQName is a siloed tenant's DLQ: <prefix>-<tenant id>-dlq.
func TenantDLQName(prefix, tenantID string) string { return prefix + "-" + tenantID + "-dlq" }

// tenantQueuesPattern matches the names of every siloed tenant's queues
// (and no other queue of the deployment): <prefix>-tnt_*.
func tenantQueuesPattern(prefix string) string { return prefix + "-" + ids.Tenant + "_*" }

// newFunctions makes both functions with their grants and the pooled
// queue's event source mapping. SWITCHBOARD_PUBLIC_URL is added by the API
// (api.go), which is made after the functions it invokes.
func newFunctions(stack awscdk.Stack, cfg Config, d functionDeps) *Functions {
	env := map[string]*string{
		EnvTable:               d.table.TableName(),
		EnvStore:               jsii.String("dynamodb"),
		EnvWorkQueueURL:        d.pooled.Queue.QueueUrl(),
		EnvOperatorKeySHA256:   jsii.String(cfg.OperatorKeySHA256),
		EnvLogLevel:            jsii.String("info"),
		EnvKMSKeyID:            d.keys.DataKeys.KeyArn(),
		EnvTenantResourcesPath: jsii.String(TenantResourcesPath(cfg.NamePrefix)),
		EnvEventBus:            d.bus.EventBusName(),
	}
	// One asset, two functions.
	code := awslambda.Code_FromAsset(jsii.String(cfg.BootstrapDir), nil)
	f := &Functions{
		API: newLambdalith(stack, "ApiFunction", cfg, env, &awslambda.FunctionProps{
			Code:        code,
			Description: jsii.String("Switchboard lambdalith: API (API Gateway)"),
			MemorySize:  jsii.Number(APIMemoryMB),
			Timeout:     awscdk.Duration_Seconds(jsii.Number(APITimeoutSeconds)),
		}),
		Worker: newLambdalith(stack, "WorkerFunction", cfg, env, &awslambda.FunctionProps{
			Code:        code,
			Description: jsii.String("Switchboard lambdalith: worker (work queues, scheduled jobs)"),
			MemorySize:  jsii.Number(WorkerMemoryMB),
			Timeout:     awscdk.Duration_Seconds(jsii.Number(WorkerTimeoutSeconds)),
			// Only the schedules invoke it asynchronously. A job that failed
			// runs again at its next tick, so Lambda does not retry it, and
			// a tick older than the shortest period is dropped.
			RetryAttempts: jsii.Number(0),
			MaxEventAge:   awscdk.Duration_Seconds(jsii.Number(60)),
		}),
	}

	for _, l := range f.All() {
		grantTable(l.Role, d.table, d.keys.Table)
		d.keys.DataKeys.Grant(l.Role, jsii.String("kms:GenerateDataKey"), jsii.String("kms:Decrypt"))
		// Both hand work to SQS: the API in the request that commits it,
		// the worker for the work its items cause and in the sweep.
		d.pooled.Queue.GrantSendMessages(l.Role)
		d.bus.GrantPutEventsTo(l.Role, nil)
		l.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ReadSiloedTenantResources"),
			Actions:   jsii.Strings("ssm:GetParameter"),
			Resources: jsii.Strings(*awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"+TenantResourcesPath(cfg.NamePrefix)+"*"), nil)),
		}))
		if d.siloed {
			l.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("SendToSiloedTenantQueues"),
				Actions:   jsii.Strings("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
				Resources: jsii.Strings(tenantQueuesARN(cfg.NamePrefix)),
			}))
		}
	}

	// The pooled work queue. Each siloed tenant's queue has its own mapping
	// in its own stack (tenants.go). No batching window: a window makes the
	// poller wait to fill a batch, which adds its length to the latency of
	// every dispatch; under load batches fill by themselves.
	f.Worker.Function.AddEventSource(awslambdaeventsources.NewSqsEventSource(d.pooled.Queue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(WorkBatchSize),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(PooledMaxConcurrency),
	}))
	if d.siloed {
		f.Worker.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ConsumeSiloedTenantQueues"),
			Actions:   jsii.Strings("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"),
			Resources: jsii.Strings(tenantQueuesARN(cfg.NamePrefix)),
		}))
	}
	return f
}

// tenantQueuesARN is the ARN pattern of every siloed tenant's queues.
func tenantQueuesARN(prefix string) string {
	return *awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:"+tenantQueuesPattern(prefix)), nil)
}

// newLambdalith makes one function of the bootstrap asset with its own role
// (no managed policies: the grants name each resource) and log group.
// props carries the code, description, sizing and async settings.
func newLambdalith(scope constructs.Construct, id string, cfg Config, env map[string]*string, props *awslambda.FunctionProps) *Lambdalith {
	logs := awslogs.NewLogGroup(scope, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     FunctionLogRetention,
		RemovalPolicy: cfg.RemovalPolicy(),
	})
	role := awsiam.NewRole(scope, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: props.Description,
	})
	// The log group exists: the function only creates streams and writes.
	logs.GrantWrite(role)
	p := *props
	p.Runtime = awslambda.Runtime_PROVIDED_AL2023()
	p.Architecture = awslambda.Architecture_ARM_64()
	p.Handler = jsii.String(BootstrapFile)
	e := make(map[string]*string, len(env))
	for k, v := range env {
		e[k] = v
	}
	p.Environment = &e
	p.LogGroup = logs
	p.Role = role
	p.Tracing = awslambda.Tracing_ACTIVE
	fn := awslambda.NewFunction(scope, jsii.String(id), &p)
	return &Lambdalith{Function: fn, Role: role, Logs: logs}
}
