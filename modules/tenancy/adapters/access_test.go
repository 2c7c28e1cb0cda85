package adapters

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// published collects what Repository.OnKeysWritten hands over.
type published struct {
	mu    sync.Mutex
	calls [][]auth.APIKeyRecord
}

func (p *published) add(_ context.Context, recs []auth.APIKeyRecord) {
	p.mu.Lock()
	p.calls = append(p.calls, recs)
	p.mu.Unlock()
}

func (p *published) take() [][]auth.APIKeyRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.calls
	p.calls = nil
	return c
}

// change saves events on the account's stream at its current version.
func change(t *testing.T, repo *Repository, tenantID, svaID string, events ...domain.Event) {
	t.Helper()
	ctx := context.Background()
	base := int64(0)
	if svaID != "" {
		sva, err := repo.ServiceAccount(ctx, tenantID, svaID)
		if err != nil {
			t.Fatal(err)
		}
		base = sva.Version
	}
	if err := repo.Save(ctx, app.Changes{TenantID: tenantID, Aggregates: []app.Change{{Base: base, Events: events}}}); err != nil {
		t.Fatal(err)
	}
}

func issuedKey(id, sva, hash, name string) domain.APIKeyIssued {
	return domain.APIKeyIssued{APIKeyID: id, ServiceAccountID: sva, SecretHash: hash, Name: name}
}

// A role change rewrites the lookup row of every active key of the account
// (not the revoked ones) and publishes them after the commit, so keys take
// the new bindings without being reissued.
func TestRoleChangeRewritesTheActiveKeysRows(t *testing.T) {
	repo, store := newRepo(t)
	pub := &published{}
	repo.OnKeysWritten(pub.add)
	ctx := context.Background()
	created := domain.ServiceAccountCreated{ServiceAccountID: "sva_1", ScopeID: "scp_eu", Name: "ci", Role: domain.RoleViewer}
	change(t, repo, "tnt_1", "", created, issuedKey("key_1", "sva_1", "h1", ""))
	change(t, repo, "tnt_1", "sva_1", issuedKey("key_2", "sva_1", "h2", "old"))
	change(t, repo, "tnt_1", "sva_1", issuedKey("key_3", "sva_1", "h3", ""))
	change(t, repo, "tnt_1", "sva_1", domain.APIKeyRevoked{APIKeyID: "key_2", ServiceAccountID: "sva_1"})
	pub.take()

	change(t, repo, "tnt_1", "sva_1", domain.RoleGranted{ServiceAccountID: "sva_1", Role: domain.RoleAdmin, ScopeID: "scp_de"})
	want := []invocation.RoleBinding{{Role: "viewer", ScopeID: "scp_eu"}, {Role: "admin", ScopeID: "scp_de"}}
	calls := pub.take()
	if len(calls) != 1 || len(calls[0]) != 2 || calls[0][0].KeyID != "key_1" || calls[0][1].KeyID != "key_3" {
		t.Fatalf("published %+v, want the rows of key_1 and key_3", calls)
	}
	r := NewAPIKeyResolver(store)
	for _, id := range []string{"key_1", "key_3"} {
		k, err := r.ResolveAPIKey(ctx, id)
		if err != nil || !reflect.DeepEqual(k.Roles, want) || k.Revoked || k.TenantID != "tnt_1" || k.ServiceAccountID != "sva_1" {
			t.Fatalf("%s = %+v, %v; want roles %v", id, k, err, want)
		}
		if !reflect.DeepEqual(calls[0][0].Roles, want) {
			t.Fatalf("published roles %v", calls[0][0].Roles)
		}
	}
	if k, _ := r.ResolveAPIKey(ctx, "key_2"); !k.Revoked || len(k.Roles) != 0 || k.SecretHash != "h2" {
		t.Fatalf("revoked key_2 = %+v, want revoked without roles", k)
	}

	// A revocation of the last binding leaves the keys without roles; the
	// account row lists its bindings.
	change(t, repo, "tnt_1", "sva_1", domain.RoleRevoked{ServiceAccountID: "sva_1", Role: domain.RoleViewer, ScopeID: "scp_eu"},
		domain.RoleRevoked{ServiceAccountID: "sva_1", Role: domain.RoleAdmin, ScopeID: "scp_de"})
	if k, _ := r.ResolveAPIKey(ctx, "key_3"); k.Revoked || len(k.Roles) != 0 {
		t.Fatalf("key_3 after every binding went = %+v", k)
	}
	if calls := pub.take(); len(calls) != 1 || len(calls[0]) != 2 {
		t.Fatalf("published %+v", calls)
	}

	sva, _ := repo.ServiceAccount(ctx, "tnt_1", "sva_1")
	if len(sva.Bindings) != 0 || sva.Version != 8 {
		t.Fatalf("account = %+v", sva)
	}
}

