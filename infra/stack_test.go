package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/jsii-runtime-go"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
)

// The whole file shares one jsii (node) process; it is started by the first
// CDK call and stopped here.
func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// cdkJSON is the parsed top-level cdk.json.
type cdkJSON struct {
	App     string         `json:"app"`
	Output  string         `json:"output"`
	Context map[string]any `json:"context"`
}

func readCDKJSON(t *testing.T) cdkJSON {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cdk.json"))
	if err != nil {
		t.Fatalf("read cdk.json: %v", err)
	}
	var c cdkJSON
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("parse cdk.json: %v", err)
	}
	return c
}

// newApp is an App with cdk.json's context (so the feature flags match
// `cdk synth`) plus extra, writing into a temp dir.
func newApp(t *testing.T, extra map[string]any) awscdk.App {
	t.Helper()
	ctx := map[string]any{}
	for k, v := range readCDKJSON(t).Context {
		ctx[k] = v
	}
	for k, v := range extra {
		ctx[k] = v
	}
	return awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(t.TempDir())})
}

// fakeBootstrapDir stands in for `make build-lambda`'s output.
func fakeBootstrapDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, BootstrapFile), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatalf("write fake bootstrap: %v", err)
	}
	return dir
}

// tmpl is a synthesized template as JSON plus the assertions handle.
type tmpl struct {
	t   *testing.T
	a   assertions.Template
	doc map[string]any
}

func synth(t *testing.T, cfg Config) tmpl {
	t.Helper()
	stack := NewSwitchboardStack(newApp(t, nil), StackID, &SwitchboardStackProps{Config: cfg})
	a := assertions.Template_FromStack(stack, nil)
	return tmpl{t: t, a: a, doc: *a.ToJSON()}
}

