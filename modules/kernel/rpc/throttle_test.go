package rpc_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// keyTable resolves API keys from memory.
type keyTable map[string]auth.APIKeyRecord

func (k keyTable) ResolveAPIKey(_ context.Context, id string) (auth.APIKeyRecord, error) {
	if rec, ok := k[id]; ok {
		return rec, nil
	}
	return auth.APIKeyRecord{}, auth.ErrUnauthenticated
}

type throttleFixture struct {
	srv        *rpc.Server
	clk        *clock.Fixed
	audit      *auditLog
	keyA, keyB string // two keys of one service account
	idA        string
	gen        ids.Generator
}

func newThrottleFixture(t *testing.T) *throttleFixture {
	gen := ids.NewULIDs()
	f := &throttleFixture{clk: clock.NewFixed(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)), audit: &auditLog{}, gen: gen}
	keys := keyTable{}
	sva := gen.New(ids.ServiceAccount)
	issue := func() (string, string) {
		id, secret := gen.New(ids.APIKey), auth.NewSecret()
		keys[id] = auth.APIKeyRecord{KeyID: id, TenantID: tenantA, ServiceAccountID: sva, SecretHash: auth.HashSecret(secret),
			Roles: []invocation.RoleBinding{{Role: "admin", ScopeID: rootScope}}}
		return auth.FormatAPIKey(id, secret), id
	}
	f.keyA, f.idA = issue()
	f.keyB, _ = issue()
	f.srv = rpc.NewServer(rpc.Config{Auth: &auth.Authenticator{OperatorKeyHash: auth.HashSecret("sbo_op"), Keys: keys},
		Store: nopStore{}, Clock: f.clk, Auditor: f.audit})
	f.srv.Register(rpc.Query("count-notes", "notes:count-notes", func(ctx context.Context, _ struct{}) (map[string]int, error) {
		return map[string]int{"count": 0}, authz.Require(ctx, authz.Tenant(tenantA, rootScope))
	}))
	return f
}

// call sends a query from addr with credential cred.
func (f *throttleFixture) call(t *testing.T, path, addr, cred string, hdr ...string) resp {
	t.Helper()
	body := `{}`
	if path == "/commands" {
		body = `{"commands":[{"name":"nothing","input":{}}]}`
	}
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.RemoteAddr = addr + ":40000"
	req.Header.Set("Content-Type", "application/json")
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	r := resp{status: w.Code, header: w.Header(), raw: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &r.body)
	return r
}

func wrongSecret(cred string) string {
	id, _, _ := auth.ParseAPIKey(cred)
	return auth.FormatAPIKey(id, auth.NewSecret())
}

// A brute force on one key id, spread over addresses: 10 failures are 401s,
// then the key id is refused (the right secret too) with Retry-After until
// the window ends; the owner's other key works meanwhile; the throttled call
// is audited as unauthenticated with 429.
func TestAuthThrottleKeyID(t *testing.T) {
	f := newThrottleFixture(t)
	const q = "/queries/count-notes"
	for i := range auth.DefaultKeyFailures {
		wantProblem(t, f.call(t, q, "198.51.100."+string(rune('1'+i%9)), wrongSecret(f.keyA)), 401, "errors.auth.unauthenticated")
		f.clk.Advance(time.Second)
	}
	r := f.call(t, q, "192.0.2.50", f.keyA, "Accept-Language", "de")
	wantProblem(t, r, 429, rpc.CodeAuthThrottled)
	if ra := r.header.Get("Retry-After"); ra != "50" { // the window opened 10 s ago
		t.Fatalf("Retry-After %q, want 50", ra)
	}
	if d, _ := r.body["detail"].(string); !strings.Contains(d, "50 Sekunden") {
		t.Fatalf("German detail %q", d)
	}
	if e := f.audit.last(t); e.Outcome != rpc.OutcomeUnauthenticated || e.Status != 429 || e.Code != rpc.CodeAuthThrottled || e.Source.IP != "192.0.2.50" {
		t.Fatalf("audit entry %+v", e)
	}
	// Batches authenticate through the same throttle.
	wantProblem(t, f.call(t, "/commands", "192.0.2.50", f.keyA), 429, rpc.CodeAuthThrottled)
	// The owner's other key, from the attacker's addresses too.
	if r := f.call(t, q, "198.51.100.1", f.keyB); r.status != 200 {
		t.Fatalf("other key: %d %s", r.status, r.raw)
	}
	f.clk.Advance(49 * time.Second)
	if r := f.call(t, q, "192.0.2.50", f.keyA); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("1 s before the end: %d %v", r.status, r.header)
	}
	f.clk.Advance(time.Second)
	if r := f.call(t, q, "192.0.2.50", f.keyA); r.status != 200 {
		t.Fatalf("after the window: %d %s", r.status, r.raw)
	}
}

// An address over its limit gets 429 for its further failures, of any
// credential kind, while valid credentials from it still pass and other
// addresses' failures stay 401. Missing credentials are not counted.
func TestAuthThrottleAddress(t *testing.T) {
	f := newThrottleFixture(t)
	const q, nat, other = "/queries/count-notes", "203.0.113.9", "203.0.113.10"
	for range 50 {
		wantProblem(t, f.call(t, q, nat, ""), 401, "errors.auth.unauthenticated")
	}
	bad := []string{"garbage", "sbo_wrong", auth.FormatAPIKey(f.gen.New(ids.APIKey), "x")}
	for i := range auth.DefaultAddressFailures {
		wantProblem(t, f.call(t, q, nat, bad[i%len(bad)]), 401, "errors.auth.unauthenticated")
	}
	f.clk.Advance(20 * time.Second)
	for _, cred := range bad {
		r := f.call(t, q, nat, cred)
		wantProblem(t, r, 429, rpc.CodeAuthThrottled)
		if r.header.Get("Retry-After") != "40" {
			t.Fatalf("Retry-After %q, want 40", r.header.Get("Retry-After"))
		}
	}
	if r := f.call(t, q, nat, f.keyA); r.status != 200 {
		t.Fatalf("valid key behind the throttled address: %d %s", r.status, r.raw)
	}
	wantProblem(t, f.call(t, q, other, "garbage"), 401, "errors.auth.unauthenticated")
	f.clk.Advance(40 * time.Second)
	wantProblem(t, f.call(t, q, nat, "garbage"), 401, "errors.auth.unauthenticated")
}