// Keys written inside a unit of work are published once it committed, never
// for a unit that does not commit.
func TestKeysArePublishedAfterTheUnitCommits(t *testing.T) {
	repo, store := newRepo(t)
	pub := &published{}
	repo.OnKeysWritten(pub.add)
	unit := eventstore.NewUnit("tnt_1")
	ctx := eventstore.WithUnit(context.Background(), unit)
	created := domain.ServiceAccountCreated{ServiceAccountID: "sva_1", ScopeID: "scp_eu", Name: "ci", Role: domain.RoleViewer}
	if err := repo.Save(ctx, app.Changes{TenantID: "tnt_1", Aggregates: []app.Change{{Events: []domain.Event{created, issuedKey("key_1", "sva_1", "h", "")}}}}); err != nil {
		t.Fatal(err)
	}
	if calls := pub.take(); len(calls) != 0 {
		t.Fatalf("published before the commit: %+v", calls)
	}
	if err := store.Commit(context.Background(), unit.Commit()); err != nil {
		t.Fatal(err)
	}
	unit.Committed(context.Background())
	if calls := pub.take(); len(calls) != 1 || calls[0][0].KeyID != "key_1" || !reflect.DeepEqual(calls[0][0].Roles, []invocation.RoleBinding{{Role: "viewer", ScopeID: "scp_eu"}}) {
		t.Fatalf("published %+v", calls)
	}
	// A direct save that conflicts publishes nothing.
	err := repo.Save(context.Background(), app.Changes{TenantID: "tnt_1", Aggregates: []app.Change{{Base: 1,
		Events: []domain.Event{domain.APIKeyRevoked{APIKeyID: "key_1", ServiceAccountID: "sva_1"}}}}})
	if !errors.Is(err, app.ErrConcurrency) {
		t.Fatalf("stale save: %v", err)
	}
	if calls := pub.take(); len(calls) != 0 {
		t.Fatalf("published a failed write: %+v", calls)
	}
}

// list-api-keys rows: newest first, per tenant and per account, revoked keys
// with their time, never a hash; the owner lookup never crosses tenants.
func TestAPIKeyListAndOwner(t *testing.T) {
	repo, store := newRepo(t)
	ctx := context.Background()
	for _, c := range []struct{ tenant, sva string }{{"tnt_1", "sva_a"}, {"tnt_1", "sva_b"}, {"tnt_2", "sva_c"}} {
		change(t, repo, c.tenant, "", domain.ServiceAccountCreated{ServiceAccountID: c.sva, ScopeID: "scp_1", Name: "n", Role: domain.RoleAdmin})
	}
	change(t, repo, "tnt_1", "sva_a", issuedKey("key_01", "sva_a", "secrethash01", "first"))
	change(t, repo, "tnt_1", "sva_b", issuedKey("key_02", "sva_b", "secrethash02", ""))
	change(t, repo, "tnt_1", "sva_a", issuedKey("key_03", "sva_a", "secrethash03", ""))
	change(t, repo, "tnt_2", "sva_c", issuedKey("key_04", "sva_c", "secrethash04", ""))
	change(t, repo, "tnt_1", "sva_a", domain.APIKeyRevoked{APIKeyID: "key_01", ServiceAccountID: "sva_a"})

	m := NewReadModel(store)
	page := func(sva string, limit int, cursor string) ([]string, string) {
		t.Helper()
		views, next, err := m.ListAPIKeys(ctx, "tnt_1", sva, limit, cursor)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range views {
			got = append(got, v.APIKeyID)
			if v.APIKeyID == "key_01" && (v.Name != "first" || v.RevokedAt.IsZero() || v.ServiceAccountID != "sva_a" || !v.CreatedAt.Equal(now)) {
				t.Fatalf("key_01 = %+v", v)
			}
			if v.APIKeyID == "key_03" && (v.Name != "" || !v.RevokedAt.IsZero()) {
				t.Fatalf("key_03 = %+v", v)
			}
		}
		return got, next
	}
	if got, next := page("", 10, ""); !reflect.DeepEqual(got, []string{"key_03", "key_02", "key_01"}) || next != "" {
		t.Fatalf("tenant keys = %v (next %q)", got, next)
	}
	first, next := page("sva_a", 1, "")
	rest, last := page("sva_a", 1, next)
	if !reflect.DeepEqual(first, []string{"key_03"}) || !reflect.DeepEqual(rest, []string{"key_01"}) || next == "" {
		t.Fatalf("sva_a pages = %v, %v (last cursor %q)", first, rest, last)
	}
	if got, _ := page("sva_c", 10, ""); len(got) != 0 {
		t.Fatalf("another tenant's account listed %v", got)
	}
	if _, _, err := m.ListAPIKeys(ctx, "tnt_1", "sva_b", 10, next); !errors.Is(err, app.ErrInvalidCursor) {
		t.Fatalf("a cursor of another partition: %v", err)
	}
	for _, id := range []string{"key_01", "key_02", "key_03"} {
		r, err := store.GetRecord(ctx, "tnt_1", CollectionAPIKeyList, id)
		if err != nil || strings.Contains(string(r.Data), "secrethash") || strings.Contains(string(r.Data), "secretHash") {
			t.Fatalf("list row %s = %s, %v", id, r.Data, err)
		}
	}

	if owner, err := m.APIKeyOwner(ctx, "tnt_1", "key_02"); err != nil || owner != "sva_b" {
		t.Fatalf("owner = %q, %v", owner, err)
	}
	for _, c := range []struct{ tenant, key string }{{"tnt_1", "key_04"}, {"tnt_2", "key_01"}, {"tnt_1", "key_99"}} {
		if _, err := m.APIKeyOwner(ctx, c.tenant, c.key); errs.KindOf(err) != errs.KindNotFound {
			t.Fatalf("owner of %s in %s: %v, want not found", c.key, c.tenant, err)
		}
	}
}

