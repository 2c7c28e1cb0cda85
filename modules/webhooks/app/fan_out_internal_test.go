package app

import (
	"fmt"
	"slices"
	"testing"
)

// A fan-out's remaining subscriptions continue in items of at most n ids,
// every id once, in order.
func TestChunks(t *testing.T) {
	ids := make([]string, 2503)
	for i := range ids {
		ids[i] = fmt.Sprintf("sub_%d", i)
	}
	for _, tc := range []struct{ n, items, last int }{{1000, 3, 503}, {2503, 1, 2503}, {5000, 1, 2503}, {1, 2503, 1}} {
		got := chunks(ids, tc.n)
		if len(got) != tc.items || len(got[len(got)-1]) != tc.last {
			t.Fatalf("chunks(%d ids, %d) = %d items, the last of %d; want %d, %d", len(ids), tc.n, len(got), len(got[len(got)-1]), tc.items, tc.last)
		}
		var all []string
		for _, c := range got {
			if len(c) > tc.n {
				t.Fatalf("a chunk of %d ids, more than %d", len(c), tc.n)
			}
			all = append(all, c...)
		}
		if !slices.Equal(all, ids) {
			t.Fatalf("chunks(%d) do not give the ids back in order", tc.n)
		}
	}
	if got := chunks(nil, 10); len(got) != 0 {
		t.Fatalf("chunks(nil) = %v", got)
	}
	// A chunk cannot grow into the next one's ids.
	got := chunks(ids[:4], 2)
	_ = append(got[0], "x")
	if got[1][0] != "sub_2" {
		t.Fatal("appending to a chunk overwrote the next one")
	}
}