// jsiiOK runs a CDK assertion, turning its panic into a test error.
func (tp tmpl) jsiiOK(what string, f func()) {
	tp.t.Helper()
	defer func() {
		if r := recover(); r != nil {
			tp.t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

func (tp tmpl) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tp.doc["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

// only returns the logical id and properties of the single resource of typ
// whose properties contain match (nil: any).
func (tp tmpl) only(typ string, match func(props map[string]any) bool) (string, map[string]any) {
	tp.t.Helper()
	var ids []string
	var props map[string]any
	for id, r := range tp.resources(typ) {
		p, _ := r["Properties"].(map[string]any)
		if match == nil || match(p) {
			ids = append(ids, id)
			props = p
		}
	}
	if len(ids) != 1 {
		sort.Strings(ids)
		tp.t.Fatalf("want exactly one matching %s, got %v", typ, ids)
	}
	return ids[0], props
}

func (tp tmpl) resource(id string) map[string]any {
	tp.t.Helper()
	r, ok := tp.doc["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		tp.t.Fatalf("no resource %s", id)
	}
	return r
}

// eq compares after a JSON round trip, so Go literals compare to template values.
func (tp tmpl) eq(what string, got, want any) {
	tp.t.Helper()
	if !reflect.DeepEqual(norm(tp.t, got), norm(tp.t, want)) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		tp.t.Errorf("%s:\n got  %s\n want %s", what, g, w)
	}
}

func norm(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return out
}

func ref(id string) map[string]any          { return map[string]any{"Ref": id} }
func getAtt(id, attr string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, attr}} }

func byName(name string) func(map[string]any) bool {
	return func(p map[string]any) bool { return p["QueueName"] == name }
}

const testKeyHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")

func TestStackAWS(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BootstrapDir = fakeBootstrapDir(t)
	cfg.OperatorKeySHA256 = testKeyHash
	tp := synth(t, cfg)

	tableID, table := tp.only("AWS::DynamoDB::Table", nil)
	dlqID, dlq := tp.only("AWS::SQS::Queue", byName("switchboard-work-dlq"))
	queueID, queue := tp.only("AWS::SQS::Queue", byName("switchboard-work"))
	fnID, fn := tp.only("AWS::Lambda::Function", nil)
	logsID, logs := tp.only("AWS::Logs::LogGroup", nil)
	keyID, key := tp.only("AWS::KMS::Key", nil)

	t.Run("data key key", func(t *testing.T) {
		tp := tp.with(t)
		tp.eq("EnableKeyRotation", key["EnableKeyRotation"], true)
	})

	t.Run("table", func(t *testing.T) {
		tp := tp.with(t)
		tp.eq("KeySchema", table["KeySchema"], []any{
			map[string]any{"AttributeName": dynamostore.AttrPK, "KeyType": "HASH"},
			map[string]any{"AttributeName": dynamostore.AttrSK, "KeyType": "RANGE"},
		})
		tp.eq("BillingMode", table["BillingMode"], "PAY_PER_REQUEST")
		tp.eq("TimeToLiveSpecification", table["TimeToLiveSpecification"],
			map[string]any{"AttributeName": dynamostore.AttrExpiresAt, "Enabled": true})
		// The outbox index and one list index per slot, all KEYS_ONLY.
		wantGSIs := []any{map[string]any{
			"IndexName": dynamostore.IndexOutbox,
			"KeySchema": []any{
				map[string]any{"AttributeName": dynamostore.AttrGSI1PK, "KeyType": "HASH"},
				map[string]any{"AttributeName": dynamostore.AttrGSI1SK, "KeyType": "RANGE"},
			},
			"Projection": map[string]any{"ProjectionType": "KEYS_ONLY"},
		}}
		wantAttrs := map[string]any{
			dynamostore.AttrPK: "S", dynamostore.AttrSK: "S", dynamostore.AttrGSI1PK: "S", dynamostore.AttrGSI1SK: "S",
		}
		for slot := 1; slot <= eventstore.MaxListSlots; slot++ {
			wantGSIs = append(wantGSIs, map[string]any{
				"IndexName": fmt.Sprintf("list%d", slot),
				"KeySchema": []any{
					map[string]any{"AttributeName": fmt.Sprintf("list%dpk", slot), "KeyType": "HASH"},
					map[string]any{"AttributeName": fmt.Sprintf("list%dsk", slot), "KeyType": "RANGE"},
				},
				"Projection": map[string]any{"ProjectionType": "KEYS_ONLY"},
			})
			wantAttrs[fmt.Sprintf("list%dpk", slot)] = "S"
			wantAttrs[fmt.Sprintf("list%dsk", slot)] = "S"
		}
		tp.eq("GlobalSecondaryIndexes", table["GlobalSecondaryIndexes"], wantGSIs)
		attrs := map[string]any{}
		for _, a := range table["AttributeDefinitions"].([]any) {
			m := a.(map[string]any)
			attrs[m["AttributeName"].(string)] = m["AttributeType"]
		}
		tp.eq("AttributeDefinitions", attrs, wantAttrs)
		tp.eq("PITR", table["PointInTimeRecoverySpecification"], map[string]any{"PointInTimeRecoveryEnabled": true})
		tp.eq("DeletionProtectionEnabled", table["DeletionProtectionEnabled"], true)
		r := tp.resource(tableID)
		tp.eq("DeletionPolicy", r["DeletionPolicy"], "Retain")
		tp.eq("UpdateReplacePolicy", r["UpdateReplacePolicy"], "Retain")
		// The same table local mode creates (EnsureTable).
		def := dynamostore.TableInput("unused")
		tp.eq("KeySchema = TableInput", table["KeySchema"], keySchemaJSON(def.KeySchema))
		var gsis []any
		for _, g := range def.GlobalSecondaryIndexes {
			gsis = append(gsis, map[string]any{
				"IndexName":  *g.IndexName,
				"KeySchema":  keySchemaJSON(g.KeySchema),
				"Projection": map[string]any{"ProjectionType": string(g.Projection.ProjectionType)},
			})
		}
		tp.eq("GlobalSecondaryIndexes = TableInput", table["GlobalSecondaryIndexes"], gsis)
		defAttrs := map[string]any{}
		for _, a := range def.AttributeDefinitions {
			defAttrs[*a.AttributeName] = string(a.AttributeType)
		}
		tp.eq("AttributeDefinitions = TableInput", attrs, defAttrs)
		if _, named := table["TableName"]; named {
			t.Errorf("table has a fixed TableName; want a generated one")
		}
	})

	t.Run("queues", func(t *testing.T) {
		tp := tp.with(t)
		tp.eq("work VisibilityTimeout", queue["VisibilityTimeout"], 6*FunctionTimeoutSeconds)
		tp.eq("work RedrivePolicy", queue["RedrivePolicy"], map[string]any{
			"deadLetterTargetArn": getAtt(dlqID, "Arn"),
			"maxReceiveCount":     WorkMaxReceiveCount,
		})
		tp.eq("dlq MessageRetentionPeriod", dlq["MessageRetentionPeriod"], 14*24*3600)
		if _, ok := dlq["RedrivePolicy"]; ok {
			t.Errorf("the DLQ must not itself redrive")
		}
	})

	t.Run("function", func(t *testing.T) {
		tp := tp.with(t)
		tp.eq("Runtime", fn["Runtime"], "provided.al2023")
		tp.eq("Architectures", fn["Architectures"], []any{"arm64"})
		tp.eq("Handler", fn["Handler"], "bootstrap")
		tp.eq("MemorySize", fn["MemorySize"], FunctionMemoryMB)
		tp.eq("Timeout", fn["Timeout"], FunctionTimeoutSeconds)
		tp.eq("Environment", fn["Environment"], map[string]any{"Variables": map[string]any{
			EnvTable:             ref(tableID),
			EnvStore:             "dynamodb",
			EnvWorkQueueURL:      ref(queueID),
			EnvOperatorKeySHA256: testKeyHash,
			EnvLogLevel:          "info",
			EnvKMSKeyID:          getAtt(keyID, "Arn"),
		}})
		tp.eq("LoggingConfig", fn["LoggingConfig"], map[string]any{"LogGroup": ref(logsID)})
		tp.eq("log RetentionInDays", logs["RetentionInDays"], 30)
		tp.eq("log DeletionPolicy", tp.resource(logsID)["DeletionPolicy"], "Retain")
		code, _ := fn["Code"].(map[string]any)
		if _, ok := code["S3Key"]; !ok {
			t.Errorf("Code = %v, want an S3 asset", code)
		}
	})

	t.Run("work queue event source", func(t *testing.T) {
		tp := tp.with(t)
		_, esm := tp.only("AWS::Lambda::EventSourceMapping", nil)
		tp.eq("EventSourceMapping", esm, map[string]any{
			"FunctionName":          ref(fnID),
			"EventSourceArn":        getAtt(queueID, "Arn"),
			"BatchSize":             WorkBatchSize,
			"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
		})
	})

	t.Run("grants", func(t *testing.T) {
		tp := tp.with(t)
		_, pol := tp.only("AWS::IAM::Policy", nil)
		b, _ := json.Marshal(pol["PolicyDocument"])
		doc := string(b)
		for _, action := range []string{
			"dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
			"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
			"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
			"kms:GenerateDataKey", "kms:Decrypt",
		} {
			if !strings.Contains(doc, `"`+action+`"`) {
				t.Errorf("function policy lacks %s", action)
			}
		}
		if strings.Contains(doc, `"kms:*"`) || strings.Contains(doc, `"kms:Encrypt"`) {
			t.Errorf("function policy grants more KMS than GenerateDataKey and Decrypt: %s", doc)
		}
		// Index access ("<table arn>/index/*") is needed by the outbox sweep.
		if !strings.Contains(doc, "/index/*") {
			t.Errorf("function policy lacks the table's index resources")
		}
	})

	t.Run("schedule rule", func(t *testing.T) {
		tp := tp.with(t)
		_, rule := tp.only("AWS::Events::Rule", nil)
		tp.eq("ScheduleExpression", rule["ScheduleExpression"], "rate(1 minute)")
		tp.eq("State", rule["State"], "ENABLED")
		targets := rule["Targets"].([]any)
		if len(targets) != 1 {
			t.Fatalf("targets = %v, want 1", targets)
		}
		target := targets[0].(map[string]any)
		tp.eq("target Arn", target["Arn"], getAtt(fnID, "Arn"))
		var input any
		if err := json.Unmarshal([]byte(target["Input"].(string)), &input); err != nil {
			t.Fatalf("target Input %q: %v", target["Input"], err)
		}
		tp.eq("target Input", input, map[string]any{
			"source":      "switchboard.scheduler",
			"detail-type": "switchboard.job",
			"detail":      map[string]any{"job": "outbox-sweep"},
		})
		tp.jsiiOK("events may invoke the function", func() {
			tp.a.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), map[string]any{
				"Action":    "lambda:InvokeFunction",
				"Principal": "events.amazonaws.com",
				"FunctionName": assertions.Match_ObjectLike(&map[string]any{
					"Fn::GetAtt": []any{fnID, "Arn"},
				}),
			})
		})
	})

	t.Run("rest api", func(t *testing.T) {
		tp := tp.with(t)
		tp.only("AWS::ApiGateway::RestApi", nil)
		_, stage := tp.only("AWS::ApiGateway::Stage", nil)
		tp.eq("StageName", stage["StageName"], RestStageName)
		tp.only("AWS::ApiGateway::Resource", func(p map[string]any) bool { return p["PathPart"] == "{proxy+}" })
		methods := tp.resources("AWS::ApiGateway::Method")
		if len(methods) != 2 { // ANY / and ANY /{proxy+}
			t.Errorf("methods = %d, want 2", len(methods))
		}
		for id, m := range methods {
			p := m["Properties"].(map[string]any)
			integ := p["Integration"].(map[string]any)
			if p["HttpMethod"] != "ANY" || integ["Type"] != "AWS_PROXY" {
				t.Errorf("method %s = %v %v, want ANY AWS_PROXY", id, p["HttpMethod"], integ["Type"])
			}
		}
		if n := len(tp.resources("AWS::ApiGateway::Account")); n != 0 {
			t.Errorf("API Gateway account/CloudWatch role resources = %d, want 0", n)
		}
	})

	t.Run("http api", func(t *testing.T) {
		tp := tp.with(t)
		_, api := tp.only("AWS::ApiGatewayV2::Api", nil)
		tp.eq("ProtocolType", api["ProtocolType"], "HTTP")
		_, integ := tp.only("AWS::ApiGatewayV2::Integration", nil)
		tp.eq("IntegrationType", integ["IntegrationType"], "AWS_PROXY")
		tp.eq("PayloadFormatVersion", integ["PayloadFormatVersion"], "2.0")
		tp.eq("IntegrationUri", integ["IntegrationUri"], getAtt(fnID, "Arn"))
		_, route := tp.only("AWS::ApiGatewayV2::Route", nil)
		tp.eq("RouteKey", route["RouteKey"], "$default")
	})

	t.Run("alarms", func(t *testing.T) {
		tp := tp.with(t)
		_, dlqAlarm := tp.only("AWS::CloudWatch::Alarm", func(p map[string]any) bool { return p["Namespace"] == "AWS/SQS" })
		tp.eq("dlq alarm", pick(dlqAlarm, "MetricName", "Threshold", "ComparisonOperator", "Dimensions", "Statistic"), map[string]any{
			"MetricName":         "ApproximateNumberOfMessagesVisible",
			"Threshold":          0,
			"ComparisonOperator": "GreaterThanThreshold",
			"Statistic":          "Maximum",
			"Dimensions":         []any{map[string]any{"Name": "QueueName", "Value": getAtt(dlqID, "QueueName")}},
		})
		_, fnAlarm := tp.only("AWS::CloudWatch::Alarm", func(p map[string]any) bool { return p["Namespace"] == "AWS/Lambda" })
		tp.eq("function alarm", pick(fnAlarm, "MetricName", "Threshold", "ComparisonOperator", "Dimensions"), map[string]any{
			"MetricName":         "Errors",
			"Threshold":          0,
			"ComparisonOperator": "GreaterThanThreshold",
			"Dimensions":         []any{map[string]any{"Name": "FunctionName", "Value": ref(fnID)}},
		})
		for _, a := range []map[string]any{dlqAlarm, fnAlarm} {
			if _, ok := a["AlarmActions"]; ok {
				t.Errorf("alarm has actions %v; the minimal slice has none", a["AlarmActions"])
			}
		}
	})

	t.Run("outputs", func(t *testing.T) {
		tp := tp.with(t)
		outs := tp.doc["Outputs"].(map[string]any)
		tp.eq("outputs", keys(outs), []string{"FunctionName", "HttpApiUrl", "RestApiId", "RestApiUrl", "TableName", "WorkDlqUrl", "WorkQueueUrl"})
		tp.eq("TableName output", outs["TableName"].(map[string]any)["Value"], ref(tableID))
		tp.eq("WorkQueueUrl output", outs["WorkQueueUrl"].(map[string]any)["Value"], ref(queueID))
	})
}

