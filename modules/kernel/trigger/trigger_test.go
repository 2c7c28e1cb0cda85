package trigger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/logging"
	"github.com/switchboard-dev/switchboard/modules/kernel/trigger"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// The router plugs into lambda.Start directly, and the kernel's tables plug
// into the router.
var (
	_ lambda.Handler         = (*trigger.Router)(nil)
	_ trigger.WorkHandler    = (*work.Registry)(nil)
	_ trigger.JobRunner      = (*work.Jobs)(nil)
	_ trigger.EventDeliverer = (*work.Subscriptions)(nil)
)

const samplesDir = "../../../events/samples"

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatalf("read sample: %v", err)
	}
	return b
}

var testStart = time.Date(2025, 11, 3, 9, 15, 0, 0, time.UTC)

// newRouter returns a router with deterministic ids and a JSON log buffer.
func newRouter(t *testing.T) (*trigger.Router, *bytes.Buffer) {
	t.Helper()
	var buf syncBuffer
	return &trigger.Router{
		Logger: logging.New(&buf, slog.LevelDebug),
		IDs:    ids.NewSequence(testStart),
	}, &buf.buf
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// logLines decodes JSON log lines.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestDetectSamples(t *testing.T) {
	want := map[string]trigger.Kind{
		"apigw-v2-healthz.json":              trigger.KindAPIGatewayV2,
		"apigw-v2-command.json":              trigger.KindAPIGatewayV2,
		"apigw-v2-base64.json":               trigger.KindAPIGatewayV2,
		"apigw-v1-healthz.json":              trigger.KindAPIGatewayV1,
		"apigw-v1-command.json":              trigger.KindAPIGatewayV1,
		"sqs-work-batch.json":                trigger.KindSQS,
		"sqs-undecodable.json":               trigger.KindSQS,
		"eventbridge-scheduled-rule.json":    trigger.KindScheduledJob,
		"eventbridge-scheduler-job.json":     trigger.KindScheduledJob,
		"eventbridge-integration.json":       trigger.KindIntegrationEvent,
		"eventbridge-message-delivered.json": trigger.KindIntegrationEvent,
		"unknown-s3.json":                    trigger.KindUnknown,
		"unknown-garbage.txt":                trigger.KindUnknown,
	}
	entries, err := os.ReadDir(samplesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := want[e.Name()]; !ok {
			t.Errorf("sample %s has no expected kind in this test", e.Name())
		}
	}
	for name, kind := range want {
		t.Run(name, func(t *testing.T) {
			if got := trigger.Detect(sample(t, name)); got != kind {
				t.Errorf("Detect = %q, want %q", got, kind)
			}
		})
	}
}

func TestDetectShapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		want    trigger.Kind
	}{
		{"v2 minimal", `{"version":"2.0","routeKey":"$default","rawPath":"/x","requestContext":{"http":{"method":"GET","path":"/x"}}}`, trigger.KindAPIGatewayV2},
		{"http api payload 1.0", `{"version":"1.0","resource":"/{proxy+}","path":"/x","httpMethod":"GET","requestContext":{"stage":"$default"}}`, trigger.KindAPIGatewayV1},
		{"alb event", `{"httpMethod":"GET","path":"/x","requestContext":{"elb":{"targetGroupArn":"arn"}}}`, trigger.KindUnknown},
		{"mixed records", `{"Records":[{"eventSource":"aws:sqs"},{"eventSource":"aws:s3"}]}`, trigger.KindUnknown},
		{"no records", `{"Records":[]}`, trigger.KindUnknown},
		{"aws service event", `{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{}}`, trigger.KindUnknown},
		{"rule without detail-type", `{"source":"aws.events","resources":["arn:aws:events:r:1:rule/switchboard-job-x"]}`, trigger.KindUnknown},
		{"integration", `{"source":"switchboard.messaging","detail-type":"messaging.message-delivered","detail":{}}`, trigger.KindIntegrationEvent},
		{"wrong field type", `{"Records":"aws:sqs"}`, trigger.KindUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := trigger.Detect([]byte(tc.payload)); got != tc.want {
				t.Errorf("Detect = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnsupportedPayloads(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		names   []string // the error must contain each
	}{
		{"s3 sample", sample(t, "unknown-s3.json"), []string{"Records[].eventSource aws:s3", "keys [Records]"}},
		{"garbage sample", sample(t, "unknown-garbage.txt"), []string{"not JSON", `GET /healthz`}},
		{"empty", nil, []string{"empty payload"}},
		{"array", []byte(`[1,2]`), []string{"JSON array"}},
		{"null", []byte(`null`), []string{"JSON null"}},
		{"number", []byte(`42`), []string{"JSON number"}},
		{"string", []byte(`"hi"`), []string{"JSON string"}},
		{"object", []byte(`{"foo":1,"bar":{"baz":2}}`), []string{"keys [bar foo]"}},
		{"sns", []byte(`{"Records":[{"EventSource":"aws:sns","EventVersion":"1.0","Sns":{"Message":"x"}}]}`), []string{"aws:sns"}},
		{"aws service event", []byte(`{"version":"0","id":"1","source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{}}`),
			[]string{`source "aws.ec2"`, `detail-type "EC2 Instance State-change Notification"`}},
		{"truncated json", []byte(`{"Records":[{"eventSource":"aws:sqs"`), []string{"not JSON"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRouter(t)
			r.HTTP, r.Work, r.Jobs, r.Events = nil, work.NewRegistry(), work.NewJobs(), work.NewSubscriptions()
			out, err := r.Invoke(context.Background(), tc.payload)
			if err == nil {
				t.Fatalf("Invoke succeeded with %s", out)
			}
			if !errors.Is(err, trigger.ErrUnsupported) {
				t.Errorf("err = %v, want ErrUnsupported", err)
			}
			if !strings.HasPrefix(err.Error(), "trigger: unsupported payload: ") {
				t.Errorf("err = %q, want the prefix %q", err, "trigger: unsupported payload: ")
			}
			for _, n := range tc.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("err = %q, want it to name %q", err, n)
				}
			}
		})
	}
}

func TestFeaturesOff(t *testing.T) {
	for _, name := range []string{
		"apigw-v2-healthz.json", "apigw-v1-healthz.json", "sqs-work-batch.json",
		"eventbridge-scheduled-rule.json", "eventbridge-scheduler-job.json", "eventbridge-integration.json",
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := newRouter(t)
			_, err := r.Invoke(context.Background(), sample(t, name))
			if !errors.Is(err, trigger.ErrNotConfigured) {
				t.Fatalf("err = %v, want ErrNotConfigured", err)
			}
		})
	}
}

// ctxSeen is what a handler saw of the invocation context.
type ctxSeen struct {
	InvocationID, TraceID, Trigger, TenantID, Principal string
}

func seenOf(ctx context.Context) ctxSeen {
	c := invocation.From(ctx)
	return ctxSeen{c.InvocationID, c.TraceID, c.Trigger, c.TenantID(), c.Principal.String()}
}

// The samples are fixtures of other tests too: every Switchboard id in them
// must be a valid id of its type.
func TestSampleIDsAreValid(t *testing.T) {
	re := regexp.MustCompile(`\b(wrk|tnt|inv|scp|sva|key|chn|msg|sub|evt|dlv)_[0-9A-Za-z]{26}\b`)
	entries, err := os.ReadDir(samplesDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		for _, m := range re.FindAllStringSubmatch(string(sample(t, e.Name())), -1) {
			n++
			if !ids.Valid(m[1], m[0]) {
				t.Errorf("%s: %s is not a valid id", e.Name(), m[0])
			}
		}
	}
	if n == 0 {
		t.Error("no ids found in the samples")
	}
}