// countingAppender counts commits.
type countingAppender struct {
	eventstore.Appender
	mu      sync.Mutex
	commits int
	fail    error
}

func (c *countingAppender) Commit(ctx context.Context, cm *eventstore.Commit) error {
	c.mu.Lock()
	c.commits++
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		return fail
	}
	return c.Appender.Commit(ctx, cm)
}

// A use is written at most once per key per UsagePeriod per instance, in a
// commit of its own even inside a unit of work, and list-api-keys shows it.
func TestKeyUsesAreRecordedAtMostHourly(t *testing.T) {
	repo, store := newRepo(t)
	ctx := context.Background()
	change(t, repo, "tnt_1", "", domain.ServiceAccountCreated{ServiceAccountID: "sva_a", ScopeID: "scp_1", Name: "n", Role: domain.RoleAdmin},
		issuedKey("key_01", "sva_a", "h1", ""))
	change(t, repo, "tnt_1", "sva_a", issuedKey("key_02", "sva_a", "h2", ""))
	clk := clock.NewFixed(now)
	w := &countingAppender{Appender: store}
	r := NewAPIKeyResolver(store).RecordingUses(w, clk, nil)
	k1 := auth.APIKeyRecord{KeyID: "key_01", TenantID: "tnt_1", ServiceAccountID: "sva_a"}
	k2 := auth.APIKeyRecord{KeyID: "key_02", TenantID: "tnt_1", ServiceAccountID: "sva_a"}

	unit := eventstore.NewUnit("tnt_1")
	r.RecordAPIKeyUse(eventstore.WithUnit(ctx, unit), k1)
	if w.commits != 1 || !unit.Commit().Empty() {
		t.Fatalf("%d commits, unit %+v: want one commit of its own", w.commits, unit.Commit())
	}
	for range 100 {
		clk.Advance(30 * time.Second)
		r.RecordAPIKeyUse(ctx, k1)
	}
	if w.commits != 1 {
		t.Fatalf("%d writes for 101 uses within %v", w.commits, UsagePeriod)
	}
	clk.Set(now.Add(UsagePeriod))
	r.RecordAPIKeyUse(ctx, k1)
	r.RecordAPIKeyUse(ctx, k1)
	if w.commits != 2 {
		t.Fatalf("%d writes after a period", w.commits)
	}
	views, _, err := NewReadModel(store).ListAPIKeys(ctx, "tnt_1", "", 10, "")
	if err != nil || len(views) != 2 || !views[0].LastUsedAt.IsZero() || !views[1].LastUsedAt.Equal(now.Add(UsagePeriod)) {
		t.Fatalf("views = %+v, %v", views, err)
	}
	// A failed write does not fail the caller and is not retried before a period.
	w.fail = errors.New("throttled")
	r.RecordAPIKeyUse(ctx, k2)
	r.RecordAPIKeyUse(ctx, k2)
	if w.commits != 3 {
		t.Fatalf("%d writes", w.commits)
	}
	// Without RecordingUses nothing is written.
	NewAPIKeyResolver(store).RecordAPIKeyUse(ctx, k2)
}

func TestKeyUseTrackingIsBounded(t *testing.T) {
	u := &usageRecorder{last: map[string]time.Time{}}
	for i := range maxTrackedUses {
		if !u.due(string(rune('a'+i%26))+strings.Repeat("x", i/26), now) {
			t.Fatal("not due")
		}
	}
	if u.due("key_new", now) || len(u.last) != maxTrackedUses {
		t.Fatal("a full tracker took one more key")
	}
	if !u.due("key_new", now.Add(UsagePeriod)) || len(u.last) != 1 {
		t.Fatalf("a full tracker did not make room from expired entries: %d", len(u.last))
	}
}
