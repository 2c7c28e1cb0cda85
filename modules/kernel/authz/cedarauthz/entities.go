package cedarauthz

import (
	"github.com/cedar-policy/cedar-go/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// requestEntities are the entities of one request, answered without a map or
// a store read (types.EntityGetter): the principal with its bindings as tags,
// the resource in its own scope, the scopes of the resource's path (each in
// the one before it, built on first use) and the action with its groups.
//
// Parents are given transitively closed, as Cedar computes them for an
// entity store: the resource lists every scope of its path, a scope every
// scope above it. "resource in <scopes>" is then one set intersection when
// it holds, and a walk of the path only when it does not.
type requestEntities struct {
	principal   types.Entity
	resourceUID types.EntityUID
	resource    types.Entity // zero when the resource is a scope of path
	path        []string
	scopes      []types.Entity // by index in path, built on first use
	action      types.Entity
	groups      map[types.EntityUID]types.Entity
	cache       *caches
}

var _ types.EntityGetter = (*requestEntities)(nil)

// newRequestEntities builds the entities of p acting on res (res.ScopePath
// not empty). It returns false when p has no binding with a scope, which
// covers nothing.
func newRequestEntities(c *caches, p invocation.Principal, res authz.Resource, groups map[types.EntityUID]types.Entity, action types.Entity) (*requestEntities, bool) {
	tags, ok := c.principalTags(p)
	if !ok {
		return nil, false
	}
	e := &requestEntities{
		principal: types.Entity{UID: types.NewEntityUID(ServiceAccountType, types.String(p.ID)), Tags: tags},
		path:      res.ScopePath,
		action:    action,
		groups:    groups,
		cache:     c,
	}
	if res.Type == authz.ResourceScope {
		e.resourceUID = scopeUID(res.ScopePath[len(res.ScopePath)-1]) // the last scope of its own path
		return e, true
	}
	e.resourceUID = types.NewEntityUID(resourceTypes[res.Type], types.String(res.ID))
	e.resource = types.Entity{UID: e.resourceUID, Parents: c.scopeSet(res.ScopePath)}
	if e.resourceUID == e.principal.UID { // a service account acting on itself: one entity
		e.resource.Tags = tags
		e.principal = e.resource
	}
	return e, true
}

// bindingTags are the tags of a principal: role -> the set of scopes where it
// holds the role. A binding without a role or a scope is left out.
func bindingTags(bindings []invocation.RoleBinding) (types.Record, bool) {
	var m types.RecordMap
	for i, b := range bindings {
		if b.ScopeID == "" || b.Role == "" {
			continue
		}
		role := types.String(b.Role)
		if m == nil {
			m = make(types.RecordMap, len(bindings)-i)
		} else if _, done := m[role]; done {
			continue
		}
		var scopes []types.Value
		for _, o := range bindings[i:] {
			if o.Role == b.Role && o.ScopeID != "" {
				scopes = append(scopes, scopeUID(o.ScopeID))
			}
		}
		m[role] = types.NewSet(scopes...)
	}
	if m == nil {
		return types.Record{}, false
	}
	return types.NewRecord(m), true
}

func scopeUID(id string) types.EntityUID { return types.NewEntityUID(ScopeType, types.String(id)) }

// Get implements types.EntityGetter.
func (e *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid.Type {
	case ScopeType:
		// From the end: the resource's own scope is last; a path that
		// repeats an id still makes every element an ancestor of the last.
		for i := len(e.path) - 1; i >= 0; i-- {
			if types.String(e.path[i]) == uid.ID {
				return e.scope(i), true
			}
		}
		return types.Entity{}, false
	case ActionType:
		if uid == e.action.UID {
			return e.action, true
		}
		g, ok := e.groups[uid]
		return g, ok
	}
	switch uid {
	case e.principal.UID:
		return e.principal, true
	case e.resource.UID:
		return e.resource, e.resource.UID.Type != ""
	}
	return types.Entity{}, false
}

// scope is the entity of path[i]: in path[i-1] and above, the root in nothing.
func (e *requestEntities) scope(i int) types.Entity {
	if e.scopes == nil {
		e.scopes = make([]types.Entity, len(e.path))
	}
	if e.scopes[i].UID.Type == "" {
		e.scopes[i] = types.Entity{UID: scopeUID(e.path[i])}
		if i > 0 {
			e.scopes[i].Parents = e.cache.scopeSet(e.path[:i])
		}
	}
	return e.scopes[i]
}

// scopeSet is the set of the scopes of path.
func scopeSet(path []string) types.EntityUIDSet {
	uids := make([]types.EntityUID, len(path))
	for i, id := range path {
		uids[i] = scopeUID(id)
	}
	return types.NewEntityUIDSet(uids...)
}
