package ebpublisher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/switchboard-dev/switchboard/events"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/trigger"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/kernel/work/ebpublisher"
)

const busName = "switchboard-integration"

// wireEntry is one PutEvents request entry in the AWS JSON 1.1 protocol.
type wireEntry struct {
	Source       *string  `json:"Source"`
	DetailType   *string  `json:"DetailType"`
	Detail       *string  `json:"Detail"`
	EventBusName *string  `json:"EventBusName"`
	Resources    []string `json:"Resources"`
	Time         *float64 `json:"Time"` // epoch seconds
	TraceHeader  *string  `json:"TraceHeader"`
	extra        []string // keys PutEvents entries do not have
}

type wireRequest struct {
	Entries    []wireEntry `json:"Entries"`
	EndpointID *string     `json:"EndpointId"`
}

// eventID is the id inside an entry's detail (the integration event's).
func (e wireEntry) eventID(t *testing.T) string {
	t.Helper()
	var ev work.IntegrationEvent
	if err := json.Unmarshal([]byte(aws.ToString(e.Detail)), &ev); err != nil {
		t.Fatalf("detail %q is not an integration event: %v", aws.ToString(e.Detail), err)
	}
	return ev.ID
}

// fakeEventBridge speaks the EventBridge JSON 1.1 protocol for PutEvents.
type fakeEventBridge struct {
	t *testing.T
	// reject decides, per request number (from 1) and event id, the error
	// code of an entry EventBridge rejects ("" accepts it).
	reject func(request int, eventID string) string
	// callError, when set, answers the requests (from 1) it names with an
	// error type and HTTP status.
	callError func(request int) (string, int)
	// answer, when set, replaces the answer to a request that did not fail.
	answer func(request int, req wireRequest) any

	mu       sync.Mutex
	requests []wireRequest
}

