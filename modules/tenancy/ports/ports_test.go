package ports_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/tenancy"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
)

func newModule(t *testing.T) (*tenancy.Module, *boltstore.Store) {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return tenancy.New(tenancy.Deps{Store: store, IDs: ids.NewSequence(now), Clock: clock.NewFixed(now)}), store
}

func TestEndpoints(t *testing.T) {
	m, _ := newModule(t)
	want := map[string]struct {
		kind   rpc.Kind
		action string
		access rpc.Access
	}{
		"onboard-tenant":       {rpc.KindCommand, "tenancy:onboard-tenant", rpc.AccessOperator},
		"restore-tenant-admin": {rpc.KindCommand, "tenancy:restore-tenant-admin", rpc.AccessOperator},
		"get-tenant":           {rpc.KindQuery, "tenancy:get-tenant", rpc.AccessTenant},
		"create-scope":         {rpc.KindCommand, "tenancy:create-scope", rpc.AccessTenant},
		"list-scopes":          {rpc.KindQuery, "tenancy:list-scopes", rpc.AccessTenant},

		"create-service-account": {rpc.KindCommand, "tenancy:create-service-account", rpc.AccessTenant},
		"grant-role":             {rpc.KindCommand, "tenancy:grant-role", rpc.AccessTenant},
		"revoke-role":            {rpc.KindCommand, "tenancy:revoke-role", rpc.AccessTenant},
		"issue-api-key":          {rpc.KindCommand, "tenancy:issue-api-key", rpc.AccessTenant},
		"revoke-api-key":         {rpc.KindCommand, "tenancy:revoke-api-key", rpc.AccessTenant},
		"list-api-keys":          {rpc.KindQuery, "tenancy:list-api-keys", rpc.AccessTenant},
		"create-role":            {rpc.KindCommand, "tenancy:create-role", rpc.AccessTenant},
		"list-roles":             {rpc.KindQuery, "tenancy:list-roles", rpc.AccessTenant},
		"list-actions":           {rpc.KindQuery, "tenancy:list-actions", rpc.AccessTenant},
		"get-permissions":        {rpc.KindQuery, "tenancy:get-permissions", rpc.AccessTenant},
	}
	eps := m.Endpoints()
	if len(eps) != len(want) {
		t.Fatalf("%d endpoints, want %d", len(eps), len(want))
	}
	for _, ep := range eps {
		w, ok := want[ep.Name]
		if !ok {
			t.Fatalf("unexpected endpoint %q", ep.Name)
		}
		if ep.Kind != w.kind || ep.Action != w.action || ep.Access != w.access || ep.Status != 200 {
			t.Errorf("%s = %+v, want %+v", ep.Name, ep, w)
		}
	}
}

