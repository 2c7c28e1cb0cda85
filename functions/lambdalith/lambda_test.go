package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets/kmstest"
)

// runtimeAPI is a fake Lambda Runtime API: it hands out queued payloads on
// /next and collects responses and errors, as the real one does.
type runtimeAPI struct {
	srv       *httptest.Server
	queue     chan invocationReq
	mu        sync.Mutex
	waiting   map[string]chan runtimeResult
	firstNext chan time.Time
	once      sync.Once
	n         atomic.Int64
}

type invocationReq struct {
	id      string
	payload []byte
}

type runtimeResult struct {
	body  []byte
	isErr bool
}

func newRuntimeAPI(t testing.TB) *runtimeAPI {
	r := &runtimeAPI{queue: make(chan invocationReq, 16), waiting: map[string]chan runtimeResult{}, firstNext: make(chan time.Time, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, req *http.Request) {
		r.once.Do(func() { r.firstNext <- time.Now() })
		select {
		case inv := <-r.queue:
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(30*time.Second).UnixMilli()))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-central-1:123456789012:function:switchboard")
			w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
			_, _ = w.Write(inv.payload)
		case <-req.Context().Done():
		}
	})
	finish := func(isErr bool) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			r.mu.Lock()
			ch := r.waiting[req.PathValue("id")]
			r.mu.Unlock()
			if ch != nil {
				ch <- runtimeResult{body: body, isErr: isErr}
			}
			w.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", finish(false))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", finish(true))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		t.Errorf("init error: %s", body)
		w.WriteHeader(http.StatusAccepted)
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *runtimeAPI) addr() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// invoke sends one payload through the binary and waits for its answer.
func (r *runtimeAPI) invoke(t testing.TB, payload []byte) runtimeResult {
	t.Helper()
	id := fmt.Sprintf("req-%d", r.n.Add(1))
	ch := make(chan runtimeResult, 1)
	r.mu.Lock()
	r.waiting[id] = ch
	r.mu.Unlock()
	r.queue <- invocationReq{id: id, payload: payload}
	select {
	case res := <-ch:
		return res
	case <-time.After(20 * time.Second):
		t.Fatalf("no answer to %s", id)
		return runtimeResult{}
	}
}

// fakeSQS accepts SendMessageBatch (AWS JSON 1.0) for any queue and keeps
// each body with its queue URL.
type fakeSQS struct {
	mu    sync.Mutex
	items []queuedBody
}

// queuedBody is a work item sent to a queue.
type queuedBody struct{ queue, body string }

func (f *fakeSQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		QueueUrl string
		Entries  []struct{ Id, MessageBody string }
	}
	if r.Header.Get("X-Amz-Target") != "AmazonSQS.SendMessageBatch" || json.NewDecoder(r.Body).Decode(&in) != nil {
		http.Error(w, `{"__type":"InvalidAction"}`, 400)
		return
	}
	type ok struct{ Id, MessageId, MD5OfMessageBody string }
	out := struct{ Successful []ok }{}
	f.mu.Lock()
	for _, e := range in.Entries {
		f.items = append(f.items, queuedBody{in.QueueUrl, e.MessageBody})
		out.Successful = append(out.Successful, ok{Id: e.Id, MessageId: "m-" + e.Id, MD5OfMessageBody: md5hex(e.MessageBody)})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(out)
}

// take returns the items sent since the last take.
func (f *fakeSQS) take() []queuedBody {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.items
	f.items = nil
	return out
}

// taken returns the bodies sent since the last take.
func (f *fakeSQS) taken() []string {
	var out []string
	for _, it := range f.take() {
		out = append(out, it.body)
	}
	return out
}

