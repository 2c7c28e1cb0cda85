package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/jsii-runtime-go"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
)

// TestStackAWS checks the default (AWS) shape, resource by resource.
func TestStackAWS(t *testing.T) {
	f := awsFixture(t)
	tp := f.main

	tableID, table := tp.only(t, "AWS::DynamoDB::Table", nil)
	tableKeyID, _ := tp.only(t, "AWS::KMS::Key", byName("Description", "Switchboard: encrypts the single DynamoDB table"))
	dataKeyID, _ := tp.only(t, "AWS::KMS::Key", byName("Description", "Switchboard: wraps the pooled tenants' data keys of secrets at rest"))
	alarmsKeyID, _ := tp.only(t, "AWS::KMS::Key", byName("Description", "Switchboard: encrypts the alarm topic"))
	queueID, queue := tp.only(t, "AWS::SQS::Queue", byName("QueueName", "switchboard-work"))
	dlqID, dlq := tp.only(t, "AWS::SQS::Queue", byName("QueueName", "switchboard-work-dlq"))
	apiFnID, apiFn := tp.only(t, "AWS::Lambda::Function", byName("Timeout", float64(APITimeoutSeconds)))
	workerFnID, workerFn := tp.only(t, "AWS::Lambda::Function", byName("Timeout", float64(WorkerTimeoutSeconds)))
	httpAPIID, _ := tp.only(t, "AWS::ApiGatewayV2::Api", nil)
	busID, _ := tp.only(t, "AWS::Events::EventBus", nil)
	topicID, topic := tp.only(t, "AWS::SNS::Topic", nil)

	t.Run("keys", func(t *testing.T) {
		keys := tp.props("AWS::KMS::Key", nil)
		if len(keys) != 3 {
			t.Errorf("keys = %v, want table, data keys, alarms", keys)
		}
		for id, k := range keys {
			eq(t, id+" EnableKeyRotation", k["EnableKeyRotation"], true)
			eq(t, id+" DeletionPolicy", tp.resource(t, id)["DeletionPolicy"], "Retain")
		}
		var aliases []string
		for _, a := range tp.props("AWS::KMS::Alias", nil) {
			aliases = append(aliases, a["AliasName"].(string))
		}
		sort.Strings(aliases)
		eq(t, "aliases", aliases, []string{"alias/switchboard/alarms", "alias/switchboard/data-keys", "alias/switchboard/table"})
		// CloudWatch may publish to the encrypted alarm topic.
		policy := jsonString(t, tp.props("AWS::KMS::Key", nil)[alarmsKeyID]["KeyPolicy"])
		if !strings.Contains(policy, `"Service":"cloudwatch.amazonaws.com"`) {
			t.Errorf("alarms key policy does not let CloudWatch use it: %s", policy)
		}
	})

	t.Run("table", func(t *testing.T) {
		eq(t, "KeySchema", table["KeySchema"], []any{
			map[string]any{"AttributeName": dynamostore.AttrPK, "KeyType": "HASH"},
			map[string]any{"AttributeName": dynamostore.AttrSK, "KeyType": "RANGE"},
		})
		eq(t, "BillingMode", table["BillingMode"], "PAY_PER_REQUEST")
		eq(t, "TimeToLiveSpecification", table["TimeToLiveSpecification"],
			map[string]any{"AttributeName": dynamostore.AttrExpiresAt, "Enabled": true})
		eq(t, "PITR", table["PointInTimeRecoverySpecification"], map[string]any{"PointInTimeRecoveryEnabled": true})
		eq(t, "DeletionProtectionEnabled", table["DeletionProtectionEnabled"], true)
		eq(t, "SSESpecification", table["SSESpecification"], map[string]any{
			"SSEEnabled": true, "SSEType": "KMS", "KMSMasterKeyId": getAtt(tableKeyID, "Arn"),
		})
		r := tp.resource(t, tableID)
		eq(t, "DeletionPolicy", r["DeletionPolicy"], "Retain")
		eq(t, "UpdateReplacePolicy", r["UpdateReplacePolicy"], "Retain")
		if _, named := table["TableName"]; named {
			t.Errorf("table has a fixed TableName; want a generated one")
		}
		// The outbox index and one list index per slot, all KEYS_ONLY.
		wantGSIs := []any{map[string]any{
			"IndexName": dynamostore.IndexOutbox,
			"KeySchema": []any{
				map[string]any{"AttributeName": dynamostore.AttrGSI1PK, "KeyType": "HASH"},
				map[string]any{"AttributeName": dynamostore.AttrGSI1SK, "KeyType": "RANGE"},
			},
			"Projection": map[string]any{"ProjectionType": "KEYS_ONLY"},
		}}
		for slot := 1; slot <= eventstore.MaxListSlots; slot++ {
			wantGSIs = append(wantGSIs, map[string]any{
				"IndexName": fmt.Sprintf("list%d", slot),
				"KeySchema": []any{
					map[string]any{"AttributeName": fmt.Sprintf("list%dpk", slot), "KeyType": "HASH"},
					map[string]any{"AttributeName": fmt.Sprintf("list%dsk", slot), "KeyType": "RANGE"},
				},
				"Projection": map[string]any{"ProjectionType": "KEYS_ONLY"},
			})
		}
		eq(t, "GlobalSecondaryIndexes", table["GlobalSecondaryIndexes"], wantGSIs)
		// Exactly what local mode creates (dynamostore.TableInput).
		def := dynamostore.TableInput("unused")
		eq(t, "KeySchema = TableInput", table["KeySchema"], keySchemaJSON(def.KeySchema))
		var gsis []any
		for _, g := range def.GlobalSecondaryIndexes {
			gsis = append(gsis, map[string]any{
				"IndexName":  *g.IndexName,
				"KeySchema":  keySchemaJSON(g.KeySchema),
				"Projection": map[string]any{"ProjectionType": string(g.Projection.ProjectionType)},
			})
		}
		eq(t, "GlobalSecondaryIndexes = TableInput", table["GlobalSecondaryIndexes"], gsis)
		attrs := map[string]any{}
		for _, a := range table["AttributeDefinitions"].([]any) {
			m := a.(map[string]any)
			attrs[m["AttributeName"].(string)] = m["AttributeType"]
		}
		defAttrs := map[string]any{}
		for _, a := range def.AttributeDefinitions {
			defAttrs[*a.AttributeName] = string(a.AttributeType)
		}
		eq(t, "AttributeDefinitions = TableInput", attrs, defAttrs)
	})

	t.Run("pooled queues", func(t *testing.T) {
		eq(t, "work VisibilityTimeout", queue["VisibilityTimeout"], WorkVisibilityFactor*WorkerTimeoutSeconds)
		eq(t, "work RedrivePolicy", queue["RedrivePolicy"], map[string]any{
			"deadLetterTargetArn": getAtt(dlqID, "Arn"),
			"maxReceiveCount":     WorkMaxReceiveCount,
		})
		eq(t, "work SSE", queue["SqsManagedSseEnabled"], true)
		eq(t, "dlq SSE", dlq["SqsManagedSseEnabled"], true)
		eq(t, "dlq MessageRetentionPeriod", dlq["MessageRetentionPeriod"], 14*24*3600)
		if _, ok := dlq["RedrivePolicy"]; ok {
			t.Errorf("the DLQ must not itself redrive")
		}
		// TLS only (EnforceSSL), on both.
		for _, id := range []string{queueID, dlqID} {
			jsiiOK(t, id+" requires TLS", func() {
				f.main.a.HasResourceProperties(jsii.String("AWS::SQS::QueuePolicy"), map[string]any{
					"Queues": []any{ref(id)},
					"PolicyDocument": assertions.Match_ObjectLike(&map[string]any{
						"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
							"Effect": "Deny", "Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
						})}),
					}),
				})
			})
		}
	})

	t.Run("functions", func(t *testing.T) {
		eq(t, "functions", len(tp.resources("AWS::Lambda::Function")), 2)
		wantEnv := map[string]any{
			EnvTable:               ref(tableID),
			EnvStore:               "dynamodb",
			EnvWorkQueueURL:        ref(queueID),
			EnvOperatorKeySHA256:   testKeyHash,
			EnvLogLevel:            "info",
			EnvKMSKeyID:            getAtt(dataKeyID, "Arn"),
			EnvTenantResourcesPath: "/switchboard/tenants/",
			EnvEventBus:            ref(busID),
			EnvPublicURL:           getAtt(httpAPIID, "ApiEndpoint"),
		}
		for _, c := range []struct {
			name         string
			fn           map[string]any
			memory, secs int
		}{
			{"api", apiFn, APIMemoryMB, APITimeoutSeconds},
			{"worker", workerFn, WorkerMemoryMB, WorkerTimeoutSeconds},
		} {
			eq(t, c.name+" Runtime", c.fn["Runtime"], "provided.al2023")
			eq(t, c.name+" Architectures", c.fn["Architectures"], []any{"arm64"})
			eq(t, c.name+" Handler", c.fn["Handler"], "bootstrap")
			eq(t, c.name+" MemorySize", c.fn["MemorySize"], c.memory)
			eq(t, c.name+" Timeout", c.fn["Timeout"], c.secs)
			eq(t, c.name+" TracingConfig", c.fn["TracingConfig"], map[string]any{"Mode": "Active"})
			eq(t, c.name+" Environment", envVars(c.fn), wantEnv)
			logs := c.fn["LoggingConfig"].(map[string]any)["LogGroup"].(map[string]any)["Ref"].(string)
			eq(t, c.name+" log RetentionInDays", tp.props("AWS::Logs::LogGroup", nil)[logs]["RetentionInDays"], 30)
			eq(t, c.name+" log DeletionPolicy", tp.resource(t, logs)["DeletionPolicy"], "Retain")
		}
		// One asset, two functions.
		eq(t, "same code", apiFn["Code"], workerFn["Code"])
		if _, ok := apiFn["Code"].(map[string]any)["S3Key"]; !ok {
			t.Errorf("Code = %v, want an S3 asset", apiFn["Code"])
		}
		// The schedules' async invocations are not retried by Lambda.
		_, eic := tp.only(t, "AWS::Lambda::EventInvokeConfig", nil)
		eq(t, "worker EventInvokeConfig", eic, map[string]any{
			"FunctionName": ref(workerFnID), "MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60, "Qualifier": "$LATEST",
		})
		// The siloed tenants' mapping never enters the environment.
		if env := jsonString(t, envVars(apiFn)); strings.Contains(env, "tnt_") {
			t.Errorf("environment names tenants: %s", env)
		}
	})

	t.Run("pooled event source", func(t *testing.T) {
		_, esm := tp.only(t, "AWS::Lambda::EventSourceMapping", nil)
		eq(t, "EventSourceMapping", esm, map[string]any{
			"FunctionName":          ref(workerFnID),
			"EventSourceArn":        getAtt(queueID, "Arn"),
			"BatchSize":             WorkBatchSize,
			"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
			"ScalingConfig":         map[string]any{"MaximumConcurrency": PooledMaxConcurrency},
		})
	})

	t.Run("grants", func(t *testing.T) {
		roles := map[string]string{}
		for _, c := range []struct{ name, fnID string }{{"api", apiFnID}, {"worker", workerFnID}} {
			roleID := tp.props("AWS::Lambda::Function", nil)[c.fnID]["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
			roles[c.name] = roleID
			role := tp.props("AWS::IAM::Role", nil)[roleID]
			if _, ok := role["ManagedPolicyArns"]; ok {
				t.Errorf("%s role has managed policies %v; want only its own grants", c.name, role["ManagedPolicyArns"])
			}
		}
		policyOf := func(roleID string) []map[string]any {
			var out []map[string]any
			for _, p := range tp.props("AWS::IAM::Policy", nil) {
				if jsonString(t, p["Roles"]) == jsonString(t, []any{ref(roleID)}) {
					for _, s := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
						out = append(out, s.(map[string]any))
					}
				}
			}
			return out
		}
		// actionsOn is what role may do on a resource (its JSON).
		actionsOn := func(stmts []map[string]any, resource any) []string {
			r := jsonString(t, resource)
			var out []string
			for _, s := range stmts {
				for _, res := range strs(s["Resource"]) {
					if res == r || jsonString(t, res) == r {
						out = append(out, strs(s["Action"])...)
					}
				}
			}
			sort.Strings(out)
			return out
		}
		tenantQueues := map[string]any{"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:switchboard-tnt_*"}
		for name, roleID := range roles {
			st := policyOf(roleID)
			eq(t, name+" on the table", actionsOn(st, getAtt(tableID, "Arn")), sortedCopy(TableActions))
			eq(t, name+" on the table's indexes", actionsOn(st, map[string]any{"Fn::Join": []any{"", []any{getAtt(tableID, "Arn"), "/index/*"}}}), sortedCopy(TableActions))
			eq(t, name+" on the table key", actionsOn(st, getAtt(tableKeyID, "Arn")), sortedCopy(TableKeyActions))
			eq(t, name+" on the data keys", actionsOn(st, getAtt(dataKeyID, "Arn")), []string{"kms:Decrypt", "kms:GenerateDataKey"})
			eq(t, name+" on the bus", actionsOn(st, getAtt(busID, "Arn")), []string{"events:PutEvents"})
			eq(t, name+" on the tenant parameters",
				actionsOn(st, map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/switchboard/tenants/*"}),
				[]string{"ssm:GetParameter"})
			for _, s := range st {
				if s["Sid"] == "TableKeyThroughDynamoDB" {
					eq(t, name+" table key condition", s["Condition"], map[string]any{"StringEquals": map[string]any{
						"kms:ViaService": map[string]any{"Fn::Sub": "dynamodb.${AWS::Region}.${AWS::URLSuffix}"}}})
				}
			}
			send := []string{"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"}
			if name == "api" {
				eq(t, "api on the pooled queue", actionsOn(st, getAtt(queueID, "Arn")), send)
				eq(t, "api on the tenant queues", actionsOn(st, tenantQueues), send)
			} else {
				consume := []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage"}
				eq(t, "worker on the pooled queue", actionsOn(st, getAtt(queueID, "Arn")), consume)
				eq(t, "worker on the tenant queues", actionsOn(st, tenantQueues), consume)
			}
		}
	})

	t.Run("http api", func(t *testing.T) {
		for _, typ := range []string{"AWS::ApiGateway::RestApi", "AWS::ApiGateway::Account"} {
			if n := len(tp.resources(typ)); n != 0 {
				t.Errorf("%s resources = %d, want 0 with the HTTP API", typ, n)
			}
		}
		_, integ := tp.only(t, "AWS::ApiGatewayV2::Integration", nil)
		eq(t, "IntegrationType", integ["IntegrationType"], "AWS_PROXY")
		eq(t, "PayloadFormatVersion", integ["PayloadFormatVersion"], "2.0")
		eq(t, "IntegrationUri", integ["IntegrationUri"], getAtt(apiFnID, "Arn"))
		var routes []string
		for _, r := range tp.props("AWS::ApiGatewayV2::Route", nil) {
			routes = append(routes, r["RouteKey"].(string))
		}
		sort.Strings(routes)
		eq(t, "routes", routes, []string{
			"ANY /.well-known/{proxy+}", "ANY /commands", "ANY /commands/{proxy+}", "ANY /healthz",
			"ANY /queries/{proxy+}", "ANY /webhooks/{proxy+}",
		})
		_, stage := tp.only(t, "AWS::ApiGatewayV2::Stage", nil)
		eq(t, "stage", pick(stage, "StageName", "AutoDeploy", "DefaultRouteSettings"), map[string]any{
			"StageName": "$default", "AutoDeploy": true,
			"DefaultRouteSettings": map[string]any{"ThrottlingRateLimit": APIRateLimit, "ThrottlingBurstLimit": APIBurstLimit},
		})
		logs := stage["AccessLogSettings"].(map[string]any)
		var format map[string]string
		if err := json.Unmarshal([]byte(logs["Format"].(string)), &format); err != nil || format["status"] != "$context.status" {
			t.Errorf("access log format %v: %v", logs["Format"], err)
		}
		logsID := logs["DestinationArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
		eq(t, "access log retention", tp.props("AWS::Logs::LogGroup", nil)[logsID]["RetentionInDays"], 30)
	})

	t.Run("events", func(t *testing.T) {
		_, bus := tp.only(t, "AWS::Events::EventBus", nil)
		eq(t, "bus Name", bus["Name"], "switchboard-integration")
		rules := tp.props("AWS::Events::Rule", nil)
		eq(t, "rules", len(rules), len(ScheduledJobs))
		for _, j := range []struct{ job, expr string }{
			{"outbox-sweep", "rate(1 minute)"},
			{"signing-key-rotation", "rate(5 minutes)"},
		} {
			id, rule := tp.only(t, "AWS::Events::Rule", byName("Name", "switchboard-job-"+j.job))
			eq(t, j.job+" ScheduleExpression", rule["ScheduleExpression"], j.expr)
			eq(t, j.job+" State", rule["State"], "ENABLED")
			if _, onBus := rule["EventBusName"]; onBus {
				t.Errorf("%s: schedule rules live on the default bus", j.job)
			}
			targets := rule["Targets"].([]any)
			if len(targets) != 1 {
				t.Fatalf("%s targets = %v, want 1", j.job, targets)
			}
			target := targets[0].(map[string]any)
			eq(t, j.job+" target Arn", target["Arn"], getAtt(workerFnID, "Arn"))
			var input any
			if err := json.Unmarshal([]byte(target["Input"].(string)), &input); err != nil {
				t.Fatalf("target Input %q: %v", target["Input"], err)
			}
			// The literal form the trigger router routes (events/samples/eventbridge-scheduler-job.json).
			eq(t, j.job+" target Input", input, map[string]any{
				"source": "switchboard.scheduler", "detail-type": "switchboard.job", "detail": map[string]any{"job": j.job},
			})
			jsiiOK(t, j.job+": events may invoke the worker", func() {
				tp.a.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), map[string]any{
					"Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com",
					"FunctionName": getAtt(workerFnID, "Arn"), "SourceArn": getAtt(id, "Arn"),
				})
			})
		}
	})

	t.Run("alarms", func(t *testing.T) {
		var got []string
		for id, a := range tp.props("AWS::CloudWatch::Alarm", nil) {
			eq(t, id+" AlarmActions", a["AlarmActions"], []any{ref(topicID)})
			eq(t, id+" TreatMissingData", a["TreatMissingData"], "notBreaching")
			dim := ""
			if d, ok := a["Dimensions"].([]any); ok && len(d) == 1 {
				dim = jsonString(t, d[0].(map[string]any)["Value"])
			}
			got = append(got, fmt.Sprintf("%s %s %s", a["Namespace"], a["MetricName"], dim))
		}
		sort.Strings(got)
		q := func(id string) string { return jsonString(t, getAtt(id, "QueueName")) }
		fn := func(id string) string { return jsonString(t, ref(id)) }
		want := []string{
			"AWS/ApiGateway 5xx " + fn(httpAPIID),
			"AWS/Lambda Errors " + fn(apiFnID),
			"AWS/Lambda Errors " + fn(workerFnID),
			"AWS/Lambda Throttles " + fn(apiFnID),
			"AWS/Lambda Throttles " + fn(workerFnID),
			"AWS/SQS ApproximateAgeOfOldestMessage " + q(queueID),
			"AWS/SQS ApproximateNumberOfMessagesVisible " + q(dlqID),
			MetricsNamespace + " " + MetricOutboxParked + " ",
		}
		sort.Strings(want)
		eq(t, "alarms", got, want)
		_, oldest := tp.only(t, "AWS::CloudWatch::Alarm", byName("MetricName", "ApproximateAgeOfOldestMessage"))
		eq(t, "oldest message alarm", pick(oldest, "Threshold", "EvaluationPeriods", "Statistic"), map[string]any{
			"Threshold": 1200, "EvaluationPeriods": 5, "Statistic": "Maximum"})
		// The parked-work metric comes from both functions' logs.
		filters := tp.props("AWS::Logs::MetricFilter", nil)
		eq(t, "metric filters", len(filters), 2)
		var groups []string
		for _, mf := range filters {
			eq(t, "FilterPattern", mf["FilterPattern"], `"`+ParkedLogTerm+`"`)
			eq(t, "MetricTransformations", mf["MetricTransformations"], []any{map[string]any{
				"MetricNamespace": MetricsNamespace, "MetricName": MetricOutboxParked, "MetricValue": "1"}})
			groups = append(groups, mf["LogGroupName"].(map[string]any)["Ref"].(string))
		}
		sort.Strings(groups)
		var fnGroups []string
		for _, fn := range []map[string]any{apiFn, workerFn} {
			fnGroups = append(fnGroups, fn["LoggingConfig"].(map[string]any)["LogGroup"].(map[string]any)["Ref"].(string))
		}
		sort.Strings(fnGroups)
		eq(t, "filtered log groups", groups, fnGroups)
	})

	t.Run("alarm topic", func(t *testing.T) {
		eq(t, "KmsMasterKeyId", topic["KmsMasterKeyId"], getAtt(alarmsKeyID, "Arn"))
		jsiiOK(t, "email subscription", func() {
			tp.a.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]any{
				"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": ref(topicID)})
		})
	})

	t.Run("dashboard", func(t *testing.T) {
		_, d := tp.only(t, "AWS::CloudWatch::Dashboard", nil)
		eq(t, "DashboardName", d["DashboardName"], "switchboard")
		body := jsonString(t, d["DashboardBody"])
		for _, s := range []string{
			MetricMessagesAccepted, MetricMessagesSent, MetricMessagesDelivered, MetricMessagesFailed, MetricDispatchLatency,
			`{` + MetricsNamespace + `,` + DimensionChannelType + `}`, MetricOutboxParked, "ApproximateAgeOfOldestMessage",
			"switchboard-tnt",
		} {
			if !strings.Contains(body, s) {
				t.Errorf("dashboard body lacks %q", s)
			}
		}
	})

	t.Run("outputs", func(t *testing.T) {
		outs := tp.doc["Outputs"].(map[string]any)
		eq(t, "outputs", keys(outs), []string{"AlarmTopicArn", "ApiFunctionName", "ApiLogGroupName", "ApiUrl", "DashboardName", "EventBusName",
			"HttpApiId", "TableName", "TenantResourcesPath", "WorkDlqArn", "WorkDlqUrl", "WorkQueueUrl", "WorkerFunctionName", "WorkerLogGroupName"})
		eq(t, "ApiUrl", outs["ApiUrl"].(map[string]any)["Value"], getAtt(httpAPIID, "ApiEndpoint"))
		eq(t, "WorkQueueUrl", outs["WorkQueueUrl"].(map[string]any)["Value"], ref(queueID))
	})
}

// TestStackLocalStack is the shape the LocalStack kit deploys
// (-c httpApi=false -c removalPolicy=destroy -c publicUrl=http://{apiId}...).
func TestStackLocalStack(t *testing.T) {
	f := localFixture(t)
	tp := f.main

	for _, typ := range []string{"AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Stage", "AWS::CloudFormation::Stack"} {
		if n := len(tp.resources(typ)); n != 0 {
			t.Errorf("%s resources = %d, want 0", typ, n)
		}
	}
	restID, rest := tp.only(t, "AWS::ApiGateway::RestApi", nil)
	eq(t, "EndpointConfiguration", rest["EndpointConfiguration"], map[string]any{"Types": []any{"REGIONAL"}})
	_, stage := tp.only(t, "AWS::ApiGateway::Stage", nil)
	eq(t, "stage", pick(stage, "StageName", "TracingEnabled", "MethodSettings"), map[string]any{
		"StageName": RestStageName, "TracingEnabled": true,
		"MethodSettings": []any{map[string]any{"DataTraceEnabled": false, "HttpMethod": "*", "LoggingLevel": "ERROR",
			"ResourcePath": "/*", "ThrottlingBurstLimit": APIBurstLimit, "ThrottlingRateLimit": APIRateLimit}},
	})
	if _, ok := stage["AccessLogSetting"]; !ok {
		t.Errorf("REST stage has no access logs")
	}
	tp.only(t, "AWS::ApiGateway::Account", nil)
	// A method's path: its resource's path parts up to the root.
	resources := tp.props("AWS::ApiGateway::Resource", nil)
	var pathOf func(id string) string
	pathOf = func(id string) string {
		r := resources[id]
		if p, ok := r["ParentId"].(map[string]any)["Ref"]; ok {
			return pathOf(p.(string)) + "/" + r["PathPart"].(string)
		}
		return "/" + r["PathPart"].(string)
	}
	var paths []string
	for id, m := range tp.props("AWS::ApiGateway::Method", nil) {
		if m["HttpMethod"] != "ANY" || m["Integration"].(map[string]any)["Type"] != "AWS_PROXY" {
			t.Errorf("method %s = %v, want ANY AWS_PROXY", id, m)
		}
		paths = append(paths, pathOf(m["ResourceId"].(map[string]any)["Ref"].(string)))
	}
	sort.Strings(paths)
	eq(t, "REST methods", paths, []string{"/.well-known/{proxy+}", "/commands", "/commands/{proxy+}", "/healthz", "/queries/{proxy+}", "/webhooks/{proxy+}"})

	tableID, table := tp.only(t, "AWS::DynamoDB::Table", nil)
	eq(t, "table DeletionPolicy", tp.resource(t, tableID)["DeletionPolicy"], "Delete")
	eq(t, "DeletionProtectionEnabled", table["DeletionProtectionEnabled"], false)
	for id := range tp.props("AWS::Logs::LogGroup", nil) {
		eq(t, id+" DeletionPolicy", tp.resource(t, id)["DeletionPolicy"], "Delete")
	}
	for id := range tp.props("AWS::KMS::Key", nil) {
		eq(t, id+" DeletionPolicy", tp.resource(t, id)["DeletionPolicy"], "Delete")
	}
	tp.only(t, "AWS::SQS::Queue", byName("QueueName", "sb-dev-work"))
	tp.only(t, "AWS::SQS::Queue", byName("QueueName", "sb-dev-work-dlq"))
	tp.only(t, "AWS::Events::Rule", byName("Name", "sb-dev-job-outbox-sweep"))

	for id, fn := range tp.props("AWS::Lambda::Function", nil) {
		vars := envVars(fn)
		eq(t, id+" public url", vars[EnvPublicURL], map[string]any{"Fn::Join": []any{"", []any{
			"http://", ref(restID), ".execute-api.localhost.localstack.cloud:4566/prod"}}})
		eq(t, id+" operator key hash (onboarding disabled)", vars[EnvOperatorKeySHA256], "")
		eq(t, id+" tenant path", vars[EnvTenantResourcesPath], "/sb-dev/tenants/")
	}
	// Without siloed tenants the roles name no tenant queue.
	for id, p := range tp.props("AWS::IAM::Policy", nil) {
		if s := jsonString(t, p); strings.Contains(s, "tnt_") {
			t.Errorf("policy %s names tenant queues without siloed tenants: %s", id, s)
		}
	}
	outs := tp.doc["Outputs"].(map[string]any)
	eq(t, "RestApiId output", outs["RestApiId"].(map[string]any)["Value"], ref(restID))
}

func keySchemaJSON(ks []ddbtypes.KeySchemaElement) []any {
	out := make([]any, 0, len(ks))
	for _, k := range ks {
		out = append(out, map[string]any{"AttributeName": *k.AttributeName, "KeyType": string(k.KeyType)})
	}
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
