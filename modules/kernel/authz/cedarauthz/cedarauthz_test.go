package cedarauthz_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz/cedarauthz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

const (
	root   = "scp_root"
	eu     = "scp_eu"
	france = "scp_fr"
	us     = "scp_us"
)

var builtin = cedarauthz.Must()

func sa(bindings ...invocation.RoleBinding) invocation.Principal {
	return invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_1", TenantID: "tnt_1", Roles: bindings}
}

func bind(role, scope string) invocation.RoleBinding {
	return invocation.RoleBinding{Role: role, ScopeID: scope}
}

func allowed(t *testing.T, a authz.Authorizer, p invocation.Principal, action string, res authz.Resource) bool {
	t.Helper()
	err := a.Authorize(context.Background(), p, action, res)
	if err != nil && errs.KindOf(err) != errs.KindForbidden {
		t.Fatalf("%s on %v: err kind %v, want forbidden", action, res, errs.KindOf(err))
	}
	return err == nil
}

// The cases of authz.Roles, decided by Cedar.
func TestBuiltinRolesNestedScopes(t *testing.T) {
	inFrance := authz.Resource{Type: "message", ID: "msg_1", ScopePath: []string{root, eu, france}}
	inUS := authz.Resource{Type: "message", ID: "msg_2", ScopePath: []string{root, us}}
	channelInFrance := authz.Resource{Type: "channel", ID: "chn_1", ScopePath: []string{root, eu, france}}
	channelInUS := authz.Resource{Type: "channel", ID: "chn_2", ScopePath: []string{root, us}}
	franceScope := authz.Resource{Type: "scope", ID: france, ScopePath: []string{root, eu, france}}
	euScope := authz.Resource{Type: "scope", ID: eu, ScopePath: []string{root, eu}}
	tenant := authz.Tenant("tnt_1", root)
	for _, c := range []struct {
		name   string
		p      invocation.Principal
		action string
		res    authz.Resource
		allow  bool
	}{
		{"sender at EU cancels in France", sa(bind("sender", eu)), "messaging:cancel-message", inFrance, true},
		{"sender at EU sends in France", sa(bind("sender", eu)), "messaging:send-message", channelInFrance, true},
		{"sender at EU cannot cancel in US", sa(bind("sender", eu)), "messaging:cancel-message", inUS, false},
		{"sender at EU cannot send in US", sa(bind("sender", eu)), "messaging:send-message", channelInUS, false},
		{"sender reads channels", sa(bind("sender", eu)), "channels:get-channel", channelInFrance, true},
		{"sender reads message history", sa(bind("sender", eu)), "messaging:get-message-history", inFrance, true},
		{"sender cannot create channels", sa(bind("sender", root)), "channels:create-channel", franceScope, false},
		{"sender cannot create scopes", sa(bind("sender", root)), "tenancy:create-scope", franceScope, false},
		{"sender cannot read the tenant", sa(bind("sender", root)), "tenancy:get-tenant", tenant, false},
		{"sender cannot rebuild read models", sa(bind("sender", root)), "messaging:rebuild-read-models", tenant, false},
		{"viewer reads", sa(bind("viewer", root)), "messaging:get-message", inUS, true},
		{"viewer reads the tenant", sa(bind("viewer", root)), "tenancy:list-scopes", tenant, true},
		{"viewer cannot send", sa(bind("viewer", root)), "messaging:send-message", channelInUS, false},
		{"viewer cannot subscribe", sa(bind("viewer", root)), "webhooks:create-subscription", franceScope, false},
		{"admin at EU creates a scope in EU", sa(bind("admin", eu)), "tenancy:create-scope", euScope, true},
		{"admin at France cannot create a scope in EU", sa(bind("admin", france)), "tenancy:create-scope", euScope, false},
		{"admin at EU is no admin of the tenant", sa(bind("admin", eu)), "tenancy:get-tenant", tenant, false},
		{"admin at the root is", sa(bind("admin", root)), "tenancy:get-tenant", tenant, true},
		{"two bindings: viewer at the root, sender at EU", sa(bind("viewer", root), bind("sender", eu)), "messaging:send-message", channelInFrance, true},
		{"two bindings: the sender one does not reach the US", sa(bind("viewer", root), bind("sender", eu)), "messaging:send-message", channelInUS, false},
		{"one role at two scopes", sa(bind("sender", us), bind("sender", france)), "messaging:send-message", channelInFrance, true},
		{"a binding without a scope covers nothing", sa(bind("admin", "")), "tenancy:get-tenant", tenant, false},
		{"a binding without a role covers nothing", sa(bind("", root)), "tenancy:get-tenant", tenant, false},
		{"an unknown role grants nothing", sa(bind("owner", root)), "tenancy:get-tenant", tenant, false},
		{"the operator is no tenant principal", invocation.Principal{Kind: invocation.KindOperator, Roles: []invocation.RoleBinding{bind("admin", root)}}, "tenancy:get-tenant", tenant, false},
		{"an anonymous caller may nothing", invocation.Principal{Roles: []invocation.RoleBinding{bind("admin", root)}}, "tenancy:get-tenant", tenant, false},
		{"the system may", invocation.Principal{Kind: invocation.KindSystem}, "tenancy:create-scope", franceScope, true},
		{"the system may even outside the catalogue", invocation.Principal{Kind: invocation.KindSystem}, "x:do-y", authz.Resource{Type: "x"}, true},
	} {
		if got := allowed(t, builtin, c.p, c.action, c.res); got != c.allow {
			t.Errorf("%s: allowed %v, want %v", c.name, got, c.allow)
		}
	}
}

