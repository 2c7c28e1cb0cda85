package events_test

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/events"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// The schemas describe the Go types that produce the documents: every JSON
// field of a domain event struct is a property of its schema and the other
// way round, and the required properties are the fields without omitempty.
// A field added to a struct without a schema change fails here.
func TestDomainStructsMatchSchemas(t *testing.T) {
	for _, ev := range []domain.Event{
		domain.ChannelCreated{}, domain.MessageAccepted{}, domain.MessageReleased{}, domain.MessageCanceled{},
		domain.SendAttemptStarted{}, domain.SendAttemptFailed{}, domain.MessageSent{}, domain.MessageFailed{}, domain.MessageDelivered{},
		domain.MessageUndelivered{}, domain.MessageReceived{},
	} {
		t.Run(ev.EventType(), func(t *testing.T) {
			compareFields(t, ev.EventType(), reflect.TypeOf(ev), "")
		})
	}
	t.Run("integration-event envelope", func(t *testing.T) {
		// tenantId is omitempty in work.IntegrationEvent but always set by messaging.
		compareFields(t, "integration-event", reflect.TypeOf(work.IntegrationEvent{}), "tenantId")
	})
	t.Run("invocation", func(t *testing.T) {
		compareFieldsAt(t, "common", "/$defs/invocation", reflect.TypeOf(invocation.Meta{}), "")
	})
	t.Run("content", func(t *testing.T) {
		compareFieldsAt(t, "common", "/$defs/content", reflect.TypeOf(domain.Content{}), "")
	})
}

// jsonFields returns a struct's JSON field names and which are omitempty.
func jsonFields(t reflect.Type) (names map[string]bool) {
	names = map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		names[name] = strings.Contains(opts, "omitempty")
	}
	return names
}

func compareFields(t *testing.T, schema string, typ reflect.Type, alsoRequired string) {
	compareFieldsAt(t, schema, "", typ, alsoRequired)
}

func compareFieldsAt(t *testing.T, schema, pointer string, typ reflect.Type, alsoRequired string) {
	t.Helper()
	raw, err := events.Schema(schema)
	if err != nil {
		t.Fatal(err)
	}
	var node any
	if err := json.Unmarshal(raw, &node); err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Split(strings.Trim(pointer, "/"), "/") {
		if p != "" {
			node = node.(map[string]any)[p]
		}
	}
	s := node.(map[string]any)
	props := map[string]bool{}
	for k := range s["properties"].(map[string]any) {
		props[k] = true
	}
	required := map[string]bool{}
	if r, ok := s["required"].([]any); ok {
		for _, k := range r {
			required[k.(string)] = true
		}
	}
	fields := jsonFields(typ)
	var diffs []string
	for f, omitempty := range fields {
		if !props[f] {
			diffs = append(diffs, "field "+f+" of "+typ.String()+" is not in the schema")
			continue
		}
		wantRequired := !omitempty || f == alsoRequired
		if required[f] != wantRequired {
			diffs = append(diffs, "field "+f+": required in the schema is "+boolString(required[f])+", the struct says "+boolString(wantRequired))
		}
	}
	for p := range props {
		if _, ok := fields[p]; !ok {
			diffs = append(diffs, "property "+p+" of the schema is not a field of "+typ.String())
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Error(d)
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Documents made by the Go types validate: the encoding of times ([]byte,
// *time.Time, time.Time in UTC) is what the schemas say.
func TestDomainEventsEncodeValid(t *testing.T) {
	at := time.Date(2025, 11, 4, 10, 15, 2, 501_000_000, time.UTC)
	send := at.Add(2 * time.Hour)
	path := []string{"scp_01K94G2DAC7D0E3F6G9H2J5K8M", "scp_01K94G8ME8SDRG1VF8EART858V"}
	const (
		msg = "msg_01K975SQ7TCXV6XXAPKQQN8WS0"
		chn = "chn_01K94GJR6B3FXNRCPH72699EB8"
	)
	for _, ev := range []domain.Event{
		domain.ChannelCreated{ChannelID: chn, ScopeID: path[1], ScopePath: path, Name: "Reminders", Type: domain.ChannelSMS,
			Provider: domain.ProviderSandbox, From: "+4930901820", Config: map[string]string{"region": "eu"},
			SealedCredentials: []byte{1, 2, 3, 4, 5}, SealedInboundSecret: []byte("\x01sealed-bytes\xff")},
		domain.ChannelCreated{ChannelID: chn, ScopeID: path[1], ScopePath: path, Name: "Reminders", Type: domain.ChannelEmail,
			Provider: domain.ProviderSandbox, From: "noreply@acme.example"},
		domain.MessageAccepted{MessageID: msg, ChannelID: chn, ScopeID: path[1], ScopePath: path, ChannelType: domain.ChannelSMS,
			Provider: "sandbox", To: "+4915112345678", From: "+4930901820", Content: domain.Content{Text: "hi"},
			Metadata: map[string]string{"k": "v"}, Status: domain.StatusQueued},
		domain.MessageAccepted{MessageID: msg, ChannelID: chn, ScopeID: path[1], ScopePath: path, ChannelType: domain.ChannelEmail,
			Provider: "sandbox", To: "a@b.example", From: "noreply@acme.example",
			Content: domain.Content{Subject: "Hi", HTML: "<p>hi</p>"}, SendAt: new(domain.At(send)), Status: domain.StatusScheduled},
		domain.MessageReleased{MessageID: msg},
		domain.MessageCanceled{MessageID: msg},
		domain.SendAttemptStarted{MessageID: msg, Attempt: 1},
		domain.SendAttemptFailed{MessageID: msg, Attempt: 1, Reason: "sandbox.temporarily_unavailable", RetryAt: domain.At(at)},
		domain.SendAttemptFailed{MessageID: msg, Attempt: 2, Reason: "sandbox.temporarily_unavailable", RetryAt: domain.At(at.Truncate(time.Second))},
		domain.MessageSent{MessageID: msg, ProviderMessageID: "sbx_01K975SXQ00QY4ATAMZ1C3TYFJ", Attempts: 3},
		domain.MessageFailed{MessageID: msg, Reason: "sandbox.invalid_number", Attempts: 1},
		domain.MessageDelivered{MessageID: msg},
		domain.MessageUndelivered{MessageID: msg, Reason: "sandbox.carrier_rejected"},
		domain.MessageReceived{MessageID: msg, ChannelID: chn, ScopeID: path[1], ScopePath: path, ChannelType: domain.ChannelSMS,
			Provider: "sandbox", ProviderMessageID: "sbx_01K975KS6WFE620DM281WG6EGT", To: "+4930901820", From: "+4917655501234",
			Content: domain.Content{Text: "STOP"}},
	} {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := events.Validate(ev.EventType(), b); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
}

// Every domain event type of the messaging context has a schema.
func TestEveryDomainTypeHasASchema(t *testing.T) {
	for _, typ := range []string{domain.TypeChannelCreated, domain.TypeMessageAccepted, domain.TypeMessageReleased,
		domain.TypeMessageCanceled, domain.TypeSendAttemptStarted, domain.TypeSendAttemptFailed, domain.TypeMessageSent, domain.TypeMessageFailed,
		domain.TypeMessageDelivered, domain.TypeMessageUndelivered, domain.TypeMessageReceived} {
		if _, err := events.Schema(typ); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}