// TestStackLocalStack is the shape the LocalStack kit deploys
// (-c httpApi=false -c removalPolicy=destroy).
func TestStackLocalStack(t *testing.T) {
	app := newApp(t, map[string]any{
		CtxBootstrapDir:      fakeBootstrapDir(t),
		CtxHTTPAPI:           "false",
		CtxRemovalPolicy:     "destroy",
		CtxPublicURL:         "http://localhost:4566",
		CtxNamePrefix:        "sb-dev",
		CtxOperatorKeySHA256: "",
	})
	cfg, err := ConfigFromContext(app.Node())
	if err != nil {
		t.Fatalf("ConfigFromContext: %v", err)
	}
	stack := NewSwitchboardStack(app, StackID, &SwitchboardStackProps{Config: cfg})
	a := assertions.Template_FromStack(stack, nil)
	tp := tmpl{t: t, a: a, doc: *a.ToJSON()}

	for _, typ := range []string{"AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Stage"} {
		if n := len(tp.resources(typ)); n != 0 {
			t.Errorf("%s resources = %d, want 0 with httpApi=false", typ, n)
		}
	}
	if _, ok := tp.doc["Outputs"].(map[string]any)["HttpApiUrl"]; ok {
		t.Errorf("HttpApiUrl output present with httpApi=false")
	}
	tp.only("AWS::ApiGateway::RestApi", nil)

	tableID, table := tp.only("AWS::DynamoDB::Table", nil)
	tp.eq("DeletionPolicy", tp.resource(tableID)["DeletionPolicy"], "Delete")
	tp.eq("DeletionProtectionEnabled", table["DeletionProtectionEnabled"], false)
	logsID, _ := tp.only("AWS::Logs::LogGroup", nil)
	tp.eq("log DeletionPolicy", tp.resource(logsID)["DeletionPolicy"], "Delete")

	tp.only("AWS::SQS::Queue", byName("sb-dev-work"))
	tp.only("AWS::SQS::Queue", byName("sb-dev-work-dlq"))

	_, fn := tp.only("AWS::Lambda::Function", nil)
	vars := fn["Environment"].(map[string]any)["Variables"].(map[string]any)
	tp.eq("public url", vars[EnvPublicURL], "http://localhost:4566")
	tp.eq("operator key hash (onboarding disabled)", vars[EnvOperatorKeySHA256], "")
}

