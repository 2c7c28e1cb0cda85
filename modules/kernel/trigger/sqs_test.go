package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// sqsEvent is the SQS event, records kept raw so tests can combine samples.
type sqsEvent struct {
	Records []map[string]any `json:"Records"`
}

func sqsSample(t *testing.T, name string) sqsEvent {
	t.Helper()
	var ev sqsEvent
	if err := json.Unmarshal(sample(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// withBody returns a copy of rec with another messageId and body.
func withBody(rec map[string]any, messageID string, it work.Item) map[string]any {
	out := make(map[string]any, len(rec))
	for k, v := range rec {
		out[k] = v
	}
	b, _ := json.Marshal(it)
	out["messageId"], out["body"] = messageID, string(b)
	return out
}

// handled records the items a work handler saw and their invocation context.
type handled struct {
	mu    sync.Mutex
	items map[string]work.Item
	ctxs  map[string]ctxSeen
}

func (h *handled) add(ctx context.Context, it work.Item) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.items == nil {
		h.items, h.ctxs = map[string]work.Item{}, map[string]ctxSeen{}
	}
	h.items[it.ID], h.ctxs[it.ID] = it, seenOf(ctx)
}

type batchResponse struct {
	BatchItemFailures []struct {
		ItemIdentifier string `json:"itemIdentifier"`
	} `json:"batchItemFailures"`
}

func failedIDs(t *testing.T, out []byte) []string {
	t.Helper()
	var resp batchResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func TestSQSBatchReportsOnlyFailedRecords(t *testing.T) {
	batch := sqsSample(t, "sqs-work-batch.json")        // provision-tenant (ok), dispatch-message (fails)
	undecodable := sqsSample(t, "sqs-undecodable.json") // dispatch-message of another tenant (ok), garbage
	panicking := withBody(batch.Records[0], "0d6f5a1e-panic", work.Item{
		ID: "wrk_01K94G5J3K6M9N2P5Q8R1S4T7V", TenantID: "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R", Type: "test.panic",
		Payload: json.RawMessage(`{}`),
	})
	ev := sqsEvent{Records: []map[string]any{batch.Records[0], batch.Records[1], undecodable.Records[0], undecodable.Records[1], panicking}}
	payload, _ := json.Marshal(ev)

	var h handled
	reg := work.NewRegistry()
	reg.Register("tenancy.provision-tenant", func(ctx context.Context, it work.Item) error { h.add(ctx, it); return nil })
	reg.Register("messaging.dispatch", func(ctx context.Context, it work.Item) error {
		h.add(ctx, it)
		if it.TenantID == "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R" && it.ID == "wrk_01K94G3F6C2D5E8G1H4J7K0M3N" {
			return errors.New("provider timeout")
		}
		return nil
	})
	reg.Register("test.panic", func(ctx context.Context, it work.Item) error { h.add(ctx, it); panic("nil map write") })

	r, logs := newRouter(t)
	r.Work = reg
	out, err := r.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("a batch with failed records must not fail the invocation: %v", err)
	}
	want := []string{
		"c80e8021-a70a-42c7-a470-796e1186f753", // handler error
		"f4a9d6b1-3c5e-4f70-9a8b-1d2c3e4f5a6b", // undecodable
		"0d6f5a1e-panic",                       // panic
	}
	if got := failedIDs(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("batchItemFailures = %v, want %v", got, want)
	}
	if len(h.items) != 4 {
		t.Errorf("handled %d items, want 4 (every decodable record)", len(h.items))
	}

	// The invocation context continues the cause; attempts add SQS receives.
	it := h.items["wrk_01K94G2DA8R6T3M1N0P5Q7V9XW"]
	if it.Attempt != 1 || string(it.Payload) != `{"tenantId":"tnt_01K94G2D9E4H7J2K5M8N1P3Q6R","tier":"pooled"}` {
		t.Errorf("item = %+v", it)
	}
	wantCtx := ctxSeen{
		InvocationID: "inv_01K94G2D7Y5B8C1D4E7F0G3H6J", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Trigger: "sqs", TenantID: "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R", Principal: "system",
	}
	if got := h.ctxs[it.ID]; got != wantCtx {
		t.Errorf("context = %+v, want %+v", got, wantCtx)
	}
	if got := h.items["wrk_01K94G3F6C2D5E8G1H4J7K0M3N"].Attempt; got != 4 {
		t.Errorf("attempt = %d, want 1 (outbox) + 3 (ApproximateReceiveCount)", got)
	}

	// One log line per record, each naming its messageId and carrying its invocation.
	perRecord := map[string]map[string]any{}
	for _, l := range logLines(t, logs) {
		if id, ok := l["messageId"].(string); ok {
			if _, dup := perRecord[id]; dup {
				t.Errorf("two log lines for record %s", id)
			}
			perRecord[id] = l
		}
	}
	if len(perRecord) != 5 {
		t.Fatalf("log lines for %d records, want 5: %s", len(perRecord), logs)
	}
	if l := perRecord["2e1424d4-f796-459a-8184-9c92662be6da"]; l["level"] != "INFO" || l["invocationId"] != "inv_01K94G2D7Y5B8C1D4E7F0G3H6J" || l["trigger"] != "sqs" {
		t.Errorf("success line = %v", l)
	}
	for _, id := range want {
		if l := perRecord[id]; l["level"] == "INFO" || l["error"] == nil && l["panic"] == nil {
			t.Errorf("failure line of %s = %v", id, l)
		}
	}
	if l := perRecord["f4a9d6b1-3c5e-4f70-9a8b-1d2c3e4f5a6b"]; !strings.Contains(l["error"].(string), "undecodable") {
		t.Errorf("undecodable line = %v", l)
	}
}

func TestSQSAllSucceed(t *testing.T) {
	reg := work.NewRegistry()
	ok := func(context.Context, work.Item) error { return nil }
	reg.Register("tenancy.provision-tenant", ok)
	reg.Register("messaging.dispatch", ok)
	r, _ := newRouter(t)
	r.Work = reg
	out, err := r.Invoke(context.Background(), sample(t, "sqs-work-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"batchItemFailures":[]}` {
		t.Errorf("response = %s, want an empty list", out)
	}
}

func TestSQSUnknownTypeAndMissingFields(t *testing.T) {
	base := sqsSample(t, "sqs-work-batch.json").Records[0]
	ev := sqsEvent{Records: []map[string]any{
		withBody(base, "m-unknown-type", work.Item{ID: "wrk_1", Type: "nobody.handles-this"}),
		withBody(base, "m-no-type", work.Item{ID: "wrk_2"}),
		withBody(base, "m-no-id", work.Item{Type: "tenancy.provision-tenant"}),
	}}
	payload, _ := json.Marshal(ev)
	reg := work.NewRegistry()
	reg.Register("tenancy.provision-tenant", func(context.Context, work.Item) error { return nil })
	r, _ := newRouter(t)
	r.Work = reg
	out, err := r.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := failedIDs(t, out), []string{"m-unknown-type", "m-no-type", "m-no-id"}; !reflect.DeepEqual(got, want) {
		t.Errorf("batchItemFailures = %v, want %v", got, want)
	}
}

func TestSQSNewInvocationWhenCauseUnknown(t *testing.T) {
	base := sqsSample(t, "sqs-work-batch.json").Records[0]
	ev := sqsEvent{Records: []map[string]any{withBody(base, "m1", work.Item{ID: "wrk_1", Type: "t", TenantID: "tnt_x"})}}
	payload, _ := json.Marshal(ev)
	var seen ctxSeen
	reg := work.NewRegistry()
	reg.Register("t", func(ctx context.Context, _ work.Item) error { seen = seenOf(ctx); return nil })
	r, _ := newRouter(t)
	r.Work = reg
	if _, err := r.Invoke(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	if !ids.Valid(ids.Invocation, seen.InvocationID) || len(seen.TraceID) != 32 || seen.Trigger != "sqs" || seen.TenantID != "tnt_x" {
		t.Errorf("context = %+v, want a new invocation and trace", seen)
	}
	if invocation.From(context.Background()).InvocationID != "" {
		t.Error("the router leaked context")
	}
}

func TestSQSNoTimeLeft(t *testing.T) {
	calls := 0
	reg := work.NewRegistry()
	reg.Register("tenancy.provision-tenant", func(context.Context, work.Item) error { calls++; return nil })
	reg.Register("messaging.dispatch", func(context.Context, work.Item) error { calls++; return nil })
	r, _ := newRouter(t)
	r.Work = reg
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := r.Invoke(ctx, sample(t, "sqs-work-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := failedIDs(t, out); len(got) != 2 || calls != 0 {
		t.Errorf("failures %v, calls %d: want every record left to SQS", got, calls)
	}
}
