package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/tenancy"
	"github.com/switchboard-dev/switchboard/modules/tenancy/adapters"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC)

type env struct {
	store *boltstore.Store
	clock *clock.Fixed
	ids   *ids.Sequence
	mod   *tenancy.Module
	app   *app.Application
	work  *work.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	e := &env{store: store, clock: clock.NewFixed(t0), ids: ids.NewSequence(t0), work: work.NewRegistry()}
	e.mod = tenancy.New(tenancy.Deps{Store: store, IDs: e.ids, Clock: e.clock})
	e.app = e.mod.App()
	e.mod.RegisterWork(e.work)
	return e
}

var operatorMeta = invocation.Context{
	InvocationID: "inv_01JQ0000000000000000000001",
	ActionID:     "01JQ0000000000000000000002",
	TraceID:      "4bf92f3577b34da6a3ce929d0e0e4736",
	Trigger:      "http",
	Principal:    invocation.Principal{Kind: invocation.KindOperator, ID: "operator"},
}

func operatorCtx() context.Context {
	c := operatorMeta
	return invocation.With(context.Background(), &c)
}

// guarded adds the authorization guard the edge installs for every call
// (built-in roles), so that handlers decide as in production.
func guarded(ctx context.Context) context.Context {
	return authz.WithGuard(ctx, authz.NewGuard(authz.Roles{}, invocation.From(ctx).Principal, "tenancy:test"))
}

// tenantCtx is a call of the onboarded admin service account.
func tenantCtx(o app.OnboardTenantOutput) context.Context {
	return guarded(invocation.With(context.Background(), &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000009",
		TraceID:      "0af7651916cd43dd8448eb211c80319c",
		Trigger:      "http",
		Principal: invocation.Principal{
			Kind: invocation.KindServiceAccount, ID: o.ServiceAccountID, TenantID: o.TenantID,
			CredentialID: o.APIKeyID, Roles: []invocation.RoleBinding{{Role: "admin", ScopeID: o.RootScopeID}},
		},
	}))
}

func (e *env) onboard(t *testing.T, name string) app.OnboardTenantOutput {
	t.Helper()
	out, err := e.app.Commands.OnboardTenant.Handle(operatorCtx(), app.OnboardTenantInput{Name: name, Tier: "pooled"})
	if err != nil {
		t.Fatalf("onboard %q: %v", name, err)
	}
	return out
}

func (e *env) createScope(t *testing.T, ctx context.Context, parent, name string) string {
	t.Helper()
	out, err := e.app.Commands.CreateScope.Handle(ctx, app.CreateScopeInput{ParentScopeID: parent, Name: name})
	if err != nil {
		t.Fatalf("create scope %q under %s: %v", name, parent, err)
	}
	return out.ScopeID
}

