package authz

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Resource types: the values of Resource.Type. Every resource lives in a
// scope (Resource.ScopePath); the tenant lives in its root scope.
const (
	ResourceTenant         = "tenant"
	ResourceScope          = "scope"
	ResourceChannel        = "channel"
	ResourceMessage        = "message"
	ResourceSubscription   = "subscription"
	ResourceServiceAccount = "service-account"
)

// ResourceTypes lists the resource types an action may be decided on.
func ResourceTypes() []string {
	return []string{ResourceTenant, ResourceScope, ResourceChannel, ResourceMessage, ResourceSubscription, ResourceServiceAccount}
}

// Action is one entry of the catalogue of actions: what a role can grant.
//
// Name is the permission an endpoint checks ("messaging:send-message",
// "<module>:<verb>-<noun>", persisted in role definitions: never renamed).
// Resources are the resource types its handler decides on (Resource.Type):
// an action asked on another type is denied. ReadOnly says the action only
// reads (the viewer's actions).
//
// Open actions are allowed to every service account of the tenant whatever
// its bindings (list-actions, list-roles, get-permissions: they reveal the
// permission model and the caller's own permissions, no tenant data): their
// handlers decide with AllowOpen, not with Require. They are in the
// catalogue like any other (a role may name them; it changes nothing).
//
// Privileged read-only actions stay out of the read groups ("read",
// "<namespace>:read"): the viewer and sender roles do not grant them, only
// admin's "all" and a role that names them (the audit log, which shows
// every caller's address and agent).
type Action struct {
	Name       string
	Resources  []string
	ReadOnly   bool
	Open       bool
	Privileged bool
}

// Namespace is the part of the name before the colon ("messaging").
func (a Action) Namespace() string {
	ns, _, _ := strings.Cut(a.Name, ":")
	return ns
}

// builtinActions is the catalogue of the modules' tenant endpoints, one entry
// per action their handlers decide on with Require (see the modules'
// ports.Action* constants; package catalogtest proves that every tenant
// endpoint's action is here, with ReadOnly for queries). Operator endpoints
// (onboard-tenant, the work tools) are not: no role grants them, CheckAccess
// decides. The built-in roles (cedarauthz/policies) name these actions.
var builtinActions = []Action{
	// tenancy
	{Name: "tenancy:get-tenant", Resources: []string{ResourceTenant}, ReadOnly: true},
	{Name: "tenancy:create-scope", Resources: []string{ResourceScope}},
	{Name: "tenancy:list-scopes", Resources: []string{ResourceTenant, ResourceScope}, ReadOnly: true},
	// channels (module messaging)
	{Name: "channels:create-channel", Resources: []string{ResourceScope}},
	{Name: "channels:get-channel", Resources: []string{ResourceChannel}, ReadOnly: true},
	{Name: "channels:list-channels", Resources: []string{ResourceTenant, ResourceScope, ResourceChannel}, ReadOnly: true},
	// messaging
	{Name: "messaging:send-message", Resources: []string{ResourceChannel}},
	{Name: "messaging:cancel-message", Resources: []string{ResourceMessage}},
	{Name: "messaging:get-message", Resources: []string{ResourceMessage}, ReadOnly: true},
	{Name: "messaging:list-messages", Resources: []string{ResourceTenant, ResourceScope, ResourceChannel}, ReadOnly: true},
	{Name: "messaging:get-message-history", Resources: []string{ResourceMessage}, ReadOnly: true},
	{Name: "messaging:rebuild-read-models", Resources: []string{ResourceTenant}},
	// webhooks
	{Name: "webhooks:create-subscription", Resources: []string{ResourceScope}},
	{Name: "webhooks:list-subscriptions", Resources: []string{ResourceTenant, ResourceScope, ResourceSubscription}, ReadOnly: true},
	{Name: "webhooks:list-deliveries", Resources: []string{ResourceSubscription}, ReadOnly: true},
}

// actionName is "<namespace>:<verb>-<noun...>": kebab-case with at least one
// hyphen after the colon, so that no action is named like an action group
// ("read", "<namespace>:read").
var actionName = regexp.MustCompile(`^[a-z][a-z0-9]*:[a-z][a-z0-9]*(-[a-z0-9]+)+$`)

var catalogue = struct {
	sync.RWMutex
	byName map[string]Action
}{byName: map[string]Action{}}

func init() { RegisterActions(builtinActions...) }

// RegisterActions adds actions to the catalogue. The built-in ones are there
// from the start; others (endpoints of tests of the edge, later modules) are
// registered before the authorizer is built, which reads the catalogue once.
// A malformed action, or a name registered again with another definition,
// panics (a wiring bug).
func RegisterActions(actions ...Action) {
	catalogue.Lock()
	defer catalogue.Unlock()
	for _, a := range actions {
		if err := a.check(); err != nil {
			panic(err)
		}
		a.Resources = slices.Clone(a.Resources)
		slices.Sort(a.Resources)
		if prev, ok := catalogue.byName[a.Name]; ok {
			if prev.ReadOnly != a.ReadOnly || prev.Open != a.Open || prev.Privileged != a.Privileged || !slices.Equal(prev.Resources, a.Resources) {
				panic(fmt.Sprintf("authz: action %q registered twice with different definitions", a.Name))
			}
			continue
		}
		catalogue.byName[a.Name] = a
	}
}

func (a Action) check() error {
	if !actionName.MatchString(a.Name) {
		return fmt.Errorf("authz: action name %q is not <namespace>:<verb>-<noun>", a.Name)
	}
	if len(a.Resources) == 0 {
		return fmt.Errorf("authz: action %q names no resource type", a.Name)
	}
	for _, r := range a.Resources {
		if !slices.Contains(ResourceTypes(), r) {
			return fmt.Errorf("authz: action %q: unknown resource type %q", a.Name, r)
		}
	}
	return nil
}

// LookupAction returns the catalogue entry of an action.
func LookupAction(name string) (Action, bool) {
	catalogue.RLock()
	defer catalogue.RUnlock()
	a, ok := catalogue.byName[name]
	if ok {
		a.Resources = slices.Clone(a.Resources)
	}
	return a, ok
}

// Actions returns the catalogue, sorted by name: what list-actions publishes
// and what roles are made of.
func Actions() []Action {
	catalogue.RLock()
	defer catalogue.RUnlock()
	out := make([]Action, 0, len(catalogue.byName))
	for _, a := range catalogue.byName {
		a.Resources = slices.Clone(a.Resources)
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Action) int { return strings.Compare(a.Name, b.Name) })
	return out
}
