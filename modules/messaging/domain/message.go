package domain

import (
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// CodeNotCancelable answers cancel-message on a message past queued (409).
const CodeNotCancelable = "errors.message.not_cancelable"

// ErrNotCancelable is returned by Cancel for a message that is neither
// scheduled nor queued.
var ErrNotCancelable = errs.Conflict(CodeNotCancelable)

// Message is the message aggregate, rebuilt from its stream.
type Message struct {
	ID           string
	TenantID     string
	ChannelID    string
	ScopeID      string
	ScopePath    []string
	ChannelType  ChannelType
	Provider     string
	Direction    string
	To           string
	From         string
	Content      Content
	Metadata     map[string]string
	SendAt       *time.Time
	Status       Status
	StatusReason string
	Attempts     int
	// AttemptOpen: attempt number Attempts was started
	// (messaging.send-attempt-started) and has no outcome yet.
	AttemptOpen       bool
	ProviderMessageID string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	Version           int64 // stream version; 0 for a new message
}

// ReplayMessage rebuilds a message from its stream (nil when empty).
func ReplayMessage(tenantID string, h []Recorded) *Message {
	var m *Message
	for _, r := range h {
		if m == nil {
			m = &Message{TenantID: tenantID, CreatedAt: r.OccurredAt}
		}
		m.Apply(r)
	}
	if m != nil && m.ID == "" {
		return nil
	}
	return m
}

// Apply moves the message by one recorded event. It trusts the stream: the
// checks are made before the event is recorded.
func (m *Message) Apply(r Recorded) {
	m.Version = r.Version
	m.UpdatedAt = r.OccurredAt
	switch e := r.Event.(type) {
	case MessageAccepted:
		m.ID, m.ChannelID, m.ScopeID, m.ScopePath = e.MessageID, e.ChannelID, e.ScopeID, e.ScopePath
		m.ChannelType, m.Provider, m.Direction = e.ChannelType, e.Provider, Outbound
		m.To, m.From, m.Content, m.Metadata, m.SendAt = e.To, e.From, e.Content, e.Metadata, nil
		if e.SendAt != nil {
			at := e.SendAt.Time
			m.SendAt = &at
		}
		m.Status = e.Status
		m.CreatedAt = r.OccurredAt
	case MessageReceived:
		m.ID, m.ChannelID, m.ScopeID, m.ScopePath = e.MessageID, e.ChannelID, e.ScopeID, e.ScopePath
		m.ChannelType, m.Provider, m.Direction = e.ChannelType, e.Provider, Inbound
		m.To, m.From, m.Content, m.ProviderMessageID = e.To, e.From, e.Content, e.ProviderMessageID
		m.Status = StatusReceived
		m.CreatedAt = r.OccurredAt
	case MessageReleased:
		m.Status = StatusQueued
	case MessageCanceled:
		m.Status = StatusCanceled
	case SendAttemptStarted:
		m.Status, m.Attempts, m.AttemptOpen = StatusSending, e.Attempt, true
	case SendAttemptFailed:
		m.Status, m.StatusReason, m.Attempts, m.AttemptOpen = StatusSending, e.Reason, e.Attempt, false
	case MessageSent:
		m.Status, m.StatusReason, m.Attempts, m.ProviderMessageID = StatusSent, "", e.Attempts, e.ProviderMessageID
		m.AttemptOpen = false
	case MessageFailed:
		m.Status, m.StatusReason, m.Attempts, m.AttemptOpen = StatusFailed, e.Reason, e.Attempts, false
	case MessageDelivered:
		m.Status, m.StatusReason = StatusDelivered, ""
	case MessageUndelivered:
		m.Status, m.StatusReason = StatusUndelivered, e.Reason
	}
}

// Cancel cancels a scheduled or queued message, or answers ErrNotCancelable.
func (m *Message) Cancel() (Event, error) {
	if !CanMove(m.Status, StatusCanceled) {
		return nil, ErrNotCancelable.With("status", string(m.Status))
	}
	return MessageCanceled{MessageID: m.ID}, nil
}

// Release queues a scheduled message; ok is false when it is not scheduled
// (canceled meanwhile, or already released: nothing to do).
func (m *Message) Release() (ev Event, ok bool) {
	if m.Status != StatusScheduled {
		return nil, false
	}
	return MessageReleased{MessageID: m.ID}, true
}

// Dispatchable reports whether a provider call should be made now.
func (m *Message) Dispatchable() bool {
	return m.Status == StatusQueued || m.Status == StatusSending
}

// StartAttempt claims provider call number want (0: whichever is next, the
// rule of work items written before items named their attempt). An open
// attempt is resumed when it is want: no event, the same number (a crash or
// a redelivery after the claim calls the provider again with the same
// idempotency key, which it dedupes). A queued message, or a sending one
// without an open attempt, gets SendAttemptStarted{Attempt: Attempts+1} when
// that is want. Anything else is a stale claim (an item delivered again
// after its attempt ended, or while another item's attempt is open) or a
// message with nothing to send: ok is false.
func (m *Message) StartAttempt(want int) (ev Event, attempt int, ok bool) {
	switch {
	case m.Status == StatusSending && m.AttemptOpen:
		if want != 0 && want != m.Attempts {
			return nil, 0, false
		}
		return nil, m.Attempts, true
	case m.Status == StatusQueued || m.Status == StatusSending:
		n := m.Attempts + 1
		if want != 0 && want != n {
			return nil, 0, false
		}
		return SendAttemptStarted{MessageID: m.ID, Attempt: n}, n, true
	}
	return nil, 0, false
}

// AttemptFailed records a transient failure of attempt n; ok is false when the
// message is no longer dispatchable (the event would move it back).
func (m *Message) AttemptFailed(n int, reason string, retryAt time.Time) (Event, bool) {
	if !CanMove(m.Status, StatusSending) {
		return nil, false
	}
	return SendAttemptFailed{MessageID: m.ID, Attempt: n, Reason: reason, RetryAt: At(retryAt)}, true
}

// Sent records the provider's acceptance after attempts calls.
func (m *Message) Sent(providerMessageID string, attempts int) (Event, bool) {
	if !CanMove(m.Status, StatusSent) {
		return nil, false
	}
	return MessageSent{MessageID: m.ID, ProviderMessageID: providerMessageID, Attempts: attempts}, true
}

// Fail records a final failure after attempts calls.
func (m *Message) Fail(reason string, attempts int) (Event, bool) {
	if !CanMove(m.Status, StatusFailed) {
		return nil, false
	}
	return MessageFailed{MessageID: m.ID, Reason: reason, Attempts: attempts}, true
}

// Receipt applies a provider receipt (StatusDelivered or StatusUndelivered).
// ok is false when the receipt changes nothing: a duplicate, a late receipt
// after a final status, or an unknown status. A receipt is only taken while
// the message is sent.
func (m *Message) Receipt(status Status, reason string) (Event, bool) {
	if !CanMove(m.Status, status) {
		return nil, false
	}
	switch status {
	case StatusDelivered:
		return MessageDelivered{MessageID: m.ID}, true
	case StatusUndelivered:
		return MessageUndelivered{MessageID: m.ID, Reason: reason}, true
	}
	return nil, false
}
