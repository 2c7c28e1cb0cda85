package cedarauthz

import (
	"slices"
	"sync"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// maxCached bounds each cache below; a full cache starts over.
const maxCached = 4096

// maxCachedPath is the deepest scope path whose set is cached (scopes nest
// without a limit; a deeper one is built per decision).
const maxCachedPath = 64

// caches keep what a request builds from values that do not change between
// requests, so that the request path does not build them again: a
// principal's tags (its bindings, the same until a role changes) and a
// path's set of scopes (a scope never moves). An entry is used only when it
// was built from equal input, so a stale one is never used; entities built
// from them are immutable and shared by concurrent requests.
type caches struct {
	mu     sync.RWMutex
	tags   map[string]cachedTags     // by principal id
	scopes map[string]cachedScopeSet // by the path's last scope id
}

type cachedTags struct {
	roles []invocation.RoleBinding
	tags  types.Record
	ok    bool
}

type cachedScopeSet struct {
	path []string
	set  types.EntityUIDSet
}

func newCaches() *caches {
	return &caches{tags: map[string]cachedTags{}, scopes: map[string]cachedScopeSet{}}
}

// principalTags returns bindingTags(p.Roles), cached by principal.
func (c *caches) principalTags(p invocation.Principal) (types.Record, bool) {
	c.mu.RLock()
	e, hit := c.tags[p.ID]
	c.mu.RUnlock()
	if hit && slices.Equal(e.roles, p.Roles) {
		return e.tags, e.ok
	}
	tags, ok := bindingTags(p.Roles)
	c.mu.Lock()
	if len(c.tags) >= maxCached {
		clear(c.tags)
	}
	c.tags[p.ID] = cachedTags{roles: slices.Clone(p.Roles), tags: tags, ok: ok}
	c.mu.Unlock()
	return tags, ok
}

// scopeSet returns the set of the scopes of path (not empty), cached by its last scope.
func (c *caches) scopeSet(path []string) types.EntityUIDSet {
	own := path[len(path)-1]
	c.mu.RLock()
	e, hit := c.scopes[own]
	c.mu.RUnlock()
	if hit && slices.Equal(e.path, path) {
		return e.set
	}
	set := scopeSet(path)
	if len(path) > maxCachedPath {
		return set // deep paths are not kept: memory stays bounded
	}
	c.mu.Lock()
	if len(c.scopes) >= maxCached {
		clear(c.scopes)
	}
	c.scopes[own] = cachedScopeSet{path: slices.Clone(path), set: set}
	c.mu.Unlock()
	return set
}