func (e *env) stream(t *testing.T, tenantID, stream string) []eventstore.Event {
	t.Helper()
	evs, err := e.store.ReadStream(context.Background(), tenantID, stream, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func (e *env) pending(t *testing.T) []eventstore.OutboxEntry {
	t.Helper()
	entries, err := e.store.PendingOutbox(context.Background(), t0.Add(24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func wantErr(t *testing.T, err error, kind errs.Kind, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", code)
	}
	e := errs.As(err)
	if e.Kind != kind || e.Code != code {
		t.Fatalf("err = %v (kind %d code %q), want kind %d code %q", err, e.Kind, e.Code, kind, code)
	}
}

func TestOnboardThenGetTenantThenProvision(t *testing.T) {
	e := newEnv(t)
	out := e.onboard(t, "  Acme Corp  ")
	for prefix, id := range map[string]string{ids.Tenant: out.TenantID, ids.Scope: out.RootScopeID, ids.ServiceAccount: out.ServiceAccountID, ids.APIKey: out.APIKeyID} {
		if !ids.Valid(prefix, id) {
			t.Fatalf("id %q is not a %s id", id, prefix)
		}
	}
	ctx := tenantCtx(out)

	got, err := e.app.Queries.GetTenant.Handle(ctx, app.GetTenantInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := app.TenantOutput{
		TenantID: out.TenantID, Name: "Acme Corp", Tier: "pooled", Status: "provisioning", RootScopeID: out.RootScopeID,
		CreatedAt: "2025-03-04T05:06:07.891Z", UpdatedAt: "2025-03-04T05:06:07.891Z",
	}
	if got != want {
		t.Fatalf("get-tenant = %+v\nwant %+v", got, want)
	}

	// One provision-tenant entry was committed with the tenant, due now.
	entries := e.pending(t)
	if len(entries) != 1 {
		t.Fatalf("pending outbox = %+v, want one entry", entries)
	}
	it := entries[0]
	if it.Type != app.WorkProvisionTenant || it.TenantID != out.TenantID || !it.DueAt.Equal(t0) || !ids.Valid(ids.Work, it.ID) {
		t.Fatalf("outbox entry = %+v", it)
	}
	if it.Invocation != operatorMeta.Meta() {
		t.Fatalf("outbox invocation = %+v, want %+v", it.Invocation, operatorMeta.Meta())
	}
	var p app.ProvisionTenantPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil || p.TenantID != out.TenantID {
		t.Fatalf("payload %s: %v", it.Payload, err)
	}

	// At-least-once delivery: the handler runs twice; the second run is a no-op.
	e.clock.Advance(1500 * time.Millisecond)
	for i := 0; i < 2; i++ {
		if err := e.work.Handle(context.Background(), it); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		e.clock.Advance(time.Second)
	}
	got, err = e.app.Queries.GetTenant.Handle(ctx, app.GetTenantInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "active" || got.UpdatedAt != "2025-03-04T05:06:09.391Z" || got.CreatedAt != want.CreatedAt {
		t.Fatalf("after provisioning: %+v", got)
	}
	evs := e.stream(t, out.TenantID, adapters.TenantStream)
	if len(evs) != 2 || evs[0].Type != domain.TypeTenantOnboarded || evs[1].Type != domain.TypeTenantProvisioned {
		t.Fatalf("tenant stream = %+v, want onboarded + one provisioned", evs)
	}
	// The worker continues the onboarding invocation, acting as the system.
	wantMeta := invocation.Meta{InvocationID: operatorMeta.InvocationID, ActionID: operatorMeta.ActionID, TraceID: operatorMeta.TraceID, Principal: "system"}
	if evs[1].Invocation != wantMeta {
		t.Fatalf("provisioned invocation = %+v, want %+v", evs[1].Invocation, wantMeta)
	}
}

func TestOnboardWritesEveryStreamWithInvocationMeta(t *testing.T) {
	e := newEnv(t)
	out := e.onboard(t, "Acme")
	streams := map[string][]string{
		adapters.TenantStream:                               {domain.TypeTenantOnboarded},
		adapters.ScopeStream(out.RootScopeID):               {domain.TypeScopeCreated},
		adapters.ServiceAccountStream(out.ServiceAccountID): {domain.TypeServiceAccountCreated, domain.TypeAPIKeyIssued},
	}
	for stream, types := range streams {
		evs := e.stream(t, out.TenantID, stream)
		if len(evs) != len(types) {
			t.Fatalf("%s: %d events, want %v", stream, len(evs), types)
		}
		for i, ev := range evs {
			if ev.Type != types[i] || ev.Version != int64(i+1) || ev.SchemaVersion != 1 || !ids.Valid(ids.Event, ev.ID) {
				t.Errorf("%s[%d] = %+v", stream, i, ev)
			}
			if ev.Invocation != operatorMeta.Meta() || !ev.OccurredAt.Equal(t0) || ev.TenantID != out.TenantID {
				t.Errorf("%s[%d] envelope = %+v", stream, i, ev)
			}
		}
	}
	var root domain.ScopeCreated
	if err := json.Unmarshal(e.stream(t, out.TenantID, adapters.ScopeStream(out.RootScopeID))[0].Data, &root); err != nil {
		t.Fatal(err)
	}
	if root.Name != "root" || root.ParentScopeID != "" || !reflect.DeepEqual(root.Path, []string{out.RootScopeID}) {
		t.Fatalf("root scope = %+v", root)
	}
}

func TestOnboardedAPIKeyResolvesAndOnlyItsHashIsStored(t *testing.T) {
	e := newEnv(t)
	out := e.onboard(t, "Acme")
	keyID, secret, ok := auth.ParseAPIKey(out.APIKey)
	if !ok || keyID != out.APIKeyID {
		t.Fatalf("api key %q does not parse to %s", out.APIKey, out.APIKeyID)
	}
	rec, err := e.mod.APIKeys().ResolveAPIKey(context.Background(), keyID)
	if err != nil {
		t.Fatal(err)
	}
	if !auth.EqualHash(secret, rec.SecretHash) {
		t.Fatal("stored hash does not match the returned key's secret")
	}
	want := auth.APIKeyRecord{
		KeyID: keyID, TenantID: out.TenantID, ServiceAccountID: out.ServiceAccountID, SecretHash: rec.SecretHash,
		Roles: []invocation.RoleBinding{{Role: "admin", ScopeID: out.RootScopeID}},
	}
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("record = %+v\nwant %+v", rec, want)
	}

	// The kernel's authenticator accepts the key through the resolver.
	authn := auth.Authenticator{Keys: e.mod.APIKeys()}
	p, err := authn.Authenticate(context.Background(), out.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != invocation.KindServiceAccount || p.ID != out.ServiceAccountID || p.TenantID != out.TenantID || p.CredentialID != keyID {
		t.Fatalf("principal = %+v", p)
	}
	if _, err := authn.Authenticate(context.Background(), auth.FormatAPIKey(keyID, secret+"x")); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := e.mod.APIKeys().ResolveAPIKey(context.Background(), e.ids.New(ids.APIKey)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("unknown key: %v, want ErrUnauthenticated", err)
	}

	// The secret is nowhere in the stored events; the issued event holds the hash.
	evs := e.stream(t, out.TenantID, adapters.ServiceAccountStream(out.ServiceAccountID))
	for _, ev := range evs {
		if strings.Contains(string(ev.Data), secret) {
			t.Fatalf("event %s stores the secret", ev.Type)
		}
	}
	var issued domain.APIKeyIssued
	if err := json.Unmarshal(evs[1].Data, &issued); err != nil || issued.SecretHash != auth.HashSecret(secret) || issued.APIKeyID != keyID {
		t.Fatalf("issued = %+v, %v", issued, err)
	}
}

func TestOnboardRejectsBadInputAndNonOperators(t *testing.T) {
	e := newEnv(t)
	_, err := e.app.Commands.OnboardTenant.Handle(operatorCtx(), app.OnboardTenantInput{Name: "Acme", Tier: "gold"})
	wantErr(t, err, errs.KindInvalid, domain.CodeInvalidTier)
	_, err = e.app.Commands.OnboardTenant.Handle(operatorCtx(), app.OnboardTenantInput{Name: "   ", Tier: "siloed"})
	wantErr(t, err, errs.KindInvalid, domain.CodeInvalidName)

	out := e.onboard(t, "Acme")
	_, err = e.app.Commands.OnboardTenant.Handle(tenantCtx(out), app.OnboardTenantInput{Name: "Other", Tier: "pooled"})
	wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)
	_, err = e.app.Commands.OnboardTenant.Handle(context.Background(), app.OnboardTenantInput{Name: "Other", Tier: "pooled"})
	wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)

	if n := len(e.pending(t)); n != 1 {
		t.Fatalf("%d outbox entries, want 1 (rejected calls write nothing)", n)
	}
}

func TestTenantQueriesNeedATenant(t *testing.T) {
	e := newEnv(t)
	_, err := e.app.Queries.GetTenant.Handle(operatorCtx(), app.GetTenantInput{})
	wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)
	_, err = e.app.Queries.ListScopes.Handle(context.Background(), app.ListScopesInput{})
	wantErr(t, err, errs.KindForbidden, errs.CodeForbidden)

	// A tenant principal whose tenant has no stream: 404.
	ghost := tenantCtx(app.OnboardTenantOutput{TenantID: e.ids.New(ids.Tenant), ServiceAccountID: e.ids.New(ids.ServiceAccount)})
	_, err = e.app.Queries.GetTenant.Handle(ghost, app.GetTenantInput{})
	wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
}

func TestCreateScopeNestedThreeLevels(t *testing.T) {
	e := newEnv(t)
	out := e.onboard(t, "Acme")
	ctx := tenantCtx(out)
	e.clock.Advance(time.Second)
	eu := e.createScope(t, ctx, out.RootScopeID, "EU")
	de := e.createScope(t, ctx, eu, "  Germany ")
	berlin := e.createScope(t, ctx, de, "Berlin")

	page, err := e.app.Queries.ListScopes.Handle(ctx, app.ListScopesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if page.NextCursor != nil {
		t.Fatalf("nextCursor = %q, want null", *page.NextCursor)
	}
	str := func(s string) *string { return &s }
	at := "2025-03-04T05:06:08.891Z"
	want := []app.ScopeItem{
		{ScopeID: berlin, ParentScopeID: str(de), Name: "Berlin", Path: []string{out.RootScopeID, eu, de, berlin}, CreatedAt: at},
		{ScopeID: de, ParentScopeID: str(eu), Name: "Germany", Path: []string{out.RootScopeID, eu, de}, CreatedAt: at},
		{ScopeID: eu, ParentScopeID: str(out.RootScopeID), Name: "EU", Path: []string{out.RootScopeID, eu}, CreatedAt: at},
		{ScopeID: out.RootScopeID, ParentScopeID: nil, Name: "root", Path: []string{out.RootScopeID}, CreatedAt: "2025-03-04T05:06:07.891Z"},
	}
	if !reflect.DeepEqual(page.Items, want) {
		t.Fatalf("list-scopes =\n%s\nwant\n%s", js(page.Items), js(want))
	}
	// The root's parent is null in JSON, and the last page's cursor too.
	if b := js(page); !strings.Contains(b, `"parentScopeId":null`) || !strings.Contains(b, `"nextCursor":null`) {
		t.Fatalf("json = %s", b)
	}

	evs := e.stream(t, out.TenantID, adapters.ScopeStream(berlin))
	if len(evs) != 1 || evs[0].Type != domain.TypeScopeCreated {
		t.Fatalf("scope stream = %+v", evs)
	}
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestCreateScopeSiblingNamesAreUniqueCaseInsensitively(t *testing.T) {
	e := newEnv(t)
	out := e.onboard(t, "Acme")
	ctx := tenantCtx(out)
	mkt := e.createScope(t, ctx, out.RootScopeID, "Marketing")

	_, err := e.app.Commands.CreateScope.Handle(ctx, app.CreateScopeInput{ParentScopeID: out.RootScopeID, Name: "  MARKETING "})
	wantErr(t, err, errs.KindConflict, domain.CodeScopeNameTaken)
	if !errors.Is(err, domain.ErrScopeNameTaken) {
		t.Fatal("errors.Is(err, ErrScopeNameTaken) = false")
	}
	// The same name is fine under another parent, and a different name among siblings.
	e.createScope(t, ctx, mkt, "marketing")
	e.createScope(t, ctx, out.RootScopeID, "Sales")
	// Another tenant may use the name too.
	other := e.onboard(t, "Other")
	e.createScope(t, tenantCtx(other), other.RootScopeID, "Marketing")

	_, err = e.app.Commands.CreateScope.Handle(ctx, app.CreateScopeInput{ParentScopeID: out.RootScopeID, Name: strings.Repeat("x", 201)})
	wantErr(t, err, errs.KindInvalid, domain.CodeInvalidName)

	page, err := e.app.Queries.ListScopes.Handle(ctx, app.ListScopesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 4 { // root, Marketing, Marketing/marketing, Sales
		t.Fatalf("%d scopes, want 4: %s", len(page.Items), js(page.Items))
	}
}

// racyReads claims every name is free, as a concurrent create-scope that has
// not committed yet would see it.
type racyReads struct {
	app.ReadModel
	calls int
}

func (r *racyReads) ScopeNameTaken(ctx context.Context, tenantID, parentID, name string) (bool, error) {
	r.calls++
	if r.calls == 1 {
		return false, nil
	}
	return r.ReadModel.ScopeNameTaken(ctx, tenantID, parentID, name)
}

func TestCreateScopeNameRaceIsAConflict(t *testing.T) {
	e := newEnv(t)
	out := e.onboard(t, "Acme")
	ctx := tenantCtx(out)
	e.createScope(t, ctx, out.RootScopeID, "Ops")

	reads := &racyReads{ReadModel: adapters.NewReadModel(e.store)}
	racy := app.New(app.Deps{Repo: adapters.NewRepository(e.store, e.ids, e.clock), Reads: reads, IDs: e.ids, Clock: e.clock})
	// As the edge runs it: in a unit of work, run again when its commit conflicts.
	runner := &uow.Runner{Store: e.store}
	err := runner.Run(ctx, out.TenantID, func(ctx context.Context) error {
		_, err := racy.Commands.CreateScope.Handle(ctx, app.CreateScopeInput{ParentScopeID: out.RootScopeID, Name: "ops"})
		return err
	}, nil)
	wantErr(t, err, errs.KindConflict, domain.CodeScopeNameTaken)
	if reads.calls != 2 {
		t.Fatalf("name checked %d times, want 2 (before the conflicting commit and in the run after it)", reads.calls)
	}
	page, _ := e.app.Queries.ListScopes.Handle(ctx, app.ListScopesInput{})
	if len(page.Items) != 2 {
		t.Fatalf("the losing create wrote something: %s", js(page.Items))
	}
}

func TestCreateScopeParentOfAnotherTenantIsNotFound(t *testing.T) {
	e := newEnv(t)
	a := e.onboard(t, "A")
	b := e.onboard(t, "B")
	aChild := e.createScope(t, tenantCtx(a), a.RootScopeID, "Team")

	for _, parent := range []string{a.RootScopeID, aChild, e.ids.New(ids.Scope), "scp_nope", b.TenantID} {
		_, err := e.app.Commands.CreateScope.Handle(tenantCtx(b), app.CreateScopeInput{ParentScopeID: parent, Name: "Team"})
		wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
		if r := errs.As(err).Params["resource"]; r != "scope" {
			t.Fatalf("resource = %v, want scope", r)
		}
	}
	page, _ := e.app.Queries.ListScopes.Handle(tenantCtx(b), app.ListScopesInput{})
	if len(page.Items) != 1 {
		t.Fatalf("tenant B has %d scopes, want only its root", len(page.Items))
	}
}

func TestListScopesPagination(t *testing.T) {
	e := newEnv(t)
	out := e.onboard(t, "Acme")
	ctx := tenantCtx(out)
	all := []string{out.RootScopeID}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		all = append(all, e.createScope(t, ctx, out.RootScopeID, n))
	}
	// Newest first: reverse creation order (ids are ULIDs).
	var want []string
	for i := len(all) - 1; i >= 0; i-- {
		want = append(want, all[i])
	}

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		page, err := e.app.Queries.ListScopes.Handle(ctx, app.ListScopesInput{Limit: new(3), Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > 3 {
			t.Fatalf("page of %d items, limit 3", len(page.Items))
		}
		for _, it := range page.Items {
			got = append(got, it.ScopeID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pages = %v\nwant    %v", got, want)
	}

	// Default limit 50 returns all 8 at once.
	page, err := e.app.Queries.ListScopes.Handle(ctx, app.ListScopesInput{})
	if err != nil || len(page.Items) != 8 || page.NextCursor != nil {
		t.Fatalf("default page: %d items, next %v, %v", len(page.Items), page.NextCursor, err)
	}
	// Exactly a full last page: no further cursor.
	page, err = e.app.Queries.ListScopes.Handle(ctx, app.ListScopesInput{Limit: new(8)})
	if err != nil || len(page.Items) != 8 || page.NextCursor != nil {
		t.Fatalf("limit 8: %d items, next %v, %v", len(page.Items), page.NextCursor, err)
	}

	_, err = e.app.Queries.ListScopes.Handle(ctx, app.ListScopesInput{Cursor: "%%%not-a-cursor"})
	wantErr(t, err, errs.KindInvalid, errs.CodeValidation)
	if f := errs.As(err).Fields; len(f) != 1 || f[0].Field != "cursor" {
		t.Fatalf("fields = %+v", f)
	}
	_, err = e.app.Queries.ListScopes.Handle(ctx, app.ListScopesInput{Limit: new(101)})
	wantErr(t, err, errs.KindInvalid, errs.CodeValidation)
}

func TestEventsCarryTheInvocationMeta(t *testing.T) {
	e := newEnv(t)
	out := e.onboard(t, "Acme")
	inv := &invocation.Context{
		InvocationID: "inv_01JQ00000000000000000000AA",
		ActionID:     "01JQ00000000000000000000BB",
		TraceID:      "11111111111111111111111111111111",
		Trigger:      "http",
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: out.ServiceAccountID, TenantID: out.TenantID,
			Roles: []invocation.RoleBinding{{Role: "admin", ScopeID: out.RootScopeID}}},
	}
	e.clock.Advance(42 * time.Millisecond)
	id := e.createScope(t, guarded(invocation.With(context.Background(), inv)), out.RootScopeID, "Team")
	evs := e.stream(t, out.TenantID, adapters.ScopeStream(id))
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	want := invocation.Meta{InvocationID: inv.InvocationID, ActionID: inv.ActionID, TraceID: inv.TraceID, Principal: "service_account:" + out.ServiceAccountID}
	if evs[0].Invocation != want {
		t.Fatalf("invocation = %+v, want %+v", evs[0].Invocation, want)
	}
	if !evs[0].OccurredAt.Equal(t0.Add(42 * time.Millisecond)) {
		t.Fatalf("occurredAt = %v", evs[0].OccurredAt)
	}
}

func TestWritesStageInTheUnitOfWork(t *testing.T) {
	e := newEnv(t)
	unit := eventstore.NewUnit("")
	ctx := eventstore.WithUnit(operatorCtx(), unit)
	out, err := e.app.Commands.OnboardTenant.Handle(ctx, app.OnboardTenantInput{Name: "Acme", Tier: "siloed"})
	if err != nil {
		t.Fatal(err)
	}
	if evs := e.stream(t, out.TenantID, adapters.TenantStream); len(evs) != 0 {
		t.Fatal("a command inside a unit of work committed by itself")
	}
	c := unit.Commit()
	if c.TenantID != out.TenantID || len(c.Appends) != 3 || len(c.Outbox) != 1 {
		t.Fatalf("staged commit: tenant %s, %d appends, %d outbox", c.TenantID, len(c.Appends), len(c.Outbox))
	}
	if err := e.store.Commit(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	got, err := e.app.Queries.GetTenant.Handle(tenantCtx(out), app.GetTenantInput{})
	if err != nil || got.Tier != "siloed" || got.Status != "provisioning" {
		t.Fatalf("get-tenant = %+v, %v", got, err)
	}
}

// raceOnce makes the first Save lose to another provisioning worker.
// raceOnce lets another worker provision the tenant (committing at once)
// right before the first Save, so that the first commit loses the race.
type raceOnce struct {
	app.Repository
	other func() error
	done  bool
}

func (r *raceOnce) Save(ctx context.Context, c app.Changes) error {
	if !r.done {
		r.done = true
		if err := r.other(); err != nil {
			return err
		}
	}
	return r.Repository.Save(ctx, c)
}

func TestProvisionTenantRereadsOnConflict(t *testing.T) {
	e := newEnv(t)
	out := e.onboard(t, "Acme")
	worker := invocation.With(context.Background(), invocation.FromMeta(operatorMeta.Meta(), "worker", out.TenantID))
	repo := &raceOnce{Repository: adapters.NewRepository(e.store, e.ids, e.clock),
		other: func() error { return e.app.Work.ProvisionTenant.Handle(worker) }}
	a := app.New(app.Deps{Repo: repo, Reads: adapters.NewReadModel(e.store), IDs: e.ids, Clock: e.clock})
	// The work path runs handlers in a unit of work, which runs them again on a conflict.
	runner := &uow.Runner{Store: e.store}
	err := runner.Run(worker, out.TenantID, func(ctx context.Context) error { return a.Work.ProvisionTenant.Handle(ctx) }, nil)
	if err != nil {
		t.Fatalf("provision after losing the race: %v", err)
	}
	evs := e.stream(t, out.TenantID, adapters.TenantStream)
	if len(evs) != 2 || evs[1].Type != domain.TypeTenantProvisioned {
		t.Fatalf("tenant stream = %+v", evs)
	}
}

func TestProvisionTenantOfUnknownTenantFails(t *testing.T) {
	e := newEnv(t)
	ctx := invocation.With(context.Background(), invocation.FromMeta(invocation.Meta{}, "worker", e.ids.New(ids.Tenant)))
	err := e.app.Work.ProvisionTenant.Handle(ctx)
	wantErr(t, err, errs.KindNotFound, errs.CodeNotFound)
}
