package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
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
		domain.APIKeyIssued{APIKeyID: "key_2", ServiceAccountID: "sva_1", SecretHash: "cd", Name: "deploy"},
		domain.APIKeyRevoked{APIKeyID: "key_1", ServiceAccountID: "sva_1"},
		domain.RoleGranted{ServiceAccountID: "sva_1", Role: domain.RoleSender, ScopeID: "scp_2"},
		domain.RoleRevoked{ServiceAccountID: "sva_1", Role: domain.RoleAdmin, ScopeID: "scp_1"},
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
	issued, _ := sva.IssueAPIKey("key_1", "hash", "")
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
	if err := json.Unmarshal(row.Data, &sr); err != nil || !reflect.DeepEqual(sr.APIKeyIDs, []string{"key_1"}) ||
		!reflect.DeepEqual(sr.Bindings, []invocation.RoleBinding{{Role: "sender", ScopeID: "scp_7"}}) {
		t.Fatalf("row = %s, %v", row.Data, err)
	}
	if _, err := repo.ServiceAccount(ctx, "tnt_2", "sva_1"); err == nil {
		t.Fatal("another tenant's service account was found")
	}
}

func TestProjectScopeCreatedJoinsScopesList(t *testing.T) {
	recs, err := ProjectScopeCreated(domain.ScopeCreated{ScopeID: "scp_2", ParentScopeID: "scp_1", Name: "EU", Path: []string{"scp_1", "scp_2"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []eventstore.ListEntry{{List: eventstore.List{Name: "scopes", Slot: 1, Shards: 1}, Partition: "", Sort: "scp_2"}}
	if !reflect.DeepEqual(recs[0].Lists, want) || !reflect.DeepEqual(ScopesList, want[0].List) {
		t.Fatalf("scope row lists = %+v, want %+v", recs[0].Lists, want)
	}
	if len(recs[1].Lists) != 0 {
		t.Fatalf("scope name row lists = %+v, want none", recs[1].Lists)
	}
}

// globalReader is an eventstore.RecordReader of global rows whose
// eventually consistent reads lag: rows in lagging are found only by
// consistent reads.
type globalReader struct {
	eventstore.RecordReader
	rows    map[string]eventstore.Record
	lagging map[string]bool
	fail    error
	calls   []bool // per read: eventually consistent?
}

func (g *globalReader) GetGlobalRecord(_ context.Context, collection, key string, opts ...eventstore.ReadOption) (eventstore.Record, error) {
	eventually := len(opts) == 1 && opts[0] == eventstore.Eventually
	g.calls = append(g.calls, eventually)
	if g.fail != nil {
		return eventstore.Record{}, g.fail
	}
	r, ok := g.rows[collection+"/"+key]
	if !ok || (eventually && g.lagging[key]) {
		return eventstore.Record{}, fmt.Errorf("get: %w", eventstore.ErrNotFound)
	}
	return r, nil
}

func TestAPIKeyResolverReadsEventuallyThenConsistently(t *testing.T) {
	ctx := context.Background()
	data := func(tenant string) json.RawMessage {
		b, _ := json.Marshal(auth.APIKeyRecord{KeyID: "k", TenantID: tenant})
		return b
	}
	g := &globalReader{
		rows: map[string]eventstore.Record{
			CollectionAPIKeys + "/key_old": {Collection: CollectionAPIKeys, Key: "key_old", Global: true, Data: data("tnt_old")},
			CollectionAPIKeys + "/key_new": {Collection: CollectionAPIKeys, Key: "key_new", Global: true, Data: data("tnt_new")},
		},
		lagging: map[string]bool{"key_new": true},
	}
	r := NewAPIKeyResolver(g)
	cases := []struct {
		key        string
		wantTenant string // "" = unauthenticated
		wantCalls  []bool
	}{
		{"key_old", "tnt_old", []bool{true}},        // one cheap read
		{"key_new", "tnt_new", []bool{true, false}}, // issued a moment ago: found consistently
		{"key_unknown", "", []bool{true, false}},    // unknown: one read more
	}
	for _, tc := range cases {
		g.calls = nil
		k, err := r.ResolveAPIKey(ctx, tc.key)
		if tc.wantTenant == "" {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("%s: err = %v, want ErrUnauthenticated", tc.key, err)
			}
		} else if err != nil || k.TenantID != tc.wantTenant {
			t.Fatalf("%s: %+v, %v", tc.key, k, err)
		}
		if !reflect.DeepEqual(g.calls, tc.wantCalls) {
			t.Fatalf("%s: reads (eventually?) %v, want %v", tc.key, g.calls, tc.wantCalls)
		}
	}
	// A store failure is no retry and not unauthenticated.
	g.calls, g.fail = nil, errors.New("throttled")
	if _, err := r.ResolveAPIKey(ctx, "key_old"); err == nil || errors.Is(err, auth.ErrUnauthenticated) || len(g.calls) != 1 {
		t.Fatalf("store failure: %v after %d reads", err, len(g.calls))
	}
}

// A key issued through the repository resolves at once on the bbolt store.
func TestAPIKeyResolverOnStore(t *testing.T) {
	_, store := newRepo(t)
	if _, err := NewAPIKeyResolver(store).ResolveAPIKey(context.Background(), "key_missing"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("missing key: %v", err)
	}
}

// ListScopes pages ScopesList newest first; a cursor it did not issue is
// app.ErrInvalidCursor.
func TestListScopesPagesTheScopesList(t *testing.T) {
	_, store := newRepo(t)
	ctx := context.Background()
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("scp_%02d", i)
		want = append([]string{id}, want...)
		recs, err := ProjectScopeCreated(domain.ScopeCreated{ScopeID: id, ParentScopeID: "scp_root", Name: id, Path: []string{"scp_root", id}}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Commit(ctx, &eventstore.Commit{TenantID: "tnt_1", Records: recs}); err != nil {
			t.Fatal(err)
		}
	}
	m := NewReadModel(store)
	var got []string
	cursor := ""
	for range 10 {
		views, next, err := m.ListScopes(ctx, "tnt_1", 3, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			got = append(got, v.ScopeID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scopes = %v, want %v", got, want)
	}
	if views, _, err := m.ListScopes(ctx, "tnt_2", 10, ""); err != nil || len(views) != 0 {
		t.Fatalf("other tenant: %v, %v", views, err)
	}
	if _, _, err := m.ListScopes(ctx, "tnt_1", 3, "%%%not-a-cursor"); !errors.Is(err, app.ErrInvalidCursor) {
		t.Fatalf("bad cursor: err = %v, want app.ErrInvalidCursor", err)
	}
}