// The input tags are checked with the rpc edge's own validator, so a typo in
// a tag (or a tag the edge does not know) fails here rather than in production.
func TestInputTagsWithTheEdgeValidator(t *testing.T) {
	v := rpc.NewValidator()
	scope := ids.NewULIDs().New(ids.Scope)
	valid := []any{
		app.OnboardTenantInput{Name: "Acme", Tier: "pooled"},
		app.OnboardTenantInput{Name: strings.Repeat("é", 200), Tier: "siloed"},
		app.GetTenantInput{},
		app.RestoreTenantAdminInput{TenantID: "tnt_x"},
		app.CreateRoleInput{Name: "Support", Actions: []string{"messaging:get-message"}},
		app.ListRolesInput{},
		app.ListActionsInput{},
		app.GetPermissionsInput{ScopeID: scope},
		app.CreateScopeInput{ParentScopeID: scope, Name: "EU"},
		app.ListScopesInput{},
		app.ListScopesInput{Limit: new(100), Cursor: "abc"},
		app.CreateServiceAccountInput{ScopeID: scope, Name: "ci", Role: "viewer"},
		app.CreateServiceAccountInput{ScopeID: "scp_malformed", Name: "ci", Role: "owner"}, // 404 and 400 from the handler
		app.GrantRoleInput{ServiceAccountID: "sva_x", Role: "admin", ScopeID: scope},
		app.IssueAPIKeyInput{ServiceAccountID: "sva_x"},
		app.IssueAPIKeyInput{ServiceAccountID: "sva_x", Name: strings.Repeat("é", 200)},
		app.RevokeAPIKeyInput{APIKeyID: "key_x"},
		app.ListAPIKeysInput{},
		app.ListAPIKeysInput{ServiceAccountID: "sva_x", Limit: new(1), Cursor: "abc"},
	}
	for _, in := range valid {
		if err := v.Validate(in); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", in, err)
		}
	}
	invalid := []struct {
		in    any
		field string
	}{
		{app.OnboardTenantInput{Tier: "pooled"}, "name"},
		{app.OnboardTenantInput{Name: strings.Repeat("x", 201), Tier: "pooled"}, "name"},
		{app.OnboardTenantInput{Name: "Acme", Tier: "gold"}, "tier"},
		{app.CreateScopeInput{ParentScopeID: strings.Repeat("s", 65), Name: "EU"}, "parentScopeId"},
		{app.CreateScopeInput{ParentScopeID: scope}, "name"},
		{app.ListScopesInput{Limit: new(101)}, "limit"},
		{app.ListScopesInput{Limit: new(-1)}, "limit"},
		{app.ListScopesInput{Limit: new(0)}, "limit"},
		{app.CreateServiceAccountInput{Name: "ci", Role: "viewer"}, "scopeId"},
		{app.CreateServiceAccountInput{ScopeID: scope, Role: "viewer"}, "name"},
		{app.CreateServiceAccountInput{ScopeID: scope, Name: "ci"}, "role"},
		{app.CreateServiceAccountInput{ScopeID: scope, Name: "ci", Role: strings.Repeat("a", 65)}, "role"},
		{app.GrantRoleInput{Role: "admin", ScopeID: scope}, "serviceAccountId"},
		{app.GrantRoleInput{ServiceAccountID: "sva_x", Role: "admin", ScopeID: strings.Repeat("s", 65)}, "scopeId"},
		{app.IssueAPIKeyInput{}, "serviceAccountId"},
		{app.IssueAPIKeyInput{ServiceAccountID: "sva_x", Name: strings.Repeat("n", 201)}, "name"},
		{app.RevokeAPIKeyInput{}, "apiKeyId"},
		{app.ListAPIKeysInput{ServiceAccountID: strings.Repeat("s", 65)}, "serviceAccountId"},
		{app.ListAPIKeysInput{Limit: new(101)}, "limit"},
	}
	for _, c := range invalid {
		err := v.Validate(c.in)
		e := errs.As(err)
		if err == nil || e.Kind != errs.KindInvalid || len(e.Fields) != 1 || e.Fields[0].Field != c.field {
			t.Errorf("Validate(%+v) = %v (fields %+v), want one error on %s", c.in, err, e.Fields, c.field)
		}
	}
}

func TestProvisionTenantWork(t *testing.T) {
	m, store := newModule(t)
	reg := work.NewRegistry()
	m.RegisterWork(reg)
	if got := reg.Types(); len(got) != 1 || got[0] != app.WorkProvisionTenant {
		t.Fatalf("work types = %v", got)
	}
	ctx := context.Background()

	// An item whose payload names another tenant is refused, not run.
	bad := work.Item{ID: "wrk_1", Type: app.WorkProvisionTenant, TenantID: "tnt_a", Payload: json.RawMessage(`{"tenantId":"tnt_b"}`)}
	if err := reg.Handle(ctx, bad); err == nil {
		t.Fatal("mismatched tenant accepted")
	}
	bad.Payload = json.RawMessage(`not json`)
	if err := reg.Handle(ctx, bad); err == nil {
		t.Fatal("bad payload accepted")
	}

	// The item committed by onboard-tenant runs in its tenant, without any
	// invocation context of its own.
	out, err := m.App().Commands.OnboardTenant.Handle(operator(ctx), app.OnboardTenantInput{Name: "Acme", Tier: "pooled"})
	if err != nil {
		t.Fatal(err)
	}
	items, err := store.PendingOutbox(ctx, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("pending = %+v, %v", items, err)
	}
	if err := reg.Handle(ctx, items[0]); err != nil {
		t.Fatal(err)
	}
	tn, err := m.App().Queries.GetTenant.Handle(tenant(ctx, out.TenantID, out.RootScopeID), app.GetTenantInput{})
	if err != nil || tn.Status != "active" {
		t.Fatalf("tenant = %+v, %v", tn, err)
	}
}
