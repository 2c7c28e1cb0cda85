package domain

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// account replays a stream made of events, versions 1, 2, ... a minute apart.
func account(t *testing.T, events ...Event) *ServiceAccount {
	t.Helper()
	var h []Recorded
	for i, ev := range events {
		h = append(h, rec(ev, int64(i+1), t0.Add(time.Duration(i)*time.Minute)))
	}
	s, err := ReplayServiceAccount(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apply applies new events to s as the next versions.
func apply(t *testing.T, s *ServiceAccount, at time.Time, events ...Event) {
	t.Helper()
	for _, ev := range events {
		if err := s.Apply(rec(ev, s.Version+1, at)); err != nil {
			t.Fatal(err)
		}
	}
}

var created = ServiceAccountCreated{ServiceAccountID: "sva_1", ScopeID: "scp_eu", Name: "ci", Role: RoleViewer}

// A stream written when an account had one role replays with that role as
// its first and only binding.
func TestLegacyStreamReplaysAsOneBinding(t *testing.T) {
	s := account(t, created, APIKeyIssued{APIKeyID: "key_1", ServiceAccountID: "sva_1", SecretHash: "h"})
	if want := []RoleBinding{{Role: RoleViewer, ScopeID: "scp_eu"}}; !reflect.DeepEqual(s.Bindings, want) {
		t.Fatalf("bindings = %+v, want %+v", s.Bindings, want)
	}
	if k := s.Keys[0]; k.Name != "" || k.Revoked() {
		t.Fatalf("key = %+v", k)
	}
}

func TestGrantAndRevokeRoles(t *testing.T) {
	s := account(t, created)
	evs, err := s.GrantRole("admin", "scp_de")
	if err != nil || !reflect.DeepEqual(evs, []Event{RoleGranted{ServiceAccountID: "sva_1", Role: RoleAdmin, ScopeID: "scp_de"}}) {
		t.Fatalf("GrantRole = %+v, %v", evs, err)
	}
	if len(s.Bindings) != 1 {
		t.Fatal("GrantRole changed the aggregate; it must only return events")
	}
	apply(t, s, t0.Add(time.Hour), evs...)
	// The same role at another scope and another role at the same scope are other bindings.
	for _, b := range [][2]string{{"sender", "scp_de"}, {"admin", "scp_eu"}} {
		evs, err := s.GrantRole(b[0], b[1])
		if err != nil || len(evs) != 1 {
			t.Fatalf("GrantRole(%v) = %+v, %v", b, evs, err)
		}
		apply(t, s, t0.Add(time.Hour), evs...)
	}
	want := []RoleBinding{{RoleViewer, "scp_eu"}, {RoleAdmin, "scp_de"}, {RoleSender, "scp_de"}, {RoleAdmin, "scp_eu"}}
	if !reflect.DeepEqual(s.Bindings, want) || s.Version != 4 || !s.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("account = %+v", s)
	}
	// Granting a held binding is no change, no error.
	if evs, err := s.GrantRole("admin", "scp_de"); evs != nil || err != nil {
		t.Fatalf("grant held binding = %+v, %v; want nothing", evs, err)
	}
	// Revoking removes exactly that binding; revoking one not held is no change.
	evs, err = s.RevokeRole("admin", "scp_de")
	if err != nil || !reflect.DeepEqual(evs, []Event{RoleRevoked{ServiceAccountID: "sva_1", Role: RoleAdmin, ScopeID: "scp_de"}}) {
		t.Fatalf("RevokeRole = %+v, %v", evs, err)
	}
	apply(t, s, t0.Add(2*time.Hour), evs...)
	if want := []RoleBinding{{RoleViewer, "scp_eu"}, {RoleSender, "scp_de"}, {RoleAdmin, "scp_eu"}}; !reflect.DeepEqual(s.Bindings, want) {
		t.Fatalf("bindings after revoke = %+v", s.Bindings)
	}
	for _, b := range [][2]string{{"admin", "scp_de"}, {"admin", "scp_root"}, {"viewer", ""}} {
		if evs, err := s.RevokeRole(b[0], b[1]); evs != nil || err != nil {
			t.Fatalf("RevokeRole(%v) not held = %+v, %v; want nothing", b, evs, err)
		}
	}
	// Every binding may go, the first one included: the account then holds none.
	for _, b := range append([]RoleBinding(nil), s.Bindings...) {
		evs, _ := s.RevokeRole(string(b.Role), b.ScopeID)
		apply(t, s, t0.Add(3*time.Hour), evs...)
	}
	if len(s.Bindings) != 0 || s.ScopeID != "scp_eu" {
		t.Fatalf("account = %+v, want no binding and its own scope kept", s)
	}
	// Replay of the whole history gives the same state.
	again := account(t, created)
	if again.Bindings[0] != (RoleBinding{RoleViewer, "scp_eu"}) {
		t.Fatal(again.Bindings)
	}
}

// Roles are checked in one place (ParseRole), by grant and revoke alike.
func TestRoleChangesRejectUnknownRoles(t *testing.T) {
	s := account(t, created)
	for _, r := range []string{"", "owner", "Admin", " admin", strings.Repeat("a", 100)} {
		_, err := s.GrantRole(r, "scp_eu")
		wantCode(t, err, errs.KindInvalid, CodeInvalidRole)
		_, err = s.RevokeRole(r, "scp_eu")
		wantCode(t, err, errs.KindInvalid, CodeInvalidRole)
	}
	_, err := s.GrantRole("admin", "")
	wantCode(t, err, errs.KindInternal, CodeInvalidID)
}

func TestRoleBindingsAreBounded(t *testing.T) {
	s := account(t, created)
	for i := 1; i < MaxRoleBindings; i++ {
		evs, err := s.GrantRole("viewer", fmt.Sprintf("scp_%d", i))
		if err != nil {
			t.Fatal(err)
		}
		apply(t, s, t0, evs...)
	}
	_, err := s.GrantRole("sender", "scp_x")
	wantCode(t, err, errs.KindConflict, CodeTooManyRoles)
	if e := errs.As(err); e.Params["max"] != MaxRoleBindings {
		t.Fatalf("params = %v", e.Params)
	}
	// A held binding is still fine (no change), and a revoke makes room.
	if evs, err := s.GrantRole("viewer", "scp_1"); evs != nil || err != nil {
		t.Fatalf("held binding at the bound: %v, %v", evs, err)
	}
	evs, _ := s.RevokeRole("viewer", "scp_1")
	apply(t, s, t0, evs...)
	if _, err := s.GrantRole("sender", "scp_x"); err != nil {
		t.Fatal(err)
	}
}

func TestAPIKeyLifecycle(t *testing.T) {
	s := account(t, created)
	issued, err := s.IssueAPIKey("key_1", "h1", "  deploy bot  ")
	if err != nil || issued != (APIKeyIssued{APIKeyID: "key_1", ServiceAccountID: "sva_1", SecretHash: "h1", Name: "deploy bot"}) {
		t.Fatalf("issued = %+v, %v", issued, err)
	}
	t1 := t0.Add(time.Hour)
	apply(t, s, t1, issued)
	if _, err := s.IssueAPIKey("key_2", "h2", " \t "); err == nil {
		t.Fatal("a blank name was accepted")
	} else {
		wantCode(t, err, errs.KindInvalid, CodeInvalidName)
	}
	if _, err := s.RevokeAPIKey("key_404"); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("revoke of an unknown key: %v", err)
	}
	evs, err := s.RevokeAPIKey("key_1")
	if err != nil || !reflect.DeepEqual(evs, []Event{APIKeyRevoked{APIKeyID: "key_1", ServiceAccountID: "sva_1"}}) {
		t.Fatalf("RevokeAPIKey = %+v, %v", evs, err)
	}
	if s.Keys[0].Revoked() {
		t.Fatal("RevokeAPIKey changed the aggregate")
	}
	t2 := t1.Add(time.Hour)
	apply(t, s, t2, evs...)
	if k := s.Keys[0]; !k.Revoked() || !k.RevokedAt.Equal(t2) || !k.IssuedAt.Equal(t1) || k.Name != "deploy bot" || len(s.ActiveKeys()) != 0 {
		t.Fatalf("key = %+v", k)
	}
	// Revoking again: no change; a duplicate revoked event in a stream keeps the first time.
	if evs, err := s.RevokeAPIKey("key_1"); evs != nil || err != nil {
		t.Fatalf("second revoke = %+v, %v", evs, err)
	}
	apply(t, s, t2.Add(time.Hour), APIKeyRevoked{APIKeyID: "key_1", ServiceAccountID: "sva_1"})
	if !s.Keys[0].RevokedAt.Equal(t2) {
		t.Fatal("a repeated revocation moved the revocation time")
	}
	// A revoked key for an unknown key id, or of another account, is a corrupt stream.
	for _, ev := range []Event{APIKeyRevoked{APIKeyID: "key_9", ServiceAccountID: "sva_1"}, APIKeyRevoked{APIKeyID: "key_1", ServiceAccountID: "sva_2"},
		RoleGranted{ServiceAccountID: "sva_2", Role: RoleAdmin, ScopeID: "scp_1"}, RoleRevoked{ServiceAccountID: "sva_2", Role: RoleAdmin, ScopeID: "scp_1"}} {
		err := s.Apply(rec(ev, s.Version+1, t2))
		wantCode(t, err, errs.KindInternal, CodeCorruptHistory)
	}
	for _, ev := range []Event{RoleGranted{ServiceAccountID: "sva_1", Role: RoleAdmin, ScopeID: "scp_1"}, APIKeyRevoked{APIKeyID: "key_1", ServiceAccountID: "sva_1"}} {
		_, err := ReplayServiceAccount([]Recorded{rec(ev, 1, t0)})
		wantCode(t, err, errs.KindInternal, CodeCorruptHistory)
	}
}

// Active keys are bounded (MaxActiveAPIKeys); revoked ones do not count.
func TestActiveAPIKeysAreBounded(t *testing.T) {
	s := account(t, created)
	for i := range MaxActiveAPIKeys {
		ev, err := s.IssueAPIKey(fmt.Sprintf("key_%d", i), "h", "")
		if err != nil {
			t.Fatal(err)
		}
		apply(t, s, t0, ev)
	}
	_, err := s.IssueAPIKey("key_x", "h", "")
	wantCode(t, err, errs.KindConflict, CodeTooManyAPIKeys)
	evs, _ := s.RevokeAPIKey("key_3")
	apply(t, s, t0, evs...)
	if _, err := s.IssueAPIKey("key_x", "h", ""); err != nil {
		t.Fatalf("after a revocation: %v", err)
	}
	if n := len(s.ActiveKeys()); n != MaxActiveAPIKeys-1 || len(s.Keys) != MaxActiveAPIKeys {
		t.Fatalf("%d active of %d keys", n, len(s.Keys))
	}
}