// startLambda runs the built binary in Lambda mode against the fake runtime.
func startLambda(t testing.TB, rt *runtimeAPI, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t))
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"AWS_LAMBDA_RUNTIME_API=" + rt.addr(),
		"AWS_LAMBDA_FUNCTION_NAME=switchboard",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"SWITCHBOARD_PUBLIC_URL=https://api.example.com",
		// DynamoDB Local keeps tables per region and access key: use the test client's.
		"AWS_REGION=" + dynamotest.Region,
		"AWS_ACCESS_KEY_ID=" + dynamotest.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + dynamotest.SecretKey,
	}, env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	var mu sync.Mutex
	go func() {
		s := bufio.NewScanner(stderr)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			mu.Lock()
			logs.WriteString(s.Text() + "\n")
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("lambda logs:\n%s", logs.String())
			mu.Unlock()
		}
	})
	return cmd
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apiResponse is the part of an API Gateway proxy response the tests read.
type apiResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func decodeAPI(t testing.TB, res runtimeResult) (apiResponse, map[string]any) {
	t.Helper()
	if res.isErr {
		t.Fatalf("invocation failed: %s", res.body)
	}
	var r apiResponse
	if err := json.Unmarshal(res.body, &r); err != nil {
		t.Fatalf("not an API Gateway response: %s", res.body)
	}
	var body map[string]any
	_ = json.Unmarshal([]byte(r.Body), &body)
	return r, body
}

// v2 builds an HTTP API v2 request event.
func v2(path, token, body string) []byte {
	ev := map[string]any{
		"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
		"headers": map[string]string{"content-type": "application/json", "authorization": "Bearer " + token},
		"requestContext": map[string]any{"http": map[string]string{"method": "POST", "path": path, "sourceIp": "198.51.100.1"},
			"requestId": "r-1", "stage": "$default"},
		"body": body, "isBase64Encoded": false,
	}
	b, _ := json.Marshal(ev)
	return b
}

// TestLambdaMode feeds the events/ samples and real follow-ups to the built
// binary in Lambda mode: API Gateway v2 and v1, SQS, EventBridge and garbage.
func TestLambdaMode(t *testing.T) {
	endpoint := dynamoEndpoint(t)
	table := uniqueTable()
	ctx := context.Background()
	ddb := dynamotest.Client(endpoint, nil)
	if err := dynamostore.EnsureTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	sqsSrv := &fakeSQS{}
	sqsHTTP := httptest.NewServer(sqsSrv)
	defer sqsHTTP.Close()
	kmsSrv := kmstest.NewServer() // the KMS that wraps the tenants' data keys
	defer kmsSrv.Close()

	rt := newRuntimeAPI(t)
	startLambda(t, rt,
		"SWITCHBOARD_TABLE="+table,
		"AWS_ENDPOINT_URL_DYNAMODB="+endpoint,
		"AWS_ENDPOINT_URL_SQS="+sqsHTTP.URL,
		"SWITCHBOARD_WORK_QUEUE_URL="+sqsHTTP.URL+"/123456789012/switchboard-work",
		"SWITCHBOARD_OPERATOR_KEY=sbop_sample-operator-key-not-a-secret",
		"AWS_ENDPOINT_URL_KMS="+kmsSrv.URL,
		"SWITCHBOARD_KMS_KEY_ID=alias/switchboard-test",
		// The scheduled sweeps below query every outbox shard: a few (see buildOn).
		"SWITCHBOARD_OUTBOX_SHARDS="+testOutboxShards,
	)

	for _, name := range []string{"apigw-v2-healthz.json", "apigw-v1-healthz.json"} {
		r, body := decodeAPI(t, rt.invoke(t, sample(t, name)))
		if r.StatusCode != 200 || body["status"] != "ok" {
			t.Fatalf("%s: %+v", name, r)
		}
	}

	// Onboard through HTTP API v2 (the sample), then replay it through REST v1 semantics.
	r, on := decodeAPI(t, rt.invoke(t, sample(t, "apigw-v2-command.json")))
	if r.StatusCode != 200 || !strings.HasPrefix(str(on["apiKey"]), "sbk_") {
		t.Fatalf("onboard via v2: %+v", r)
	}
	r, v1 := decodeAPI(t, rt.invoke(t, sample(t, "apigw-v1-command.json")))
	if r.StatusCode != 200 || str(v1["tenantId"]) == "" {
		t.Fatalf("onboard via v1: %+v", r)
	}
	key := str(on["apiKey"])
	// The answers kept for replay were sealed with a data key from KMS.
	if kmsSrv.Calls(kmstest.OpGenerateDataKey) == 0 {
		t.Fatal("onboarding with an Idempotency-Key sealed nothing with KMS")
	}

	// The relay handed the provisioning work to SQS; the tenant waits for it.
	var bodies []string
	eventually(t, 5*time.Second, "work sent to SQS", func() bool { bodies = append(bodies, sqsSrv.taken()...); return len(bodies) >= 2 })
	_, tenant := decodeAPI(t, rt.invoke(t, v2("/queries/get-tenant", key, `{}`)))
	if tenant["status"] != "provisioning" {
		t.Fatalf("before the work ran: %v", tenant)
	}

	// SQS delivers the work (plus an undecodable record): only that one fails.
	records := []map[string]any{}
	for i, b := range bodies {
		records = append(records, map[string]any{"messageId": fmt.Sprintf("m-%d", i), "body": b, "eventSource": "aws:sqs",
			"attributes": map[string]string{"ApproximateReceiveCount": "1"}})
	}
	records = append(records, map[string]any{"messageId": "m-bad", "body": "{not json", "eventSource": "aws:sqs"})
	batch, _ := json.Marshal(map[string]any{"Records": records})
	res := rt.invoke(t, batch)
	var failures struct {
		BatchItemFailures []struct{ ItemIdentifier string } `json:"batchItemFailures"`
	}
	if res.isErr || json.Unmarshal(res.body, &failures) != nil || len(failures.BatchItemFailures) != 1 || failures.BatchItemFailures[0].ItemIdentifier != "m-bad" {
		t.Fatalf("sqs answer: %s (err=%v)", res.body, res.isErr)
	}
	_, tenant = decodeAPI(t, rt.invoke(t, v2("/queries/get-tenant", key, `{}`)))
	if tenant["status"] != "active" {
		t.Fatalf("after the work ran: %v", tenant)
	}
	// Redelivery of the same work is harmless.
	if res := rt.invoke(t, batch); res.isErr || !strings.Contains(string(res.body), "m-bad") || strings.Contains(string(res.body), "m-0") {
		t.Fatalf("redelivery: %s", res.body)
	}

	// Scheduled jobs, both forms.
	for _, name := range []string{"eventbridge-scheduler-job.json", "eventbridge-scheduled-rule.json"} {
		if res := rt.invoke(t, sample(t, name)); res.isErr {
			t.Fatalf("%s: %s", name, res.body)
		}
	}
	// Unknown payloads fail the invocation with an error that names them.
	for name, want := range map[string]string{"unknown-s3.json": "aws:s3", "unknown-garbage.txt": "unsupported"} {
		res := rt.invoke(t, sample(t, name))
		if !res.isErr || !strings.Contains(string(res.body), want) {
			t.Fatalf("%s: want an error naming %q, got %s", name, want, res.body)
		}
	}
	// Bad input through API Gateway is a 4xx problem, never a 5xx.
	r, prob := decodeAPI(t, rt.invoke(t, v2("/commands/create-scope", key, `{"parentScopeId":1}`)))
	if r.StatusCode != 400 || prob["code"] != "errors.validation.failed" {
		t.Fatalf("bad input: %+v", r)
	}
}

