package work

import (
	"fmt"
	"sort"
	"sync"
)

// table maps stable names to values (handlers, jobs). It is filled at wiring
// time and read-only afterwards; a name added twice panics (a wiring bug,
// found by every test that builds the app).
type table[T any] struct {
	kind string // "type", "job": for the panic message
	mu   sync.RWMutex
	m    map[string]T
}

func newTable[T any](kind string) table[T] { return table[T]{kind: kind, m: map[string]T{}} }

func (t *table[T]) add(name string, v T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.m[name]; dup {
		panic(fmt.Sprintf("work: %s %q registered twice", t.kind, name))
	}
	t.m[name] = v
}

func (t *table[T]) get(name string) (T, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v, ok := t.m[name]
	return v, ok
}

func (t *table[T]) names() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.m))
	for n := range t.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
