package eventstore_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

func TestTruncateLastError(t *testing.T) {
	long := strings.Repeat("é", eventstore.MaxLastError) // 2 bytes each
	cases := []struct{ in, want string }{
		{"", ""},
		{"boom", "boom"},
		{"bad \xff byte", "bad \ufffd byte"},
		{strings.Repeat("a", eventstore.MaxLastError), strings.Repeat("a", eventstore.MaxLastError)},
		{strings.Repeat("a", eventstore.MaxLastError+1), strings.Repeat("a", eventstore.MaxLastError)},
		{"x" + long, "x" + long[:eventstore.MaxLastError-2]}, // cut before a rune that would not fit
	}
	for _, c := range cases {
		got := eventstore.TruncateLastError(c.in)
		if got != c.want {
			t.Errorf("TruncateLastError(%d bytes) = %d bytes %q, want %d bytes", len(c.in), len(got), got, len(c.want))
		}
		if len(got) > eventstore.MaxLastError || !utf8.ValidString(got) {
			t.Errorf("TruncateLastError(%q) = %q: too long or not UTF-8", c.in, got)
		}
	}
}

func TestValidateLists(t *testing.T) {
	l := eventstore.List{Name: "rows", Slot: 1}
	entry := func(l eventstore.List, partition, sort string) eventstore.ListEntry {
		return eventstore.ListEntry{List: l, Partition: partition, Sort: sort}
	}
	ok := []eventstore.Record{
		{Collection: "c", Key: "k"},
		{Collection: "c", Key: "k", Lists: []eventstore.ListEntry{entry(l, "p", "s"), entry(eventstore.List{Name: "other", Slot: eventstore.MaxListSlots, Shards: 8}, "", "")}},
		{Collection: "c", Key: "k", Global: true},
		{Collection: "c", Key: "k", Delete: true},
	}
	for _, r := range ok {
		if err := eventstore.ValidateLists(r); err != nil {
			t.Errorf("ValidateLists(%+v) = %v", r, err)
		}
	}
	bad := map[string]eventstore.Record{
		"slot 0":             {Lists: []eventstore.ListEntry{entry(eventstore.List{Name: "l"}, "", "")}},
		"slot too high":      {Lists: []eventstore.ListEntry{entry(eventstore.List{Name: "l", Slot: eventstore.MaxListSlots + 1}, "", "")}},
		"empty name":         {Lists: []eventstore.ListEntry{entry(eventstore.List{Slot: 1}, "", "")}},
		"name with #":        {Lists: []eventstore.ListEntry{entry(eventstore.List{Name: "a#b", Slot: 1}, "", "")}},
		"name with NUL":      {Lists: []eventstore.ListEntry{entry(eventstore.List{Name: "a\x00b", Slot: 1}, "", "")}},
		"slot twice":         {Lists: []eventstore.ListEntry{entry(l, "", ""), entry(eventstore.List{Name: "m", Slot: 1}, "", "")}},
		"partition with NUL": {Lists: []eventstore.ListEntry{entry(l, "a\x00", "")}},
		"sort with NUL":      {Lists: []eventstore.ListEntry{entry(l, "", "\x00")}},
		"global":             {Global: true, Lists: []eventstore.ListEntry{entry(l, "", "")}},
		"delete":             {Delete: true, Lists: []eventstore.ListEntry{entry(l, "", "")}},
	}
	for name, r := range bad {
		if err := eventstore.ValidateLists(r); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: ValidateLists = %v, want ErrInvalid", name, err)
		}
	}
	if err := eventstore.ValidateList(eventstore.List{Name: "x", Slot: 0}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("ValidateList(slot 0) = %v, want ErrInvalid", err)
	}
}
