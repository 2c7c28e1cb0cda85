package ids_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

func TestNewHasPrefixAndULID(t *testing.T) {
	g := ids.NewULIDs()
	for _, prefix := range []string{ids.Tenant, ids.Scope, ids.ServiceAccount, ids.APIKey, ids.Channel,
		ids.Message, ids.Subscription, ids.Event, ids.Delivery, ids.Invocation, ids.Work} {
		id := g.New(prefix)
		rest, ok := strings.CutPrefix(id, prefix+"_")
		if !ok {
			t.Fatalf("New(%q) = %q, want prefix %q", prefix, id, prefix+"_")
		}
		if len(rest) != 26 {
			t.Fatalf("New(%q) = %q: ULID part has %d chars, want 26", prefix, id, len(rest))
		}
		if !ids.Valid(prefix, id) || !ids.ValidULID(rest) {
			t.Fatalf("New(%q) = %q is not Valid", prefix, id)
		}
		if strings.ToUpper(rest) != rest {
			t.Fatalf("New(%q) = %q is not upper case", prefix, id)
		}
	}
}

func TestNewIsMonotonic(t *testing.T) {
	g := ids.NewULIDs()
	const n = 10000
	out := make([]string, n)
	for i := range out {
		out[i] = g.New(ids.Event)
	}
	for i := 1; i < n; i++ {
		if out[i] <= out[i-1] {
			t.Fatalf("id %d %q does not sort after id %d %q", i, out[i], i-1, out[i-1])
		}
	}
}

func TestNewConcurrent(t *testing.T) {
	g := ids.NewULIDs()
	const workers, each = 8, 1000
	results := make([][]string, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]string, each)
			for i := range mine {
				mine[i] = g.New(ids.Message)
			}
			results[w] = mine
		}()
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for _, mine := range results {
		// Each goroutine's own ids are still in creation order.
		if !slices.IsSorted(mine) {
			t.Fatal("one goroutine's ids are not sorted")
		}
		for _, id := range mine {
			if seen[id] {
				t.Fatalf("duplicate id %q", id)
			}
			if !ids.Valid(ids.Message, id) {
				t.Fatalf("invalid id %q", id)
			}
			seen[id] = true
		}
	}
}

func TestValid(t *testing.T) {
	const ulid = "01J9Z3K6X5YB2W1Q0V8N4M7R2T"
	tests := []struct {
		prefix, s string
		want      bool
	}{
		{ids.Tenant, "tnt_" + ulid, true},
		{ids.Tenant, "tnt_00000000000000000000000000", true},
		{ids.Tenant, "tnt_7ZZZZZZZZZZZZZZZZZZZZZZZZZ", true}, // the largest ULID
		{ids.Tenant, "scp_" + ulid, false},                   // another type
		{ids.Tenant, "tn_" + ulid, false},
		{ids.Tenant, "tnt" + ulid, false},
		{ids.Tenant, "tnt-" + ulid, false},
		{ids.Tenant, "TNT_" + ulid, false},
		{ids.Tenant, ulid, false},
		{ids.Tenant, "tnt_" + strings.ToLower(ulid), false}, // not the canonical spelling
		{ids.Tenant, "tnt_01J9Z3K6X5YB2W1Q0V8N4M7r2T", false},
		{ids.Tenant, "tnt_" + ulid[:25], false},
		{ids.Tenant, "tnt_" + ulid + "0", false},
		{ids.Tenant, "tnt_" + ulid + "_", false},
		{ids.Tenant, " tnt_" + ulid, false},
		{ids.Tenant, "tnt_01J9Z3K6X5YB2W1Q0V8N4M7R2U", false}, // U is not Crockford base32
		{ids.Tenant, "tnt_01J9Z3K6X5YB2W1Q0V8N4M7R2!", false},
		{ids.Tenant, "tnt_81J9Z3K6X5YB2W1Q0V8N4M7R2T", false}, // overflows 128 bits
		{ids.Tenant, "tnt_", false},
		{ids.Tenant, "", false},
		{"", "_" + ulid, true},
	}
	for _, tt := range tests {
		if got := ids.Valid(tt.prefix, tt.s); got != tt.want {
			t.Errorf("Valid(%q, %q) = %v, want %v", tt.prefix, tt.s, got, tt.want)
		}
	}
}

