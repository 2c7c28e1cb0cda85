package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/events"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets/kmstest"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// SWITCHBOARD_EVENT_BUS: read in Lambda mode only (local mode has no bus),
// trimmed; anything but a bus name or ARN is refused naming the variable.
func TestConfigEventBus(t *testing.T) {
	lambda := func(bus string) func(string) string {
		env := map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "SWITCHBOARD_KMS_KEY_ID": "k",
			"SWITCHBOARD_PUBLIC_URL": "https://api.example.com", "SWITCHBOARD_EVENT_BUS": bus}
		return func(k string) string { return env[k] }
	}
	for bus, want := range map[string]string{
		"":                           "",
		"switchboard-integration":    "switchboard-integration",
		" switchboard-integration\n": "switchboard-integration",
		"arn:aws:events:eu-central-1:123456789012:event-bus/switchboard-integration": "arn:aws:events:eu-central-1:123456789012:event-bus/switchboard-integration",
	} {
		c, err := LoadConfig(lambda(bus))
		if err != nil || c.EventBus != want {
			t.Errorf("%q: EventBus %q (%v), want %q", bus, c.EventBus, err, want)
		}
	}
	for _, bad := range []string{"switchboard integration", "bus\"x", strings.Repeat("b", 1601)} {
		if _, err := LoadConfig(lambda(bad)); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_EVENT_BUS") {
			t.Errorf("%q: err = %v, want one naming the variable", bad, err)
		}
	}
	c, err := LoadConfig(func(k string) string {
		if k == "SWITCHBOARD_EVENT_BUS" {
			return "switchboard-integration"
		}
		return ""
	})
	if err != nil || c.EventBus != "" {
		t.Errorf("local mode: EventBus %q (%v), want none", c.EventBus, err)
	}
}

// busEntry is a PutEvents entry as the fake EventBridge received it.
type busEntry struct {
	Source, DetailType, Detail, EventBusName string
	Resources                                []string
	Time                                     float64
}

// eventID is the id inside the entry's detail.
func (e busEntry) eventID() string {
	var ev struct{ ID string }
	_ = json.Unmarshal([]byte(e.Detail), &ev)
	return ev.ID
}

// fakeBus speaks EventBridge's PutEvents (AWS JSON 1.1) and rejects the
// first put of every event (ThrottlingException), accepting the next.
type fakeBus struct {
	mu       sync.Mutex
	entries  []busEntry // every entry received
	accepted []busEntry
	seen     map[string]int
}

func (f *fakeBus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ Entries []busEntry }
	if r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" || json.NewDecoder(r.Body).Decode(&in) != nil {
		http.Error(w, `{"__type":"ValidationException"}`, 400)
		return
	}
	type result struct{ EventId, ErrorCode, ErrorMessage string }
	out := struct {
		FailedEntryCount int
		Entries          []result
	}{}
	f.mu.Lock()
	for _, e := range in.Entries {
		f.entries = append(f.entries, e)
		f.seen[e.eventID()]++
		if f.seen[e.eventID()] == 1 {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{ErrorCode: "ThrottlingException", ErrorMessage: "slow down"})
			continue
		}
		f.accepted = append(f.accepted, e)
		out.Entries = append(out.Entries, result{EventId: "eb-" + e.eventID()})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeBus) acceptedByType() map[string][]busEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]busEntry{}
	for _, e := range f.accepted {
		out[e.DetailType] = append(out[e.DetailType], e)
	}
	return out
}

