// Package cedarauthz is the Authorizer of the edge: resources, actions and
// roles modelled explicitly and decided by Cedar (github.com/cedar-policy/cedar-go),
// see ADR 0009.
//
// The model (schema.cedarschema): scopes are the entity hierarchy, every
// resource (tenant, channel, message, subscription, service account, scope)
// is a child of its own scope, built per request from Resource.ScopePath
// without a store read. The principal is a Switchboard::ServiceAccount whose
// tags are its role bindings: one tag per role, the set of scopes where it
// holds it. A role is one policy (policies/*.cedar for the built-in roles):
//
//	permit (principal is Switchboard::ServiceAccount, action in [...], resource)
//	when { principal.hasTag("sender") && resource in principal.getTag("sender") };
//
// so a binding at a scope grants exactly that scope's subtree. Actions come
// from the catalogue (authz.Actions), each in the group "all", and the reads
// also in "read" and "<namespace>:read".
//
// The rules around Cedar, as authz.Roles had them: the system principal may
// do everything; any principal but a service account (the operator, an
// anonymous caller) nothing; an action missing from the catalogue, a resource
// type the action does not apply to, a resource without a scope path, or a
// scope resource whose id is not the last element of its path is denied
// (fail closed).
//
// New parses the policies and validates them against the schema (cedar-go's
// x/exp/schema/validate): a bad file fails startup.
package cedarauthz

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// builtinPolicies are the built-in roles, one file per role: admin, sender, viewer.
//
//go:embed policies/*.cedar
var builtinPolicies embed.FS

// BuiltinPolicies returns the policy files of the built-in roles (*.cedar at the root).
func BuiltinPolicies() fs.FS {
	sub, err := fs.Sub(builtinPolicies, "policies")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return sub
}

// Authorizer decides with Cedar. Its policies and catalogue are fixed when
// it is built; it is safe for concurrent use.
type Authorizer struct {
	policies *cedar.PolicySet // parsed and validated once
	// actions are the catalogue's actions: their entity (groups as parents,
	// transitively) and the resource types they apply to.
	actions map[string]*action
	// groups are the action groups' entities ("all", "read", "<namespace>:read").
	groups map[types.EntityUID]types.Entity
	cache  *caches
	// decisions caches Cedar's answers (see decisions).
	decisions *decisions
	// model validates the generated policies of tenant roles; roles answers
	// them (nil: only the built-in roles); tenant caches their policy sets.
	model  *model
	roles  authz.RoleSource
	tenant *tenantPolicies
}

type action struct {
	entity    types.Entity
	resources []string // authz resource types
}

type config struct {
	policies fs.FS
	actions  []authz.Action
	roles    authz.RoleSource
}

// Option tunes New.
type Option func(*config)

// WithPolicies replaces the built-in policy files by the *.cedar files at
// the root of fsys (tests of bad files; later, tenant roles are added to the
// built-in ones instead).
func WithPolicies(fsys fs.FS) Option { return func(c *config) { c.policies = fsys } }

// WithActions replaces the catalogue (default: authz.Actions() when New runs).
func WithActions(actions []authz.Action) Option { return func(c *config) { c.actions = actions } }

// New builds an authorizer over the built-in roles and the catalogue as it is
// now. It fails when a policy file does not parse, names an action or a tag
// the schema does not know, or does not typecheck against the schema.
func New(opts ...Option) (*Authorizer, error) {
	c := config{policies: BuiltinPolicies()}
	for _, o := range opts {
		o(&c)
	}
	if c.actions == nil {
		c.actions = authz.Actions()
	}
	m, err := newModel(c.actions)
	if err != nil {
		return nil, err
	}
	a := &Authorizer{policies: cedar.NewPolicySet(), actions: map[string]*action{}, groups: m.groups, cache: newCaches(), decisions: newDecisions(),
		model: m, roles: c.roles, tenant: &tenantPolicies{set: map[string]tenantPolicySet{}}}
	for _, act := range c.actions {
		a.actions[act.Name] = &action{entity: m.actions[act.Name], resources: slices.Clone(act.Resources)}
	}
	names, err := fs.Glob(c.policies, "*.cedar")
	if err != nil {
		return nil, fmt.Errorf("cedarauthz: list policies: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("cedarauthz: no policy file")
	}
	for _, name := range names {
		src, err := fs.ReadFile(c.policies, name)
		if err != nil {
			return nil, fmt.Errorf("cedarauthz: read %s: %w", name, err)
		}
		list, err := cedar.NewPolicyListFromBytes(name, src)
		if err != nil {
			return nil, fmt.Errorf("cedarauthz: parse %s: %w", name, err)
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("cedarauthz: %s holds no policy", name)
		}
		for i, p := range list {
			id := fmt.Sprintf("%s#%d", path.Base(name), i)
			if err := m.validate(id, p); err != nil {
				return nil, fmt.Errorf("cedarauthz: %w", err)
			}
			if !a.policies.Add(cedar.PolicyID(id), p) {
				return nil, fmt.Errorf("cedarauthz: policy %s twice", id)
			}
		}
	}
	return a, nil
}

// Must is New that panics on error: the edge's default, built at startup.
func Must(opts ...Option) *Authorizer {
	a, err := New(opts...)
	if err != nil {
		panic(err)
	}
	return a
}

// Authorize implements authz.Authorizer.
func (a *Authorizer) Authorize(ctx context.Context, p invocation.Principal, action string, res authz.Resource) error {
	if p.Kind == invocation.KindSystem {
		return nil
	}
	if p.Kind == invocation.KindServiceAccount && a.allows(ctx, p, action, res) {
		return nil
	}
	return errs.New(errs.KindForbidden, errs.CodeForbidden).With("action", action)
}

// allows asks Cedar, after the checks of the catalogue and the resource.
func (a *Authorizer) allows(ctx context.Context, p invocation.Principal, actionName string, res authz.Resource) bool {
	act, ok := a.actions[actionName]
	if !ok || !slices.Contains(act.resources, res.Type) || len(res.ScopePath) == 0 {
		return false
	}
	if res.Type == authz.ResourceScope && res.ID != res.ScopePath[len(res.ScopePath)-1] {
		return false
	}
	policies, version := a.policies, builtinSet
	if authz.HoldsTenantRole(p) {
		// The tenant's roles, from the role source's memory; rebuilt
		// only when they change. An error denies.
		if policies, version, ok = a.policiesFor(ctx, p.TenantID); !ok {
			return false
		}
	}
	key := decisionKey(p, actionName, res, version)
	if allow, hit := a.decisions.get(key); hit {
		return allow
	}
	ents, ok := newRequestEntities(a.cache, p, res, a.groups, act.entity)
	if !ok {
		return false // no binding with a scope: nothing to ask
	}
	req := cedar.Request{Principal: ents.principal.UID, Action: act.entity.UID, Resource: ents.resourceUID, Context: types.Record{}}
	decision, _ := policies.IsAuthorized(ents, req)
	allow := decision == cedar.Allow
	a.decisions.put(key, allow)
	return allow
}

// builtinSet names the built-in policy set in decision keys.
const builtinSet = "builtin"
