package authz

import (
	"context"
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Built-in role names (API.md section 6). A binding names one of them or a
// tenant role's id (ids.Role).
const (
	RoleAdmin  = "admin"
	RoleSender = "sender"
	RoleViewer = "viewer"
)

// BuiltinRole is a built-in role and the catalogue actions it grants.
type BuiltinRole struct {
	Name    string
	Actions []string // sorted
}

// BuiltinRoles returns the built-in roles with their actions over the
// catalogue as it is now (what list-roles shows and what the escalation
// check of grant-role compares with). They are the actions of the policies
// of package cedarauthz; its equivalence test proves that Roles, which
// computes them here, decides exactly as those policies do.
func BuiltinRoles() []BuiltinRole {
	out := []BuiltinRole{{Name: RoleAdmin}, {Name: RoleSender}, {Name: RoleViewer}}
	for _, a := range Actions() {
		for i := range out {
			if roleAllows(out[i].Name, a.Name) {
				out[i].Actions = append(out[i].Actions, a.Name)
			}
		}
	}
	return out
}

// IsBuiltinRole reports whether name is a built-in role.
func IsBuiltinRole(name string) bool {
	return name == RoleAdmin || name == RoleSender || name == RoleViewer
}

// TenantRole is a tenant-defined role as the authorizer evaluates it: its id
// (the tag of its bindings) and its actions (catalogue names). Its name is
// for people and never reaches a policy.
type TenantRole struct {
	ID      string
	Actions []string
}

// RoleSet is a tenant's roles at one moment. Version changes whenever Roles
// do (the authorizer rebuilds the tenant's policies only then).
type RoleSet struct {
	Version string
	Roles   []TenantRole
}

// RoleSource answers a tenant's roles for the authorizer, from memory on the
// request path (the tenancy module's cache: TTL, updated at once on the
// instance that created a role). An error denies (fail closed).
type RoleSource interface {
	TenantRoles(ctx context.Context, tenantID string) (RoleSet, error)
}

// IsTenantRoleID reports whether role names a tenant role (a well-formed
// ids.Role id): the only form of a tenant role that reaches a policy.
func IsTenantRoleID(role string) bool { return ids.Valid(ids.Role, role) }

// HoldsTenantRole reports whether p has a binding of a tenant role.
func HoldsTenantRole(p invocation.Principal) bool {
	for _, b := range p.Roles {
		if strings.HasPrefix(b.Role, ids.Role+"_") {
			return true
		}
	}
	return false
}

// probeID is the id of the resource ProbeResource places in a scope: not an
// id any resource has, so it is never the principal itself.
const probeID = "~probe"

// ProbeResource is the resource on which an action is evaluated "in a scope"
// (get-permissions, the escalation check of grant-role): the action's first
// resource type other than the tenant (types sorted by name), placed in the
// scope (a scope resource is the scope itself; others are a resource of that
// type, of no existing id, whose own scope it is). An action that applies
// only to the tenant is evaluated on the tenant when path is the root scope
// alone, and does not apply in any other scope (false): the tenant lives in
// its root scope, no binding below it covers it.
func ProbeResource(a Action, tenantID string, path []string) (Resource, bool) {
	if len(path) == 0 {
		return Resource{}, false
	}
	own := path[len(path)-1]
	for _, t := range a.Resources {
		switch t {
		case ResourceTenant:
			continue
		case ResourceScope:
			return Resource{Type: ResourceScope, ID: own, ScopePath: slices.Clone(path)}, true
		default:
			return Resource{Type: t, ID: probeID, ScopePath: slices.Clone(path)}, true
		}
	}
	if slices.Contains(a.Resources, ResourceTenant) && len(path) == 1 {
		return Tenant(tenantID, own), true
	}
	return Resource{}, false
}

// Can reports whether the invocation of ctx may take action on res, asking
// the invocation's authorizer without recording a decision (the handler
// still decides on what it acts on with Require or AllowOpen). Without a
// guard only the system principal may.
func Can(ctx context.Context, action string, res Resource) bool {
	if g, ok := GuardFrom(ctx); ok {
		return g.authorizer.Authorize(ctx, g.principal, action, res) == nil
	}
	return invocation.From(ctx).Principal.Kind == invocation.KindSystem
}

// AllowOpen decides an open action (Action.Open): allowed to every service
// account of tenantID (and to the system), denied to anyone else.
func AllowOpen(ctx context.Context, tenantID string) error {
	p := invocation.From(ctx).Principal
	g, guarded := GuardFrom(ctx)
	if guarded {
		p = g.principal
	}
	switch {
	case p.Kind == invocation.KindSystem:
	case p.Kind == invocation.KindServiceAccount && p.TenantID != "" && p.TenantID == tenantID:
	default:
		if guarded {
			g.mu.Lock()
			g.denied = true
			g.mu.Unlock()
		}
		return errs.New(errs.KindForbidden, errs.CodeForbidden)
	}
	if guarded {
		g.Allow()
	}
	return nil
}

// Visible decides a list that shows only the items the caller may see:
// the invocation is decided (allowed) whatever is listed, and the handler
// filters every item with Can (use it when Can said no for the whole list;
// the audit then records no resource).
func Visible(ctx context.Context) {
	if g, ok := GuardFrom(ctx); ok {
		g.Allow()
	}
}
