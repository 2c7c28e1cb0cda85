package tenantres

import (
	"context"
	"sync"
)

// Static is a Resolver over an in-memory map, for tests and tools: Set and
// Delete change it at once (a deploy that writes or deletes a parameter).
// Local mode wires no resolver at all (no tenant has dedicated resources; a
// siloed tenant is active at once), which is not an empty Static (with which
// a siloed tenant would wait for resources that never come). Safe for
// concurrent use. The zero value is empty and ready.
type Static struct {
	mu sync.RWMutex
	m  map[string]Resources
}

var _ Resolver = (*Static)(nil)

// NewStatic returns a resolver answering m (copied; nil: none).
func NewStatic(m map[string]Resources) *Static {
	s := &Static{}
	for id, r := range m {
		s.Set(id, r)
	}
	return s
}

// Set publishes r for tenantID; Found is set for it.
func (s *Static) Set(tenantID string, r Resources) {
	r.Found = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]Resources)
	}
	s.m[tenantID] = r
}

// Delete removes tenantID's resources.
func (s *Static) Delete(tenantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, tenantID)
}

// Resources implements Resolver: what was Set, or not found.
func (s *Static) Resources(_ context.Context, tenantID string) (Resources, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[tenantID], nil
}