// What the catalogue and the resource say is denied before Cedar is asked.
func TestFailsClosed(t *testing.T) {
	admin := sa(bind("admin", root))
	tenant := authz.Tenant("tnt_1", root)
	for _, c := range []struct {
		name   string
		action string
		res    authz.Resource
	}{
		{"an action missing from the catalogue", "tenancy:delete-tenant", tenant},
		{"an operator action", "tenancy:onboard-tenant", tenant},
		{"an action group", cedarauthz.GroupAll, tenant},
		{"a read group", cedarauthz.ReadGroup("messaging"), tenant},
		{"a resource type the action does not apply to", "messaging:send-message", authz.Resource{Type: "message", ID: "msg_1", ScopePath: []string{root}}},
		{"an unknown resource type", "tenancy:get-tenant", authz.Resource{Type: "doc", ID: "1", ScopePath: []string{root}}},
		{"a resource without a scope path", "tenancy:get-tenant", authz.Resource{Type: "tenant", ID: "tnt_1"}},
		{"a scope whose id is not the last of its path", "tenancy:create-scope", authz.Resource{Type: "scope", ID: eu, ScopePath: []string{root}}},
		{"a scope without a path", "tenancy:create-scope", authz.Resource{Type: "scope", ID: root}},
	} {
		if allowed(t, builtin, admin, c.action, c.res) {
			t.Errorf("%s: allowed to an admin at the root", c.name)
		}
	}
}

// A service account is a resource in its scope too; acting on itself, it is
// one entity (its bindings and its scope).
func TestServiceAccountAsResource(t *testing.T) {
	a, err := cedarauthz.New(cedarauthz.WithActions(append(authz.Actions(),
		authz.Action{Name: "tenancy:get-service-account", Resources: []string{authz.ResourceServiceAccount}, ReadOnly: true})))
	if err != nil {
		t.Fatal(err)
	}
	self := sa(bind("viewer", eu))
	res := func(id string, path ...string) authz.Resource {
		return authz.Resource{Type: authz.ResourceServiceAccount, ID: id, ScopePath: path}
	}
	for _, c := range []struct {
		name  string
		res   authz.Resource
		allow bool
	}{
		{"itself, in EU", res(self.ID, root, eu), true},
		{"another in France", res("sva_2", root, eu, france), true},
		{"another at the root", res("sva_3", root), false},
		{"itself, were it at the root", res(self.ID, root), false},
	} {
		if got := allowed(t, a, self, "tenancy:get-service-account", c.res); got != c.allow {
			t.Errorf("%s: allowed %v, want %v", c.name, got, c.allow)
		}
	}
}

