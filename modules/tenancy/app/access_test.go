package app_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/tenancy/adapters"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
	"github.com/switchboard-dev/switchboard/modules/tenancy/ports"
)

// as is a call of service account svaID of tenantID with roles, guarded for
// action with the built-in roles as the edge does.
func as(tenantID, svaID, action string, roles ...invocation.RoleBinding) context.Context {
	ctx := invocation.With(context.Background(), &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000010", TraceID: "0af7651916cd43dd8448eb211c80319d", Trigger: "http",
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: svaID, TenantID: tenantID, Roles: roles},
	})
	return authz.WithGuard(ctx, authz.NewGuard(authz.Roles{}, invocation.From(ctx).Principal, action))
}

func bind(role, scopeID string) invocation.RoleBinding {
	return invocation.RoleBinding{Role: role, ScopeID: scopeID}
}

// tenantFixture is an onboarded tenant with scopes eu, eu/de and us.
type tenantFixture struct {
	app.OnboardTenantOutput
	eu, de, us string
}

func (e *env) tenant(t *testing.T, name string) tenantFixture {
	t.Helper()
	out := e.onboard(t, name)
	f := tenantFixture{OnboardTenantOutput: out}
	f.eu = e.createScope(t, tenantCtx(out), out.RootScopeID, "eu")
	f.de = e.createScope(t, tenantCtx(out), f.eu, "de")
	f.us = e.createScope(t, tenantCtx(out), out.RootScopeID, "us")
	return f
}

// admin is a call of the tenant's onboarded admin (admin at the root).
func (f tenantFixture) admin(action string) context.Context {
	return as(f.TenantID, f.ServiceAccountID, action, bind("admin", f.RootScopeID))
}

func (e *env) createAccount(t *testing.T, ctx context.Context, scopeID, role string) string {
	t.Helper()
	out, err := e.app.Commands.CreateServiceAccount.Handle(ctx, app.CreateServiceAccountInput{ScopeID: scopeID, Name: "ci", Role: role})
	if err != nil {
		t.Fatalf("create service account at %s: %v", scopeID, err)
	}
	return out.ServiceAccountID
}

func (e *env) issueKey(t *testing.T, ctx context.Context, svaID, name string) app.IssueAPIKeyOutput {
	t.Helper()
	out, err := e.app.Commands.IssueAPIKey.Handle(ctx, app.IssueAPIKeyInput{ServiceAccountID: svaID, Name: name})
	if err != nil {
		t.Fatalf("issue api key for %s: %v", svaID, err)
	}
	return out
}

