package auth

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
)

// DefaultKeyCacheTTL is how long a Lambda instance trusts an API key record
// it read. It bounds how long a revocation or a role change takes to reach
// the other instances (the instance that made the change serves the new
// record at once).
const DefaultKeyCacheTTL = 10 * time.Second

// CachedResolver caches found API key records in memory for TTL, so that a
// hot key costs one store read per instance per TTL instead of one per
// request. Unknown keys are never cached (a key issued a moment ago is found
// at once; its resolver reads eventually consistent and retries a miss
// strongly consistent). Safe for concurrent use.
//
// Revocation semantics: a revoked or changed key stops working (or takes its
// new roles) at once on the instance that served the change and within TTL
// on every other instance. When Resolver is a KeyChangeSource (the tenancy
// module's resolver is), the cache subscribes to it on first use and puts
// the records each commit of this instance wrote in place of what it holds
// (Update), so the next call neither uses the old record nor reads a replica
// that may not have the write yet; a read that was under way during the
// change is returned but not cached. Invalidate drops a record instead.
type CachedResolver struct {
	Resolver   APIKeyResolver
	TTL        time.Duration // default DefaultKeyCacheTTL
	Clock      clock.Clock   // default clock.System
	MaxEntries int           // default 10,000; a full cache drops an arbitrary entry

	subscribe sync.Once
	mu        sync.Mutex
	m         map[string]cachedKey
	// changes counts Update and Invalidate calls: a read that saw it move
	// may have read an older record than the one the change wrote.
	changes uint64
}

type cachedKey struct {
	rec     APIKeyRecord
	expires time.Time
}

var (
	_ APIKeyResolver = (*CachedResolver)(nil)
	_ UsageRecorder  = (*CachedResolver)(nil)
)

// ResolveAPIKey implements APIKeyResolver.
func (c *CachedResolver) ResolveAPIKey(ctx context.Context, keyID string) (APIKeyRecord, error) {
	c.subscribe.Do(c.subscribeToChanges)
	now := c.now()
	c.mu.Lock()
	if e, ok := c.m[keyID]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.rec, nil
	}
	changes := c.changes
	c.mu.Unlock()
	rec, err := c.Resolver.ResolveAPIKey(ctx, keyID)
	if err != nil {
		return rec, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changes != changes {
		return rec, nil // a change committed here meanwhile: do not keep what may predate it
	}
	c.put(keyID, rec, now)
	return rec, nil
}

// RecordAPIKeyUse implements UsageRecorder by handing the use to Resolver
// when it records uses.
func (c *CachedResolver) RecordAPIKeyUse(ctx context.Context, rec APIKeyRecord) {
	if u, ok := c.Resolver.(UsageRecorder); ok {
		u.RecordAPIKeyUse(ctx, rec)
	}
}

// Update puts records that changed on this instance (as its commit wrote
// them) in the cache, in place of what it holds: the new roles, or the
// revocation, apply to the next call. Records of keys it did not hold are
// added too: a replica read could still return the record from before the
// change.
func (c *CachedResolver) Update(recs ...APIKeyRecord) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changes++
	for _, rec := range recs {
		if rec.KeyID != "" {
			c.put(rec.KeyID, rec, now)
		}
	}
}

// Invalidate drops keyID from this instance's cache.
func (c *CachedResolver) Invalidate(keyID string) {
	c.mu.Lock()
	c.changes++
	delete(c.m, keyID)
	c.mu.Unlock()
}

// subscribeToChanges makes the cache follow the changes of its resolver.
func (c *CachedResolver) subscribeToChanges() {
	if src, ok := c.Resolver.(KeyChangeSource); ok {
		src.SubscribeKeyChanges(func(recs []APIKeyRecord) { c.Update(recs...) })
	}
}

// put caches rec under keyID; c.mu is held.
func (c *CachedResolver) put(keyID string, rec APIKeyRecord, now time.Time) {
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultKeyCacheTTL
	}
	limit := c.MaxEntries
	if limit <= 0 {
		limit = 10_000
	}
	if c.m == nil {
		c.m = make(map[string]cachedKey)
	}
	if _, ok := c.m[keyID]; !ok && len(c.m) >= limit {
		c.evict(now)
	}
	c.m[keyID] = cachedKey{rec: rec, expires: now.Add(ttl)}
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

func (c *CachedResolver) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}