// Lambda mode with SWITCHBOARD_EVENT_BUS (no queue: work runs inline and in
// the sweep): a message's integration events reach the bus as the contract's
// integration events, each retried alone after EventBridge rejected its
// first put, while the subscription's webhooks get one delivery per event,
// as without a bus.
func TestLambdaEventBus(t *testing.T) {
	endpoint := dynamoEndpoint(t)
	table := uniqueTable()
	if err := dynamostore.EnsureTable(context.Background(), dynamotest.Client(endpoint, nil), table); err != nil {
		t.Fatal(err)
	}
	kmsSrv := kmstest.NewServer()
	t.Cleanup(kmsSrv.Close)
	bus := &fakeBus{seen: map[string]int{}}
	busSrv := httptest.NewServer(bus)
	t.Cleanup(busSrv.Close)
	t.Setenv("AWS_ENDPOINT_URL_KMS", kmsSrv.URL)
	t.Setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", busSrv.URL)
	const busName = "switchboard-integration"
	a := buildOn(t, "dynamodb", map[string]string{
		"AWS_LAMBDA_RUNTIME_API":   "127.0.0.1:9001",
		"SWITCHBOARD_TABLE":        table,
		"SWITCHBOARD_KMS_KEY_ID":   "alias/switchboard-test",
		"SWITCHBOARD_PUBLIC_URL":   "https://api.example.com",
		"SWITCHBOARD_OPERATOR_KEY": "sbo_eventbus",
		"SWITCHBOARD_EVENT_BUS":    busName,
	})
	if !a.Config.Lambda || a.Config.EventBus != busName {
		t.Fatalf("config: lambda %v, bus %q", a.Config.Lambda, a.Config.EventBus)
	}
	c := &client{t: t, h: a.Server}
	on := c.must(200, "/commands/onboard-tenant", "sbo_eventbus", `{"name":"Bus","tier":"pooled"}`)
	key, root := str(on.Body["apiKey"]), str(on.Body["rootScopeId"])
	ch := str(c.must(200, "/commands/create-channel", key, `{"scopeId":"`+root+`","name":"sms","type":"sms","provider":"sandbox","from":"+15550000000","config":{},"credentials":{}}`).Body["channelId"])
	sub := str(c.must(200, "/commands/create-subscription", key, `{"scopeId":"`+root+`","url":"https://switchboard-eventbus.invalid/hook","eventTypes":["*"]}`).Body["subscriptionId"])
	// The sandbox's "silent" recipient: queued, then sent, no receipt.
	msg := str(c.must(202, "/commands/send-message", key, `{"channelId":"`+ch+`","to":"+15550100003","content":{"text":"hello <bus> & co"}}`).Body["messageId"])

	types := []string{"message.queued", "message.sent"}
	eventually(t, 20*time.Second, "both events accepted by the bus", func() bool {
		// The sweep fails while what it hands fails (the webhooks' target
		// does not resolve): only what reached the bus counts here.
		_ = a.Jobs.Run(context.Background(), work.SweepJob)
		got := bus.acceptedByType()
		return len(got[types[0]]) > 0 && len(got[types[1]]) > 0
	})

	accepted := bus.acceptedByType()
	eventIDs := map[string]string{}
	for _, typ := range types {
		es := accepted[typ]
		if len(es) != 1 {
			t.Fatalf("%s accepted %d times, want once", typ, len(es))
		}
		e := es[0]
		if e.EventBusName != busName || e.Source != "switchboard.messaging" || e.Resources == nil || len(e.Resources) != 0 || e.Time == 0 {
			t.Errorf("%s entry: %+v", typ, e)
		}
		if err := events.Validate("integration-event", []byte(e.Detail)); err != nil {
			t.Errorf("%s detail is not the contract's integration event: %v\n%s", typ, err, e.Detail)
		}
		if err := events.Validate(typ, []byte(e.Detail)); err != nil {
			t.Errorf("%s detail: %v", typ, err)
		}
		var ev struct {
			ID, Type string
			Detail   struct {
				Data struct{ MessageID, Status string }
			}
		}
		_ = json.Unmarshal([]byte(e.Detail), &ev)
		if ev.Type != typ || ev.Detail.Data.MessageID != msg || "message."+ev.Detail.Data.Status != typ || !strings.HasPrefix(ev.ID, "evt_") {
			t.Errorf("%s detail: %s", typ, e.Detail)
		}
		eventIDs[typ] = ev.ID
	}
	// The first put of each event was rejected: the same event (same id)
	// was put again by its own retried item.
	bus.mu.Lock()
	for _, typ := range types {
		if n := bus.seen[eventIDs[typ]]; n != 2 {
			t.Errorf("%s put %d times, want 2 (rejected, then accepted)", typ, n)
		}
	}
	bus.mu.Unlock()

	// Webhooks: one delivery per event, of the same event id, whatever the bus did.
	r := c.must(200, "/queries/list-deliveries", key, `{"subscriptionId":"`+sub+`","limit":100}`)
	items, _ := r.Body["items"].([]any)
	perType := map[string][]string{}
	for _, it := range items {
		d, _ := it.(map[string]any)
		perType[str(d["eventType"])] = append(perType[str(d["eventType"])], str(d["eventId"]))
	}
	for _, typ := range types {
		if got := perType[typ]; len(got) != 1 || got[0] != eventIDs[typ] {
			t.Errorf("%s deliveries %v, want exactly one of event %s", typ, got, eventIDs[typ])
		}
	}
	if len(items) != len(types) {
		t.Errorf("%d deliveries, want %d: %s", len(items), len(types), r.Raw)
	}
}
