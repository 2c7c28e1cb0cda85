package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The audit log (issue 7, item 7) through the production wiring on both
// stores: every call of a tenant is in its log, allowed, denied, failed and
// unauthenticated ones (a credential naming a real key of the tenant)
// included, with its principal, action, resources, source and ids;
// list-audit-log filters by principal, outcome and time, pages newest first,
// is for admins only and shows nothing of another tenant.

func TestAuditLog(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": t.TempDir()})
			c := &client{t: t, h: app.Server}
			a := setupAccessTenant(t, c, "Acme")
			b := setupAccessTenant(t, c, "Globex")
			viewer, viewerKey := accountKey(t, c, a, a.root, "viewer")
			ua := []string{"User-Agent", "audit-test/1.0"} // httptest requests come from 192.0.2.1

			inv := func(r reply) string { return r.Header.Get("X-Invocation-Id") }
			allowed := inv(c.must(200, "/queries/get-tenant", a.key, `{}`, ua...))
			time.Sleep(5 * time.Millisecond)
			denied := inv(c.must(403, "/commands/create-scope", viewerKey, `{"parentScopeId":"`+a.eu+`","name":"x"}`, ua...))
			failed := inv(c.must(400, "/commands/create-scope", a.key, `{"parentScopeId":"`+a.eu+`"}`, ua...))
			badSecret := a.key[:len(a.key)-4] + "AAAA"
			unauth := inv(c.must(401, "/queries/get-tenant", badSecret, `{}`, ua...))
			stranger := inv(c.must(401, "/queries/get-tenant", "sbk_key_01JD0000000000000000000K99_nope", `{}`, ua...))
			batch := c.must(200, "/commands", a.key, `{"commands":[{"name":"create-scope","input":{"parentScopeId":"`+a.us+`","name":"ny"}},{"name":"create-scope","input":{}}]}`, ua...)
			bOnly := inv(c.must(200, "/queries/get-tenant", b.key, `{}`))

			// The whole log of A, newest first, two per page.
			var all []map[string]any
			cursor := ""
			for pages := 0; ; pages++ {
				body := `{"limit":2}`
				if cursor != "" {
					body = `{"limit":2,"cursor":"` + cursor + `"}`
				}
				r := c.must(200, "/queries/list-audit-log", a.key, body)
				items := r.Body["items"].([]any)
				if len(items) > 2 || pages > 100 {
					t.Fatalf("page of %d items after %d pages", len(items), pages)
				}
				for _, it := range items {
					all = append(all, it.(map[string]any))
				}
				if r.Body["nextCursor"] == nil {
					break
				}
				cursor = str(r.Body["nextCursor"])
			}
			byInv := map[string]map[string]any{}
			var ats []string
			for _, e := range all {
				if e["tenantId"] != a.tenantID {
					t.Fatalf("entry of another tenant: %v", e)
				}
				if _, dup := byInv[str(e["invocationId"])]; dup && e["endpoint"] != "create-scope" {
					t.Fatalf("invocation %s listed twice", e["invocationId"])
				}
				byInv[str(e["invocationId"])] = e
				ats = append(ats, str(e["at"]))
				// Contract section 2: RFC 3339 UTC with milliseconds
				// (acceptance finding: nine fraction digits).
				if at := str(e["at"]); !timeMs.MatchString(at) {
					t.Fatalf("at %q is not RFC 3339 UTC with milliseconds", at)
				}
			}
			if !slices.IsSortedFunc(ats, func(x, y string) int { return strings.Compare(y, x) }) {
				t.Fatalf("not newest first: %v", ats)
			}
			check := func(id, outcome, principal, action string, status int) map[string]any {
				t.Helper()
				e, ok := byInv[id]
				if !ok {
					t.Fatalf("invocation %s (%s) not in the log of %d entries", id, outcome, len(all))
				}
				if e["outcome"] != outcome || e["status"] != float64(status) || e["action"] != action ||
					(principal == "" && e["principal"] != nil) || (principal != "" && e["principal"] != principal) {
					t.Fatalf("entry %v, want %s %d %s by %q", e, outcome, status, action, principal)
				}
				if e["sourceIp"] != "192.0.2.1" || e["userAgent"] != "audit-test/1.0" || !strings.HasPrefix(str(e["auditId"]), "aud_") ||
					str(e["traceId"]) == "" || e["kind"] == nil {
					t.Fatalf("entry %v: source, ids", e)
				}
				return e
			}
			admin := "service_account:" + a.sva
			e := check(allowed, "allowed", admin, "tenancy:get-tenant", 200)
			if !slices.Contains(strs(e["resources"]), "tenant:"+a.tenantID) || e["credentialId"] != a.keyID {
				t.Fatalf("allowed entry: %v", e)
			}
			e = check(denied, "denied", "service_account:"+viewer, "tenancy:create-scope", 403)
			if e["code"] != "errors.auth.forbidden" || !slices.Contains(strs(e["resources"]), "scope:"+a.eu) {
				t.Fatalf("denied entry: %v", e)
			}
			check(failed, "failed", admin, "tenancy:create-scope", 400)
			e = check(unauth, "unauthenticated", "", "tenancy:get-tenant", 401)
			if e["credentialId"] != a.keyID {
				t.Fatalf("unauthenticated entry names key %v, want %s", e["credentialId"], a.keyID)
			}
			if _, ok := byInv[stranger]; ok {
				t.Fatal("a credential of no tenant is in the tenant's log")
			}
			if _, ok := byInv[bOnly]; ok {
				t.Fatal("B's call is in A's log")
			}
			var batchOutcomes []string
			for _, e := range all {
				if e["invocationId"] == inv(batch) {
					batchOutcomes = append(batchOutcomes, str(e["outcome"]))
				}
			}
			slices.Sort(batchOutcomes)
			if !slices.Equal(batchOutcomes, []string{"allowed", "failed"}) {
				t.Fatalf("batch items audited as %v", batchOutcomes)
			}

			// Filters: outcome, principal, both, time.
			list := func(body string) []map[string]any {
				t.Helper()
				r := c.must(200, "/queries/list-audit-log", a.key, body)
				var out []map[string]any
				for _, it := range r.Body["items"].([]any) {
					out = append(out, it.(map[string]any))
				}
				return out
			}
			for _, e := range list(`{"outcome":"denied"}`) {
				if e["outcome"] != "denied" {
					t.Fatalf("outcome filter: %v", e)
				}
			}
			got := list(`{"principal":"service_account:` + viewer + `"}`)
			if len(got) == 0 {
				t.Fatal("principal filter: nothing")
			}
			for _, e := range got {
				if e["principal"] != "service_account:"+viewer {
					t.Fatalf("principal filter: %v", e)
				}
			}
			if got := list(`{"principal":"` + admin + `","outcome":"failed","limit":1}`); len(got) != 1 || got[0]["outcome"] != "failed" || got[0]["principal"] != admin {
				t.Fatalf("principal and outcome: %v", got)
			}
			at := str(byInv[allowed]["at"])
			for _, e := range list(`{"to":"` + at + `"}`) {
				if str(e["at"]) >= at {
					t.Fatalf("to %s: %v", at, e)
				}
			}
			// from is inclusive: the entry is listed (with any of the same
			// millisecond), nothing older.
			from := list(`{"from":"` + at + `","limit":100}`)
			if !slices.ContainsFunc(from, func(e map[string]any) bool { return e["invocationId"] == allowed }) ||
				str(from[len(from)-1]["at"]) < at {
				t.Fatalf("from %s: %v", at, from)
			}

			// Admins only; bad input is a 400.
			c.must(403, "/queries/list-audit-log", viewerKey, `{}`)
			for _, body := range []string{`{"outcome":"bogus"}`, `{"from":"yesterday"}`, `{"from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}`,
				`{"cursor":"garbage"}`, `{"principal":"x#y"}`, `{"limit":1000}`} {
				c.must(400, "/queries/list-audit-log", a.key, body)
			}
			// The operator's own calls are in the operator's log, for the
			// operator only; tenants' calls are not there.
			op := c.must(200, "/queries/list-operator-audit-log", accessOperatorKey, `{"limit":100}`)
			onboards := 0
			for _, it := range op.Body["items"].([]any) {
				e := it.(map[string]any)
				if e["tenantId"] != "_operator" || e["principal"] != "operator" {
					t.Fatalf("operator log holds %v", e)
				}
				if e["endpoint"] == "onboard-tenant" {
					onboards++
				}
			}
			if onboards != 2 {
				t.Fatalf("operator log: %d onboard-tenant entries, want 2 (Acme, Globex)", onboards)
			}
			c.must(403, "/queries/list-operator-audit-log", a.key, `{}`)

			// B sees its own calls only.
			for _, e := range func() []map[string]any {
				r := c.must(200, "/queries/list-audit-log", b.key, `{"limit":100}`)
				var out []map[string]any
				for _, it := range r.Body["items"].([]any) {
					out = append(out, it.(map[string]any))
				}
				return out
			}() {
				if e["tenantId"] != b.tenantID || byInv[str(e["invocationId"])] != nil {
					t.Fatalf("B's log holds %v", e)
				}
			}
		})
	}
}

// timeMs is the contract's time format: RFC 3339, UTC, three fraction digits.
var timeMs = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
