package domain

import "time"

// Event types. Persisted: never rename one (a new shape is a new schema
// version of the same type; a new meaning is a new type).
const (
	TypeChannelCreated     = "channels.channel-created"
	TypeMessageAccepted    = "messaging.message-accepted"     // outbound, queued or scheduled
	TypeMessageReleased    = "messaging.message-released"     // scheduled -> queued at sendAt
	TypeMessageCanceled    = "messaging.message-canceled"     // scheduled|queued -> canceled
	TypeSendAttemptStarted = "messaging.send-attempt-started" // a provider call is claimed -> sending
	TypeSendAttemptFailed  = "messaging.send-attempt-failed"  // transient provider error -> sending
	TypeMessageSent        = "messaging.message-sent"         // provider accepted -> sent
	TypeMessageFailed      = "messaging.message-failed"       // -> failed
	TypeMessageDelivered   = "messaging.message-delivered"    // receipt -> delivered
	TypeMessageUndelivered = "messaging.message-undelivered"  // receipt -> undelivered
	TypeMessageReceived    = "messaging.message-received"     // inbound -> received
)

// Event is a fact of the messaging context. The JSON form of each event
// struct is its persisted data (schema version 1).
type Event interface {
	EventType() string
}

// Recorded is an event as read back from its stream.
type Recorded struct {
	Event      Event
	Version    int64
	OccurredAt time.Time
}

// Content is a message's content. Which fields are required depends on the
// channel type (see CheckOutbound).
type Content struct {
	Text    string `json:"text,omitempty"`
	Subject string `json:"subject,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// Directions of a message. Persisted and public.
const (
	Outbound = "outbound"
	Inbound  = "inbound"
)

// MessageAccepted: send-message accepted an outbound message. Status is
// StatusQueued, or StatusScheduled with SendAt. Stream "message-<messageId>".
type MessageAccepted struct {
	MessageID   string            `json:"messageId"`
	ChannelID   string            `json:"channelId"`
	ScopeID     string            `json:"scopeId"`
	ScopePath   []string          `json:"scopePath"`
	ChannelType ChannelType       `json:"channelType"`
	Provider    string            `json:"provider"`
	To          string            `json:"to"`
	From        string            `json:"from"`
	Content     Content           `json:"content"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	SendAt      *Timestamp        `json:"sendAt,omitempty"`
	Status      Status            `json:"status"`
}

// MessageReleased: a scheduled message reached its sendAt and was queued.
type MessageReleased struct {
	MessageID string `json:"messageId"`
}

// MessageCanceled: cancel-message stopped a scheduled or queued message.
type MessageCanceled struct {
	MessageID string `json:"messageId"`
}

// SendAttemptStarted: dispatch claimed provider call number Attempt (1..):
// committed before the call, so that a cancellation after it is refused and
// a cancellation before it stops the call. The attempt stays open until
// SendAttemptFailed, MessageSent or MessageFailed closes it; an open attempt
// is resumed (the same call, the same idempotency key) by a redelivery.
type SendAttemptStarted struct {
	MessageID string `json:"messageId"`
	Attempt   int    `json:"attempt"`
}

// SendAttemptFailed: a provider call failed transiently; another follows at RetryAt.
type SendAttemptFailed struct {
	MessageID string    `json:"messageId"`
	Attempt   int       `json:"attempt"`
	Reason    string    `json:"reason"`
	RetryAt   Timestamp `json:"retryAt"`
}

// MessageSent: the provider accepted the message.
type MessageSent struct {
	MessageID         string `json:"messageId"`
	ProviderMessageID string `json:"providerMessageId"`
	Attempts          int    `json:"attempts"`
}

// MessageFailed: the provider refused the message for good, or the
// transient failures exhausted the attempts.
type MessageFailed struct {
	MessageID string `json:"messageId"`
	Reason    string `json:"reason"`
	Attempts  int    `json:"attempts"`
}

// MessageDelivered: a receipt said the message was delivered.
type MessageDelivered struct {
	MessageID string `json:"messageId"`
}

// MessageUndelivered: a receipt said the message could not be delivered.
type MessageUndelivered struct {
	MessageID string `json:"messageId"`
	Reason    string `json:"reason"`
}

// MessageReceived: an inbound message arrived through a channel.
type MessageReceived struct {
	MessageID         string      `json:"messageId"`
	ChannelID         string      `json:"channelId"`
	ScopeID           string      `json:"scopeId"`
	ScopePath         []string    `json:"scopePath"`
	ChannelType       ChannelType `json:"channelType"`
	Provider          string      `json:"provider"`
	ProviderMessageID string      `json:"providerMessageId"`
	To                string      `json:"to"`
	From              string      `json:"from"`
	Content           Content     `json:"content"`
}

// EventType implementations.
func (MessageAccepted) EventType() string    { return TypeMessageAccepted }
func (MessageReleased) EventType() string    { return TypeMessageReleased }
func (MessageCanceled) EventType() string    { return TypeMessageCanceled }
func (SendAttemptStarted) EventType() string { return TypeSendAttemptStarted }
func (SendAttemptFailed) EventType() string  { return TypeSendAttemptFailed }
func (MessageSent) EventType() string        { return TypeMessageSent }
func (MessageFailed) EventType() string      { return TypeMessageFailed }
func (MessageDelivered) EventType() string   { return TypeMessageDelivered }
func (MessageUndelivered) EventType() string { return TypeMessageUndelivered }
func (MessageReceived) EventType() string    { return TypeMessageReceived }
