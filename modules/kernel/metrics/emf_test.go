package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/metrics"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 123_000_000, time.UTC)

// validUnits are CloudWatch's units (MetricDatum.Unit).
var validUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true, "Megabytes": true,
	"Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true, "Megabits": true, "Gigabits": true, "Terabits": true,
	"Percent": true, "Count": true, "Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true,
	"Gigabytes/Second": true, "Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true,
	"Megabits/Second": true, "Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// checkEMF checks one log line against the requirements of the CloudWatch
// embedded metric format specification: a JSON object with nothing around it;
// a root member "_aws" that is an object with Timestamp (a number of
// milliseconds since the epoch) and CloudWatchMetrics (an array of
// MetricDirectives with a Namespace, Dimensions: an array of DimensionSets of
// at most 30 keys, each a root member whose value is a string, and Metrics:
// at most 100 MetricDefinitions with a Name, referencing a root member whose
// value is a number or an array of at most 100 numbers, and an optional valid
// Unit); the directive and definition objects hold no other members.
func checkEMF(t *testing.T, line []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("not a JSON object: %s (%v)", line, err)
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(line, "\n"))) {
		t.Fatalf("data after the JSON object: %s", line)
	}
	meta, ok := root["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("no _aws object: %s", line)
	}
	ts, ok := meta["Timestamp"].(json.Number)
	if _, err := ts.Int64(); !ok || err != nil {
		t.Fatalf("_aws.Timestamp %v is not an integer number", meta["Timestamp"])
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		t.Fatalf("_aws.CloudWatchMetrics %v is not a non-empty array", meta["CloudWatchMetrics"])
	}
	for _, d := range directives {
		dir, ok := d.(map[string]any)
		if !ok {
			t.Fatalf("directive %v is not an object", d)
		}
		for k := range dir {
			if k != "Namespace" && k != "Dimensions" && k != "Metrics" {
				t.Errorf("directive member %q is not in the specification", k)
			}
		}
		if ns, ok := dir["Namespace"].(string); !ok || ns == "" || len(ns) > 1024 {
			t.Errorf("Namespace %v", dir["Namespace"])
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok {
			t.Fatalf("Dimensions %v is not an array", dir["Dimensions"])
		}
		for _, s := range sets {
			set, ok := s.([]any)
			if !ok || len(set) > 30 {
				t.Fatalf("DimensionSet %v is not an array of at most 30 keys", s)
			}
			for _, k := range set {
				key, _ := k.(string)
				if v, ok := root[key].(string); !ok || v == "" || len(v) > 1024 {
					t.Errorf("dimension %q: root member %v is not a non-empty string", key, root[key])
				}
			}
		}
		defs, ok := dir["Metrics"].([]any)
		if !ok || len(defs) == 0 || len(defs) > 100 {
			t.Fatalf("Metrics %v is not an array of 1..100 definitions", dir["Metrics"])
		}
		for _, d := range defs {
			def, ok := d.(map[string]any)
			if !ok {
				t.Fatalf("MetricDefinition %v is not an object", d)
			}
			for k := range def {
				if k != "Name" && k != "Unit" && k != "StorageResolution" {
					t.Errorf("definition member %q is not in the specification", k)
				}
			}
			name, _ := def["Name"].(string)
			if name == "" || len(name) > 1024 {
				t.Errorf("metric Name %v", def["Name"])
			}
			if u, ok := def["Unit"]; ok && !validUnits[fmt.Sprint(u)] {
				t.Errorf("metric %s: Unit %v is not a CloudWatch unit", name, u)
			}
			switch v := root[name].(type) {
			case json.Number:
			case []any:
				if len(v) > 100 {
					t.Errorf("metric %s: %d values, at most 100", name, len(v))
				}
			default:
				t.Errorf("metric %s: root member %v is not a number", name, root[name])
			}
		}
	}
	return root
}

// lines splits the output into lines, each checked.
func lines(t *testing.T, out *bytes.Buffer) []map[string]any {
	t.Helper()
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		t.Fatalf("output does not end with a newline: %q", out.String())
	}
	var docs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		docs = append(docs, checkEMF(t, sc.Bytes()))
	}
	return docs
}

func workerCtx() context.Context {
	return invocation.With(context.Background(), &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000001", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Trigger: "sqs",
		Principal: invocation.Principal{Kind: invocation.KindSystem, ID: "system", TenantID: "tnt_01JQ00000000000000000000T1"},
	})
}

func TestEMFCount(t *testing.T) {
	var out bytes.Buffer
	rec := metrics.NewEMF(&out, metrics.EMFOptions{Clock: clock.NewFixed(t0)})
	rec.Count(workerCtx(), "MessagesSent", metrics.Dimensions{"ChannelType": "sms"}, 1)
	docs := lines(t, &out)
	if len(docs) != 1 {
		t.Fatalf("%d documents, want 1", len(docs))
	}
	var want map[string]any
	_ = json.Unmarshal([]byte(`{"_aws":{"Timestamp":1767225600123,"CloudWatchMetrics":[{"Namespace":"Switchboard",
		"Dimensions":[["ChannelType"]],"Metrics":[{"Name":"MessagesSent","Unit":"Count"}]}]},
		"ChannelType":"sms","MessagesSent":1,
		"invocationId":"inv_01JQ0000000000000000000001","traceId":"4bf92f3577b34da6a3ce929d0e0e4736",
		"tenantId":"tnt_01JQ00000000000000000000T1"}`), &want)
	var got map[string]any
	_ = json.Unmarshal(out.Bytes(), &got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("document\n%s\nwant\n%v", out.String(), want)
	}
}

