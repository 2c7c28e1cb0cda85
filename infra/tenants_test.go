package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

func TestParseTenantsManifest(t *testing.T) {
	const a, b = "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R", "tnt_01K94G2DAC7D0E3F6G9H2J5K8M"
	tests := []struct {
		name    string
		in      string
		want    int // tenants
		siloed  int
		wantErr []string
	}{
		{name: "empty", in: `{"tenants":[]}`},
		{name: "one of each", in: `{"tenants":[{"id":"` + a + `","name":"A","tier":"siloed","maxConcurrency":20},{"id":"` + b + `","name":"B","tier":"pooled"}]}`, want: 2, siloed: 1},
		{name: "no list", in: `{}`, wantErr: []string{`no "tenants" list`}},
		{name: "not JSON", in: `tenants: []`, wantErr: []string{"decode"}},
		{name: "unknown field", in: `{"tenants":[{"id":"` + a + `","name":"A","tier":"siloed","plan":"gold"}]}`, wantErr: []string{`unknown field "plan"`}},
		{name: "trailing data", in: `{"tenants":[]} {}`, wantErr: []string{"data after"}},
		{name: "bad ids, all reported", in: `{"tenants":[
			{"id":"tnt_01k94g2d9e4h7j2k5m8n1p3q6r","name":"lower","tier":"pooled"},
			{"id":"tnt_01K94G2D9E4H7J2K5M8N1P3Q6","name":"short","tier":"pooled"},
			{"id":"tnt_01K94G2D9E4H7J2K5M8N1P3QIL","name":"not Crockford","tier":"pooled"},
			{"id":"scp_01K94G2D9E4H7J2K5M8N1P3Q6R","name":"scope id","tier":"pooled"}]}`,
			wantErr: []string{"tenants[0]", "tenants[1]", "tenants[2]", "tenants[3]"}},
		{name: "duplicate", in: `{"tenants":[{"id":"` + a + `","name":"A","tier":"siloed"},{"id":"` + a + `","name":"A again","tier":"pooled"}]}`,
			wantErr: []string{"repeats tenants[0]"}},
		{name: "tier", in: `{"tenants":[{"id":"` + a + `","name":"A","tier":"gold"}]}`, wantErr: []string{`tier "gold"`}},
		{name: "no name", in: `{"tenants":[{"id":"` + a + `","name":" ","tier":"pooled"}]}`, wantErr: []string{"name"}},
		{name: "control characters", in: `{"tenants":[{"id":"` + a + `","name":"A\nB","tier":"pooled"}]}`, wantErr: []string{"control"}},
		{name: "pooled concurrency", in: `{"tenants":[{"id":"` + a + `","name":"A","tier":"pooled","maxConcurrency":5}]}`, wantErr: []string{"only siloed"}},
		{name: "concurrency bounds", in: `{"tenants":[{"id":"` + a + `","name":"A","tier":"siloed","maxConcurrency":1}]}`, wantErr: []string{"maxConcurrency 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseTenantsManifest([]byte(tt.in))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want it to mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if len(m.Tenants) != tt.want || len(m.Siloed()) != tt.siloed {
				t.Errorf("got %d tenants, %d siloed; want %d, %d", len(m.Tenants), len(m.Siloed()), tt.want, tt.siloed)
			}
		})
	}
}

