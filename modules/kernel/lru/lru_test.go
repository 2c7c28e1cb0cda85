package lru_test

import (
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/lru"
)

// The least recently used entry goes first; Get and Put mark an entry used.
func TestCache(t *testing.T) {
	c := lru.New[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("a = %d %v", v, ok)
	}
	c.Put("c", 3) // drops b
	if _, ok := c.Get("b"); ok {
		t.Fatal("b kept")
	}
	c.Put("a", 10) // update, no drop
	if v, _ := c.Get("a"); v != 10 || c.Len() != 2 {
		t.Fatalf("a = %d, len %d", v, c.Len())
	}
	c.Remove("a")
	if _, ok := c.Get("a"); ok || c.Len() != 1 {
		t.Fatal("remove")
	}
	if z := lru.New[int, int](0); z == nil {
		t.Fatal("nil")
	} else {
		z.Put(1, 1)
		z.Put(2, 2)
		if z.Len() != 1 {
			t.Fatalf("a cache of max 0 holds %d", z.Len())
		}
	}
}
