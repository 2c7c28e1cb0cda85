package main

// stack.go: the Switchboard stack, assembled from the constructs of the
// other files (one file per concern).

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// SwitchboardStackProps configures NewSwitchboardStack.
type SwitchboardStackProps struct {
	awscdk.StackProps
	// Config is the resolved configuration; see ConfigFromContext.
	Config Config
	// Tenants is the validated tenants manifest (LoadTenantsManifest).
	Tenants TenantsManifest
}

// Switchboard is the stack and its parts, for tests and outputs.
type Switchboard struct {
	Stack         awscdk.Stack
	Keys          *Keys
	Table         awsdynamodb.Table
	Pooled        *WorkQueues
	Events        *Events
	Functions     *Functions
	API           *API
	Observability *Observability
	Tenants       []*TenantStack
}

// NewSwitchboardStack defines a Switchboard deployment:
//
//   - keys.go: the KMS keys (table, pooled data keys, alarm topic);
//   - table.go: the single table;
//   - queues.go: the pooled work queue and its DLQ;
//   - events.go: the integration event bus and the job schedules;
//   - function.go: the lambdalith as API function and worker function;
//   - api.go: the HTTP API (or the REST API) in front of the API function;
//   - observability.go: the alarm topic, alarms, metric filters, dashboard;
//   - tenants.go: one nested stack per siloed tenant of the manifest;
//   - nag.go: the justified exceptions to the AWS Solutions checks.
//
// Like every CDK construct it panics on invalid input: here, a Config that
// fails Validate (e.g. no bootstrap binary).
func NewSwitchboardStack(scope constructs.Construct, id string, props *SwitchboardStackProps) *Switchboard {
	if props == nil {
		props = &SwitchboardStackProps{Config: DefaultConfig(), Tenants: TenantsManifest{Tenants: []Tenant{}}}
	}
	cfg := props.Config
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("new switchboard stack %s: %v", id, err))
	}
	sprops := props.StackProps
	if sprops.Description == nil {
		sprops.Description = jsii.String("Switchboard: multi-tenant messaging lambdalith (table, work queues, API and worker functions, API, schedules, alarms)")
	}
	stack := awscdk.NewStack(scope, &id, &sprops)
	s := &Switchboard{Stack: stack}

	s.Keys = newKeys(stack, cfg)
	table := newTable(stack, cfg, s.Keys.Table)
	s.Table = table
	s.Pooled = newWorkQueues(stack, PooledQueueName(cfg.NamePrefix), PooledDLQName(cfg.NamePrefix), nil)
	s.Events = newEventBus(stack, cfg)
	s.Functions = newFunctions(stack, cfg, functionDeps{
		table:  table,
		keys:   s.Keys,
		pooled: s.Pooled,
		bus:    s.Events.Bus,
		siloed: len(props.Tenants.Siloed()) > 0,
	})
	s.API = newAPI(stack, cfg, s.Functions)
	s.Events.addSchedules(cfg, s.Functions.Worker.Function)
	s.Observability = newObservability(stack, cfg, s.Keys)
	s.Observability.watch(cfg, watched{fns: s.Functions, api: s.API, pooled: s.Pooled})
	s.Tenants = newTenants(stack, props.Tenants, tenantDeps{
		cfg:    cfg,
		worker: s.Functions.Worker.Function,
		roles:  []awsiam.IRole{s.Functions.API.Role, s.Functions.Worker.Role},
		topic:  s.Observability.Topic,
	})
	s.outputs(cfg)
	s.suppressNagFindings(cfg)
	return s
}

func (s *Switchboard) outputs(cfg Config) {
	out := func(id string, value *string, description string) {
		awscdk.NewCfnOutput(s.Stack, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(description)})
	}
	out("ApiUrl", s.API.URL, "API base URL ("+s.API.Kind+" API): make smoke BASE_URL=<this>")
	if s.API.REST != nil {
		out("RestApiId", s.API.ID, "REST API id (LocalStack: http://<id>.execute-api.localhost.localstack.cloud:4566/"+RestStageName+")")
	} else {
		out("HttpApiId", s.API.ID, "HTTP API id")
	}
	out("TableName", s.Table.TableName(), "the single DynamoDB table")
	out("WorkQueueUrl", s.Pooled.Queue.QueueUrl(), "pooled work queue")
	out("WorkDlqUrl", s.Pooled.DLQ.QueueUrl(), "pooled work queue's DLQ (redrive: README, Deploy)")
	out("WorkDlqArn", s.Pooled.DLQ.QueueArn(), "pooled work queue's DLQ ARN (aws sqs start-message-move-task --source-arn)")
	out("ApiFunctionName", s.Functions.API.Function.FunctionName(), "API function")
	out("WorkerFunctionName", s.Functions.Worker.Function.FunctionName(), "worker function (queues, jobs)")
	out("ApiLogGroupName", s.Functions.API.Logs.LogGroupName(), "API function's logs")
	out("WorkerLogGroupName", s.Functions.Worker.Logs.LogGroupName(), "worker function's logs")
	out("EventBusName", s.Events.Bus.EventBusName(), "integration event bus")
	out("AlarmTopicArn", s.Observability.Topic.TopicArn(), "alarm notifications (subscribe here)")
	out("DashboardName", s.Observability.Dashboard.DashboardName(), "CloudWatch dashboard")
	out("TenantResourcesPath", jsii.String(TenantResourcesPath(cfg.NamePrefix)), "SSM path of the siloed tenants' resources")
}
