package sqstransport_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/kernel/work/sqstransport"
)

const queueURL = "https://sqs.eu-central-1.amazonaws.com/123456789012/switchboard-work"

var now = time.Date(2025, 11, 3, 9, 15, 0, 0, time.UTC)

// wireEntry is one SendMessageBatch request entry in the AWS JSON 1.0 protocol.
type wireEntry struct {
	ID                string `json:"Id"`
	MessageBody       string `json:"MessageBody"`
	DelaySeconds      int32  `json:"DelaySeconds"`
	MessageAttributes map[string]struct {
		DataType    string `json:"DataType"`
		StringValue string `json:"StringValue"`
	} `json:"MessageAttributes"`
	MessageDeduplicationID *string `json:"MessageDeduplicationId"`
	MessageGroupID         *string `json:"MessageGroupId"`
}

type wireRequest struct {
	QueueURL string      `json:"QueueUrl"`
	Entries  []wireEntry `json:"Entries"`
}

// fakeSQS speaks the SQS JSON protocol for SendMessageBatch. fail decides,
// per request number (from 1) and item, whether SQS rejects the entry.
type fakeSQS struct {
	t    *testing.T
	fail func(request int, it work.Item) bool
	// callError, when set, answers every request with this error type (HTTP 400).
	callError string
	// callErrorOn, when set, answers the requests (from 1) it names with an error type.
	callErrorOn func(request int) string
	// senderFault marks the rejected entries as the sender's fault.
	senderFault bool
	// queueError, when set, answers the requests to the queues it names with
	// an error type.
	queueError func(queueURL string) string

	mu       sync.Mutex
	requests []wireRequest
}