// The whole life of an account: created with one binding, keys issued,
// bindings granted and revoked (idempotently), the key's principal following
// every change at once through this instance's key cache, and the key revoked.
func TestServiceAccountRolesAndKeys(t *testing.T) {
	e := newEnv(t)
	f := e.tenant(t, "Acme")
	cache := &auth.CachedResolver{Resolver: e.mod.APIKeys(), Clock: e.clock}
	authn := &auth.Authenticator{Keys: cache}
	ctx := context.Background()

	sva := e.createAccount(t, f.admin(ports.ActionCreateServiceAccount), f.eu, "viewer")
	evs := e.stream(t, f.TenantID, adapters.ServiceAccountStream(sva))
	if len(evs) != 1 || evs[0].Type != domain.TypeServiceAccountCreated || !strings.Contains(string(evs[0].Data), `"role":"viewer"`) {
		t.Fatalf("stream = %+v", evs)
	}
	key := e.issueKey(t, f.admin(ports.ActionIssueAPIKey), sva, " deploy ")
	if !strings.HasPrefix(key.APIKey, "sbk_"+key.APIKeyID+"_") || !ids.Valid(ids.APIKey, key.APIKeyID) {
		t.Fatalf("issued %+v", key)
	}
	roles := func() []invocation.RoleBinding {
		t.Helper()
		p, err := authn.Authenticate(ctx, key.APIKey)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != sva || p.TenantID != f.TenantID || p.CredentialID != key.APIKeyID {
			t.Fatalf("principal = %+v", p)
		}
		return p.Roles
	}
	if got := roles(); !reflect.DeepEqual(got, []invocation.RoleBinding{bind("viewer", f.eu)}) {
		t.Fatalf("roles = %v", got)
	}

	grant := app.GrantRoleInput{ServiceAccountID: sva, Role: "admin", ScopeID: f.de}
	out, err := e.app.Commands.GrantRole.Handle(f.admin(ports.ActionGrantRole), grant)
	want := app.RoleBindingsOutput{ServiceAccountID: sva, Bindings: []app.RoleBindingItem{{"viewer", f.eu}, {"admin", f.de}}}
	if err != nil || !reflect.DeepEqual(out, want) {
		t.Fatalf("grant = %+v, %v", out, err)
	}
	// The same key, not reissued, carries the new binding at once (the cache
	// took the row the commit wrote; no TTL passed).
	if got := roles(); !reflect.DeepEqual(got, []invocation.RoleBinding{bind("viewer", f.eu), bind("admin", f.de)}) {
		t.Fatalf("roles after grant = %v", got)
	}
	// Granting it again: 200 with the same bindings, nothing written.
	if again, err := e.app.Commands.GrantRole.Handle(f.admin(ports.ActionGrantRole), grant); err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("grant again = %+v, %v", again, err)
	}
	if n := len(e.stream(t, f.TenantID, adapters.ServiceAccountStream(sva))); n != 3 {
		t.Fatalf("%d events, want 3 (created, issued, granted)", n)
	}

	revoke := app.RevokeRoleInput{ServiceAccountID: sva, Role: "viewer", ScopeID: f.eu}
	out, err = e.app.Commands.RevokeRole.Handle(f.admin(ports.ActionRevokeRole), revoke)
	want = app.RoleBindingsOutput{ServiceAccountID: sva, Bindings: []app.RoleBindingItem{{"admin", f.de}}}
	if err != nil || !reflect.DeepEqual(out, want) {
		t.Fatalf("revoke = %+v, %v", out, err)
	}
	if got := roles(); !reflect.DeepEqual(got, []invocation.RoleBinding{bind("admin", f.de)}) {
		t.Fatalf("roles after revoke = %v", got)
	}
	for _, in := range []app.RevokeRoleInput{revoke, {ServiceAccountID: sva, Role: "sender", ScopeID: f.de}} {
		if again, err := e.app.Commands.RevokeRole.Handle(f.admin(ports.ActionRevokeRole), in); err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("revoke of a binding not held = %+v, %v", again, err)
		}
	}
	if n := len(e.stream(t, f.TenantID, adapters.ServiceAccountStream(sva))); n != 4 {
		t.Fatalf("%d events, want 4", n)
	}

	// Revoking the key: it stops authenticating at once on this instance.
	rk := app.RevokeAPIKeyInput{APIKeyID: key.APIKeyID}
	if r, err := e.app.Commands.RevokeAPIKey.Handle(f.admin(ports.ActionRevokeAPIKey), rk); err != nil || r != (app.RevokeAPIKeyOutput{APIKeyID: key.APIKeyID, ServiceAccountID: sva, Revoked: true}) {
		t.Fatalf("revoke key = %+v, %v", r, err)
	}
	if _, err := authn.Authenticate(ctx, key.APIKey); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("a revoked key authenticates: %v", err)
	}
	if _, err := e.app.Commands.RevokeAPIKey.Handle(f.admin(ports.ActionRevokeAPIKey), rk); err != nil {
		t.Fatalf("revoke again: %v", err)
	}
	if n := len(e.stream(t, f.TenantID, adapters.ServiceAccountStream(sva))); n != 5 {
		t.Fatalf("%d events, want 5", n)
	}
	// A grant after the revocation does not bring the key back.
	if _, err := e.app.Commands.GrantRole.Handle(f.admin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: sva, Role: "admin", ScopeID: f.RootScopeID}); err != nil {
		t.Fatal(err)
	}
	if _, err := authn.Authenticate(ctx, key.APIKey); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("a revoked key authenticates after a grant: %v", err)
	}
}