func TestConfigFromContext(t *testing.T) {
	upper := strings.ToUpper(testKeyHash)
	tests := []struct {
		name    string
		ctx     map[string]any
		want    Config
		wantErr string
	}{
		{name: "cdk.json defaults", ctx: nil, want: DefaultConfig()},
		{
			name: "strings from -c",
			ctx: map[string]any{CtxHTTPAPI: "false", CtxRemovalPolicy: "DESTROY", CtxBootstrapDir: "out/fn",
				CtxOperatorKeySHA256: upper, CtxNamePrefix: "sb_2", CtxPublicURL: "https://sb.example.com"},
			want: Config{BootstrapDir: "out/fn", HTTPAPI: false, RetainData: false, OperatorKeySHA256: testKeyHash,
				NamePrefix: "sb_2", PublicURL: "https://sb.example.com"},
		},
		{
			name: "json types",
			ctx:  map[string]any{CtxHTTPAPI: false, CtxRemovalPolicy: "retain"},
			want: Config{BootstrapDir: DefaultBootstrapDir, HTTPAPI: false, RetainData: true, NamePrefix: DefaultNamePrefix},
		},
		{name: "bad bool", ctx: map[string]any{CtxHTTPAPI: "maybe"}, wantErr: CtxHTTPAPI},
		{name: "bool type", ctx: map[string]any{CtxHTTPAPI: 1}, wantErr: CtxHTTPAPI},
		{name: "bad removal policy", ctx: map[string]any{CtxRemovalPolicy: "snapshot"}, wantErr: CtxRemovalPolicy},
		{name: "short hash", ctx: map[string]any{CtxOperatorKeySHA256: "abc"}, wantErr: CtxOperatorKeySHA256},
		{name: "raw key instead of hash", ctx: map[string]any{CtxOperatorKeySHA256: strings.Repeat("k", 64)}, wantErr: CtxOperatorKeySHA256},
		{name: "bad prefix", ctx: map[string]any{CtxNamePrefix: "sb.work"}, wantErr: CtxNamePrefix},
		{name: "bad url", ctx: map[string]any{CtxPublicURL: "localhost:4566"}, wantErr: CtxPublicURL},
		{name: "non-string", ctx: map[string]any{CtxBootstrapDir: 3}, wantErr: CtxBootstrapDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromContext(newApp(t, tt.ctx).Node())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestValidateBootstrap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BootstrapDir = filepath.Join(t.TempDir(), "missing")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "make build-lambda") {
		t.Errorf("missing dir: err = %v, want a hint to run make build-lambda", err)
	}

	cfg.BootstrapDir = t.TempDir()
	if err := os.Mkdir(filepath.Join(cfg.BootstrapDir, BootstrapFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("bootstrap is a dir: err = %v", err)
	}

	cfg.BootstrapDir = fakeBootstrapDir(t)
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid: %v", err)
	}

	defer func() {
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), "build-lambda") {
			t.Errorf("NewSwitchboardStack without a binary: recovered %v, want a panic naming build-lambda", r)
		}
	}()
	bad := DefaultConfig()
	bad.BootstrapDir = filepath.Join(t.TempDir(), "missing")
	NewSwitchboardStack(newApp(t, nil), StackID, &SwitchboardStackProps{Config: bad})
}

