package auth

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
)

// DefaultKeyCacheTTL is how long a Lambda instance trusts an API key record
// it read. It bounds how long a revocation or a role change takes to reach
// the other instances (the instance that made the change invalidates its own
// entry at once).
const DefaultKeyCacheTTL = 10 * time.Second

// CachedResolver caches found API key records in memory for TTL, so that a
// hot key costs one store read per instance per TTL instead of one per
// request. Unknown keys are never cached (a key issued a moment ago is found
// at once; its resolver reads eventually consistent and retries a miss
// strongly consistent). Safe for concurrent use.
//
// Revocation semantics: a revoked or changed key stops working (or takes its
// new roles) at once on the instance that served the change (Invalidate) and
// within TTL on every other instance.
type CachedResolver struct {
	Resolver   APIKeyResolver
	TTL        time.Duration // default DefaultKeyCacheTTL
	Clock      clock.Clock   // default clock.System
	MaxEntries int           // default 10,000; a full cache drops an arbitrary entry

	mu sync.Mutex
	m  map[string]cachedKey
}

type cachedKey struct {
	rec     APIKeyRecord
	expires time.Time
}

var _ APIKeyResolver = (*CachedResolver)(nil)

// ResolveAPIKey implements APIKeyResolver.
func (c *CachedResolver) ResolveAPIKey(ctx context.Context, keyID string) (APIKeyRecord, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.m[keyID]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.rec, nil
	}
	c.mu.Unlock()
	rec, err := c.Resolver.ResolveAPIKey(ctx, keyID)
	if err != nil {
		return rec, err
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultKeyCacheTTL
	}
	limit := c.MaxEntries
	if limit <= 0 {
		limit = 10_000
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]cachedKey)
	}
	if _, ok := c.m[keyID]; !ok && len(c.m) >= limit {
		c.evict(now)
	}
	c.m[keyID] = cachedKey{rec: rec, expires: now.Add(ttl)}
	return rec, nil
}

// evict makes room: it drops the expired entries, else one arbitrary entry.
func (c *CachedResolver) evict(now time.Time) {
	before := len(c.m)
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
		}
	}
	if len(c.m) < before {
		return
	}
	for k := range c.m {
		delete(c.m, k)
		return
	}
}

// Invalidate drops keyID from this instance's cache (after revoking it or
// changing its roles here).
func (c *CachedResolver) Invalidate(keyID string) {
	c.mu.Lock()
	delete(c.m, keyID)
	c.mu.Unlock()
}

func (c *CachedResolver) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}