// list-api-keys: newest first, per account or tenant-wide, revoked keys with
// their time, last use, never a secret or hash.
func TestListAPIKeys(t *testing.T) {
	e := newEnv(t)
	f := e.tenant(t, "Acme")
	sva := e.createAccount(t, f.admin(ports.ActionCreateServiceAccount), f.eu, "sender")
	k1 := e.issueKey(t, f.admin(ports.ActionIssueAPIKey), sva, "one")
	e.clock.Advance(time.Second)
	k2 := e.issueKey(t, f.admin(ports.ActionIssueAPIKey), sva, "")
	if _, err := e.app.Commands.RevokeAPIKey.Handle(f.admin(ports.ActionRevokeAPIKey), app.RevokeAPIKeyInput{APIKeyID: k1.APIKeyID}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	authn := &auth.Authenticator{Keys: &auth.CachedResolver{Resolver: e.mod.APIKeys(), Clock: e.clock}}
	if _, err := authn.Authenticate(context.Background(), k2.APIKey); err != nil {
		t.Fatal(err)
	}

	page, err := e.app.Queries.ListAPIKeys.Handle(f.admin(ports.ActionListAPIKeys), app.ListAPIKeysInput{ServiceAccountID: sva})
	if err != nil || len(page.Items) != 2 || page.NextCursor != nil {
		t.Fatalf("page = %s, %v", js(page), err)
	}
	newest, oldest := page.Items[0], page.Items[1]
	// t0 is 05:06:07.891: k1 issued then, k2 issued and k1 revoked a second later, k2 used a minute after.
	usedAt, revokedAt := "2025-03-04T05:07:08.891Z", "2025-03-04T05:06:08.891Z"
	if newest.APIKeyID != k2.APIKeyID || newest.Name != nil || newest.Revoked || newest.RevokedAt != nil || newest.LastUsedAt == nil || *newest.LastUsedAt != usedAt ||
		newest.CreatedAt != "2025-03-04T05:06:08.891Z" || newest.ServiceAccountID != sva {
		t.Fatalf("newest = %s", js(newest))
	}
	if oldest.APIKeyID != k1.APIKeyID || oldest.Name == nil || *oldest.Name != "one" || !oldest.Revoked || oldest.RevokedAt == nil ||
		*oldest.RevokedAt != revokedAt || oldest.CreatedAt != "2025-03-04T05:06:07.891Z" || oldest.LastUsedAt != nil {
		t.Fatalf("oldest = %s", js(oldest))
	}
	all, err := e.app.Queries.ListAPIKeys.Handle(f.admin(ports.ActionListAPIKeys), app.ListAPIKeysInput{Limit: new(2)})
	if err != nil || len(all.Items) != 2 || all.NextCursor == nil || all.Items[0].APIKeyID != k2.APIKeyID {
		t.Fatalf("tenant page 1 = %s, %v", js(all), err)
	}
	rest, err := e.app.Queries.ListAPIKeys.Handle(f.admin(ports.ActionListAPIKeys), app.ListAPIKeysInput{Limit: new(2), Cursor: *all.NextCursor})
	if err != nil || len(rest.Items) != 1 || rest.Items[0].APIKeyID != f.APIKeyID || rest.NextCursor != nil {
		t.Fatalf("tenant page 2 (the onboarding key) = %s, %v", js(rest), err)
	}
	raw := js(all) + js(rest) + js(page)
	for _, secret := range []string{k1.APIKey, k2.APIKey, strings.SplitN(k2.APIKey, "_", 4)[3], "secretHash", auth.HashSecret(strings.SplitN(k2.APIKey, "_", 4)[3])} {
		if strings.Contains(raw, secret) {
			t.Fatalf("a list shows %q", secret)
		}
	}
	// A cursor of another partition, and a bad limit, are 400s.
	_, err = e.app.Queries.ListAPIKeys.Handle(f.admin(ports.ActionListAPIKeys), app.ListAPIKeysInput{ServiceAccountID: sva, Cursor: *all.NextCursor})
	wantErr(t, err, errs.KindInvalid, errs.CodeValidation)
	_, err = e.app.Queries.ListAPIKeys.Handle(f.admin(ports.ActionListAPIKeys), app.ListAPIKeysInput{Limit: new(101)})
	wantErr(t, err, errs.KindInvalid, errs.CodeValidation)
}

// Who may do what: admin at the scope for creating and granting there, and
// the account visible (admin at its own scope or above); reads for viewers.
func TestAccessIsDecidedOnScopeAndAccount(t *testing.T) {
	e := newEnv(t)
	f := e.tenant(t, "Acme")
	euAdminID := e.createAccount(t, f.admin(ports.ActionCreateServiceAccount), f.eu, "admin")
	euAdmin := func(action string) context.Context {
		return as(f.TenantID, euAdminID, action, bind("admin", f.eu))
	}
	denied := func(err error) {
		t.Helper()
		wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)
	}

	// Create: in its subtree only.
	deAccount := e.createAccount(t, euAdmin(ports.ActionCreateServiceAccount), f.de, "sender")
	_, err := e.app.Commands.CreateServiceAccount.Handle(euAdmin(ports.ActionCreateServiceAccount), app.CreateServiceAccountInput{ScopeID: f.us, Name: "x", Role: "viewer"})
	denied(err)
	_, err = e.app.Commands.CreateServiceAccount.Handle(euAdmin(ports.ActionCreateServiceAccount), app.CreateServiceAccountInput{ScopeID: f.RootScopeID, Name: "x", Role: "admin"})
	denied(err)

	// Grant: at a scope of its subtree, to an account of its subtree.
	if _, err := e.app.Commands.GrantRole.Handle(euAdmin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: deAccount, Role: "viewer", ScopeID: f.eu}); err != nil {
		t.Fatal(err)
	}
	before := len(e.stream(t, f.TenantID, adapters.ServiceAccountStream(deAccount)))
	_, err = e.app.Commands.GrantRole.Handle(euAdmin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: deAccount, Role: "admin", ScopeID: f.RootScopeID})
	denied(err) // no escalation above its own scope
	_, err = e.app.Commands.GrantRole.Handle(euAdmin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: euAdminID, Role: "admin", ScopeID: f.us})
	denied(err) // not even to itself
	_, err = e.app.Commands.RevokeRole.Handle(euAdmin(ports.ActionRevokeRole), app.RevokeRoleInput{ServiceAccountID: f.ServiceAccountID, Role: "admin", ScopeID: f.RootScopeID})
	denied(err) // the root admin is not visible to it
	_, err = e.app.Commands.GrantRole.Handle(euAdmin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: f.ServiceAccountID, Role: "viewer", ScopeID: f.de})
	denied(err)
	if n := len(e.stream(t, f.TenantID, adapters.ServiceAccountStream(deAccount))); n != before {
		t.Fatal("a denied grant wrote")
	}
	// Keys: of accounts of its subtree.
	e.issueKey(t, euAdmin(ports.ActionIssueAPIKey), deAccount, "")
	_, err = e.app.Commands.IssueAPIKey.Handle(euAdmin(ports.ActionIssueAPIKey), app.IssueAPIKeyInput{ServiceAccountID: f.ServiceAccountID})
	denied(err)
	_, err = e.app.Commands.RevokeAPIKey.Handle(euAdmin(ports.ActionRevokeAPIKey), app.RevokeAPIKeyInput{APIKeyID: f.APIKeyID})
	denied(err)
	// Lists: of an account of its subtree; all keys only at the root.
	if _, err := e.app.Queries.ListAPIKeys.Handle(euAdmin(ports.ActionListAPIKeys), app.ListAPIKeysInput{ServiceAccountID: deAccount}); err != nil {
		t.Fatal(err)
	}
	_, err = e.app.Queries.ListAPIKeys.Handle(euAdmin(ports.ActionListAPIKeys), app.ListAPIKeysInput{})
	denied(err)

	// A viewer at the root reads keys and changes nothing; a sender neither.
	for _, role := range []string{"viewer", "sender"} {
		p := func(action string) context.Context {
			return as(f.TenantID, deAccount, action, bind(role, f.RootScopeID))
		}
		_, err = e.app.Commands.CreateServiceAccount.Handle(p(ports.ActionCreateServiceAccount), app.CreateServiceAccountInput{ScopeID: f.eu, Name: "x", Role: "viewer"})
		denied(err)
		_, err = e.app.Commands.GrantRole.Handle(p(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: deAccount, Role: "admin", ScopeID: f.de})
		denied(err)
		_, err = e.app.Commands.IssueAPIKey.Handle(p(ports.ActionIssueAPIKey), app.IssueAPIKeyInput{ServiceAccountID: deAccount})
		denied(err)
		_, err = e.app.Queries.ListAPIKeys.Handle(p(ports.ActionListAPIKeys), app.ListAPIKeysInput{})
		if role == "viewer" && err != nil {
			t.Fatalf("a viewer at the root cannot list keys: %v", err)
		}
		if role == "sender" {
			denied(err)
		}
	}
}