func TestEMFDuration(t *testing.T) {
	var out bytes.Buffer
	rec := metrics.NewEMF(&out, metrics.EMFOptions{Clock: clock.NewFixed(t0)})
	rec.Duration(context.Background(), "DispatchLatency", metrics.Dimensions{"ChannelType": "email"}, 1500*time.Millisecond+250*time.Microsecond)
	rec.Duration(context.Background(), "DispatchLatency", metrics.Dimensions{"ChannelType": "email"}, -time.Second)
	docs := lines(t, &out)
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2", len(docs))
	}
	def := docs[0]["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Metrics"].([]any)[0].(map[string]any)
	if def["Name"] != "DispatchLatency" || def["Unit"] != "Milliseconds" {
		t.Fatalf("definition %v", def)
	}
	if v := docs[0]["DispatchLatency"].(json.Number).String(); v != "1500.25" {
		t.Fatalf("value %s, want 1500.25 (milliseconds)", v)
	}
	if v := docs[1]["DispatchLatency"].(json.Number).String(); v != "0" {
		t.Fatalf("negative duration: %s, want 0", v)
	}
	// Without an invocation: no invocation properties.
	if _, ok := docs[0]["invocationId"]; ok {
		t.Fatal("invocationId without an invocation")
	}
}

// A value that would make an invalid document is dropped and logged, never
// written, never a panic.
func TestEMFDropsInvalidValues(t *testing.T) {
	var out, logs bytes.Buffer
	rec := metrics.NewEMF(&out, metrics.EMFOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx := context.Background()
	tooMany := metrics.Dimensions{}
	for i := 0; i <= metrics.MaxDimensions; i++ {
		tooMany[fmt.Sprint("d", i)] = "x"
	}
	rec.Count(ctx, "", nil, 1)
	rec.Count(ctx, "_aws", nil, 1)
	rec.Count(ctx, strings.Repeat("m", 256), nil, 1)
	rec.Count(ctx, "M", metrics.Dimensions{"ChannelType": ""}, 1)
	rec.Count(ctx, "M", metrics.Dimensions{"": "sms"}, 1)
	rec.Count(ctx, "M", metrics.Dimensions{"M": "sms"}, 1)
	rec.Count(ctx, "M", metrics.Dimensions{"_aws": "sms"}, 1)
	rec.Count(ctx, "M", metrics.Dimensions{"ChannelType": strings.Repeat("v", 1025)}, 1)
	rec.Count(ctx, "M", tooMany, 1)
	rec.Count(ctx, "M", nil, -1)
	if out.Len() != 0 {
		t.Fatalf("written: %s", out.String())
	}
	if n := strings.Count(logs.String(), "metric dropped"); n != 10 {
		t.Fatalf("%d drops logged, want 10:\n%s", n, logs.String())
	}
	// No dimensions is a valid document (an empty dimension set).
	rec.Count(ctx, "M", nil, 0)
	if docs := lines(t, &out); len(docs) != 1 || docs[0]["M"].(json.Number).String() != "0" {
		t.Fatalf("documents %v", docs)
	}
}

// A dimension named like an invocation property wins over the property.
func TestEMFDimensionsWinOverProperties(t *testing.T) {
	var out bytes.Buffer
	rec := metrics.NewEMF(&out, metrics.EMFOptions{})
	rec.Count(workerCtx(), "M", metrics.Dimensions{"tenantId": "pooled"}, 2)
	docs := lines(t, &out)
	if docs[0]["tenantId"] != "pooled" || docs[0]["M"].(json.Number).String() != "2" {
		t.Fatalf("document %v", docs[0])
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

func TestEMFWriteErrorIsLoggedNotReturned(t *testing.T) {
	var logs bytes.Buffer
	rec := metrics.NewEMF(failingWriter{}, metrics.EMFOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	rec.Count(context.Background(), "M", nil, 1)
	if !strings.Contains(logs.String(), "stdout closed") {
		t.Fatalf("logs %s", logs.String())
	}
}

// Concurrent values never interleave: every line is one whole document.
func TestEMFConcurrentWritesAreWholeLines(t *testing.T) {
	var out bytes.Buffer
	rec := metrics.NewEMF(&out, metrics.EMFOptions{})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				rec.Count(workerCtx(), "MessagesAccepted", metrics.Dimensions{"ChannelType": "sms"}, 1)
				rec.Duration(workerCtx(), "DispatchLatency", metrics.Dimensions{"ChannelType": "sms"}, time.Duration(j)*time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if docs := lines(t, &out); len(docs) != 1600 {
		t.Fatalf("%d documents, want 1600", len(docs))
	}
}
