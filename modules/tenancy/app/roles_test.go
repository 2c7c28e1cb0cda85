package app_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz/cedarauthz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy/ports"
)

// asCedar is a call guarded by the edge's authorizer with the module's
// tenant roles.
func asCedar(a authz.Authorizer, tenantID, svaID, action string, roles ...invocation.RoleBinding) context.Context {
	ctx := invocation.With(context.Background(), &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000011", TraceID: "0af7651916cd43dd8448eb211c80319d", Trigger: "http",
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: svaID, TenantID: tenantID, Roles: roles},
	})
	return authz.WithGuard(ctx, authz.NewGuard(a, invocation.From(ctx).Principal, action))
}

func kindOf(err error) errs.Kind {
	var e *errs.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return -1
}

func TestTenantRoles(t *testing.T) {
	e := newEnv(t)
	az := cedarauthz.Must(cedarauthz.WithRoleSource(e.mod.Roles()))
	f := e.tenant(t, "Acme")
	g := e.tenant(t, "Globex")
	root := func(action string) context.Context {
		return asCedar(az, f.TenantID, f.ServiceAccountID, action, bind("admin", f.RootScopeID))
	}

	// create-role: only admins at the root; actions of the catalogue; unique names.
	support, err := e.app.Commands.CreateRole.Handle(root(ports.ActionCreateRole), app.CreateRoleInput{
		Name: "Support", Actions: []string{"channels:get-channel", "messaging:get-message", "channels:get-channel"}})
	if err != nil {
		t.Fatal(err)
	}
	euAdmin := asCedar(az, f.TenantID, f.ServiceAccountID, ports.ActionCreateRole, bind("admin", f.eu))
	if _, err := e.app.Commands.CreateRole.Handle(euAdmin, app.CreateRoleInput{Name: "X", Actions: []string{"channels:get-channel"}}); kindOf(err) != errs.KindForbidden {
		t.Fatalf("create-role by an admin below the root: %v", err)
	}
	_, err = e.app.Commands.CreateRole.Handle(root(ports.ActionCreateRole), app.CreateRoleInput{
		Name: "Bad", Actions: []string{"channels:get-channel", "tenancy:onboard-tenant", "x:y-z", `a"); permit(principal,action,resource`}})
	var pe *errs.Error
	if !errors.As(err, &pe) || pe.Kind != errs.KindInvalid || len(pe.Fields) != 3 || pe.Fields[0].Field != "actions[1]" || pe.Fields[2].Field != "actions[3]" {
		t.Fatalf("unknown actions: %+v", err)
	}
	for _, name := range []string{"support", " SUPPORT ", "Admin", "viewer"} {
		if _, err := e.app.Commands.CreateRole.Handle(root(ports.ActionCreateRole), app.CreateRoleInput{Name: name, Actions: []string{"channels:get-channel"}}); kindOf(err) != errs.KindConflict {
			t.Fatalf("create-role %q: %v, want 409", name, err)
		}
	}
	// Another tenant may use the name.
	if _, err := e.app.Commands.CreateRole.Handle(asCedar(az, g.TenantID, g.ServiceAccountID, ports.ActionCreateRole, bind("admin", g.RootScopeID)),
		app.CreateRoleInput{Name: "Support", Actions: []string{"messaging:send-message"}}); err != nil {
		t.Fatal(err)
	}

	// list-roles: built-in roles, then the tenant's; open to any account of the tenant.
	viewerEU := func(action string) context.Context {
		return asCedar(az, f.TenantID, "sva_01JQ00000000000000000000VW", action, bind("viewer", f.eu))
	}
	roles, err := e.app.Queries.ListRoles.Handle(viewerEU(ports.ActionListRoles), app.ListRolesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range roles.Items {
		names = append(names, r.Role+"="+r.Name)
	}
	if want := []string{"admin=admin", "sender=sender", "viewer=viewer", support.RoleID + "=Support"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("list-roles %v, want %v", names, want)
	}
	if got := roles.Items[3].Actions; !reflect.DeepEqual(got, []string{"channels:get-channel", "messaging:get-message"}) {
		t.Fatalf("role actions %v", got)
	}
	if !slices.Contains(roles.Items[1].Actions, "messaging:send-message") || slices.Contains(roles.Items[2].Actions, "messaging:send-message") {
		t.Fatalf("built-in actions: %+v", roles.Items[:3])
	}

	// A tenant role granted at eu: exactly its actions in eu's subtree.
	sva := e.createAccount(t, root(ports.ActionCreateServiceAccount), f.eu, support.RoleID)
	p := invocation.Principal{Kind: invocation.KindServiceAccount, ID: sva, TenantID: f.TenantID, Roles: []invocation.RoleBinding{bind(support.RoleID, f.eu)}}
	ch := func(path ...string) authz.Resource {
		return authz.Resource{Type: authz.ResourceChannel, ID: "chn_x", ScopePath: path}
	}
	for _, c := range []struct {
		action string
		res    authz.Resource
		want   bool
	}{
		{"channels:get-channel", ch(f.RootScopeID, f.eu), true},
		{"channels:get-channel", ch(f.RootScopeID, f.eu, f.de), true},
		{"channels:get-channel", ch(f.RootScopeID, f.us), false},
		{"channels:get-channel", ch(f.RootScopeID), false},
		{"messaging:send-message", ch(f.RootScopeID, f.eu), false},
	} {
		if got := az.Authorize(context.Background(), p, c.action, c.res) == nil; got != c.want {
			t.Errorf("%s on %v: %v, want %v", c.action, c.res.ScopePath, got, c.want)
		}
	}
	// Another tenant's principal holding the same id as a tag gets nothing from it.
	other := p
	other.TenantID = g.TenantID
	if az.Authorize(context.Background(), other, "channels:get-channel", ch(f.RootScopeID, f.eu)) == nil {
		t.Fatal("a role of another tenant granted")
	}

	// grant-role with a role id: another tenant's or a malformed one is 404; a name is 400.
	grant := func(ctx context.Context, role, scope string) error {
		_, err := e.app.Commands.GrantRole.Handle(ctx, app.GrantRoleInput{ServiceAccountID: sva, Role: role, ScopeID: scope})
		return err
	}
	gRoles, _ := e.app.Queries.ListRoles.Handle(asCedar(az, g.TenantID, g.ServiceAccountID, ports.ActionListRoles, bind("viewer", g.RootScopeID)), app.ListRolesInput{})
	for _, role := range []string{gRoles.Items[3].Role, "rol_nope", "rol_01JQ0000000000000000000XYZ"} {
		if err := grant(root(ports.ActionGrantRole), role, f.us); kindOf(err) != errs.KindNotFound {
			t.Fatalf("grant %s: %v, want 404", role, err)
		}
	}
	if err := grant(root(ports.ActionGrantRole), "owner", f.us); kindOf(err) != errs.KindInvalid {
		t.Fatalf("grant owner: %v", err)
	}

	// Escalation: a caller may bind only a role it could exercise itself there.
	granter, err := e.app.Commands.CreateRole.Handle(root(ports.ActionCreateRole), app.CreateRoleInput{
		Name: "Granter", Actions: []string{"tenancy:grant-role", "tenancy:create-service-account", "channels:get-channel"}})
	if err != nil {
		t.Fatal(err)
	}
	asGranter := func(action string) context.Context {
		return asCedar(az, f.TenantID, "sva_01JQ00000000000000000000GR", action, bind(granter.RoleID, f.eu), bind("admin", f.de))
	}
	for _, c := range []struct {
		role, scope string
		ok          bool
	}{
		{support.RoleID, f.eu, false}, // messaging:get-message it lacks in eu
		{support.RoleID, f.de, true},  // admin in de
		{granter.RoleID, f.eu, true},  // its own role
		{"viewer", f.eu, false},
		{"admin", f.eu, false},
		{"admin", f.de, true},
		{"sender", f.de, true},
	} {
		err := grant(asGranter(ports.ActionGrantRole), c.role, c.scope)
		if (err == nil) != c.ok || (err != nil && kindOf(err) != errs.KindForbidden) {
			t.Errorf("granter grants %s at %s: %v, want ok=%v", c.role, c.scope, err, c.ok)
		}
		_, err = e.app.Commands.CreateServiceAccount.Handle(asGranter(ports.ActionCreateServiceAccount),
			app.CreateServiceAccountInput{ScopeID: c.scope, Name: "n", Role: c.role})
		if (err == nil) != c.ok {
			t.Errorf("granter creates a %s account at %s: %v, want ok=%v", c.role, c.scope, err, c.ok)
		}
	}
	// A viewer of eu at the root scope asks: it may not grant there anyway.
	if err := grant(asCedar(az, f.TenantID, "sva_01JQ00000000000000000000VW", ports.ActionGrantRole, bind("viewer", f.RootScopeID)), "viewer", f.eu); kindOf(err) != errs.KindForbidden {
		t.Fatalf("viewer grants: %v", err)
	}

	// get-permissions: what the caller may do in the scope.
	perms := func(ctx context.Context, scope string) ([]string, error) {
		out, err := e.app.Queries.GetPermissions.Handle(ctx, app.GetPermissionsInput{ScopeID: scope})
		return out.Actions, err
	}
	open := []string{"tenancy:get-permissions", "tenancy:list-actions", "tenancy:list-roles"}
	got, err := perms(viewerEU(ports.ActionGetPermissions), f.de)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range authz.Actions() {
		_, applies := authz.ProbeResource(a, f.TenantID, []string{f.RootScopeID, f.eu, f.de})
		want := a.Open || (a.ReadOnly && applies)
		if slices.Contains(got, a.Name) != want {
			t.Errorf("viewer@eu in de: %s listed %v, want %v", a.Name, !want, want)
		}
	}
	if got, _ := perms(viewerEU(ports.ActionGetPermissions), f.RootScopeID); !reflect.DeepEqual(got, open) {
		t.Fatalf("viewer@eu at the root: %v", got)
	}
	supportCtx := asCedar(az, f.TenantID, sva, ports.ActionGetPermissions, bind(support.RoleID, f.eu))
	if got, _ := perms(supportCtx, f.eu); !reflect.DeepEqual(got, []string{"channels:get-channel", "messaging:get-message", "tenancy:get-permissions", "tenancy:list-actions", "tenancy:list-roles"}) {
		t.Fatalf("support@eu in eu: %v", got)
	}
	adminPerms, _ := perms(root(ports.ActionGetPermissions), f.RootScopeID)
	if len(adminPerms) != len(authz.Actions()) {
		t.Fatalf("admin at the root: %d of %d actions", len(adminPerms), len(authz.Actions()))
	}
	for _, scope := range []string{g.RootScopeID, "scp_nope", ""} {
		if _, err := perms(viewerEU(ports.ActionGetPermissions), scope); kindOf(err) != errs.KindNotFound {
			t.Fatalf("get-permissions %q: %v, want 404", scope, err)
		}
	}

	// list-actions: every catalogue action, under each of its resource types.
	acts, err := e.app.Queries.ListActions.Handle(viewerEU(ports.ActionListActions), app.ListActionsInput{})
	if err != nil || len(acts.Actions) != len(authz.Actions()) || len(acts.Resources) != len(authz.ResourceTypes()) {
		t.Fatalf("list-actions: %v %+v", err, acts)
	}
	// Open queries: not for another tenant's principal.
	if _, err := e.app.Queries.ListActions.Handle(asCedar(az, "", "operator", ports.ActionListActions), app.ListActionsInput{}); err == nil {
		t.Fatal("list-actions without a tenant")
	}
}