// Another tenant's ids, malformed ids and unknown ids are all 404, naming
// the resource; nothing is written.
func TestAccessIdsOfAnotherTenantAreNotFound(t *testing.T) {
	e := newEnv(t)
	a := e.tenant(t, "A")
	b := e.tenant(t, "B")
	bAccount := e.createAccount(t, b.admin(ports.ActionCreateServiceAccount), b.eu, "viewer")
	bKey := e.issueKey(t, b.admin(ports.ActionIssueAPIKey), bAccount, "")
	aAccount := e.createAccount(t, a.admin(ports.ActionCreateServiceAccount), a.eu, "viewer")
	mutate := func(id string) string { // one character off, still well-formed
		last := id[len(id)-1]
		if last == 'Z' {
			return id[:len(id)-1] + "Y"
		}
		return id[:len(id)-1] + "Z"
	}
	notFound := func(what string, err error, resource string) {
		t.Helper()
		wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
		if r := errs.As(err).Params["resource"]; r != resource {
			t.Fatalf("%s: resource %v, want %s", what, r, resource)
		}
	}
	for _, scope := range []string{b.RootScopeID, b.eu, mutate(a.eu), strings.ToLower(a.eu), a.eu[:len(a.eu)-1], "scp_", a.TenantID, ""} {
		_, err := e.app.Commands.CreateServiceAccount.Handle(a.admin(ports.ActionCreateServiceAccount), app.CreateServiceAccountInput{ScopeID: scope, Name: "x", Role: "viewer"})
		notFound("create at "+scope, err, "scope")
		_, err = e.app.Commands.GrantRole.Handle(a.admin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: aAccount, Role: "admin", ScopeID: scope})
		notFound("grant at "+scope, err, "scope")
	}
	for _, sva := range []string{bAccount, b.ServiceAccountID, mutate(aAccount), strings.ToLower(aAccount), aAccount + "0", a.RootScopeID} {
		_, err := e.app.Commands.GrantRole.Handle(a.admin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: sva, Role: "admin", ScopeID: a.eu})
		notFound("grant to "+sva, err, "service_account")
		_, err = e.app.Commands.RevokeRole.Handle(a.admin(ports.ActionRevokeRole), app.RevokeRoleInput{ServiceAccountID: sva, Role: "viewer", ScopeID: a.eu})
		notFound("revoke from "+sva, err, "service_account")
		_, err = e.app.Commands.IssueAPIKey.Handle(a.admin(ports.ActionIssueAPIKey), app.IssueAPIKeyInput{ServiceAccountID: sva})
		notFound("issue to "+sva, err, "service_account")
		_, err = e.app.Queries.ListAPIKeys.Handle(a.admin(ports.ActionListAPIKeys), app.ListAPIKeysInput{ServiceAccountID: sva})
		notFound("list of "+sva, err, "service_account")
	}
	for _, key := range []string{bKey.APIKeyID, b.APIKeyID, mutate(a.APIKeyID), strings.ToLower(a.APIKeyID), bKey.APIKey, "key_"} {
		_, err := e.app.Commands.RevokeAPIKey.Handle(a.admin(ports.ActionRevokeAPIKey), app.RevokeAPIKeyInput{APIKeyID: key})
		notFound("revoke "+key, err, "api_key")
	}
	// B's key still works and B's account is untouched.
	if _, err := e.mod.APIKeys().ResolveAPIKey(context.Background(), bKey.APIKeyID); err != nil {
		t.Fatal(err)
	}
	if n := len(e.stream(t, b.TenantID, adapters.ServiceAccountStream(bAccount))); n != 2 {
		t.Fatalf("B's account has %d events", n)
	}
}

func TestAccessRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	f := e.tenant(t, "Acme")
	sva := e.createAccount(t, f.admin(ports.ActionCreateServiceAccount), f.eu, "viewer")
	for _, role := range []string{"owner", "Admin", "", " admin"} {
		_, err := e.app.Commands.CreateServiceAccount.Handle(f.admin(ports.ActionCreateServiceAccount), app.CreateServiceAccountInput{ScopeID: f.eu, Name: "x", Role: role})
		wantErr(t, err, errs.KindInvalid, domain.CodeInvalidRole)
		if fs := errs.As(err).Fields; len(fs) != 1 || fs[0].Field != "role" {
			t.Fatalf("fields = %+v", fs)
		}
		_, err = e.app.Commands.GrantRole.Handle(f.admin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: sva, Role: role, ScopeID: f.eu})
		wantErr(t, err, errs.KindInvalid, domain.CodeInvalidRole)
		_, err = e.app.Commands.RevokeRole.Handle(f.admin(ports.ActionRevokeRole), app.RevokeRoleInput{ServiceAccountID: sva, Role: role, ScopeID: f.eu})
		wantErr(t, err, errs.KindInvalid, domain.CodeInvalidRole)
	}
	_, err := e.app.Commands.CreateServiceAccount.Handle(f.admin(ports.ActionCreateServiceAccount), app.CreateServiceAccountInput{ScopeID: f.eu, Name: " \t", Role: "viewer"})
	wantErr(t, err, errs.KindInvalid, domain.CodeInvalidName)
	_, err = e.app.Commands.IssueAPIKey.Handle(f.admin(ports.ActionIssueAPIKey), app.IssueAPIKeyInput{ServiceAccountID: sva, Name: "bad\x00name"})
	wantErr(t, err, errs.KindInvalid, domain.CodeInvalidName)

	// At most MaxActiveAPIKeys active keys: then 409, until one is revoked.
	var first string
	for i := range domain.MaxActiveAPIKeys {
		k := e.issueKey(t, f.admin(ports.ActionIssueAPIKey), sva, "")
		if i == 0 {
			first = k.APIKeyID
		}
	}
	_, err = e.app.Commands.IssueAPIKey.Handle(f.admin(ports.ActionIssueAPIKey), app.IssueAPIKeyInput{ServiceAccountID: sva})
	wantErr(t, err, errs.KindConflict, domain.CodeTooManyAPIKeys)
	if _, err := e.app.Commands.RevokeAPIKey.Handle(f.admin(ports.ActionRevokeAPIKey), app.RevokeAPIKeyInput{APIKeyID: first}); err != nil {
		t.Fatal(err)
	}
	e.issueKey(t, f.admin(ports.ActionIssueAPIKey), sva, "")
	// A grant rewrites the lookup rows of the ten active keys in one commit.
	if _, err := e.app.Commands.GrantRole.Handle(f.admin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: sva, Role: "sender", ScopeID: f.us}); err != nil {
		t.Fatal(err)
	}
}