func TestValidULID(t *testing.T) {
	const ulid = "01J9Z3K6X5YB2W1Q0V8N4M7R2T"
	tests := []struct {
		s    string
		want bool
	}{
		{ulid, true},
		// Client ULIDs (X-Action-Id): the ULID spec is case-insensitive.
		{strings.ToLower(ulid), true},
		{"tnt_" + ulid, false},
		{ulid[:25], false},
		{ulid + "A", false},
		{"01J9Z3K6X5YB2W1Q0V8N4M7R2U", false},
		{"01J9Z3K6X5YB2W1Q0V8N4M7R-T", false},
		{"81J9Z3K6X5YB2W1Q0V8N4M7R2T", false},
		{"not-a-ulid-at-all-not-a-ul", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ids.ValidULID(tt.s); got != tt.want {
			t.Errorf("ValidULID(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestTimeRoundTrip(t *testing.T) {
	at := time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)
	id := ids.NewSequence(at).New(ids.Tenant)
	got, err := ids.Time(id)
	if err != nil {
		t.Fatalf("Time(%q): %v", id, err)
	}
	if !got.Equal(at) {
		t.Fatalf("Time(%q) = %v, want %v", id, got, at)
	}
	// ULIDs keep milliseconds: finer precision is truncated.
	got, err = ids.Time(ids.NewSequence(at.Add(999 * time.Microsecond)).New(ids.Tenant))
	if err != nil || !got.Equal(at) {
		t.Fatalf("Time of an id made at %v = (%v, %v), want %v", at.Add(999*time.Microsecond), got, err, at)
	}
	// A bare ULID works too.
	if got, err := ids.Time(strings.TrimPrefix(id, "tnt_")); err != nil || !got.Equal(at) {
		t.Fatalf("Time(bare ULID) = (%v, %v), want %v", got, err, at)
	}

	before := time.Now().Truncate(time.Millisecond)
	id = ids.NewULIDs().New(ids.Work)
	after := time.Now()
	got, err = ids.Time(id)
	if err != nil {
		t.Fatalf("Time(%q): %v", id, err)
	}
	if got.Before(before) || got.After(after) {
		t.Fatalf("Time(%q) = %v, want within [%v, %v]", id, got, before, after)
	}

	for _, bad := range []string{"", "tnt_", "tnt_garbage", "tnt_01J9Z3K6X5YB2W1Q0V8N4M7R2U"} {
		if _, err := ids.Time(bad); err == nil {
			t.Errorf("Time(%q) succeeded, want an error", bad)
		}
	}
}

func TestSequenceIsDeterministic(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	a, b := ids.NewSequence(at), ids.NewSequence(at)
	var prev string
	for i := 0; i < 1000; i++ {
		x, y := a.New(ids.Scope), b.New(ids.Scope)
		if x != y {
			t.Fatalf("step %d: %q != %q from two sequences at the same time", i, x, y)
		}
		if !ids.Valid(ids.Scope, x) {
			t.Fatalf("Sequence id %q is not Valid", x)
		}
		if x <= prev {
			t.Fatalf("Sequence id %q does not sort after %q", x, prev)
		}
		if tm, err := ids.Time(x); err != nil || !tm.Equal(at) {
			t.Fatalf("Time(%q) = (%v, %v), want %v", x, tm, err, at)
		}
		prev = x
	}
	// The counter is shared across prefixes: no two ids of one sequence collide.
	s := ids.NewSequence(at)
	t1, s1 := s.New(ids.Tenant), s.New(ids.Scope)
	if strings.TrimPrefix(t1, "tnt_") == strings.TrimPrefix(s1, "scp_") {
		t.Fatalf("ids %q and %q share their ULID", t1, s1)
	}
}

func TestGeneratorsImplementGenerator(t *testing.T) {
	for _, g := range []ids.Generator{ids.NewULIDs(), ids.NewSequence(time.Unix(0, 0))} {
		if id := g.New(ids.Channel); !ids.Valid(ids.Channel, id) {
			t.Fatalf("%T.New = %q, not Valid", g, id)
		}
	}
}

func TestDerive(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123_000_000, time.UTC)
	a := ids.Derive(ids.Delivery, at, "tnt_1", "sub_1", "evt_1")
	if !ids.Valid(ids.Delivery, a) {
		t.Fatalf("Derive = %q, not a valid delivery id", a)
	}
	if b := ids.Derive(ids.Delivery, at, "tnt_1", "sub_1", "evt_1"); b != a {
		t.Fatalf("Derive is not deterministic: %q, %q", a, b)
	}
	if got, err := ids.Time(a); err != nil || !got.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("Time(%q) = %v, %v; want %v", a, got, err, at)
	}
	seen := map[string]bool{a: true}
	for _, parts := range [][]string{
		{"tnt_1", "sub_1", "evt_2"},
		{"tnt_2", "sub_1", "evt_1"},
		{"tnt_1", "sub_2", "evt_1"},
		{"tnt_1", "sub_1evt_1", ""}, // joined differently: not the same key
		{"tnt_1sub_1", "evt_1"},
	} {
		id := ids.Derive(ids.Delivery, at, parts...)
		if seen[id] {
			t.Fatalf("Derive(%q) = %q, the id of another key", parts, id)
		}
		seen[id] = true
	}
	// Times outside the ULID range still give a valid id.
	for _, tm := range []time.Time{{}, time.Unix(-5, 0)} {
		if id := ids.Derive(ids.Delivery, tm, "x"); !ids.Valid(ids.Delivery, id) {
			t.Fatalf("Derive at %v = %q, not valid", tm, id)
		}
	}
}
