package events_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/events"
)

// mutation changes a decoded sample at a dotted path ("detail.data.status",
// "events.0.data"): set a value, or delete the key when del is true.
type mutation struct {
	name  string
	path  string
	value any
	del   bool
}

func set(name, path string, v any) mutation { return mutation{name: name, path: path, value: v} }
func drop(path string) mutation             { return mutation{name: "missing " + path, path: path, del: true} }

func apply(t *testing.T, doc []byte, m mutation) []byte {
	t.Helper()
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	keys := strings.Split(m.path, ".")
	cur := root
	for i, k := range keys {
		last := i == len(keys)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if m.del {
					if _, ok := c[k]; !ok {
						t.Fatalf("%s: no %s to delete", m.name, m.path)
					}
					delete(c, k)
				} else {
					c[k] = m.value
				}
				break
			}
			next, ok := c[k]
			if !ok {
				t.Fatalf("%s: no %s", m.name, m.path)
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(k)
			if err != nil || n >= len(c) {
				t.Fatalf("%s: bad index %s", m.name, k)
			}
			if last {
				c[n] = m.value
				break
			}
			cur = c[n]
		default:
			t.Fatalf("%s: %s is not a container", m.name, m.path)
		}
	}
	b, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Broken variants of valid samples are rejected: a missing field, an extra
