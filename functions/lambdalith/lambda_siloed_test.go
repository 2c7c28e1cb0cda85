package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets/kmstest"
)

// fakeSSM answers GetParameter from a map (AWS JSON 1.1), ParameterNotFound
// for the rest.
type fakeSSM struct {
	mu     sync.Mutex
	params map[string]string
}

func (f *fakeSSM) set(name, value string) { f.mu.Lock(); f.params[name] = value; f.mu.Unlock() }

func (f *fakeSSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ Name string }
	if r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" || json.NewDecoder(r.Body).Decode(&in) != nil {
		http.Error(w, `{"__type":"InvalidAction"}`, 400)
		return
	}
	f.mu.Lock()
	v, ok := f.params[in.Name]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"ParameterNotFound","message":""}`)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{"Name": in.Name, "Type": "String", "Value": v, "Version": 1}})
}

// sqsBatch is an SQS event of bodies.
func sqsBatch(items []queuedBody) []byte {
	var records []map[string]any
	for i, it := range items {
		records = append(records, map[string]any{"messageId": fmt.Sprintf("m-%d", i), "body": it.body, "eventSource": "aws:sqs",
			"attributes": map[string]string{"ApproximateReceiveCount": "1"}})
	}
	b, _ := json.Marshal(map[string]any{"Records": records})
	return b
}

// TestLambdaSiloedTenant (issue 8 item 2) through the built binary in Lambda
// mode: a siloed tenant onboarded through the API stays provisioning while
// its SSM parameter is missing (its work meanwhile on the shared queue),
// becomes active once the parameter exists (the deploy of its manifest
// entry), and its work then goes to its own queue; a pooled tenant is active
// at once.
func TestLambdaSiloedTenant(t *testing.T) {
	endpoint := dynamoEndpoint(t)
	table := uniqueTable()
	if err := dynamostore.EnsureTable(context.Background(), dynamotest.Client(endpoint, nil), table); err != nil {
		t.Fatal(err)
	}
	queues := &fakeSQS{}
	sqsHTTP := httptest.NewServer(queues)
	defer sqsHTTP.Close()
	ssm := &fakeSSM{params: map[string]string{}}
	ssmHTTP := httptest.NewServer(ssm)
	defer ssmHTTP.Close()
	kmsSrv := kmstest.NewServer()
	defer kmsSrv.Close()
	const operator = "sbop_siloed-test-operator-key"
	shared := sqsHTTP.URL + "/123456789012/switchboard-work"
	env := []string{
		"SWITCHBOARD_TABLE=" + table, "AWS_ENDPOINT_URL_DYNAMODB=" + endpoint,
		"AWS_ENDPOINT_URL_SQS=" + sqsHTTP.URL, "SWITCHBOARD_WORK_QUEUE_URL=" + shared,
		"AWS_ENDPOINT_URL_SSM=" + ssmHTTP.URL, "SWITCHBOARD_TENANT_RESOURCES_PATH=/switchboard/tenants/",
		"AWS_ENDPOINT_URL_KMS=" + kmsSrv.URL, "SWITCHBOARD_KMS_KEY_ID=alias/switchboard-test",
		"SWITCHBOARD_OPERATOR_KEY=" + operator, "SWITCHBOARD_OUTBOX_SHARDS=" + testOutboxShards,
	}
	rt := newRuntimeAPI(t)
	lambda := startLambda(t, rt, env...)

	onboard := func(tier string) (tenantID, key string) {
		r, on := decodeAPI(t, rt.invoke(t, v2("/commands/onboard-tenant", operator, `{"name":"`+tier+`","tier":"`+tier+`"}`)))
		if r.StatusCode != 200 {
			t.Fatalf("onboard %s: %+v", tier, r)
		}
		return str(on["tenantId"]), str(on["apiKey"])
	}
	status := func(key string) string {
		_, tn := decodeAPI(t, rt.invoke(t, v2("/queries/get-tenant", key, `{}`)))
		return str(tn["status"])
	}
	// drain waits for work sent to the queues and takes it.
	drain := func(what string) []queuedBody {
		var items []queuedBody
		eventually(t, 5*time.Second, what, func() bool { items = append(items, queues.take()...); return len(items) > 0 })
		return items
	}
	pooledID, pooledKey := onboard("pooled")
	siloedID, siloedKey := onboard("siloed")
	items := drain("provisioning work on the shared queue")
	for _, it := range items {
		if it.queue != shared {
			t.Fatalf("work of a tenant without resources went to %s", it.queue)
		}
	}
	if res := rt.invoke(t, sqsBatch(items)); res.isErr || strings.Contains(string(res.body), "m-") {
		t.Fatalf("provisioning batch: %s", res.body)
	}
	if got := status(pooledKey); got != "active" {
		t.Fatalf("pooled tenant %s is %s", pooledID, got)
	}
	if got := status(siloedKey); got != "provisioning" {
		t.Fatalf("siloed tenant without resources is %s", got)
	}
	// The check is queued again, on the shared queue.
	recheck := drain("the siloed tenant's next check")
	if !strings.Contains(recheck[0].body, siloedID) || recheck[0].queue != shared {
		t.Fatalf("next check: %+v", recheck)
	}

	// The deploy creates its resources: its parameter names its queue and key.
	own := sqsHTTP.URL + "/123456789012/switchboard-" + siloedID + "-work"
	ssm.set("/switchboard/tenants/"+siloedID, `{"tier":"siloed","workQueueUrl":"`+own+`","kmsKeyArn":"arn:aws:kms:eu-central-1:123456789012:key/tenant-1"}`)
	// A new instance (the one above cached the answer "not found" for 30 s).
	_ = lambda.Process.Kill()
	rt = newRuntimeAPI(t)
	startLambda(t, rt, env...)
	if res := rt.invoke(t, sqsBatch(recheck)); res.isErr || strings.Contains(string(res.body), "m-") {
		t.Fatalf("check batch: %s", res.body)
	}
	if got := status(siloedKey); got != "active" {
		t.Fatalf("siloed tenant with resources is %s", got)
	}

	// Its work now goes to its own queue; the pooled tenant's to the shared one.
	queues.take()
	for _, key := range []string{siloedKey, pooledKey} {
		r, _ := decodeAPI(t, rt.invoke(t, v2("/commands/create-subscription", key, `{"scopeId":"`+rootScope(t, rt, key)+`","url":"https://example.com/hook","eventTypes":["*"]}`)))
		if r.StatusCode != 200 {
			t.Fatalf("create-subscription: %+v", r)
		}
		r, _ = decodeAPI(t, rt.invoke(t, v2("/commands/create-channel", key, `{"scopeId":"`+rootScope(t, rt, key)+`","name":"sms","type":"sms","provider":"sandbox","from":"+15550000000"}`)))
		if r.StatusCode != 200 {
			t.Fatalf("create-channel: %+v", r)
		}
	}
	send := func(key string) {
		_, ch := decodeAPI(t, rt.invoke(t, v2("/queries/list-channels", key, `{}`)))
		id := str(ch["items"].([]any)[0].(map[string]any)["channelId"])
		r, _ := decodeAPI(t, rt.invoke(t, v2("/commands/send-message", key, `{"channelId":"`+id+`","to":"+15550100000","content":{"text":"hi"}}`)))
		if r.StatusCode != 202 {
			t.Fatalf("send-message: %+v", r)
		}
	}
	send(siloedKey)
	send(pooledKey)
	sent := drain("dispatch work")
	eventually(t, 5*time.Second, "both dispatch items", func() bool { sent = append(sent, queues.take()...); return len(sent) >= 2 })
	for _, it := range sent {
		switch {
		case strings.Contains(it.body, siloedID) && it.queue != own:
			t.Errorf("siloed tenant's work on %s, want its queue %s", it.queue, own)
		case strings.Contains(it.body, pooledID) && it.queue != shared:
			t.Errorf("pooled tenant's work on %s, want the shared queue", it.queue)
		}
	}
}

// rootScope is the caller's tenant's root scope.
func rootScope(t *testing.T, rt *runtimeAPI, key string) string {
	t.Helper()
	_, tn := decodeAPI(t, rt.invoke(t, v2("/queries/get-tenant", key, `{}`)))
	return str(tn["rootScopeId"])
}