// The repository ships an empty manifest, and cdk.json points at it.
func TestShippedManifest(t *testing.T) {
	m, err := LoadTenantsManifest(filepath.Join("..", DefaultTenantsManifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tenants) != 0 {
		t.Errorf("shipped manifest has tenants: %v", m.Tenants)
	}
	if _, err := LoadTenantsManifest(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), CtxTenantsManifest) {
		t.Errorf("missing manifest: err = %v, want one naming the context key", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"tenants":[{"id":"x","name":"x","tier":"pooled"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTenantsManifest(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad manifest: err = %v, want one naming the file", err)
	}
}

// TestSiloedTenant checks the per-tenant expansion of the test manifest: the
// siloed tenant gets its own stack and resources, the pooled one nothing.
func TestSiloedTenant(t *testing.T) {
	f := awsFixture(t)
	if got := keys(f.nested); len(got) != 1 || got[0] != siloedID {
		t.Fatalf("tenant stacks = %v, want only the siloed tenant %s", got, siloedID)
	}
	nestedID, nested := f.main.only(t, "AWS::CloudFormation::Stack", nil)
	if !strings.Contains(nestedID, strings.ReplaceAll(siloedID, "_", "")) {
		t.Errorf("nested stack %s is not named after the tenant", nestedID)
	}
	for _, s := range []string{pooledID, strings.ReplaceAll(pooledID, "_", "")} {
		if strings.Contains(jsonString(t, f.main.doc), s) {
			t.Errorf("main template mentions the pooled tenant (%s)", s)
		}
	}
	// What the nested stack gets from the main stack.
	params := map[string]string{}
	for name, v := range nested["Parameters"].(map[string]any) {
		params[jsonString(t, v)] = name
	}
	roleParams := []string{}
	for _, l := range f.sb.Functions.All() {
		id := *f.sb.Stack.GetLogicalId(l.Role.Node().DefaultChild().(awscdk.CfnElement))
		p, ok := params[jsonString(t, getAtt(id, "Arn"))]
		if !ok {
			t.Fatalf("nested stack does not get role %s: %v", id, nested["Parameters"])
		}
		roleParams = append(roleParams, p)
	}
	workerID := *f.sb.Stack.GetLogicalId(f.sb.Functions.Worker.Function.Node().DefaultChild().(awscdk.CfnElement))
	workerParam := params[jsonString(t, ref(workerID))]
	topicID := *f.sb.Stack.GetLogicalId(f.sb.Observability.Topic.Node().DefaultChild().(awscdk.CfnElement))
	topicParam := params[jsonString(t, ref(topicID))]
	if workerParam == "" || topicParam == "" {
		t.Fatalf("nested stack parameters %v lack the worker or the alarm topic", nested["Parameters"])
	}

	tp := f.nested[siloedID]
	keyID, key := tp.only(t, "AWS::KMS::Key", nil)
	eq(t, "key rotation", key["EnableKeyRotation"], true)
	eq(t, "key DeletionPolicy", tp.resource(t, keyID)["DeletionPolicy"], "Retain")
	_, alias := tp.only(t, "AWS::KMS::Alias", nil)
	eq(t, "alias", alias["AliasName"], "alias/switchboard/tenants/"+siloedID)
	statements := map[string]any{}
	for _, s := range key["KeyPolicy"].(map[string]any)["Statement"].([]any) {
		st := s.(map[string]any)
		statements[fmt.Sprint(st["Sid"])] = st
	}
	sort.Strings(roleParams)
	principal := map[string]any{"AWS": []any{ref(roleParams[0]), ref(roleParams[1])}}
	// Directly: only with the tenant's own encryption context.
	eq(t, "key policy for the functions' data keys", statements["SwitchboardFunctionsDataKeys"], map[string]any{
		"Sid": "SwitchboardFunctionsDataKeys", "Effect": "Allow", "Resource": "*",
		"Action":    []any{"kms:Decrypt", "kms:GenerateDataKey"},
		"Principal": principal,
		"Condition": map[string]any{"StringEquals": map[string]any{"kms:EncryptionContext:tenantId": siloedID}},
	})
	// Through SQS only otherwise.
	viaSQS, _ := statements["SwitchboardFunctionsViaSQS"].(map[string]any)
	if viaSQS == nil || viaSQS["Condition"].(map[string]any)["StringEquals"].(map[string]any)["kms:ViaService"] == nil {
		t.Fatalf("key policy via SQS: %v", viaSQS)
	}

	queueID, queue := tp.only(t, "AWS::SQS::Queue", byName("QueueName", "switchboard-"+siloedID+"-work"))
	dlqID, dlq := tp.only(t, "AWS::SQS::Queue", byName("QueueName", "switchboard-"+siloedID+"-dlq"))
	for name, q := range map[string]map[string]any{"queue": queue, "dlq": dlq} {
		eq(t, name+" KmsMasterKeyId", q["KmsMasterKeyId"], getAtt(keyID, "Arn"))
		if len(q["QueueName"].(string)) > 80 {
			t.Errorf("%s name %q is longer than SQS allows", name, q["QueueName"])
		}
	}
	eq(t, "RedrivePolicy", queue["RedrivePolicy"], map[string]any{"deadLetterTargetArn": getAtt(dlqID, "Arn"), "maxReceiveCount": WorkMaxReceiveCount})
	eq(t, "VisibilityTimeout", queue["VisibilityTimeout"], WorkVisibilityFactor*WorkerTimeoutSeconds)
	eq(t, "queue policies (TLS only)", len(tp.resources("AWS::SQS::QueuePolicy")), 2)

	_, esm := tp.only(t, "AWS::Lambda::EventSourceMapping", nil)
	eq(t, "EventSourceMapping", pick(esm, "FunctionName", "EventSourceArn", "BatchSize", "FunctionResponseTypes", "ScalingConfig"), map[string]any{
		"FunctionName":          ref(workerParam),
		"EventSourceArn":        getAtt(queueID, "Arn"),
		"BatchSize":             WorkBatchSize,
		"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
		"ScalingConfig":         map[string]any{"MaximumConcurrency": DefaultTenantMaxConcurrency},
	})

	alarms := tp.props("AWS::CloudWatch::Alarm", nil)
	eq(t, "tenant alarms", len(alarms), 2)
	for id, a := range alarms {
		eq(t, id+" AlarmActions", a["AlarmActions"], []any{ref(topicParam)})
	}
	tp.only(t, "AWS::CloudWatch::Alarm", byName("MetricName", "ApproximateNumberOfMessagesVisible"))
	tp.only(t, "AWS::CloudWatch::Alarm", byName("MetricName", "ApproximateAgeOfOldestMessage"))

	// The runtime contract: /<prefix>/tenants/<id>, String, compact JSON.
	paramID, param := tp.only(t, "AWS::SSM::Parameter", nil)
	eq(t, "parameter", pick(param, "Name", "Type", "Tier"), map[string]any{
		"Name": "/switchboard/tenants/" + siloedID, "Type": "String", "Tier": "Standard"})
	value := resolveJoin(t, param["Value"], map[string]string{
		jsonString(t, ref(queueID)):         "https://sqs.eu-central-1.amazonaws.com/123456789012/switchboard-" + siloedID + "-work",
		jsonString(t, getAtt(keyID, "Arn")): "arn:aws:kms:eu-central-1:123456789012:key/0f6e5f9c-5d3a-4f57-9d7e-0a1b2c3d4e5f",
	})
	eq(t, "parameter value", value, `{"tier":"siloed","workQueueUrl":"https://sqs.eu-central-1.amazonaws.com/123456789012/switchboard-`+
		siloedID+`-work","kmsKeyArn":"arn:aws:kms:eu-central-1:123456789012:key/0f6e5f9c-5d3a-4f57-9d7e-0a1b2c3d4e5f"}`)
	var decoded TenantResources
	dec := json.NewDecoder(strings.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&decoded); err != nil || decoded.Tier != domain.TierSiloed {
		t.Errorf("parameter value %s: %v, %+v", value, err, decoded)
	}
	// Made last: its existence means the tenant's resources exist.
	deps := strs(tp.resource(t, paramID)["DependsOn"])
	for _, d := range []string{keyID, queueID} {
		if !contains(deps, d) {
			t.Errorf("parameter DependsOn %v lacks %s", deps, d)
		}
	}
	if !hasPrefix(deps, "WorkEvents") {
		t.Errorf("parameter DependsOn %v lacks the event source mapping", deps)
	}
}

// resolveJoin evaluates an Fn::Join with the given values for its parts.
func resolveJoin(t *testing.T, v any, values map[string]string) string {
	t.Helper()
	j, ok := v.(map[string]any)["Fn::Join"].([]any)
	if !ok || j[0] != "" {
		t.Fatalf("value %v is not a Fn::Join with an empty separator", v)
	}
	var b strings.Builder
	for _, part := range j[1].([]any) {
		if s, ok := part.(string); ok {
			b.WriteString(s)
			continue
		}
		s, ok := values[jsonString(t, part)]
		if !ok {
			t.Fatalf("no value for %s", jsonString(t, part))
		}
		b.WriteString(s)
	}
	return b.String()
}