// TestLambdaInitMakesNoNetworkCall: the first thing the binary does is poll
// the Runtime API; it opens no connection to DynamoDB or SQS at init.
func TestLambdaInitMakesNoNetworkCall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	rt := newRuntimeAPI(t)
	startLambda(t, rt, "AWS_ENDPOINT_URL=http://"+ln.Addr().String(), "SWITCHBOARD_WORK_QUEUE_URL=http://"+ln.Addr().String()+"/q",
		"SWITCHBOARD_KMS_KEY_ID=alias/switchboard-test")
	select {
	case <-rt.firstNext:
	case <-time.After(10 * time.Second):
		t.Fatal("the binary never polled the Runtime API")
	}
	time.Sleep(100 * time.Millisecond)
	if n := conns.Load(); n != 0 {
		t.Fatalf("%d connections to AWS endpoints during init", n)
	}
}

// BenchmarkLambdaInit measures exec to the first Runtime API poll (budget:
// 50 ms); ns/op is that time alone.
func BenchmarkLambdaInit(b *testing.B) {
	bin := binary(b)
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		rt := newRuntimeAPI(b)
		cmd := exec.Command(bin)
		cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + rt.addr(), "AWS_REGION=eu-central-1", "SWITCHBOARD_TABLE=t", "SWITCHBOARD_KMS_KEY_ID=k", "SWITCHBOARD_PUBLIC_URL=https://api.example.com", "HOME=" + b.TempDir()}
		b.StartTimer()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-rt.firstNext:
			b.StopTimer()
		case <-time.After(10 * time.Second):
			b.Fatal("no poll")
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}
