package authz_test

import (
	"context"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

const (
	root   = "scp_root"
	eu     = "scp_eu"
	france = "scp_fr"
	us     = "scp_us"
)

func sa(bindings ...invocation.RoleBinding) invocation.Principal {
	return invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_1", TenantID: "tnt_1", Roles: bindings}
}

func TestRolesNestedScopes(t *testing.T) {
	inFrance := authz.Resource{Type: "message", ID: "msg_1", ScopePath: []string{root, eu, france}}
	inUS := authz.Resource{Type: "message", ID: "msg_2", ScopePath: []string{root, us}}
	tenant := authz.Tenant("tnt_1", root)
	for _, c := range []struct {
		name   string
		p      invocation.Principal
		action string
		res    authz.Resource
		allow  bool
	}{
		{"sender at EU cancels in France", sa(invocation.RoleBinding{Role: "sender", ScopeID: eu}), "messaging:cancel-message", inFrance, true},
		{"sender at EU cannot cancel in US", sa(invocation.RoleBinding{Role: "sender", ScopeID: eu}), "messaging:cancel-message", inUS, false},
		{"sender cannot create scopes", sa(invocation.RoleBinding{Role: "sender", ScopeID: root}), "tenancy:create-scope", inFrance, false},
		{"viewer reads", sa(invocation.RoleBinding{Role: "viewer", ScopeID: root}), "messaging:get-message", inUS, true},
		{"viewer cannot send", sa(invocation.RoleBinding{Role: "viewer", ScopeID: root}), "messaging:send-message", inUS, false},
		{"admin at EU is no admin of the tenant", sa(invocation.RoleBinding{Role: "admin", ScopeID: eu}), "tenancy:get-tenant", tenant, false},
		{"admin at the root is", sa(invocation.RoleBinding{Role: "admin", ScopeID: root}), "tenancy:get-tenant", tenant, true},
		{"a binding without a scope covers nothing", sa(invocation.RoleBinding{Role: "admin"}), "tenancy:get-tenant", tenant, false},
		{"a resource without a scope path is denied", sa(invocation.RoleBinding{Role: "admin", ScopeID: root}), "x:y", authz.Resource{Type: "x", ID: "1"}, false},
		{"an unknown role grants nothing", sa(invocation.RoleBinding{Role: "owner", ScopeID: root}), "tenancy:get-tenant", tenant, false},
		{"the operator is no tenant principal", invocation.Principal{Kind: invocation.KindOperator}, "tenancy:get-tenant", tenant, false},
		{"the system may", invocation.Principal{Kind: invocation.KindSystem}, "tenancy:create-scope", inUS, true},
	} {
		err := authz.Roles{}.Authorize(context.Background(), c.p, c.action, c.res)
		if (err == nil) != c.allow {
			t.Errorf("%s: err = %v, want allowed %v", c.name, err, c.allow)
		}
		if err != nil && errs.KindOf(err) != errs.KindForbidden {
			t.Errorf("%s: err kind %v, want forbidden", c.name, errs.KindOf(err))
		}
	}
}

type counting struct {
	mu sync.Mutex
	n  int
}

func (c *counting) Authorize(context.Context, invocation.Principal, string, authz.Resource) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return nil
}

func TestGuardDecidesOncePerResource(t *testing.T) {
	a := &counting{}
	g := authz.NewGuard(a, sa(), "t:x")
	ctx := authz.WithGuard(context.Background(), g)
	if g.Decided() {
		t.Fatal("decided before any Require")
	}
	res := authz.Resource{Type: "doc", ID: "1", ScopePath: []string{root}}
	for range 3 {
		if err := authz.Require(ctx, res); err != nil {
			t.Fatal(err)
		}
	}
	if a.n != 1 || !g.Decided() || len(g.Resources()) != 1 {
		t.Fatalf("authorizer asked %d times, decided %v, resources %v", a.n, g.Decided(), g.Resources())
	}
}

func TestRequireWithoutGuardAllowsOnlyTheSystem(t *testing.T) {
	res := authz.Resource{Type: "doc", ID: "1", ScopePath: []string{root}}
	sys := invocation.With(context.Background(), &invocation.Context{Principal: invocation.Principal{Kind: invocation.KindSystem}})
	if err := authz.Require(sys, res); err != nil {
		t.Fatalf("system: %v", err)
	}
	user := invocation.With(context.Background(), &invocation.Context{Principal: sa(invocation.RoleBinding{Role: "admin", ScopeID: root})})
	if err := authz.Require(user, res); errs.KindOf(err) != errs.KindForbidden {
		t.Fatalf("a user without a guard: %v, want forbidden", err)
	}
	// A nil guard (cleared for work that continues a request) counts as none.
	if err := authz.Require(authz.WithGuard(sys, nil), res); err != nil {
		t.Fatalf("system with a cleared guard: %v", err)
	}
}
