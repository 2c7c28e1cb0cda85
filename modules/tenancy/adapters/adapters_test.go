package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

var now = time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)

func newRepo(t *testing.T) (*Repository, *boltstore.Store) {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return NewRepository(store, ids.NewSequence(now), clock.NewFixed(now)), store
}

func TestCodecRoundTrip(t *testing.T) {
	events := []domain.Event{
		domain.TenantOnboarded{TenantID: "tnt_1", Name: "Acme", Tier: domain.TierPooled, RootScopeID: "scp_1"},
		domain.TenantProvisioned{TenantID: "tnt_1"},
		domain.ScopeCreated{ScopeID: "scp_2", ParentScopeID: "scp_1", Name: "EU", Path: []string{"scp_1", "scp_2"}},
		domain.ServiceAccountCreated{ServiceAccountID: "sva_1", ScopeID: "scp_1", Name: "admin", Role: domain.RoleAdmin},
		domain.APIKeyIssued{APIKeyID: "key_1", ServiceAccountID: "sva_1", SecretHash: "ab"},
	}
	gen := ids.NewSequence(now)
	for i, ev := range events {
		e, err := encode(context.Background(), gen, ev, now)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != ev.EventType() || e.SchemaVersion != 1 || !ids.Valid(ids.Event, e.ID) {
			t.Fatalf("envelope = %+v", e)
		}
		e.Version = int64(i + 1)
		r, err := decode(e)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Event, ev) || r.Version != int64(i+1) || !r.OccurredAt.Equal(now) {
			t.Fatalf("decode(encode(%+v)) = %+v", ev, r)
		}
	}
	if _, err := decode(eventstore.Event{Type: "tenancy.unknown", SchemaVersion: 1, Data: []byte(`{}`)}); err == nil {
		t.Fatal("unknown type decoded")
	}
	if _, err := decode(eventstore.Event{Type: domain.TypeTenantProvisioned, SchemaVersion: 2, Data: []byte(`{}`)}); err == nil {
		t.Fatal("unknown schema version decoded")
	}
	if _, err := decode(eventstore.Event{Type: domain.TypeTenantProvisioned, SchemaVersion: 1, Data: []byte(`[`)}); err == nil {
		t.Fatal("bad data decoded")
	}
}

func TestScopeCreatedEventDataIsTheContract(t *testing.T) {
	b, _ := json.Marshal(domain.ScopeCreated{ScopeID: "scp_2", ParentScopeID: "scp_1", Name: "EU", Path: []string{"scp_1", "scp_2"}})
	if want := `{"scopeId":"scp_2","parentScopeId":"scp_1","name":"EU","path":["scp_1","scp_2"]}`; string(b) != want {
		t.Fatalf("data = %s\nwant   %s", b, want)
	}
}

func TestProjectRootScopeHasNoNameRow(t *testing.T) {
	recs, err := ProjectScopeCreated(domain.ScopeCreated{ScopeID: "scp_1", Name: "root", Path: []string{"scp_1"}}, now)
	if err != nil || len(recs) != 1 || recs[0].Collection != CollectionScopes {
		t.Fatalf("records = %+v, %v", recs, err)
	}
	recs, _ = ProjectScopeCreated(domain.ScopeCreated{ScopeID: "scp_2", ParentScopeID: "scp_1", Name: "Ops Team", Path: []string{"scp_1", "scp_2"}}, now)
	if len(recs) != 2 || recs[1].Collection != CollectionScopeNames || recs[1].Key != "scp_1/ops team" || !recs[1].IfAbsent {
		t.Fatalf("records = %+v", recs)
	}
}

func TestSaveMapsConflictsAndRejectsMixedStreams(t *testing.T) {
	repo, _ := newRepo(t)
	ctx := context.Background()
	on := domain.TenantOnboarded{TenantID: "tnt_1", Name: "Acme", Tier: domain.TierPooled, RootScopeID: "scp_1"}
	save := func(base int64, evs ...domain.Event) error {
		return repo.Save(ctx, app.Changes{TenantID: "tnt_1", Aggregates: []app.Change{{Base: base, Events: evs}}})
	}
	if err := save(0, on); err != nil {
		t.Fatal(err)
	}
	err := save(0, on)
	if !errors.Is(err, app.ErrConcurrency) || !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("stale append: %v, want ErrConcurrency wrapping eventstore.ErrConflict", err)
	}
	if err := save(1, domain.TenantProvisioned{TenantID: "tnt_1"}, domain.ScopeCreated{ScopeID: "scp_9", Path: []string{"scp_9"}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("mixed streams: %v", err)
	}
	if err := repo.Save(ctx, app.Changes{TenantID: "tnt_1", Aggregates: []app.Change{{Base: 1}}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("empty change: %v", err)
	}
	if err := repo.Save(ctx, app.Changes{Aggregates: []app.Change{{Events: []domain.Event{on}}}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("no tenant: %v", err)
	}
}

// A key issued to an existing service account takes its role binding from the
// account's stream.
func TestAPIKeyRowOfAnExistingServiceAccount(t *testing.T) {
	repo, store := newRepo(t)
	ctx := context.Background()
	created := domain.ServiceAccountCreated{ServiceAccountID: "sva_1", ScopeID: "scp_7", Name: "ci", Role: domain.RoleSender}
	if err := repo.Save(ctx, app.Changes{TenantID: "tnt_1", Aggregates: []app.Change{{Events: []domain.Event{created}}}}); err != nil {
		t.Fatal(err)
	}
	sva, err := repo.ServiceAccount(ctx, "tnt_1", "sva_1")
	if err != nil {
		t.Fatal(err)
	}
	issued, _ := sva.IssueAPIKey("key_1", "hash")
	if err := repo.Save(ctx, app.Changes{TenantID: "tnt_1", Aggregates: []app.Change{{Base: sva.Version, Events: []domain.Event{issued}}}}); err != nil {
		t.Fatal(err)
	}
	k, err := NewAPIKeyResolver(store).ResolveAPIKey(ctx, "key_1")
	if err != nil {
		t.Fatal(err)
	}
	if k.TenantID != "tnt_1" || len(k.Roles) != 1 || k.Roles[0].Role != "sender" || k.Roles[0].ScopeID != "scp_7" {
		t.Fatalf("record = %+v", k)
	}
	row, err := store.GetRecord(ctx, "tnt_1", CollectionServiceAccounts, "sva_1")
	if err != nil {
		t.Fatal(err)
	}
	var sr ServiceAccountRow
	if err := json.Unmarshal(row.Data, &sr); err != nil || !reflect.DeepEqual(sr.APIKeyIDs, []string{"key_1"}) || sr.Role != "sender" {
		t.Fatalf("row = %s, %v", row.Data, err)
	}
	if _, err := repo.ServiceAccount(ctx, "tnt_2", "sva_1"); err == nil {
		t.Fatal("another tenant's service account was found")
	}
}
