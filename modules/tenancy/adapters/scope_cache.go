package adapters

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
)

// Scope cache bounds.
const (
	// ScopeCacheTTL is how long a tenant's scope tree is served from memory:
	// a scope created meanwhile joins lists that read the tree within it.
	ScopeCacheTTL = 10 * time.Second
	// MaxTreeScopes bounds the scopes read for one tenant (10 pages of 100).
	MaxTreeScopes = 1000
	// scopeCacheTenants bounds the tenants cached (the oldest entry goes).
	scopeCacheTenants = 10000
)

// ScopeCache serves each tenant's scope paths (every scope, root first
// along each path) from the scopes list, read at most once per
// ScopeCacheTTL per tenant and instance.
type ScopeCache struct {
	reads *ReadModel
	clock clock.Clock

	mu sync.Mutex
	m  map[string]scopeTree
}

type scopeTree struct {
	at      time.Time
	paths   [][]string
	tooMany bool // more than MaxTreeScopes: answered authz.ErrScopeTreeTooLarge
}

// NewScopeCache returns a cache over reads.
func NewScopeCache(reads *ReadModel, clk clock.Clock) *ScopeCache {
	if clk == nil {
		clk = clock.System{}
	}
	return &ScopeCache{reads: reads, clock: clk, m: map[string]scopeTree{}}
}

// Paths returns the path of every scope of the tenant, or
// authz.ErrScopeTreeTooLarge when it has more than MaxTreeScopes (that
// answer is cached too). The caller must not change them.
func (c *ScopeCache) Paths(ctx context.Context, tenantID string) ([][]string, error) {
	now := c.clock.Now()
	c.mu.Lock()
	t, ok := c.m[tenantID]
	c.mu.Unlock()
	if ok && now.Sub(t.at) < ScopeCacheTTL {
		if t.tooMany {
			return nil, fmt.Errorf("scope tree of %s: %w", tenantID, authz.ErrScopeTreeTooLarge)
		}
		return t.paths, nil
	}
	var paths [][]string
	cursor := ""
	for {
		views, next, err := c.reads.ListScopes(ctx, tenantID, 100, cursor)
		if err != nil {
			return nil, fmt.Errorf("scope tree of %s: %w", tenantID, err)
		}
		for _, v := range views {
			paths = append(paths, v.Path)
		}
		if next == "" {
			break
		}
		if len(paths) >= MaxTreeScopes {
			c.store(tenantID, scopeTree{at: now, tooMany: true})
			return nil, fmt.Errorf("scope tree of %s: more than %d scopes: %w", tenantID, MaxTreeScopes, authz.ErrScopeTreeTooLarge)
		}
		cursor = next
	}
	c.store(tenantID, scopeTree{at: now, paths: paths})
	return paths, nil
}

// store caches t for the tenant, dropping the oldest entry when full.
func (c *ScopeCache) store(tenantID string, t scopeTree) {
	now := t.at
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= scopeCacheTenants {
		oldest, at := "", now
		for k, v := range c.m {
			if v.at.Before(at) {
				oldest, at = k, v.at
			}
		}
		delete(c.m, oldest)
	}
	c.m[tenantID] = t
}
