package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// DomainEvent is what a module's domain events have in common: a stable,
// persisted type name.
type DomainEvent interface{ EventType() string }

// Codec turns the domain events of one module (E, its event interface) into
// the store's envelope and back. Every type is registered once, by a sample
// value; decoding an unknown type or another schema version is an error (a
// reader older than the writer must not guess). Safe for concurrent use once
// built.
type Codec[E DomainEvent] struct {
	schema int
	types  map[string]reflect.Type
}

// NewCodec returns the codec of the event types of samples (one value of
// each, e.g. domain.ChannelCreated{}), written at schemaVersion. A sample
// that is not an E, or two samples of one type name, panic (a wiring bug).
func NewCodec[E DomainEvent](schemaVersion int, samples ...E) *Codec[E] {
	c := &Codec[E]{schema: schemaVersion, types: make(map[string]reflect.Type, len(samples))}
	for _, s := range samples {
		name := s.EventType()
		if _, dup := c.types[name]; dup {
			panic(fmt.Sprintf("eventstore: event type %q registered twice", name))
		}
		c.types[name] = reflect.TypeOf(s)
	}
	return c
}

// Encode wraps ev in the store's envelope: a new event id, its type, the
// codec's schema version, now, the invocation of ctx, and ev as JSON without
// HTML escaping (MarshalJSON).
func (c *Codec[E]) Encode(ctx context.Context, gen ids.Generator, ev E, now time.Time) (Event, error) {
	if _, ok := c.types[ev.EventType()]; !ok {
		return Event{}, fmt.Errorf("encode %s: unregistered event type", ev.EventType())
	}
	data, err := MarshalJSON(ev)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
	}
	return Event{
		ID: gen.New(ids.Event), Type: ev.EventType(), SchemaVersion: c.schema, OccurredAt: now,
		Invocation: invocation.From(ctx).Meta(), Data: data,
	}, nil
}

// Decode returns the domain event of a stored one.
func (c *Codec[E]) Decode(e Event) (E, error) {
	var zero E
	if e.SchemaVersion != c.schema {
		return zero, fmt.Errorf("decode %s %s: unknown schema version %d", e.StreamID, e.Type, e.SchemaVersion)
	}
	t, ok := c.types[e.Type]
	if !ok {
		return zero, fmt.Errorf("decode %s v%d: unknown type %q", e.StreamID, e.Version, e.Type)
	}
	p := reflect.New(t)
	if err := json.Unmarshal(e.Data, p.Interface()); err != nil {
		return zero, fmt.Errorf("decode %s v%d %s: %w", e.StreamID, e.Version, e.Type, err)
	}
	return p.Elem().Interface().(E), nil
}

// ReadDecoded reads a whole stream, oldest first, and turns each event into
// the module's recorded form with decode (a Codec's Decode with the
// envelope's version and time, as each module keeps them).
func ReadDecoded[R any](ctx context.Context, store StreamReader, tenantID, stream string, decode func(Event) (R, error)) ([]R, error) {
	evs, err := store.ReadStream(ctx, tenantID, stream, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	out := make([]R, 0, len(evs))
	for _, e := range evs {
		rec, err := decode(e)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}
