package adapters

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
)

// RoleCacheTTL is how long an instance evaluates a tenant's roles as it last
// read them: a role created on another instance is granted here within it;
// on the instance that created it, at once (RoleCache.Publish).
const RoleCacheTTL = 10 * time.Second

// maxCachedTenants bounds the cache; a full cache starts over.
const maxCachedTenants = 4096

// RoleCache is the authorizer's source of tenant roles (authz.RoleSource):
// one read of a tenant's roles list per TTL per instance, asked only for
// principals that hold a tenant role. Safe for concurrent use.
type RoleCache struct {
	reads *ReadModel
	clock clock.Clock

	mu      sync.Mutex
	tenants map[string]*cachedRoles
}

type cachedRoles struct {
	set     authz.RoleSet
	fetched time.Time // zero: reload before use (only published roles known)
	// published are the roles this instance created since the last read:
	// merged into the next read, whose list may not show them yet.
	published []authz.TenantRole
}

var _ authz.RoleSource = (*RoleCache)(nil)

// NewRoleCache returns the role cache over reads.
func NewRoleCache(reads *ReadModel, clk clock.Clock) *RoleCache {
	return &RoleCache{reads: reads, clock: clk, tenants: map[string]*cachedRoles{}}
}

// TenantRoles implements authz.RoleSource.
func (c *RoleCache) TenantRoles(ctx context.Context, tenantID string) (authz.RoleSet, error) {
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.tenants[tenantID]
	if ok && !e.fetched.IsZero() && now.Sub(e.fetched) < RoleCacheTTL {
		set := e.set
		c.mu.Unlock()
		return set, nil
	}
	c.mu.Unlock()

	rows, err := c.reads.listRoleRows(ctx, tenantID)
	if err != nil {
		return authz.RoleSet{}, err
	}
	roles := make([]authz.TenantRole, 0, len(rows))
	for _, r := range rows {
		roles = append(roles, authz.TenantRole{ID: r.RoleID, Actions: slices.Clone(r.Actions)})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var pending []authz.TenantRole // published, not yet in the list read
	if e, ok := c.tenants[tenantID]; ok {
		for _, p := range e.published {
			if !slices.ContainsFunc(roles, func(r authz.TenantRole) bool { return r.ID == p.ID }) {
				pending = append(pending, p)
			}
		}
		roles = merge(roles, pending)
	}
	if len(c.tenants) >= maxCachedTenants {
		clear(c.tenants)
	}
	set := newRoleSet(roles)
	c.tenants[tenantID] = &cachedRoles{set: set, fetched: now, published: pending}
	return set, nil
}

// Publish takes the roles a commit of this instance created: evaluated here
// from now on, without waiting for the TTL or the list's consistency.
func (c *RoleCache) Publish(_ context.Context, tenantID string, rows []RoleRow) {
	var roles []authz.TenantRole
	for _, r := range rows {
		roles = append(roles, authz.TenantRole{ID: r.RoleID, Actions: slices.Clone(r.Actions)})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tenants[tenantID]
	if !ok {
		if len(c.tenants) >= maxCachedTenants {
			clear(c.tenants)
		}
		e = &cachedRoles{}
		c.tenants[tenantID] = e
	}
	e.published = merge(e.published, roles)
	e.set = newRoleSet(merge(e.set.Roles, roles))
}

// merge adds to roles those of more it does not hold (by id).
func merge(roles, more []authz.TenantRole) []authz.TenantRole {
	out := slices.Clone(roles)
	for _, r := range more {
		if !slices.ContainsFunc(out, func(o authz.TenantRole) bool { return o.ID == r.ID }) {
			out = append(out, r)
		}
	}
	return out
}

// newRoleSet sorts roles by id and versions them by their content.
func newRoleSet(roles []authz.TenantRole) authz.RoleSet {
	slices.SortFunc(roles, func(a, b authz.TenantRole) int { return strings.Compare(a.ID, b.ID) })
	h := sha256.New()
	for _, r := range roles {
		h.Write([]byte(r.ID))
		for _, a := range r.Actions {
			h.Write([]byte{0})
			h.Write([]byte(a))
		}
		h.Write([]byte{1})
	}
	return authz.RoleSet{Version: hex.EncodeToString(h.Sum(nil)[:12]), Roles: roles}
}