func (f *fakeEventBridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if got := r.Header.Get("X-Amz-Target"); got != "AWSEvents.PutEvents" {
		t.Errorf("X-Amz-Target = %q, want AWSEvents.PutEvents", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-amz-json-1.1" {
		t.Errorf("Content-Type = %q", got)
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(auth, "/events/aws4_request") {
		t.Errorf("request not signed with SigV4 for events with the static credentials: %q", auth)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		t.Errorf("%s %s, want POST /", r.Method, r.URL.Path)
	}
	var raw struct{ Entries []map[string]json.RawMessage }
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	if err := json.Unmarshal(body.Bytes(), &raw); err != nil {
		t.Errorf("decode request: %v", err)
	}
	var req wireRequest
	if err := json.Unmarshal(body.Bytes(), &req); err != nil {
		t.Errorf("decode request: %v", err)
	}
	for i, e := range raw.Entries {
		for k := range e {
			switch k {
			case "Source", "DetailType", "Detail", "EventBusName", "Resources", "Time", "TraceHeader":
			default:
				req.Entries[i].extra = append(req.Entries[i].extra, k)
			}
		}
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	n := len(f.requests)
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if f.callError != nil {
		if typ, status := f.callError(n); typ != "" {
			w.Header().Set("X-Amzn-ErrorType", typ)
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"__type":"%s","message":"call failed: %s"}`, typ, typ)
			return
		}
	}
	if f.answer != nil {
		_ = json.NewEncoder(w).Encode(f.answer(n, req))
		return
	}
	type result struct {
		EventID      string `json:"EventId,omitempty"`
		ErrorCode    string `json:"ErrorCode,omitempty"`
		ErrorMessage string `json:"ErrorMessage,omitempty"`
	}
	resp := struct {
		FailedEntryCount int      `json:"FailedEntryCount"`
		Entries          []result `json:"Entries"`
	}{Entries: []result{}}
	for i, e := range req.Entries {
		if f.reject != nil {
			if code := f.reject(n, e.eventID(t)); code != "" {
				resp.FailedEntryCount++
				resp.Entries = append(resp.Entries, result{ErrorCode: code, ErrorMessage: "entry failed: " + code})
				continue
			}
		}
		resp.Entries = append(resp.Entries, result{EventID: fmt.Sprintf("eb-%d-%d", n, i)})
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// batches returns the event ids of every request, in order.
func (f *fakeEventBridge) batches(t *testing.T) [][]string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]string
	for _, r := range f.requests {
		var ids []string
		for _, e := range r.Entries {
			ids = append(ids, e.eventID(t))
		}
		out = append(out, ids)
	}
	return out
}

func (f *fakeEventBridge) entries() []wireEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []wireEntry
	for _, r := range f.requests {
		out = append(out, r.Entries...)
	}
	return out
}

func newPublisher(t *testing.T, f *fakeEventBridge) *ebpublisher.EventBridge {
	t.Helper()
	f.t = t
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := eventbridge.New(eventbridge.Options{
		Region:           "eu-central-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
	})
	p := ebpublisher.New(client, busName)
	if p.BusName() != busName {
		t.Fatalf("BusName = %q", p.BusName())
	}
	return p
}

// readFile reads a file relative to the repository root.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// contractEvent is the contract's sample integration event of a type.
func contractEvent(t *testing.T, typ string) work.IntegrationEvent {
	t.Helper()
	var ev work.IntegrationEvent
	if err := json.Unmarshal(readFile(t, "events/contracts/samples/integration."+typ+".json"), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// eventsN makes n small integration events evt_00..evt_nn.
func eventsN(n int) []work.IntegrationEvent {
	out := make([]work.IntegrationEvent, n)
	for i := range out {
		out[i] = work.IntegrationEvent{
			ID: fmt.Sprintf("evt_%02d", i), Source: "switchboard.messaging", Type: "message.sent",
			TenantID: "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R", Time: time.Date(2025, 11, 4, 10, 0, 1, 0, time.UTC),
			Detail: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		}
	}
	return out
}

// mustPut puts evs and fails the test unless every result is nil.
func mustPut(t *testing.T, p *ebpublisher.EventBridge, evs []work.IntegrationEvent) {
	t.Helper()
	results := p.Put(context.Background(), evs)
	if len(results) != len(evs) {
		t.Fatalf("%d results for %d events", len(results), len(evs))
	}
	for i, err := range results {
		if err != nil {
			t.Fatalf("Put: event %s: %v", evs[i].ID, err)
		}
	}
}

func jsonEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: want: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// The entry of a message event: the bus, the module's source, the type as
// detail type, the integration event exactly as the contract's sample as
// detail (its id inside), no resources, the event's time.
func TestPutEncodesTheIntegrationEvent(t *testing.T) {
	f := &fakeEventBridge{}
	p := newPublisher(t, f)
	ev := contractEvent(t, "message.delivered")
	mustPut(t, p, []work.IntegrationEvent{ev})

	es := f.entries()
	if len(es) != 1 {
		t.Fatalf("%d entries sent, want 1", len(es))
	}
	e := es[0]
	if got := aws.ToString(e.EventBusName); got != busName {
		t.Errorf("EventBusName = %q, want %q", got, busName)
	}
	if got := aws.ToString(e.Source); got != "switchboard.messaging" {
		t.Errorf("Source = %q, want the event's source switchboard.messaging", got)
	}
	if got := aws.ToString(e.DetailType); got != "message.delivered" {
		t.Errorf("DetailType = %q, want the event type", got)
	}
	if e.Resources == nil || len(e.Resources) != 0 {
		t.Errorf("Resources = %#v, want an empty list", e.Resources)
	}
	if e.TraceHeader != nil || len(e.extra) > 0 {
		t.Errorf("unexpected fields: TraceHeader %v, %v", e.TraceHeader, e.extra)
	}
	want := float64(time.Date(2025, 11, 4, 10, 0, 1, 871_000_000, time.UTC).UnixMilli()) / 1000
	if e.Time == nil || math.Abs(*e.Time-want) > 0.0005 {
		t.Errorf("Time = %v, want %v (the event's time, epoch seconds)", e.Time, want)
	}
	detail := []byte(aws.ToString(e.Detail))
	jsonEqual(t, "Detail", detail, readFile(t, "events/contracts/samples/integration.message.delivered.json"))
	if err := events.Validate("integration-event", detail); err != nil {
		t.Errorf("Detail does not validate as an integration event: %v", err)
	}
	if err := events.Validate("message.delivered", detail); err != nil {
		t.Errorf("Detail does not validate as message.delivered: %v", err)
	}
	if e.eventID(t) != "evt_01K974YA2FPQPCKF7R7BE3VZK2" {
		t.Errorf("detail id %q, want the evt_ id consumers dedupe by", e.eventID(t))
	}
}

// Content is put as written: no HTML escaping of <, > and & (which would
// also grow the entry), the same bytes as the outbox payload.
func TestPutKeepsContentAsWritten(t *testing.T) {
	f := &fakeEventBridge{}
	p := newPublisher(t, f)
	ev := eventsN(1)[0]
	ev.Detail = json.RawMessage(`{"html":"<p>Tom & Jerry</p>"}`)
	mustPut(t, p, []work.IntegrationEvent{ev})
	entry, err := ebpublisher.Entry(busName, ev)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := eventstore.MarshalJSON(ev)
	if err != nil {
		t.Fatal(err)
	}
	sent := aws.ToString(f.entries()[0].Detail)
	if sent != string(payload) || aws.ToString(entry.Detail) != sent || !strings.Contains(sent, "<p>Tom & Jerry</p>") {
		t.Fatalf("detail %s, want the outbox payload %s", sent, payload)
	}
}

// An event without a source goes out under DefaultSource; one without a
// time has none (EventBridge uses the time of the put).
func TestPutDefaults(t *testing.T) {
	f := &fakeEventBridge{}
	p := newPublisher(t, f)
	ev := eventsN(1)[0]
	ev.Source, ev.Time = "", time.Time{}
	mustPut(t, p, []work.IntegrationEvent{ev})
	e := f.entries()[0]
	if aws.ToString(e.Source) != ebpublisher.DefaultSource || e.Time != nil {
		t.Fatalf("Source %q, Time %v; want %q and none", aws.ToString(e.Source), e.Time, ebpublisher.DefaultSource)
	}
}

// At most 10 entries per call, in order.
func TestPutBatchesOfTen(t *testing.T) {
	f := &fakeEventBridge{}
	p := newPublisher(t, f)
	evs := eventsN(23)
	mustPut(t, p, evs)
	got := f.batches(t)
	if len(got) != 3 || len(got[0]) != 10 || len(got[1]) != 10 || len(got[2]) != 3 {
		t.Fatalf("batches %v, want 10, 10 and 3 entries", got)
	}
	var flat []string
	for _, b := range got {
		flat = append(flat, b...)
	}
	for i, id := range flat {
		if id != evs[i].ID {
			t.Fatalf("entry %d is %s, want %s (in order)", i, id, evs[i].ID)
		}
	}
}

// Calls stay within 256 KiB of entries; an entry over the limit fails alone,
// without a call, and the others are put.
func TestPutBatchesBySizeAndRefusesTooLarge(t *testing.T) {
	f := &fakeEventBridge{}
	p := newPublisher(t, f)
	evs := eventsN(5)
	big := `{"text":"` + strings.Repeat("x", 100*1024) + `"}`
	for i := range evs {
		evs[i].Detail = json.RawMessage(big)
	}
	evs[2].Detail = json.RawMessage(`{"text":"` + strings.Repeat("y", ebpublisher.MaxEntryBytes) + `"}`)
	results := p.Put(context.Background(), evs)
	for i, err := range results {
		if i == 2 {
			if !errors.Is(err, ebpublisher.ErrTooLarge) || !strings.Contains(err.Error(), evs[2].ID) {
				t.Errorf("too large event: %v, want ErrTooLarge naming it", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("event %s: %v", evs[i].ID, err)
		}
	}
	got := f.batches(t)
	if want := [][]string{{"evt_00", "evt_01"}, {"evt_03", "evt_04"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		size := 0
		for _, e := range r.Entries {
			size += len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail)) + 14
		}
		if size > ebpublisher.MaxBatchBytes {
			t.Errorf("a call of %d bytes", size)
		}
	}
}

// FailedEntryCount: exactly the rejected entries fail, each naming its
// EventBridge error code; the others are put.
func TestPutPartialFailure(t *testing.T) {
	f := &fakeEventBridge{reject: func(_ int, id string) string {
		switch id {
		case "evt_03":
			return "ThrottlingException"
		case "evt_11":
			return "InternalFailure"
		}
		return ""
	}}
	p := newPublisher(t, f)
	evs := eventsN(12)
	results := p.Put(context.Background(), evs)
	for i, err := range results {
		switch evs[i].ID {
		case "evt_03", "evt_11":
			code := map[string]string{"evt_03": "ThrottlingException", "evt_11": "InternalFailure"}[evs[i].ID]
			if !errors.Is(err, ebpublisher.ErrRejected) || !strings.Contains(err.Error(), code) || !strings.Contains(err.Error(), evs[i].ID) {
				t.Errorf("%s: %v, want ErrRejected naming %s and the event", evs[i].ID, err, code)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v, want put", evs[i].ID, err)
			}
		}
	}
	if n := len(f.batches(t)); n != 2 {
		t.Errorf("%d calls, want 2 (no retry within Put: the work path retries)", n)
	}
}

// An answer that counts failures without naming them fails every event of
// its call (none can be taken as put).
func TestPutFailureCountWithoutEntries(t *testing.T) {
	f := &fakeEventBridge{answer: func(int, wireRequest) any {
		return map[string]any{"FailedEntryCount": 1, "Entries": []any{}}
	}}
	p := newPublisher(t, f)
	for i, err := range p.Put(context.Background(), eventsN(3)) {
		if !errors.Is(err, ebpublisher.ErrRejected) {
			t.Errorf("event %d: %v, want ErrRejected", i, err)
		}
	}
}

// A failed call fails its batch; the batches after it are not tried.
func TestPutCallFailure(t *testing.T) {
	for _, tc := range []struct {
		typ    string
		status int
	}{{"InternalException", 500}, {"AccessDeniedException", 400}, {"ResourceNotFoundException", 400}} {
		t.Run(tc.typ, func(t *testing.T) {
			f := &fakeEventBridge{callError: func(int) (string, int) { return tc.typ, tc.status }}
			p := newPublisher(t, f)
			evs := eventsN(15)
			results := p.Put(context.Background(), evs)
			for i, err := range results {
				if err == nil || !strings.Contains(err.Error(), tc.typ) {
					t.Fatalf("event %d: %v, want an error naming %s", i, err, tc.typ)
				}
				if i >= 10 && !strings.Contains(err.Error(), "not tried") {
					t.Errorf("event %d of the second batch: %v, want 'not tried'", i, err)
				}
			}
			if n := len(f.batches(t)); n != 1 {
				t.Errorf("%d calls, want 1", n)
			}
		})
	}
}

// An event without id or type is refused without a call.
func TestPutRefusesEventsWithoutIDOrType(t *testing.T) {
	f := &fakeEventBridge{}
	p := newPublisher(t, f)
	evs := eventsN(3)
	evs[0].ID, evs[2].Type = "", ""
	results := p.Put(context.Background(), evs)
	if !errors.Is(results[0], eventstore.ErrInvalid) || results[1] != nil || !errors.Is(results[2], eventstore.ErrInvalid) {
		t.Fatalf("results %v", results)
	}
	if got := f.batches(t); !reflect.DeepEqual(got, [][]string{{"evt_01"}}) {
		t.Fatalf("batches %v", got)
	}
	if len(p.Put(context.Background(), nil)) != 0 || len(f.batches(t)) != 1 {
		t.Fatal("Put of nothing made a call")
	}
}

// The work handler of BusType puts the item's event through the adapter; a
// rejected entry is the item's error (the work path retries it).
func TestBusHandlerWithEventBridge(t *testing.T) {
	rejectFirst := true
	f := &fakeEventBridge{reject: func(int, string) string {
		if rejectFirst {
			rejectFirst = false
			return "ThrottlingException"
		}
		return ""
	}}
	p := newPublisher(t, f)
	ev := contractEvent(t, "message.queued")
	ev.TenantID = "" // an item's tenant fills it
	payload, err := eventstore.MarshalJSON(ev)
	if err != nil {
		t.Fatal(err)
	}
	it := work.Item{ID: "wrk_01K974YA2FPQPCKF7R7BE3VZK3", TenantID: "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R", Type: work.BusType, Payload: payload}
	h := work.BusHandler(p)
	if err := h(context.Background(), it); !errors.Is(err, ebpublisher.ErrRejected) || !strings.Contains(err.Error(), it.ID) {
		t.Fatalf("first run: %v, want ErrRejected naming the item", err)
	}
	if err := h(context.Background(), it); err != nil {
		t.Fatalf("retry: %v", err)
	}
	es := f.entries()
	if len(es) != 2 || es[1].eventID(t) != ev.ID {
		t.Fatalf("%d entries", len(es))
	}
	detail := []byte(aws.ToString(es[1].Detail))
	jsonEqual(t, "Detail", detail, readFile(t, "events/contracts/samples/integration.message.queued.json"))
}

// The sample in events/samples is what consumers of the bus receive for the
// entry the code puts: EventBridge's envelope (its own id, account and
// region; the time in whole seconds; no resources) around the detail,
// source and detail type of the entry. The router recognises it as an
// integration event.
func TestSampleMatchesTheEntry(t *testing.T) {
	f := &fakeEventBridge{}
	p := newPublisher(t, f)
	mustPut(t, p, []work.IntegrationEvent{contractEvent(t, "message.delivered")})
	e := f.entries()[0]

	sample := readFile(t, "events/samples/eventbridge-message-delivered.json")
	var got struct {
		Version    string          `json:"version"`
		ID         string          `json:"id"`
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Account    string          `json:"account"`
		Time       string          `json:"time"`
		Region     string          `json:"region"`
		Resources  []string        `json:"resources"`
		Detail     json.RawMessage `json:"detail"`
	}
	dec := json.NewDecoder(bytes.NewReader(sample))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("sample: %v", err)
	}
	sec := int64(*e.Time)
	if got.Version != "0" || got.ID == "" || got.Account == "" || got.Region == "" {
		t.Errorf("sample envelope: %+v", got)
	}
	if got.Source != aws.ToString(e.Source) || got.DetailType != aws.ToString(e.DetailType) {
		t.Errorf("sample source/detail-type %q/%q, entry %q/%q", got.Source, got.DetailType, aws.ToString(e.Source), aws.ToString(e.DetailType))
	}
	if want := time.Unix(sec, 0).UTC().Format(time.RFC3339); got.Time != want {
		t.Errorf("sample time %q, want %q (the entry's Time in whole seconds)", got.Time, want)
	}
	if got.Resources == nil || len(got.Resources) != len(e.Resources) {
		t.Errorf("sample resources %v, entry %v", got.Resources, e.Resources)
	}
	jsonEqual(t, "sample detail vs the entry's Detail", got.Detail, []byte(aws.ToString(e.Detail)))
	if err := events.Validate("integration-event", got.Detail); err != nil {
		t.Errorf("sample detail: %v", err)
	}
	if k := trigger.Detect(sample); k != trigger.KindIntegrationEvent {
		t.Errorf("Detect(sample) = %q, want %q", k, trigger.KindIntegrationEvent)
	}
}
