package eventstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

type testEvent interface{ EventType() string }

type created struct {
	ID   string `json:"id"`
	HTML string `json:"html"`
}

func (created) EventType() string { return "test.created" }

type renamed struct {
	Name string `json:"name"`
}

func (renamed) EventType() string { return "test.renamed" }

type unregistered struct{}

func (unregistered) EventType() string { return "test.unregistered" }

func TestCodec(t *testing.T) {
	c := eventstore.NewCodec[testEvent](2, created{}, renamed{})
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	gen := ids.NewSequence(now)
	for _, ev := range []testEvent{created{ID: "x", HTML: "<b>&</b>"}, renamed{Name: "n"}} {
		e, err := c.Encode(context.Background(), gen, ev, now)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != ev.EventType() || e.SchemaVersion != 2 || !e.OccurredAt.Equal(now) || !ids.Valid(ids.Event, e.ID) {
			t.Fatalf("envelope %+v", e)
		}
		if strings.Contains(string(e.Data), `\u003c`) {
			t.Errorf("data %s is HTML-escaped", e.Data)
		}
		got, err := c.Decode(e)
		if err != nil || got != ev {
			t.Fatalf("Decode(Encode(%+v)) = %+v, %v", ev, got, err)
		}
	}
	if _, err := c.Encode(context.Background(), gen, unregistered{}, now); err == nil {
		t.Error("an unregistered type was encoded")
	}
	for _, bad := range []eventstore.Event{
		{Type: "test.unknown", SchemaVersion: 2, Data: []byte(`{}`)},
		{Type: "test.created", SchemaVersion: 3, Data: []byte(`{}`)},
		{Type: "test.created", SchemaVersion: 2, Data: []byte(`{"id":1}`)},
	} {
		if _, err := c.Decode(bad); err == nil {
			t.Errorf("Decode(%+v) took it", bad)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a type registered twice did not panic")
		}
	}()
	eventstore.NewCodec[testEvent](1, created{}, created{})
}
