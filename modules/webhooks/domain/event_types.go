package domain

import (
	"fmt"
	"strings"
)

// Wildcard subscribes to every known event type (EventTypes), including
// types added later.
const Wildcard = "*"

// Message event types a subscription may name (contract section 6), in their
// canonical order. Persisted in subscriptions and public.
const (
	MessageQueued      = "message.queued"
	MessageSent        = "message.sent"
	MessageDelivered   = "message.delivered"
	MessageUndelivered = "message.undelivered"
	MessageFailed      = "message.failed"
	MessageCanceled    = "message.canceled"
	MessageReceived    = "message.received"
)

var eventTypes = []string{
	MessageQueued, MessageSent, MessageDelivered, MessageUndelivered, MessageFailed, MessageCanceled, MessageReceived,
}

// EventTypes returns the known event types in canonical order.
func EventTypes() []string { return append([]string(nil), eventTypes...) }

// KnownEventType reports whether t is one of EventTypes.
func KnownEventType(t string) bool {
	for _, k := range eventTypes {
		if k == t {
			return true
		}
	}
	return false
}

// ParseEventTypes checks a subscription's event types: exactly [Wildcard],
// or 1..len(EventTypes()) distinct known types. It returns them in canonical
// order. Errors: 400 errors.webhook.invalid_event_types on "eventTypes" (none
// given) or on the first bad item ("eventTypes[2]": unknown, repeated, or a
// wildcard among other types).
func ParseEventTypes(in []string) ([]string, error) {
	allowed := strings.Join(append([]string{Wildcard}, eventTypes...), ", ")
	if len(in) == 0 {
		return nil, invalid("eventTypes", CodeInvalidEventTypes, map[string]any{"allowed": allowed, "reason": "required"})
	}
	if len(in) == 1 && in[0] == Wildcard {
		return []string{Wildcard}, nil
	}
	seen := make(map[string]bool, len(in))
	for i, t := range in {
		field := fmt.Sprintf("eventTypes[%d]", i)
		switch {
		case t == Wildcard:
			return nil, invalid(field, CodeInvalidEventTypes, map[string]any{"allowed": allowed, "reason": "wildcard_alone"})
		case !KnownEventType(t):
			return nil, invalid(field, CodeInvalidEventTypes, map[string]any{"allowed": allowed, "reason": "unknown"})
		case seen[t]:
			return nil, invalid(field, CodeInvalidEventTypes, map[string]any{"allowed": allowed, "reason": "repeated"})
		}
		seen[t] = true
	}
	out := make([]string, 0, len(seen))
	for _, t := range eventTypes {
		if seen[t] {
			out = append(out, t)
		}
	}
	return out, nil
}

// MatchesEventType reports whether a subscription of types receives events of type t.
func MatchesEventType(types []string, t string) bool {
	for _, s := range types {
		if s == t || (s == Wildcard && KnownEventType(t)) {
			return true
		}
	}
	return false
}