func TestBadPolicyFilesFailStartup(t *testing.T) {
	good := `permit (principal is Switchboard::ServiceAccount, action in Switchboard::Action::"read", resource)
when { principal.hasTag("viewer") && resource in principal.getTag("viewer") };`
	if _, err := cedarauthz.New(cedarauthz.WithPolicies(fstest.MapFS{"viewer.cedar": {Data: []byte(good)}})); err != nil {
		t.Fatalf("a good file: %v", err)
	}
	for _, c := range []struct{ name, src, want string }{
		{"syntax", `permit (principal, action, resource) when { principal.hasTag("admin") `, "parse"},
		{"an unknown action", strings.Replace(good, `"read"`, `"messaging:send-messages"`, 1), "unrecognized action"},
		{"an unknown entity type", strings.Replace(good, "ServiceAccount", "User", 1), "validate"},
		{"a tag read without hasTag", `permit (principal is Switchboard::ServiceAccount, action, resource) when { resource in principal.getTag("admin") };`, "validate"},
		{"an attribute the schema does not know", `permit (principal is Switchboard::ServiceAccount, action, resource) when { principal.bindings has "admin" };`, "validate"},
		{"a tag of the wrong type", `permit (principal is Switchboard::ServiceAccount, action, resource) when { principal.hasTag("admin") && principal.getTag("admin") == "x" };`, "validate"},
		{"no policy", `// nothing`, "no policy"},
	} {
		_, err := cedarauthz.New(cedarauthz.WithPolicies(fstest.MapFS{"viewer.cedar": {Data: []byte(good)}, "bad.cedar": {Data: []byte(c.src)}}))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.cedar") {
			t.Errorf("%s: err = %v, want one naming bad.cedar and %q", c.name, err, c.want)
		}
	}
	if _, err := cedarauthz.New(cedarauthz.WithPolicies(fstest.MapFS{})); err == nil {
		t.Error("no policy file: no error")
	}
}

// The schema holds every catalogue action with its resource types and groups.
func TestSchemaOfTheCatalogue(t *testing.T) {
	b, err := cedarauthz.Schema(authz.Actions())
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		`action "messaging:send-message" in all appliesTo`,
		`action "messaging:get-message" in [all, "messaging:read"] appliesTo`,
		`action "messaging:read" in read;`,
		`resource: [Channel, Scope, Tenant]`,
		`entity ServiceAccount in Scope tags Set<Scope>;`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("schema lacks %q:\n%s", want, s)
		}
	}
}

// The caches of a principal's tags and of a path's scopes never answer for
// other input: a role change or another path is decided afresh.
func TestCachesFollowTheirInput(t *testing.T) {
	a := cedarauthz.Must()
	ch := func(path ...string) authz.Resource {
		return authz.Resource{Type: "channel", ID: "chn_1", ScopePath: path}
	}
	send := "messaging:send-message"
	p := sa(bind("sender", eu))
	if !allowed(t, a, p, send, ch(root, eu, france)) {
		t.Fatal("sender at EU cannot send in France")
	}
	p.Roles = []invocation.RoleBinding{bind("viewer", eu)} // the same principal, its role changed
	if allowed(t, a, p, send, ch(root, eu, france)) {
		t.Error("a revoked role still decides")
	}
	p.Roles = []invocation.RoleBinding{bind("sender", eu)}
	if allowed(t, a, p, send, ch(root, us, france)) { // the same last scope on another path
		t.Error("a cached path answered for another one")
	}
	if !allowed(t, a, p, send, ch(root, eu, france)) {
		t.Error("sender at EU cannot send in France any more")
	}
}

// Concurrent decisions share the authorizer (run with -race).
func TestConcurrentDecisions(t *testing.T) {
	a := cedarauthz.Must()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				scope := fmt.Sprintf("scp_%d", (g+i)%7)
				p := invocation.Principal{Kind: invocation.KindServiceAccount, ID: fmt.Sprintf("sva_%d", i%5), Roles: []invocation.RoleBinding{bind("admin", scope)}}
				res := authz.Resource{Type: "channel", ID: "chn_1", ScopePath: []string{root, scope}}
				if a.Authorize(context.Background(), p, "messaging:send-message", res) != nil {
					t.Errorf("admin at %s denied on its channel", scope)
					return
				}
			}
		}()
	}
	wg.Wait()
}
