package app

import (
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// EventSource is the Source of the context's integration events.
const EventSource = "switchboard.messaging"

// Integration event types: one per public status change of a message (the
// contract's subscription event types). Published: never rename one.
const (
	EventMessageQueued      = "message.queued"
	EventMessageSent        = "message.sent"
	EventMessageDelivered   = "message.delivered"
	EventMessageUndelivered = "message.undelivered"
	EventMessageFailed      = "message.failed"
	EventMessageCanceled    = "message.canceled"
	EventMessageReceived    = "message.received"
)

// MessageEventDetail is the Detail of every message integration event: the
// tenant, the invocation that caused the change, the message's scope path
// (root first: subscriptions of any scope on it see the event) and the
// message as it is right after the change.
type MessageEventDetail struct {
	TenantID   string          `json:"tenantId"`
	Invocation invocation.Meta `json:"invocation"`
	ScopePath  []string        `json:"scopePath"`
	Data       MessageView     `json:"data"`
}

// PublicEventType returns the integration event type a domain event
// publishes, or "" when it is no public status change (a message accepted
// as scheduled, a failed attempt that will be retried).
func PublicEventType(ev domain.Event) string {
	switch e := ev.(type) {
	case domain.MessageAccepted:
		if e.Status == domain.StatusQueued {
			return EventMessageQueued
		}
	case domain.MessageReleased:
		return EventMessageQueued
	case domain.MessageSent:
		return EventMessageSent
	case domain.MessageDelivered:
		return EventMessageDelivered
	case domain.MessageUndelivered:
		return EventMessageUndelivered
	case domain.MessageFailed:
		return EventMessageFailed
	case domain.MessageCanceled:
		return EventMessageCanceled
	case domain.MessageReceived:
		return EventMessageReceived
	}
	return ""
}