func TestCDKJSON(t *testing.T) {
	c := readCDKJSON(t)
	if c.App != "go run ./infra" {
		t.Errorf("app = %q", c.App)
	}
	if c.Context[CtxBootstrapDir] != DefaultBootstrapDir {
		t.Errorf("context %s = %v, want %s", CtxBootstrapDir, c.Context[CtxBootstrapDir], DefaultBootstrapDir)
	}
	if c.Context["cli-telemetry"] != false {
		t.Errorf("cli-telemetry = %v, want false", c.Context["cli-telemetry"])
	}
	if strings.HasPrefix(c.Output, DefaultBootstrapDir) {
		t.Errorf("output %q inside the asset dir would be hashed into the asset", c.Output)
	}
}

func keySchemaJSON(ks []ddbtypes.KeySchemaElement) []any {
	out := make([]any, 0, len(ks))
	for _, k := range ks {
		out = append(out, map[string]any{"AttributeName": *k.AttributeName, "KeyType": string(k.KeyType)})
	}
	return out
}

func pick(m map[string]any, ks ...string) map[string]any {
	out := map[string]any{}
	for _, k := range ks {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// with is tp reporting to t (a subtest).
func (tp tmpl) with(t *testing.T) tmpl {
	tp.t = t
	return tp
}
