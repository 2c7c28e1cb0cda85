package domain

import (
	"testing"
	"time"
)

// apply moves m by events, as the stream would.
func apply(m *Message, events ...Event) {
	for _, ev := range events {
		m.Apply(Recorded{Event: ev, Version: m.Version + 1, OccurredAt: now})
	}
}

func TestStartAttempt(t *testing.T) {
	m := &Message{ID: "msg_1"}
	apply(m, MessageAccepted{MessageID: "msg_1", Status: StatusQueued})

	// Queued: attempt 1 is started and opens.
	ev, n, ok := m.StartAttempt(0)
	if !ok || n != 1 || ev != (SendAttemptStarted{MessageID: "msg_1", Attempt: 1}) {
		t.Fatalf("queued: %v %d %v", ev, n, ok)
	}
	apply(m, ev)
	if m.Status != StatusSending || m.Attempts != 1 || !m.AttemptOpen || !m.Dispatchable() {
		t.Fatalf("after the start: %+v", m)
	}
	// Started and open: resumed, no event, the same number.
	if ev, n, ok := m.StartAttempt(0); !ok || n != 1 || ev != nil {
		t.Fatalf("open attempt: %v %d %v", ev, n, ok)
	}
	// A sending message cannot be canceled.
	if _, err := m.Cancel(); err == nil {
		t.Fatal("canceled a sending message")
	}
	// A failed attempt closes it; the next one is 2.
	fe, _ := m.AttemptFailed(1, "x.busy", now.Add(time.Second))
	apply(m, fe)
	if m.AttemptOpen || m.Attempts != 1 || m.Status != StatusSending {
		t.Fatalf("after the failure: %+v", m)
	}
	ev, n, ok = m.StartAttempt(0)
	if !ok || n != 2 || ev != (SendAttemptStarted{MessageID: "msg_1", Attempt: 2}) {
		t.Fatalf("after a failure: %v %d %v", ev, n, ok)
	}
	apply(m, ev)
	se, _ := m.Sent("p1", 2)
	apply(m, se)
	if m.AttemptOpen || m.Attempts != 2 || m.Status != StatusSent {
		t.Fatalf("after sent: %+v", m)
	}
	if ev, n, ok := m.StartAttempt(0); ok || ev != nil || n != 0 {
		t.Fatalf("sent: %v %d %v", ev, n, ok)
	}

	// A failure closes the attempt too.
	f := &Message{ID: "msg_2"}
	apply(f, MessageAccepted{MessageID: "msg_2", Status: StatusQueued}, SendAttemptStarted{MessageID: "msg_2", Attempt: 1},
		MessageFailed{MessageID: "msg_2", Reason: "r", Attempts: 1})
	if f.AttemptOpen || f.Status != StatusFailed {
		t.Fatalf("failed: %+v", f)
	}
	// Scheduled, canceled, failed, received: nothing to start.
	for _, s := range []Status{StatusScheduled, StatusCanceled, StatusFailed, StatusDelivered, StatusReceived} {
		if ev, _, ok := (&Message{ID: "m", Status: s}).StartAttempt(0); ok || ev != nil {
			t.Fatalf("%s: started %v", s, ev)
		}
	}
}

// TestStartAttemptNamed: a claim naming its attempt starts or resumes only
// that attempt; any other is stale.
func TestStartAttemptNamed(t *testing.T) {
	m := &Message{ID: "msg_1"}
	apply(m, MessageAccepted{MessageID: "msg_1", Status: StatusQueued})
	if _, _, ok := m.StartAttempt(2); ok {
		t.Fatal("queued: attempt 2 started before attempt 1")
	}
	ev, n, ok := m.StartAttempt(1)
	if !ok || n != 1 || ev == nil {
		t.Fatalf("queued: attempt 1: %v %d %v", ev, n, ok)
	}
	apply(m, ev)
	if ev, n, ok := m.StartAttempt(1); !ok || n != 1 || ev != nil {
		t.Fatalf("open attempt 1 not resumed: %v %d %v", ev, n, ok)
	}
	if _, _, ok := m.StartAttempt(2); ok {
		t.Fatal("attempt 2 claimed while attempt 1 is open")
	}
	fe, _ := m.AttemptFailed(1, "x.busy", now.Add(time.Second))
	apply(m, fe)
	if _, _, ok := m.StartAttempt(1); ok {
		t.Fatal("attempt 1 ran again after it failed")
	}
	if ev, n, ok := m.StartAttempt(2); !ok || n != 2 || ev != (SendAttemptStarted{MessageID: "msg_1", Attempt: 2}) {
		t.Fatalf("attempt 2: %v %d %v", ev, n, ok)
	}
}