// issue-api-key run again after its commit lost a race answers the key it
// committed in the run that won (a fresh id and secret per run).
func TestIssueAPIKeyRunAgainAfterAConflict(t *testing.T) {
	e := newEnv(t)
	f := e.tenant(t, "Acme")
	sva := e.createAccount(t, f.admin(ports.ActionCreateServiceAccount), f.eu, "viewer")
	repo := &raceOnce{Repository: adapters.NewRepository(e.store, e.ids, e.clock), other: func() error {
		_, err := e.app.Commands.IssueAPIKey.Handle(f.admin(ports.ActionIssueAPIKey), app.IssueAPIKeyInput{ServiceAccountID: sva})
		return err
	}}
	racy := app.New(app.Deps{Repo: repo, Reads: adapters.NewReadModel(e.store), IDs: e.ids, Clock: e.clock})
	var out app.IssueAPIKeyOutput
	runs := 0
	err := (&uow.Runner{Store: e.store}).Run(f.admin(ports.ActionIssueAPIKey), f.TenantID, func(ctx context.Context) error {
		runs++
		var err error
		out, err = racy.Commands.IssueAPIKey.Handle(ctx, app.IssueAPIKeyInput{ServiceAccountID: sva})
		return err
	}, nil)
	if err != nil || runs != 2 {
		t.Fatalf("err %v after %d runs", err, runs)
	}
	p, err := (&auth.Authenticator{Keys: e.mod.APIKeys()}).Authenticate(context.Background(), out.APIKey)
	if err != nil || p.ID != sva {
		t.Fatalf("the answered key does not authenticate: %+v, %v", p, err)
	}
	page, _ := e.app.Queries.ListAPIKeys.Handle(f.admin(ports.ActionListAPIKeys), app.ListAPIKeysInput{ServiceAccountID: sva})
	if len(page.Items) != 2 {
		t.Fatalf("%d keys, want 2 (the racing one and the answered one)", len(page.Items))
	}
}