// field, a wrong enum value, a bad id, a bad time, a wrong type, and the
// invariants between fields (status matching the event type, reasons).
func TestBrokenVariantsAreRejected(t *testing.T) {
	const ulid = "01K974Y8BVDTZ9VYGQF40SQYHG"
	cases := []struct {
		sample, schema string
		muts           []mutation
	}{
		{"integration.message.delivered.json", "message.delivered", []mutation{
			drop("id"), drop("source"), drop("type"), drop("tenantId"), drop("time"), drop("detail"),
			drop("detail.tenantId"), drop("detail.invocation"), drop("detail.scopePath"), drop("detail.data"),
			drop("detail.invocation.invocationId"), drop("detail.invocation.traceId"), drop("detail.invocation.principal"),
			drop("detail.data.messageId"), drop("detail.data.statusReason"), drop("detail.data.sendAt"),
			drop("detail.data.metadata"), drop("detail.data.updatedAt"), drop("detail.data.attempts"),
			set("extra field on the envelope", "detail-type", "message.delivered"),
			set("extra field in detail", "detail.messageId", "msg_"+ulid),
			set("extra field in the message", "detail.data.channelType", "sms"),
			set("extra field in the invocation", "detail.invocation.trigger", "sqs"),
			set("extra field in content", "detail.data.content.body", "hi"),
			set("unknown type", "type", "message.bounced"),
			set("another type's schema", "type", "message.sent"),
			set("wrong source", "source", "switchboard.tenancy"),
			set("wrong status enum", "detail.data.status", "bounced"),
			set("status of another type", "detail.data.status", "sent"),
			set("wrong direction enum", "detail.data.direction", "sideways"),
			set("bad event id", "id", "evt_"+strings.ToLower(ulid)),
			set("id of another type", "id", "msg_"+ulid),
			set("short message id", "detail.data.messageId", "msg_123"),
			set("lowercase message id", "detail.data.messageId", "msg_"+strings.ToLower(ulid)),
			set("message id with I", "detail.data.messageId", "msg_01K974Y8BVDTZ9VYGQF40SQYHI"),
			set("bad channel id", "detail.data.channelId", "chan_"+ulid),
			set("bad scope id", "detail.data.scopeId", "scp_"),
			set("bad tenant id", "tenantId", "tnt_x"),
			set("bad invocation id", "detail.invocation.invocationId", "01K974Y8BVDTZ9VYGQF40SQYHG"),
			set("bad trace id", "detail.invocation.traceId", "4BF92F3577B34DA6A3CE929D0E0E4736"),
			set("bad action id", "detail.invocation.actionId", "not-a-ulid"),
			set("unknown principal", "detail.invocation.principal", "root"),
			set("empty scope path", "detail.scopePath", []any{}),
			set("scope path of other ids", "detail.scopePath", []any{"chn_" + ulid}),
			set("time not UTC", "time", "2025-11-04T11:00:01.871+01:00"),
			set("time not a time", "time", "yesterday"),
			set("createdAt without milliseconds", "detail.data.createdAt", "2025-11-04T10:00:00Z"),
			set("updatedAt with microseconds", "detail.data.updatedAt", "2025-11-04T10:00:01.871000Z"),
			set("updatedAt not UTC", "detail.data.updatedAt", "2025-11-04T11:00:01.871+01:00"),
			set("updatedAt impossible", "detail.data.updatedAt", "2025-13-04T10:00:01.871Z"),
			set("sendAt not a time", "detail.data.sendAt", "tomorrow"),
			set("attempts negative", "detail.data.attempts", -1),
			set("attempts fractional", "detail.data.attempts", 1.5),
			set("attempts a string", "detail.data.attempts", "1"),
			set("attempts 0 for delivered", "detail.data.attempts", 0),
			set("statusReason for delivered", "detail.data.statusReason", "sandbox.carrier_rejected"),
			set("metadata value not a string", "detail.data.metadata.campaign", 7),
			set("metadata null", "detail.data.metadata", nil),
			set("metadata key too long", "detail.data.metadata."+strings.Repeat("k", 41), "v"),
			set("content empty", "detail.data.content", map[string]any{}),
			set("content text empty", "detail.data.content.text", ""),
			set("to empty", "detail.data.to", ""),
		}},
		{"integration.message.queued.json", "message.queued", []mutation{
			set("attempts for queued", "detail.data.attempts", 1),
			set("inbound queued", "detail.data.direction", "inbound"),
			set("status of another type", "detail.data.status", "scheduled"),
		}},
		{"integration.message.failed.json", "message.failed", []mutation{
			set("failed without reason", "detail.data.statusReason", nil),
			set("failed with empty reason", "detail.data.statusReason", ""),
			set("status of another type", "detail.data.status", "undelivered"),
		}},
		{"integration.message.undelivered.json", "message.undelivered", []mutation{
			set("undelivered with an empty reason", "detail.data.statusReason", ""),
			set("undelivered before an attempt", "detail.data.attempts", 0),
		}},
		{"integration.message.canceled.json", "message.canceled", []mutation{
			set("canceled after an attempt", "detail.data.attempts", 1),
			set("canceled inbound", "detail.data.direction", "inbound"),
		}},
		{"integration.message.received.json", "message.received", []mutation{
			set("received outbound", "detail.data.direction", "outbound"),
			set("received with sendAt", "detail.data.sendAt", "2025-11-04T18:00:00.000Z"),
			set("received with a status reason", "detail.data.statusReason", "x"),
		}},
		{"webhook.message.delivered.json", "webhook", []mutation{
			drop("type"), drop("timestamp"), drop("data"), drop("data.createdAt"),
			set("extra field", "id", "evt_"+ulid),
			set("extra field in data", "data.scopePath", []any{}),
			set("unknown type", "type", "message.bounced"),
			set("tenancy type", "type", "tenancy.tenant-onboarded"),
			set("type and status disagree", "type", "message.failed"),
			set("timestamp in seconds", "timestamp", "2025-11-04T10:00:01Z"),
			set("timestamp as unix", "timestamp", 1762250401),
			set("bad message id", "data.messageId", "msg_01K974Y8BVDTZ9VYGQF40SQYH"),
			set("data null", "data", nil),
		}},
		{"message.json", "message", []mutation{
			drop("content"), drop("direction"), drop("createdAt"),
			set("extra field", "providerMessageId", "sbx_"+ulid),
			set("extra field scopePath", "scopePath", []any{"scp_" + ulid}),
			set("status enum", "status", "bounced"),
			set("scheduled without sendAt", "status", "scheduled"),
		}},
		{"sandbox.receipt-undelivered.json", "sandbox-receipt", []mutation{
			drop("type"), drop("providerMessageId"), drop("status"),
			set("extra field", "messageId", "msg_"+ulid),
			set("status enum", "status", "failed"),
			set("type enum", "type", "inbound"),
			set("blank provider id", "providerMessageId", "   "),
			set("reason not a string", "reason", 42),
		}},
		{"sandbox.inbound.json", "sandbox-inbound", []mutation{
			drop("type"), drop("providerMessageId"), drop("from"), drop("to"), drop("text"),
			set("extra field", "status", "delivered"),
			set("type enum", "type", "receipt"),
			set("empty text", "text", ""),
			set("text not a string", "text", 42),
		}},
		{"history.delivered-after-retries.json", "message-history", []mutation{
			drop("events"), drop("events.0.eventId"), drop("events.0.invocationId"), drop("events.0.data"),
			drop("events.2.data.retryAt"), drop("events.6.data.providerMessageId"), drop("events.0.data.scopePath"),
			drop("events.1.data.attempt"), set("extra field in send-attempt-started", "events.1.data.reason", "x"),
			set("extra field", "nextCursor", nil),
			set("extra field in an event", "events.0.streamId", "message-msg_"+ulid),
			set("extra field in data", "events.7.data.reason", "x"),
			set("extra field in accepted", "events.0.data.createdAt", "2025-11-04T10:15:00.090Z"),
			set("unknown event type", "events.0.type", "messaging.message-bounced"),
			set("no events", "events", []any{}),
			set("version 0", "events.0.version", 0),
			set("occurredAt without ms", "events.0.occurredAt", "2025-11-04T10:15:00Z"),
			set("bad event id", "events.2.eventId", "evt_123"),
			set("attempt 0", "events.1.data.attempt", 0),
			set("accepted status", "events.0.data.status", "sent"),
			set("queued with sendAt", "events.0.data.sendAt", "2025-11-04T18:00:00Z"),
			set("retryAt not UTC", "events.1.data.retryAt", "2025-11-04T11:15:02.501+01:00"),
			set("channelType enum", "events.0.data.channelType", "fax"),
			set("provider name", "events.0.data.provider", "Sandbox!"),
		}},
		{"history.canceled.json", "message-history", []mutation{
			drop("events.0.data.sendAt"),
		}},
		{"channel-created.json", "channels.channel-created", []mutation{
			drop("channelId"), drop("scopePath"), drop("type"),
			set("clear-text credentials", "credentials", map[string]any{"apiKey": "sk_live_123"}),
			set("clear-text inbound secret", "inboundSecret", "whsec_bxwqnkt9A4XB4vSmuNDi9KHD5fcJK01vigwuT2qLDRw="),
			set("sealed secret not base64", "sealedInboundSecret", "whsec_bxwqnkt9A4XB4vSmuNDi9KHD5fcJK01vigwuT2qLDRw="),
			set("sealed credentials as an object", "sealedCredentials", map[string]any{"apiKey": "x"}),
			set("type enum", "type", "fax"),
			set("config value not a string", "config", map[string]any{"region": 1}),
			set("empty name", "name", ""),
		}},
	}
	for _, c := range cases {
		doc := sample(t, c.sample)
		if err := events.Validate(c.schema, doc); err != nil {
			t.Fatalf("%s is not valid to begin with: %v", c.sample, err)
		}
		for _, m := range c.muts {
			t.Run(c.sample+"/"+m.name, func(t *testing.T) {
				err := events.Validate(c.schema, apply(t, doc, m))
				if err == nil {
					t.Fatalf("accepted")
				}
				if !errors.Is(err, events.ErrInvalid) {
					t.Fatalf("error does not wrap ErrInvalid: %v", err)
				}
			})
		}
	}
}

// A domain event's data never validates as another type's.
func TestTypesAreDistinct(t *testing.T) {
	var h struct {
		Events []struct{ Data json.RawMessage }
	}
	if err := json.Unmarshal(sample(t, "history.delivered-after-retries.json"), &h); err != nil {
		t.Fatal(err)
	}
	accepted, attemptStarted, attemptFailed := h.Events[0].Data, h.Events[1].Data, h.Events[2].Data
	for _, other := range []string{"messaging.message-received", "messaging.message-sent", "messaging.message-released"} {
		if events.Validate(other, accepted) == nil {
			t.Errorf("message-accepted data validates as %s", other)
		}
	}
	if events.Validate("messaging.message-failed", attemptFailed) == nil {
		t.Error("send-attempt-failed data validates as message-failed")
	}
	for _, other := range []string{"messaging.send-attempt-failed", "messaging.message-released", "messaging.message-sent"} {
		if events.Validate(other, attemptStarted) == nil {
			t.Errorf("send-attempt-started data validates as %s", other)
		}
	}
}