func (f *fakeSQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if got := r.Header.Get("X-Amz-Target"); got != "AmazonSQS.SendMessageBatch" {
		t.Errorf("X-Amz-Target = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-amz-json-1.0" {
		t.Errorf("Content-Type = %q", got)
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTEST/") {
		t.Errorf("request not signed with the static credentials: %q", r.Header.Get("Authorization"))
	}
	var req wireRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		t.Errorf("decode request: %v", err)
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	n := len(f.requests)
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	callError := f.callError
	if f.callErrorOn != nil {
		callError = f.callErrorOn(n)
	}
	if f.queueError != nil && callError == "" {
		callError = f.queueError(req.QueueURL)
	}
	if callError != "" {
		w.Header().Set("X-Amzn-ErrorType", callError)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"com.amazonaws.sqs#%s","message":"call failed: %s"}`, callError, callError)
		return
	}
	type ok struct{ Id, MessageId, MD5OfMessageBody string }
	type failed struct {
		Id, Code, Message string
		SenderFault       bool
	}
	resp := struct {
		Successful []ok     `json:"Successful"`
		Failed     []failed `json:"Failed"`
	}{Successful: []ok{}, Failed: []failed{}}
	for _, e := range req.Entries {
		var it work.Item
		if err := json.Unmarshal([]byte(e.MessageBody), &it); err != nil {
			t.Errorf("entry body %q: %v", e.MessageBody, err)
		}
		if f.fail != nil && f.fail(n, it) {
			resp.Failed = append(resp.Failed, failed{Id: e.ID, Code: "InternalError", Message: "try again", SenderFault: f.senderFault})
			continue
		}
		sum := md5.Sum([]byte(e.MessageBody))
		resp.Successful = append(resp.Successful, ok{Id: e.ID, MessageId: "m-" + it.ID, MD5OfMessageBody: hex.EncodeToString(sum[:])})
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// batches returns the item ids of every request, in order.
func (f *fakeSQS) batches(t *testing.T) [][]string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]string
	for _, r := range f.requests {
		var ids []string
		for _, e := range r.Entries {
			var it work.Item
			_ = json.Unmarshal([]byte(e.MessageBody), &it)
			ids = append(ids, it.ID)
		}
		out = append(out, ids)
	}
	return out
}

func newTransport(t *testing.T, f *fakeSQS) *sqstransport.Transport {
	t.Helper()
	f.t = t
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := sqs.New(sqs.Options{
		Region:           "eu-central-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
	})
	tr := sqstransport.New(client, queueURL)
	tr.Clock = clock.NewFixed(now)
	return tr
}

func items(n int) []work.Item {
	out := make([]work.Item, n)
	for i := range out {
		out[i] = work.Item{
			ID:       fmt.Sprintf("wrk_%02d", i),
			TenantID: "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R",
			Type:     "messaging.dispatch",
			Payload:  json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
			DueAt:    now.Add(-time.Second),
			Invocation: invocation.Meta{
				InvocationID: "inv_01K94G2D7Y5B8C1D4E7F0G3H6J", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Principal: "system",
			},
		}
	}
	return out
}

// mustSend sends items and fails the test unless every result is nil.
func mustSend(t *testing.T, tr *sqstransport.Transport, its []work.Item) {
	t.Helper()
	results := tr.Send(context.Background(), its)
	if len(results) != len(its) {
		t.Fatalf("%d results for %d items", len(results), len(its))
	}
	for i, err := range results {
		if err != nil {
			t.Fatalf("Send: item %s: %v", its[i].ID, err)
		}
	}
}

func TestSendChunksAndEncodes(t *testing.T) {
	f := &fakeSQS{}
	tr := newTransport(t, f)
	if !tr.Durable() {
		t.Error("an SQS transport is durable")
	}
	its := items(23)
	its[0].DueAt = now.Add(90*time.Second + 500*time.Millisecond) // -> 91
	its[1].DueAt = now.Add(2 * time.Hour)                         // -> 900
	its[2].DueAt = time.Time{}                                    // -> 0
	its[3].DueAt = now.Add(900 * time.Second)                     // -> 900
	its[4].DueAt = now.Add(time.Millisecond)                      // -> 1
	mustSend(t, tr, its)
	if tr.MaxDelay() != 900*time.Second {
		t.Errorf("MaxDelay = %v, want 900 s", tr.MaxDelay())
	}
	if len(f.requests) != 3 {
		t.Fatalf("%d requests, want 3", len(f.requests))
	}
	var sizes []int
	var got []work.Item
	for _, r := range f.requests {
		sizes = append(sizes, len(r.Entries))
		if r.QueueURL != queueURL {
			t.Errorf("QueueUrl = %q", r.QueueURL)
		}
		seen := map[string]bool{}
		for _, e := range r.Entries {
			if seen[e.ID] || e.ID == "" {
				t.Errorf("entry id %q empty or repeated in a batch", e.ID)
			}
			seen[e.ID] = true
			if a := e.MessageAttributes["type"]; a.DataType != "String" || a.StringValue != "messaging.dispatch" {
				t.Errorf("type attribute = %+v", a)
			}
			if e.MessageDeduplicationID != nil || e.MessageGroupID != nil {
				t.Error("a standard queue gets no deduplication or group id")
			}
			var it work.Item
			if err := json.Unmarshal([]byte(e.MessageBody), &it); err != nil {
				t.Fatal(err)
			}
			got = append(got, it)
		}
	}
	if !reflect.DeepEqual(sizes, []int{10, 10, 3}) {
		t.Errorf("batch sizes = %v, want [10 10 3]", sizes)
	}
	if len(got) != len(its) {
		t.Fatalf("sent %d items", len(got))
	}
	for i := range its {
		want, g := its[i], got[i]
		if g.ID != want.ID || g.Type != want.Type || g.TenantID != want.TenantID || string(g.Payload) != string(want.Payload) ||
			!g.DueAt.Equal(want.DueAt) || g.Invocation != want.Invocation {
			t.Errorf("item %d = %+v, want %+v", i, g, want)
		}
	}
	var delays []int32
	for _, e := range f.requests[0].Entries[:6] {
		delays = append(delays, e.DelaySeconds)
	}
	if want := []int32{91, 900, 0, 900, 1, 0}; !reflect.DeepEqual(delays, want) {
		t.Errorf("delays = %v, want %v", delays, want)
	}
}

func TestSendRetriesOnlyFailedEntriesOnce(t *testing.T) {
	f := &fakeSQS{fail: func(req int, it work.Item) bool {
		// The first attempt of each batch rejects two items.
		return (req == 1 && (it.ID == "wrk_03" || it.ID == "wrk_07")) || (req == 3 && it.ID == "wrk_11")
	}}
	tr := newTransport(t, f)
	mustSend(t, tr, items(12))
	want := [][]string{
		{"wrk_00", "wrk_01", "wrk_02", "wrk_03", "wrk_04", "wrk_05", "wrk_06", "wrk_07", "wrk_08", "wrk_09"},
		{"wrk_03", "wrk_07"},
		{"wrk_10", "wrk_11"},
		{"wrk_11"},
	}
	if got := f.batches(t); !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
}

func TestSendFailsNamingItemsThatFailedTwice(t *testing.T) {
	f := &fakeSQS{fail: func(_ int, it work.Item) bool { return it.ID == "wrk_05" || it.ID == "wrk_12" }}
	tr := newTransport(t, f)
	results := tr.Send(context.Background(), items(15))
	if len(results) != 15 {
		t.Fatalf("%d results for 15 items", len(results))
	}
	for i, err := range results {
		id := fmt.Sprintf("wrk_%02d", i)
		if id != "wrk_05" && id != "wrk_12" {
			if err != nil {
				t.Errorf("item %s: %v, want nil", id, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("item %s: nil, want its failure", id)
			continue
		}
		for _, s := range []string{queueURL, id, "InternalError", "try again"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("item %s: err = %q, want it to contain %q", id, err, s)
			}
		}
	}
	// Every batch was still tried, each failed entry exactly twice.
	want := [][]string{
		{"wrk_00", "wrk_01", "wrk_02", "wrk_03", "wrk_04", "wrk_05", "wrk_06", "wrk_07", "wrk_08", "wrk_09"},
		{"wrk_05"},
		{"wrk_10", "wrk_11", "wrk_12", "wrk_13", "wrk_14"},
		{"wrk_12"},
	}
	if got := f.batches(t); !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
}

func TestSendCallError(t *testing.T) {
	f := &fakeSQS{callError: "QueueDoesNotExist"}
	tr := newTransport(t, f)
	results := tr.Send(context.Background(), items(25))
	for i, err := range results {
		if err == nil || !strings.Contains(err.Error(), "QueueDoesNotExist") || !strings.Contains(err.Error(), "wrk_00") {
			t.Fatalf("item %d: err = %v, want the SQS error naming the batch", i, err)
		}
		if i >= 10 && !strings.Contains(err.Error(), "not tried") {
			t.Errorf("item %d: err = %v, want it to say it was not tried", i, err)
		}
	}
	if len(f.requests) != 1 {
		t.Errorf("%d requests, want to stop after the failed call", len(f.requests))
	}
}

func TestSendSplitsLargeBatches(t *testing.T) {
	f := &fakeSQS{}
	tr := newTransport(t, f)
	its := items(4)
	big := json.RawMessage(`{"text":"` + strings.Repeat("x", 100*1024) + `"}`)
	for i := range its {
		its[i].Payload = big
	}
	mustSend(t, tr, its)
	if got := f.batches(t); !reflect.DeepEqual(got, [][]string{{"wrk_00", "wrk_01"}, {"wrk_02", "wrk_03"}}) {
		t.Errorf("requests = %v, want two batches under 256 KiB", got)
	}
}

func TestSendNothing(t *testing.T) {
	f := &fakeSQS{}
	tr := newTransport(t, f)
	if results := tr.Send(context.Background(), nil); len(results) != 0 || len(f.requests) != 0 {
		t.Errorf("results %v, %d requests", results, len(f.requests))
	}
}

func TestSendTooLargeItemFailsAloneWithoutACall(t *testing.T) {
	f := &fakeSQS{}
	tr := newTransport(t, f)
	its := items(13)
	its[4].Payload = json.RawMessage(`{"text":"` + strings.Repeat("x", sqstransport.MaxMessageBytes) + `"}`)
	results := tr.Send(context.Background(), its)
	for i, err := range results {
		if i == 4 {
			if !errors.Is(err, sqstransport.ErrTooLarge) || !strings.Contains(err.Error(), "wrk_04") {
				t.Errorf("item 4: err = %v, want ErrTooLarge naming it", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("item %d: %v, want nil", i, err)
		}
	}
	want := [][]string{
		{"wrk_00", "wrk_01", "wrk_02", "wrk_03", "wrk_05", "wrk_06", "wrk_07", "wrk_08", "wrk_09", "wrk_10"},
		{"wrk_11", "wrk_12"},
	}
	if got := f.batches(t); !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %v, want %v (the large item never sent)", got, want)
	}
}

func TestSendSplitsBatchesByMessageSize(t *testing.T) {
	f := &fakeSQS{}
	tr := newTransport(t, f)
	its := items(3)
	// Fill item 1 up to about 200 KiB: it cannot share a batch with item 0 + 2 beyond the limit.
	its[1].Payload = json.RawMessage(`{"text":"` + strings.Repeat("x", 200*1024) + `"}`)
	its[2].Payload = json.RawMessage(`{"text":"` + strings.Repeat("y", 100*1024) + `"}`)
	mustSend(t, tr, its)
	if got := f.batches(t); !reflect.DeepEqual(got, [][]string{{"wrk_00", "wrk_01"}, {"wrk_02"}}) {
		t.Errorf("requests = %v", got)
	}
}

func TestSendSenderFaultIsNotRetried(t *testing.T) {
	f := &fakeSQS{senderFault: true, fail: func(_ int, it work.Item) bool { return it.ID == "wrk_01" }}
	tr := newTransport(t, f)
	results := tr.Send(context.Background(), items(3))
	if results[0] != nil || results[2] != nil || results[1] == nil || !strings.Contains(results[1].Error(), "wrk_01") {
		t.Fatalf("results = %v, want only wrk_01 failed", results)
	}
	if got := f.batches(t); len(got) != 1 {
		t.Errorf("requests = %v, want no retry of a sender fault", got)
	}
}

func TestSendBatchOnlyCallErrorTriesLaterBatches(t *testing.T) {
	f := &fakeSQS{callErrorOn: func(n int) string {
		if n == 1 {
			return "BatchRequestTooLong"
		}
		return ""
	}}
	tr := newTransport(t, f)
	results := tr.Send(context.Background(), items(15))
	for i, err := range results {
		if i < 10 {
			if err == nil || !strings.Contains(err.Error(), "BatchRequestTooLong") {
				t.Errorf("item %d: err = %v, want the batch's error", i, err)
			}
		} else if err != nil {
			t.Errorf("item %d: %v, want nil (a later batch is still sent)", i, err)
		}
	}
	if len(f.requests) != 2 {
		t.Errorf("%d requests, want 2", len(f.requests))
	}
}

func TestSendRetryCallFailureFailsOnlyTheRetriedEntries(t *testing.T) {
	f := &fakeSQS{
		fail: func(req int, it work.Item) bool { return req == 1 && it.ID == "wrk_02" },
		callErrorOn: func(n int) string {
			if n == 2 {
				return "InternalError"
			}
			return ""
		},
	}
	tr := newTransport(t, f)
	results := tr.Send(context.Background(), items(12))
	for i, err := range results {
		if (err != nil) != (i == 2) {
			t.Errorf("item %d: err = %v", i, err)
		}
	}
	if got := f.batches(t); len(got) != 3 {
		t.Errorf("requests = %v, want batch, retry, next batch", got)
	}
}

func TestSendEncodeFailureFailsAlone(t *testing.T) {
	f := &fakeSQS{}
	tr := newTransport(t, f)
	its := items(3)
	its[1].Payload = json.RawMessage(`{not json`)
	results := tr.Send(context.Background(), its)
	if results[0] != nil || results[2] != nil || results[1] == nil || !strings.Contains(results[1].Error(), "wrk_01") {
		t.Fatalf("results = %v, want only wrk_01 failed", results)
	}
	if got := f.batches(t); !reflect.DeepEqual(got, [][]string{{"wrk_00", "wrk_02"}}) {
		t.Errorf("requests = %v", got)
	}
}

// A payload of eventstore.MaxOutboxPayload bytes full of characters that
// json.Marshal would HTML-escape (<, >, & become \u003c...: six bytes each)
// still fits one message: the encoding keeps them as they are.
func TestSendDoesNotHTMLEscapeThePayload(t *testing.T) {
	f := &fakeSQS{}
	tr := newTransport(t, f)
	its := items(1)
	fill := strings.Repeat("<&>", eventstore.MaxOutboxPayload)[:eventstore.MaxOutboxPayload-2]
	its[0].Payload = json.RawMessage(`"` + fill + `"`)
	if len(its[0].Payload) != eventstore.MaxOutboxPayload || !json.Valid(its[0].Payload) {
		t.Fatalf("payload of %d bytes, want a valid JSON string of %d", len(its[0].Payload), eventstore.MaxOutboxPayload)
	}
	mustSend(t, tr, its)
	f.mu.Lock()
	body := f.requests[0].Entries[0].MessageBody
	f.mu.Unlock()
	if strings.Contains(body, `\u003c`) || !strings.Contains(body, "<&>") || strings.HasSuffix(body, "\n") {
		t.Errorf("message body escaped or with a trailing newline (%d bytes)", len(body))
	}
	var got work.Item
	if err := json.Unmarshal([]byte(body), &got); err != nil || string(got.Payload) != string(its[0].Payload) {
		t.Errorf("body does not decode to the item (err %v)", err)
	}
}

// Queues per tenant.

const (
	siloedTenant = "tnt_01K94G2D9E4H7J2K5M8N1P3SIL"
	pooledTenant = "tnt_01K94G2D9E4H7J2K5M8N1P3POO"
	paramPooled  = "tnt_01K94G2D9E4H7J2K5M8N1P3PAR"
	brokenTenant = "tnt_01K94G2D9E4H7J2K5M8N1P3BRK"
	siloedQueue  = "https://sqs.eu-central-1.amazonaws.com/123456789012/switchboard-work-siloed"
	siloedKey    = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// resolver is a tenantres.Resolver over a map that counts its lookups and
// fails for brokenTenant.
type resolver struct {
	mu      sync.Mutex
	m       map[string]tenantres.Resources
	lookups map[string]int
}

func newResolver() *resolver {
	return &resolver{lookups: map[string]int{}, m: map[string]tenantres.Resources{
		siloedTenant: {Found: true, Tier: tenantres.TierSiloed, WorkQueueURL: siloedQueue, KMSKeyARN: siloedKey},
		paramPooled:  {Found: true, Tier: tenantres.TierPooled},
	}}
}

func (r *resolver) Resources(_ context.Context, tenantID string) (tenantres.Resources, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups[tenantID]++
	if tenantID == brokenTenant {
		return tenantres.Resources{}, errors.New("ssm unavailable")
	}
	return r.m[tenantID], nil
}

// tenantItems returns n items per tenant, interleaved: tenants[i%len].
func tenantItems(n int, tenants ...string) []work.Item {
	its := items(n)
	for i := range its {
		its[i].TenantID = tenants[i%len(tenants)]
	}
	return its
}

// sentTo returns, per queue URL, the ids of the items sent there, and the
// batch sizes per queue.
func (f *fakeSQS) sentTo(t *testing.T) (map[string][]string, map[string][]int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	ids, sizes := map[string][]string{}, map[string][]int{}
	for _, r := range f.requests {
		sizes[r.QueueURL] = append(sizes[r.QueueURL], len(r.Entries))
		for _, e := range r.Entries {
			var it work.Item
			_ = json.Unmarshal([]byte(e.MessageBody), &it)
			ids[r.QueueURL] = append(ids[r.QueueURL], it.ID)
		}
	}
	return ids, sizes
}

func idsOf(its []work.Item, keep func(work.Item) bool) []string {
	var out []string
	for _, it := range its {
		if keep(it) {
			out = append(out, it.ID)
		}
	}
	return out
}

// A siloed tenant's items go to its own queue, everyone else's to the shared
// queue; batches are per queue (at most 10 each), the resolver is asked once
// per tenant, and a tenant the resolver cannot tell about uses the shared queue.
func TestSendRoutesItemsToTheirTenantsQueue(t *testing.T) {
	f := &fakeSQS{}
	tr := newTransport(t, f)
	r := newResolver()
	tr.Resources = r
	its := tenantItems(30, siloedTenant, pooledTenant, paramPooled, brokenTenant, "")
	mustSend(t, tr, its)

	got, sizes := f.sentTo(t)
	wantSiloed := idsOf(its, func(it work.Item) bool { return it.TenantID == siloedTenant })
	wantShared := idsOf(its, func(it work.Item) bool { return it.TenantID != siloedTenant })
	if !reflect.DeepEqual(got[siloedQueue], wantSiloed) || !reflect.DeepEqual(got[queueURL], wantShared) || len(got) != 2 {
		t.Fatalf("sent %v\nwant siloed %v, shared %v", got, wantSiloed, wantShared)
	}
	if !reflect.DeepEqual(sizes[siloedQueue], []int{6}) || !reflect.DeepEqual(sizes[queueURL], []int{10, 10, 4}) {
		t.Errorf("batch sizes %v, want one batch of 6 to the tenant queue and 10, 10, 4 to the shared queue", sizes)
	}
	want := map[string]int{siloedTenant: 1, pooledTenant: 1, paramPooled: 1, brokenTenant: 1}
	if !reflect.DeepEqual(r.lookups, want) {
		t.Errorf("lookups %v, want one per tenant and none without a tenant", r.lookups)
	}
	// The bodies are the items, wherever they go.
	f.mu.Lock()
	body := f.requests[0].Entries[0].MessageBody
	f.mu.Unlock()
	var it work.Item
	if err := json.Unmarshal([]byte(body), &it); err != nil || it.ID != its[0].ID || it.TenantID != siloedTenant {
		t.Errorf("first body %s (%v)", body, err)
	}
}

// Without a resolver every item goes to the shared queue.
func TestSendWithoutResolverUsesTheSharedQueue(t *testing.T) {
	f := &fakeSQS{}
	tr := newTransport(t, f)
	mustSend(t, tr, tenantItems(12, siloedTenant, pooledTenant))
	got, _ := f.sentTo(t)
	if len(got) != 1 || len(got[queueURL]) != 12 {
		t.Fatalf("sent %v, want all 12 to the shared queue", got)
	}
}

// A tenant queue that does not exist (its resources were removed while this
// instance still has the parameter cached): its items go to the shared queue.
func TestSendFallsBackToTheSharedQueueWhenTheTenantQueueIsGone(t *testing.T) {
	f := &fakeSQS{queueError: func(q string) string {
		if q == siloedQueue {
			return "QueueDoesNotExist"
		}
		return ""
	}}
	tr := newTransport(t, f)
	tr.Resources = newResolver()
	its := tenantItems(24, siloedTenant, pooledTenant)
	mustSend(t, tr, its)
	got, sizes := f.sentTo(t)
	if len(got[siloedQueue]) != 10 || !reflect.DeepEqual(sizes[siloedQueue], []int{10}) {
		t.Errorf("tenant queue got %v (batches %v), want one refused call of 10", got[siloedQueue], sizes[siloedQueue])
	}
	shared := append([]string(nil), got[queueURL]...)
	slices.Sort(shared)
	if want := idsOf(its, func(work.Item) bool { return true }); !reflect.DeepEqual(shared, want) {
		t.Fatalf("shared queue got %v, want every item once: %v", shared, want)
	}
}

// A tenant queue that fails (access denied) fails that tenant's items only:
// the shared queue's items are still sent.
func TestSendTenantQueueFailureFailsOnlyItsItems(t *testing.T) {
	f := &fakeSQS{queueError: func(q string) string {
		if q == siloedQueue {
			return "AccessDenied"
		}
		return ""
	}}
	tr := newTransport(t, f)
	tr.Resources = newResolver()
	its := tenantItems(40, siloedTenant, pooledTenant)
	results := tr.Send(context.Background(), its)
	for i, err := range results {
		if its[i].TenantID == siloedTenant {
			if err == nil || !strings.Contains(err.Error(), siloedQueue) || !strings.Contains(err.Error(), "AccessDenied") {
				t.Errorf("item %d of the siloed tenant: err = %v, want the tenant queue's error", i, err)
			}
		} else if err != nil {
			t.Errorf("item %d of the pooled tenant: %v", i, err)
		}
	}
	_, sizes := f.sentTo(t)
	if !reflect.DeepEqual(sizes[siloedQueue], []int{10}) || !reflect.DeepEqual(sizes[queueURL], []int{10, 10}) {
		t.Errorf("calls %v, want one failed call to the tenant queue (the rest not tried) and two to the shared queue", sizes)
	}
}
