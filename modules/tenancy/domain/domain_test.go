package domain

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func rec(ev Event, v int64, at time.Time) Recorded {
	return Recorded{Event: ev, Version: v, OccurredAt: at}
}

func wantCode(t *testing.T, err error, kind errs.Kind, code string) {
	t.Helper()
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *errs.Error %s", err, err, code)
	}
	if e.Kind != kind || e.Code != code {
		t.Fatalf("err = kind %d code %q, want kind %d code %q", e.Kind, e.Code, kind, code)
	}
}

func TestEventTypesAreStable(t *testing.T) {
	got := map[string]Event{
		"tenancy.tenant-onboarded":        TenantOnboarded{},
		"tenancy.tenant-provisioned":      TenantProvisioned{},
		"tenancy.scope-created":           ScopeCreated{},
		"tenancy.service-account-created": ServiceAccountCreated{},
		"tenancy.api-key-issued":          APIKeyIssued{},
		"tenancy.api-key-revoked":         APIKeyRevoked{},
		"tenancy.role-granted":            RoleGranted{},
		"tenancy.role-revoked":            RoleRevoked{},
	}
	for want, ev := range got {
		if ev.EventType() != want {
			t.Errorf("%T.EventType() = %q, want %q", ev, ev.EventType(), want)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	ok := map[string]string{
		"  Acme  ":                 "Acme",
		"a":                        "a",
		strings.Repeat("x", 200):   strings.Repeat("x", 200),
		strings.Repeat("é", 200):   strings.Repeat("é", 200), // characters, not bytes
		"\tEU west\n":              "EU west",
		"Ünïcödé / with spaces ok": "Ünïcödé / with spaces ok",
	}
	for in, want := range ok {
		got, err := NormalizeName("name", in)
		if err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "   ", "\n\t", strings.Repeat("x", 201), "bad\x00name", "bad\x07"} {
		_, err := NormalizeName("name", in)
		wantCode(t, err, errs.KindInvalid, CodeInvalidName)
		if f := errs.As(err).Fields; len(f) != 1 || f[0].Field != "name" {
			t.Errorf("NormalizeName(%q) fields = %+v, want one for name", in, f)
		}
	}
}

func TestParseTierAndRole(t *testing.T) {
	for _, s := range []string{"pooled", "siloed"} {
		if got, err := ParseTier(s); err != nil || string(got) != s {
			t.Errorf("ParseTier(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Pooled", "shared"} {
		_, err := ParseTier(s)
		wantCode(t, err, errs.KindInvalid, CodeInvalidTier)
	}
	for _, s := range []string{"admin", "sender", "viewer"} {
		if got, err := ParseRole(s); err != nil || string(got) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "owner", "Admin"} {
		_, err := ParseRole(s)
		wantCode(t, err, errs.KindInvalid, CodeInvalidRole)
	}
}

func TestTenantLifecycle(t *testing.T) {
	ev, err := OnboardTenant("tnt_1", "scp_root", "  Acme  ", "siloed")
	if err != nil {
		t.Fatal(err)
	}
	if ev != (TenantOnboarded{TenantID: "tnt_1", Name: "Acme", Tier: TierSiloed, RootScopeID: "scp_root"}) {
		t.Fatalf("event = %+v", ev)
	}
	tn, err := ReplayTenant([]Recorded{rec(ev, 1, t0)})
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status != StatusProvisioning || tn.Version != 1 || !tn.CreatedAt.Equal(t0) || !tn.UpdatedAt.Equal(t0) {
		t.Fatalf("tenant = %+v", tn)
	}

	evs := tn.Provision()
	if len(evs) != 1 || evs[0] != (TenantProvisioned{TenantID: "tnt_1"}) {
		t.Fatalf("Provision() = %+v", evs)
	}
	if tn.Status != StatusProvisioning {
		t.Fatal("Provision changed the aggregate; it must only return events")
	}
	t1 := t0.Add(time.Minute)
	if err := tn.Apply(rec(evs[0], 2, t1)); err != nil {
		t.Fatal(err)
	}
	if tn.Status != StatusActive || tn.Version != 2 || !tn.UpdatedAt.Equal(t1) || !tn.CreatedAt.Equal(t0) {
		t.Fatalf("tenant = %+v", tn)
	}
	if again := tn.Provision(); again != nil {
		t.Fatalf("Provision() of an active tenant = %+v, want none", again)
	}
	// A duplicate provisioned event in a stream (two racing writers of old) is harmless.
	if err := tn.Apply(rec(TenantProvisioned{TenantID: "tnt_1"}, 3, t1)); err != nil || tn.Status != StatusActive {
		t.Fatalf("second provisioned: %v, %+v", err, tn)
	}
}

func TestOnboardTenantRejectsBadInput(t *testing.T) {
	_, err := OnboardTenant("tnt_1", "scp_1", " ", "pooled")
	wantCode(t, err, errs.KindInvalid, CodeInvalidName)
	_, err = OnboardTenant("tnt_1", "scp_1", "Acme", "gold")
	wantCode(t, err, errs.KindInvalid, CodeInvalidTier)
	_, err = OnboardTenant("", "scp_1", "Acme", "pooled")
	wantCode(t, err, errs.KindInternal, CodeInvalidID)
}

func TestReplayTenant(t *testing.T) {
	if tn, err := ReplayTenant(nil); tn != nil || err != nil {
		t.Fatalf("ReplayTenant(nil) = %+v, %v; want nil, nil", tn, err)
	}
	_, err := ReplayTenant([]Recorded{rec(TenantProvisioned{TenantID: "tnt_1"}, 1, t0)})
	wantCode(t, err, errs.KindInternal, CodeCorruptHistory)
	on := TenantOnboarded{TenantID: "tnt_1", Name: "A", Tier: TierPooled, RootScopeID: "scp_1"}
	_, err = ReplayTenant([]Recorded{rec(on, 1, t0), rec(on, 2, t0)})
	wantCode(t, err, errs.KindInternal, CodeCorruptHistory)
	_, err = ReplayTenant([]Recorded{rec(on, 1, t0), rec(ScopeCreated{ScopeID: "scp_1", Path: []string{"scp_1"}}, 2, t0)})
	wantCode(t, err, errs.KindInternal, CodeCorruptHistory)
}

func TestScopeTree(t *testing.T) {
	rootEv, err := CreateRootScope("scp_r")
	if err != nil {
		t.Fatal(err)
	}
	if rootEv.Name != RootScopeName || rootEv.ParentScopeID != "" || !reflect.DeepEqual(rootEv.Path, []string{"scp_r"}) {
		t.Fatalf("root = %+v", rootEv)
	}
	root, _ := ReplayScope([]Recorded{rec(rootEv, 1, t0)})
	if !root.IsRoot() {
		t.Fatal("root is not root")
	}

	aEv, err := root.CreateChild("scp_a", " EU ")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ReplayScope([]Recorded{rec(aEv, 1, t0)})
	bEv, _ := a.CreateChild("scp_b", "Germany")
	b, _ := ReplayScope([]Recorded{rec(bEv, 1, t0)})
	cEv, _ := b.CreateChild("scp_c", "Berlin")
	c, err := ReplayScope([]Recorded{rec(cEv, 1, t0.Add(time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "EU" || a.ParentID != "scp_r" || !reflect.DeepEqual(a.Path, []string{"scp_r", "scp_a"}) {
		t.Fatalf("a = %+v", a)
	}
	if want := []string{"scp_r", "scp_a", "scp_b", "scp_c"}; !reflect.DeepEqual(c.Path, want) || c.ParentID != "scp_b" {
		t.Fatalf("c = %+v, want path %v", c, want)
	}
	if !c.CreatedAt.Equal(t0.Add(time.Second)) || c.Version != 1 {
		t.Fatalf("c = %+v", c)
	}
	if !root.Contains(c) || !a.Contains(c) || !c.Contains(c) || c.Contains(a) || b.Contains(a) {
		t.Fatal("Contains is wrong")
	}
	// The child's path must not alias the parent's.
	dEv, _ := b.CreateChild("scp_d", "Munich")
	if cEv.Path[3] != "scp_c" || dEv.Path[3] != "scp_d" {
		t.Fatalf("paths alias: %v %v", cEv.Path, dEv.Path)
	}

	_, err = root.CreateChild("scp_x", strings.Repeat("n", 201))
	wantCode(t, err, errs.KindInvalid, CodeInvalidName)
	_, err = ReplayScope([]Recorded{rec(ScopeCreated{ScopeID: "scp_x", Path: []string{"scp_y"}}, 1, t0)})
	wantCode(t, err, errs.KindInternal, CodeCorruptHistory)
}

func TestNameKeyIsCaseInsensitive(t *testing.T) {
	if NameKey("Marketing") != NameKey("MARKETING") || NameKey("Ärger") != NameKey("äRGER") {
		t.Fatal("NameKey must ignore case")
	}
}

func TestServiceAccount(t *testing.T) {
	created, err := CreateServiceAccount("sva_1", "scp_r", " admin ", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if created != (ServiceAccountCreated{ServiceAccountID: "sva_1", ScopeID: "scp_r", Name: "admin", Role: RoleAdmin}) {
		t.Fatalf("created = %+v", created)
	}
	sva, _ := ReplayServiceAccount([]Recorded{rec(created, 1, t0)})
	issued, err := sva.IssueAPIKey("key_1", "abc123", "")
	if err != nil {
		t.Fatal(err)
	}
	if issued != (APIKeyIssued{APIKeyID: "key_1", ServiceAccountID: "sva_1", SecretHash: "abc123"}) {
		t.Fatalf("issued = %+v", issued)
	}
	t1 := t0.Add(time.Hour)
	sva, err = ReplayServiceAccount([]Recorded{rec(created, 1, t0), rec(issued, 2, t1)})
	if err != nil {
		t.Fatal(err)
	}
	if sva.Version != 2 || len(sva.Keys) != 1 || sva.Keys[0] != (APIKey{ID: "key_1", SecretHash: "abc123", IssuedAt: t1}) ||
		!reflect.DeepEqual(sva.Bindings, []RoleBinding{{Role: RoleAdmin, ScopeID: "scp_r"}}) {
		t.Fatalf("sva = %+v", sva)
	}
	if !sva.UpdatedAt.Equal(t1) || !sva.CreatedAt.Equal(t0) {
		t.Fatalf("times = %v %v", sva.CreatedAt, sva.UpdatedAt)
	}
	_, err = sva.IssueAPIKey("key_1", "other", "")
	wantCode(t, err, errs.KindInternal, CodeCorruptHistory)

	_, err = CreateServiceAccount("sva_2", "scp_r", "ops", "owner")
	wantCode(t, err, errs.KindInvalid, CodeInvalidRole)
	_, err = ReplayServiceAccount([]Recorded{rec(issued, 1, t0)})
	wantCode(t, err, errs.KindInternal, CodeCorruptHistory)
}

func TestDomainErrorsMatchByCode(t *testing.T) {
	if !errors.Is(ErrScopeNameTaken, errs.Conflict(CodeScopeNameTaken)) || errs.KindOf(ErrScopeNameTaken) != errs.KindConflict {
		t.Fatal("ErrScopeNameTaken must be a 409 with its code")
	}
}
