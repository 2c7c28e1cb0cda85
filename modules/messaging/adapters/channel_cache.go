package adapters

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// Channel cache.
//
// Every message reads its channel several times: send-message reads the
// channel's row, the dispatch and the provider's receipt rebuild the channel
// from its stream, and the receipt route resolves the channel's tenant from
// its global route row. On DynamoDB those are reads of one partition per
// channel, the same for every message sent through it: a channel would be
// capped near 1,500 messages/s by reads alone (3,000 RCU/s per partition),
// and they cost read units and time on every step.
//
// A channel does not change after its creation (its stream holds
// messaging.channel-created alone), so a copy read a moment ago is the
// channel. ChannelCache keeps such copies in process memory for TTL (each
// Lambda instance its own), at most Max of them. A lookup that fails (not
// found: the channel may be created a moment later) is not kept. A command
// that changes a channel, when there is one, must call Forget after its
// commit; the TTL bounds what another instance may see meanwhile.
type ChannelCache struct {
	clock clock.Clock
	ttl   time.Duration
	max   int

	mu    sync.Mutex
	items map[string]cachedChannel
}

type cachedChannel struct {
	at time.Time
	v  any // *domain.Channel, app.ChannelView or the tenant id (string)
}

// Defaults of NewChannelCache.
const (
	DefaultChannelCacheTTL = time.Minute
	DefaultChannelCacheMax = 10_000
)

// NewChannelCache returns an empty cache (ttl, max <= 0: the defaults).
func NewChannelCache(clk clock.Clock, ttl time.Duration, max int) *ChannelCache {
	if clk == nil {
		clk = clock.System{}
	}
	if ttl <= 0 {
		ttl = DefaultChannelCacheTTL
	}
	if max <= 0 {
		max = DefaultChannelCacheMax
	}
	return &ChannelCache{clock: clk, ttl: ttl, max: max, items: map[string]cachedChannel{}}
}

// Forget drops what the cache holds of a channel of the tenant.
func (c *ChannelCache) Forget(tenantID, channelID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, "c\x00"+tenantID+"\x00"+channelID)
	delete(c.items, "v\x00"+tenantID+"\x00"+channelID)
	delete(c.items, "t\x00"+channelID)
}

// get returns the value under key, loading (and keeping) it when absent or
// older than the TTL.
func (c *ChannelCache) get(key string, load func() (any, error)) (any, error) {
	now := c.clock.Now()
	c.mu.Lock()
	if e, ok := c.items[key]; ok && now.Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return e.v, nil
	}
	c.mu.Unlock()
	v, err := load()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		for k := range c.items { // any one: Go's map order is random
			delete(c.items, k)
			break
		}
	}
	c.items[key] = cachedChannel{at: now, v: v}
	return v, nil
}

// CachedRepository is a Repository whose Channel goes through a ChannelCache.
type CachedRepository struct {
	app.Repository
	Cache *ChannelCache
}

// Channel implements app.Repository. The caller gets its own copy of the
// channel struct (its maps and slices are shared and never changed).
func (r CachedRepository) Channel(ctx context.Context, tenantID, channelID string) (*domain.Channel, error) {
	v, err := r.Cache.get("c\x00"+tenantID+"\x00"+channelID, func() (any, error) {
		return r.Repository.Channel(ctx, tenantID, channelID)
	})
	if err != nil {
		return nil, err
	}
	ch := *v.(*domain.Channel)
	return &ch, nil
}

// CachedReadModel is a ReadModel whose channel lookups go through a
// ChannelCache.
type CachedReadModel struct {
	app.ReadModel
	Cache *ChannelCache
}

// ChannelByID implements app.ReadModel.
func (r CachedReadModel) ChannelByID(ctx context.Context, tenantID, channelID string) (app.ChannelView, error) {
	v, err := r.Cache.get("v\x00"+tenantID+"\x00"+channelID, func() (any, error) {
		return r.ReadModel.ChannelByID(ctx, tenantID, channelID)
	})
	if err != nil {
		return app.ChannelView{}, err
	}
	return v.(app.ChannelView), nil
}

// ChannelTenant implements app.ReadModel.
func (r CachedReadModel) ChannelTenant(ctx context.Context, channelID string) (string, error) {
	v, err := r.Cache.get("t\x00"+channelID, func() (any, error) {
		return r.ReadModel.ChannelTenant(ctx, channelID)
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// ListMessagesIn implements app.VisibleMessages when the wrapped read model
// does (the merge reads no channel).
func (r CachedReadModel) ListMessagesIn(ctx context.Context, tenantID string, scopeIDs []string, status domain.Status, limit int, cursor string) ([]app.MessageView, string, error) {
	v, ok := r.ReadModel.(app.VisibleMessages)
	if !ok {
		return nil, "", fmt.Errorf("list messages: the read model cannot merge scopes")
	}
	return v.ListMessagesIn(ctx, tenantID, scopeIDs, status, limit, cursor)
}
