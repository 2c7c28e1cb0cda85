package cedarauthz

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
)

// Tenant roles (ADR 0009): each becomes one policy, generated from the same
// template as the built-in ones, with the role's id as the tag:
//
//	@role("rol_...")
//	permit (principal is Switchboard::ServiceAccount,
//	        action in [Switchboard::Action::"<action>", ...], resource)
//	when { principal.hasTag("rol_...") && resource in principal.getTag("rol_...") };
//
// Only two kinds of strings reach the text, each checked against a strict
// pattern first: the role id (ids.Role, "rol_" and a canonical ULID) and
// action names that are in the catalogue (<namespace>:<verb>-<noun>). A
// role's name never does. The generated policy is parsed and validated
// against the schema like a policy file; a role that fails (an action no
// longer in the catalogue is left out first) grants nothing.

// WithRoleSource makes the authorizer evaluate tenant roles: for a principal
// holding a binding of a tenant role (its role is a "rol_" id), the tenant's
// roles come from src and are evaluated with the built-in policies. Without
// it (or for any other principal) only the built-in roles exist.
func WithRoleSource(src authz.RoleSource) Option { return func(c *config) { c.roles = src } }

var (
	roleIDPattern     = regexp.MustCompile(`^rol_[0-9A-HJKMNP-TV-Z]{26}$`)
	rolePolicyActions = regexp.MustCompile(`^[a-z][a-z0-9]*:[a-z][a-z0-9]*(-[a-z0-9]+)+$`)
)

// TenantRolePolicy returns the policy text of a tenant role, or an error
// when its id or an action does not match its pattern. Actions not in
// known are left out; a role left with no action is an error.
func TenantRolePolicy(r authz.TenantRole, known func(string) bool) (string, error) {
	if !roleIDPattern.MatchString(r.ID) || !authz.IsTenantRoleID(r.ID) {
		return "", fmt.Errorf("cedarauthz: tenant role id %q", r.ID)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "@role(%q)\npermit (\n  principal is %s,\n  action in [", r.ID, ServiceAccountType)
	n := 0
	for _, a := range r.Actions {
		if !rolePolicyActions.MatchString(a) {
			return "", fmt.Errorf("cedarauthz: tenant role %s: action %q", r.ID, a)
		}
		if !known(a) {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s::%q", ActionType, a)
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("cedarauthz: tenant role %s: no action of the catalogue", r.ID)
	}
	fmt.Fprintf(&b, "],\n  resource\n)\nwhen { principal.hasTag(%q) && resource in principal.getTag(%q) };\n", r.ID, r.ID)
	return b.String(), nil
}

// tenantPolicies caches, per tenant, the policy set of the built-in roles and
// the tenant's roles at one RoleSet version.
type tenantPolicies struct {
	mu  sync.RWMutex
	set map[string]tenantPolicySet
}

type tenantPolicySet struct {
	version  string
	policies *cedar.PolicySet
}

// policiesFor returns the policy set a principal of tenantID is evaluated
// with when it holds a tenant role: built from the tenant's roles, once per
// version of them.
// version names the set for the decision cache.
func (a *Authorizer) policiesFor(ctx context.Context, tenantID string) (ps *cedar.PolicySet, version string, ok bool) {
	if a.roles == nil || tenantID == "" {
		return a.policies, builtinSet, true
	}
	rs, err := a.roles.TenantRoles(ctx, tenantID)
	if err != nil {
		return nil, "", false
	}
	version = "tenant:" + rs.Version
	a.tenant.mu.RLock()
	cached, hit := a.tenant.set[tenantID]
	a.tenant.mu.RUnlock()
	if hit && cached.version == rs.Version {
		return cached.policies, version, true
	}
	ps = a.buildTenantPolicies(rs)
	a.tenant.mu.Lock()
	if len(a.tenant.set) >= maxCached {
		clear(a.tenant.set)
	}
	a.tenant.set[tenantID] = tenantPolicySet{version: rs.Version, policies: ps}
	a.tenant.mu.Unlock()
	return ps, version, true
}

// buildTenantPolicies is the built-in policies plus one per tenant role that
// generates, parses and validates; a role that does not is left out (it
// grants nothing).
func (a *Authorizer) buildTenantPolicies(rs authz.RoleSet) *cedar.PolicySet {
	ps := cedar.NewPolicySet()
	for id, p := range a.policies.All() {
		ps.Add(id, p)
	}
	known := func(name string) bool { _, ok := a.actions[name]; return ok }
	for _, r := range rs.Roles {
		p, err := a.tenantRolePolicy(r, known)
		if err != nil {
			continue
		}
		ps.Add(cedar.PolicyID("tenant-role:"+r.ID), p)
	}
	return ps
}

func (a *Authorizer) tenantRolePolicy(r authz.TenantRole, known func(string) bool) (*cedar.Policy, error) {
	src, err := TenantRolePolicy(r, known)
	if err != nil {
		return nil, err
	}
	list, err := cedar.NewPolicyListFromBytes(r.ID, []byte(src))
	if err != nil || len(list) != 1 {
		return nil, fmt.Errorf("cedarauthz: tenant role %s does not parse: %v", r.ID, err)
	}
	if err := a.model.validate(r.ID, list[0]); err != nil {
		return nil, fmt.Errorf("cedarauthz: %w", err)
	}
	return list[0], nil
}
