package adapters

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// SchemaVersion is the schema version of every messaging event written today.
const SchemaVersion = 1

// Stream id prefixes. Persisted.
const (
	channelStreamPrefix = "channel-"
	messageStreamPrefix = "message-"
)

// ChannelStream is the stream of a channel.
func ChannelStream(channelID string) string { return channelStreamPrefix + channelID }

// MessageStream is the stream of a message.
func MessageStream(messageID string) string { return messageStreamPrefix + messageID }

// messageIDOf returns the message an event belongs to ("" for a channel event).
func messageIDOf(ev domain.Event) string {
	switch e := ev.(type) {
	case domain.MessageAccepted:
		return e.MessageID
	case domain.MessageReleased:
		return e.MessageID
	case domain.MessageCanceled:
		return e.MessageID
	case domain.SendAttemptStarted:
		return e.MessageID
	case domain.SendAttemptFailed:
		return e.MessageID
	case domain.MessageSent:
		return e.MessageID
	case domain.MessageFailed:
		return e.MessageID
	case domain.MessageDelivered:
		return e.MessageID
	case domain.MessageUndelivered:
		return e.MessageID
	case domain.MessageReceived:
		return e.MessageID
	}
	return ""
}

// streamOf names the stream an event belongs to.
func streamOf(ev domain.Event) (string, error) {
	if e, ok := ev.(domain.ChannelCreated); ok {
		return ChannelStream(e.ChannelID), nil
	}
	if id := messageIDOf(ev); id != "" {
		return MessageStream(id), nil
	}
	return "", fmt.Errorf("stream of %T: unknown event or no id", ev)
}

// encode wraps a domain event in the store's envelope.
func encode(ctx context.Context, gen ids.Generator, ev domain.Event, now time.Time) (eventstore.Event, error) {
	data, err := marshal(ev)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
	}
	return eventstore.Event{
		ID:            gen.New(ids.Event),
		Type:          ev.EventType(),
		SchemaVersion: SchemaVersion,
		OccurredAt:    now,
		Invocation:    invocation.From(ctx).Meta(),
		Data:          data,
	}, nil
}

// decode turns a stored event back into a domain event. Unknown types and
// schema versions are errors: a reader older than the writer must not guess.
func decode(e eventstore.Event) (domain.Recorded, error) {
	if e.SchemaVersion != SchemaVersion {
		return domain.Recorded{}, fmt.Errorf("decode %s %s: unknown schema version %d", e.StreamID, e.Type, e.SchemaVersion)
	}
	var ev domain.Event
	var err error
	switch e.Type {
	case domain.TypeChannelCreated:
		ev, err = unmarshal[domain.ChannelCreated](e.Data)
	case domain.TypeMessageAccepted:
		ev, err = unmarshal[domain.MessageAccepted](e.Data)
	case domain.TypeMessageReleased:
		ev, err = unmarshal[domain.MessageReleased](e.Data)
	case domain.TypeMessageCanceled:
		ev, err = unmarshal[domain.MessageCanceled](e.Data)
	case domain.TypeSendAttemptStarted:
		ev, err = unmarshal[domain.SendAttemptStarted](e.Data)
	case domain.TypeSendAttemptFailed:
		ev, err = unmarshal[domain.SendAttemptFailed](e.Data)
	case domain.TypeMessageSent:
		ev, err = unmarshal[domain.MessageSent](e.Data)
	case domain.TypeMessageFailed:
		ev, err = unmarshal[domain.MessageFailed](e.Data)
	case domain.TypeMessageDelivered:
		ev, err = unmarshal[domain.MessageDelivered](e.Data)
	case domain.TypeMessageUndelivered:
		ev, err = unmarshal[domain.MessageUndelivered](e.Data)
	case domain.TypeMessageReceived:
		ev, err = unmarshal[domain.MessageReceived](e.Data)
	default:
		return domain.Recorded{}, fmt.Errorf("decode %s v%d: unknown type %q", e.StreamID, e.Version, e.Type)
	}
	if err != nil {
		return domain.Recorded{}, fmt.Errorf("decode %s v%d %s: %w", e.StreamID, e.Version, e.Type, err)
	}
	return domain.Recorded{Event: ev, Version: e.Version, OccurredAt: e.OccurredAt}, nil
}

func unmarshal[T domain.Event](data []byte) (domain.Event, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// marshal encodes v as JSON without HTML escaping: the same JSON as
// json.Marshal, but "<", ">" and "&" take one byte instead of six, so that a
// message with 64 KiB of HTML content stays well within the store's item and
// outbox payload limits (with control characters refused by the domain, a
// message's JSON is at most about twice its content).
func marshal(v any) ([]byte, error) { return eventstore.MarshalJSON(v) }