// TestKeysOfAMorePowerfulAccount: an admin at EU may not mint a key for, nor
// revoke a key of, an EU-homed account that holds more than it (admin at
// the root): a key carries every binding of its account, so issuing one is
// granting them (found in review: issue-api-key checked only the account's
// home scope).
func TestKeysOfAMorePowerfulAccount(t *testing.T) {
	e := newEnv(t)
	f := e.tenant(t, "Acme")
	strong := e.createAccount(t, f.admin(ports.ActionCreateServiceAccount), f.eu, "viewer")
	if _, err := e.app.Commands.GrantRole.Handle(f.admin(ports.ActionGrantRole), app.GrantRoleInput{ServiceAccountID: strong, Role: "admin", ScopeID: f.RootScopeID}); err != nil {
		t.Fatal(err)
	}
	rootKey, err := e.app.Commands.IssueAPIKey.Handle(f.admin(ports.ActionIssueAPIKey), app.IssueAPIKeyInput{ServiceAccountID: strong})
	if err != nil {
		t.Fatalf("a root admin issues the key: %v", err)
	}
	euAdmin := e.createAccount(t, f.admin(ports.ActionCreateServiceAccount), f.eu, "admin")
	_, err = e.app.Commands.IssueAPIKey.Handle(as(f.TenantID, euAdmin, ports.ActionIssueAPIKey, bind("admin", f.eu)), app.IssueAPIKeyInput{ServiceAccountID: strong})
	if errs.KindOf(err) != errs.KindForbidden {
		t.Fatalf("EU admin issuing a key of a root admin: %v, want 403", err)
	}
	_, err = e.app.Commands.RevokeAPIKey.Handle(as(f.TenantID, euAdmin, ports.ActionRevokeAPIKey, bind("admin", f.eu)), app.RevokeAPIKeyInput{APIKeyID: rootKey.APIKeyID})
	if errs.KindOf(err) != errs.KindForbidden {
		t.Fatalf("EU admin revoking a root admin's key: %v, want 403", err)
	}
	// An account within the EU admin's reach is still its to manage.
	weak := e.createAccount(t, f.admin(ports.ActionCreateServiceAccount), f.eu, "viewer")
	k, err := e.app.Commands.IssueAPIKey.Handle(as(f.TenantID, euAdmin, ports.ActionIssueAPIKey, bind("admin", f.eu)), app.IssueAPIKeyInput{ServiceAccountID: weak})
	if err != nil {
		t.Fatalf("EU admin issuing a key of an EU viewer: %v", err)
	}
	if _, err := e.app.Commands.RevokeAPIKey.Handle(as(f.TenantID, euAdmin, ports.ActionRevokeAPIKey, bind("admin", f.eu)), app.RevokeAPIKeyInput{APIKeyID: k.APIKeyID}); err != nil {
		t.Fatalf("EU admin revoking it: %v", err)
	}
}
