package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
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

// codec encodes and decodes the module's events (every type, by a sample).
var codec = eventstore.NewCodec[domain.Event](SchemaVersion,
	domain.ChannelCreated{},
	domain.MessageAccepted{},
	domain.MessageReleased{},
	domain.MessageCanceled{},
	domain.SendAttemptStarted{},
	domain.SendAttemptFailed{},
	domain.MessageSent{},
	domain.MessageFailed{},
	domain.MessageDelivered{},
	domain.MessageUndelivered{},
	domain.MessageReceived{},
)

// encode wraps a domain event in the store's envelope.
func encode(ctx context.Context, gen ids.Generator, ev domain.Event, now time.Time) (eventstore.Event, error) {
	return codec.Encode(ctx, gen, ev, now)
}

// decode turns a stored event back into a recorded domain event.
func decode(e eventstore.Event) (domain.Recorded, error) {
	ev, err := codec.Decode(e)
	if err != nil {
		return domain.Recorded{}, err
	}
	return domain.Recorded{Event: ev, Version: e.Version, OccurredAt: e.OccurredAt}, nil
}

// marshal encodes v as JSON without HTML escaping: the same JSON as
// json.Marshal, but "<", ">" and "&" take one byte instead of six, so that a
// message with 64 KiB of HTML content stays well within the store's item and
// outbox payload limits (with control characters refused by the domain, a
// message's JSON is at most about twice its content).
func marshal(v any) ([]byte, error) { return eventstore.MarshalJSON(v) }
