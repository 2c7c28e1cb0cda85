package eventstore

import (
	"bytes"
	"errors"
	"testing"
)

func TestListCursor(t *testing.T) {
	l := List{Name: "messages", Slot: 1}
	pos := []byte("01JD0000000000000000000000#msg_01JD0000000000000000000000")
	c := EncodeListCursor("tnt_a", l, "p", pos)
	if got, err := DecodeListCursor("tnt_a", l, "p", c); err != nil || !bytes.Equal(got, pos) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	if len(c) > 4*(len(pos)+9)/3+1 {
		t.Fatalf("cursor of %d characters for a position of %d bytes", len(c), len(pos))
	}
	// Slot and shards are not part of it (a migration keeps positions).
	if _, err := DecodeListCursor("tnt_a", List{Name: "messages", Slot: 2, Shards: 4}, "p", c); err != nil {
		t.Fatalf("same list name, other slot: %v", err)
	}
	// Fields do not run into each other: ("tnt_a", "messages", "p") is not
	// ("tnt_am", "essages", "p") nor ("tnt_a", "messagesp", "").
	for _, o := range []struct{ tenant, name, partition string }{
		{"tnt_am", "essages", "p"}, {"tnt_a", "messagesp", ""}, {"tnt_a", "messages", "q"}, {"tnt_b", "messages", "p"},
	} {
		if _, err := DecodeListCursor(o.tenant, List{Name: o.name, Slot: 1}, o.partition, c); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%+v: err = %v, want ErrInvalid", o, err)
		}
	}
	for _, bad := range []string{"", "_w", "AAAA", "!!", c[:12], c + "="} {
		if _, err := DecodeListCursor("tnt_a", l, "p", bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("cursor %q: err = %v, want ErrInvalid", bad, err)
		}
	}
}
