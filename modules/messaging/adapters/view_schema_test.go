package adapters

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/events"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// TestEveryStateOfAMessageMatchesItsSchema: get-message and list-messages
// show a message in every state it passes through, not only its final one,
// and each view must validate against events/contracts/schemas/message
// (review finding: a message on its first attempt, status sending with a
// null statusReason, failed it).
func TestEveryStateOfAMessageMatchesItsSchema(t *testing.T) {
	f := newFixture(t)
	const scope = "scp_01JX00000000000000000000SA"
	at := t0.Add(time.Hour)
	retryAt := t0.Add(2 * time.Hour)
	type step func(m *domain.Message) (domain.Event, bool)
	start := func(m *domain.Message) (domain.Event, bool) {
		ev, _, ok := m.StartAttempt(m.Attempts + 1)
		return ev, ok
	}
	paths := map[string][]step{
		"retried, sent, delivered": {
			start,
			func(m *domain.Message) (domain.Event, bool) {
				return m.AttemptFailed(m.Attempts, "sandbox.unavailable", retryAt)
			},
			start,
			func(m *domain.Message) (domain.Event, bool) { return m.Sent("sbx_1", m.Attempts) },
			func(m *domain.Message) (domain.Event, bool) { return m.Receipt(domain.StatusDelivered, "") },
		},
		"undelivered": {start, func(m *domain.Message) (domain.Event, bool) { return m.Sent("sbx_2", m.Attempts) },
			func(m *domain.Message) (domain.Event, bool) { return m.Receipt(domain.StatusUndelivered, "") }},
		"failed":   {start, func(m *domain.Message) (domain.Event, bool) { return m.Fail("sandbox.invalid_number", m.Attempts) }},
		"canceled": {func(m *domain.Message) (domain.Event, bool) { ev, err := m.Cancel(); return ev, err == nil }},
	}
	check := func(name string, m *domain.Message) {
		t.Helper()
		rec, err := ProjectMessage(m)
		if err != nil {
			t.Fatalf("%s: project: %v", name, err)
		}
		var row MessageRow
		if err := json.Unmarshal(rec.Data, &row); err != nil {
			t.Fatalf("%s: row: %v", name, err)
		}
		view, _ := json.Marshal(row.View())
		if err := events.Validate("message", view); err != nil {
			t.Errorf("%s, status %s: %v\n%s", name, m.Status, err, view)
		}
	}
	apply := func(m *domain.Message, ev domain.Event) {
		m.Apply(domain.Recorded{Event: ev, Version: m.Version + 1, OccurredAt: t0.Add(time.Duration(m.Version) * time.Second)})
	}
	for name, steps := range paths {
		for _, scheduled := range []bool{false, true} {
			var sendAt *time.Time
			if scheduled {
				sendAt = &at
			}
			m := &domain.Message{}
			apply(m, f.accepted(scope, chnA, sendAt))
			check(name, m)
			if scheduled && name != "canceled" {
				ev, ok := m.Release()
				if !ok {
					t.Fatalf("%s: release refused", name)
				}
				apply(m, ev)
				check(name, m)
			}
			for i, s := range steps {
				ev, ok := s(m)
				if !ok {
					t.Fatalf("%s: step %d refused in status %s", name, i, m.Status)
				}
				apply(m, ev)
				check(name, m)
			}
		}
	}
	m := &domain.Message{}
	apply(m, domain.MessageReceived{MessageID: "msg_01JX0000000000000000000099", ChannelID: chnA, ScopeID: scope, ScopePath: []string{scope},
		ChannelType: domain.ChannelSMS, Provider: "sandbox", ProviderMessageID: "sbx_in", To: "+15550001111", From: "+15551230000", Content: domain.Content{Text: "hi"}})
	check("received", m)
}
