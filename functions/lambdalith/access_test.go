package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/strictjson"
)

// Service accounts, role bindings and API keys (contract section 6,
// Tenancy) through the production wiring on both stores: create-service-
// account, grant-role, revoke-role, issue-api-key, revoke-api-key and
// list-api-keys, as commands, in batches and with Idempotency-Keys; who may
// call them; keys that follow role changes without being reissued and stop
// at once when revoked; another tenant's ids; hostile input.

const accessOperatorKey = "sbo_access"

// accessTenant is an onboarded tenant with scopes eu, eu/de and us.
type accessTenant struct {
	key, keyID, tenantID, sva, root string
	eu, de, us                      string
}

func setupAccessTenant(t *testing.T, c *client, name string) accessTenant {
	t.Helper()
	on := c.must(200, "/commands/onboard-tenant", accessOperatorKey, `{"name":"`+name+`","tier":"pooled"}`)
	at := accessTenant{key: str(on.Body["apiKey"]), keyID: str(on.Body["apiKeyId"]), tenantID: str(on.Body["tenantId"]),
		sva: str(on.Body["serviceAccountId"]), root: str(on.Body["rootScopeId"])}
	scope := func(parent, name string) string {
		return str(c.must(200, "/commands/create-scope", at.key, `{"parentScopeId":"`+parent+`","name":"`+name+`"}`).Body["scopeId"])
	}
	at.eu = scope(at.root, "eu")
	at.de = scope(at.eu, "de")
	at.us = scope(at.root, "us")
	return at
}

// mutateID changes the last character of an id to another valid one: a
// well-formed id that does not exist.
func mutateID(id string) string {
	if strings.HasSuffix(id, "Z") {
		return id[:len(id)-1] + "Y"
	}
	return id[:len(id)-1] + "Z"
}

// bindingsOf renders an answer's bindings as "role@scope".
func bindingsOf(t *testing.T, r reply) []string {
	t.Helper()
	list, ok := r.Body["bindings"].([]any)
	if !ok {
		t.Fatalf("no bindings: %s", r.Raw)
	}
	out := []string{}
	for _, b := range list {
		m := b.(map[string]any)
		out = append(out, str(m["role"])+"@"+str(m["scopeId"]))
	}
	return out
}

// TestAccess runs the access commands and queries on both stores, and checks
// that the answer of issue-api-key kept for replay holds no key in clear.
func TestAccess(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			dir := t.TempDir()
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": dir})
			c := &client{t: t, h: app.Server}
			a := setupAccessTenant(t, c, "Acme")
			b := setupAccessTenant(t, c, "Globex")
			issued := accessWalkthrough(t, c, a)
			accessAcrossTenants(t, c, a, b)
			accessBatch(t, c, a)

			// The keys handed out (one of them also kept for replay) are
			// nowhere in the store in clear.
			var sec secretSet
			for i, k := range issued {
				_, secret, _ := auth.ParseAPIKey(k)
				sec.add(fmt.Sprintf("issued key %d", i), k)
				sec.add(fmt.Sprintf("issued key %d secret", i), secret)
			}
			table := app.Config.Table
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			var found []string
			check := func(where string, b []byte) {
				if hit := sec.find(b); hit != "" {
					found = append(found, where+" holds "+hit)
				}
			}
			var n int
			if store == "embedded" {
				n = scanBolt(t, filepath.Join(dir, BboltFile), check) + scanBolt(t, filepath.Join(dir, AuditFile), check)
			} else {
				n = scanDynamo(t, table, check)
			}
			if n < 50 || len(found) > 0 {
				t.Fatalf("%d raw items read; secrets in clear: %v", n, found)
			}
			t.Logf("%d raw items read; none holds one of the %d keys handed out", n, len(issued))
		})
	}
}

// accessWalkthrough is the life of a service account of tenant a; it returns
// the API keys it was handed.
func accessWalkthrough(t *testing.T, c *client, a accessTenant) []string {
	// A service account in eu, a viewer there.
	sva := str(c.must(200, "/commands/create-service-account", a.key, `{"scopeId":"`+a.eu+`","name":"ci","role":"viewer"}`).Body["serviceAccountId"])
	if !strings.HasPrefix(sva, "sva_") {
		t.Fatalf("service account id %q", sva)
	}
	for body, want := range map[string][]string{
		`{"scopeId":"` + a.eu + `","name":"ci"}`:                                          {"role=errors.validation.required"},
		`{"scopeId":"` + a.eu + `","name":"ci","role":"owner"}`:                           {"role=errors.tenancy.invalid_role"},
		`{"scopeId":"` + a.eu + `","name":"ci","role":"Admin"}`:                           {"role=errors.tenancy.invalid_role"},
		`{"scopeId":"` + a.eu + `","name":"  ","role":"viewer"}`:                          {"name=errors.tenancy.invalid_name"},
		`{"name":"ci","role":"viewer"}`:                                                   {"scopeId=errors.validation.required"},
		`{"scopeId":"` + a.eu + `","name":"ci","role":"` + strings.Repeat("a", 65) + `"}`: {"role=errors.validation.too_long"},
	} {
		r := c.must(400, "/commands/create-service-account", a.key, body)
		if got := problemFields(r); !reflect.DeepEqual(got, want) {
			t.Fatalf("create-service-account %s: fields %v, want %v (%s)", body, got, want, r.Raw)
		}
	}
	c.must(400, "/commands/create-service-account", a.key, `{"scopeId":"`+a.eu+`","name":"ci","role":"viewer","roles":["admin"]}`)

	// Its first key, with an Idempotency-Key: the replay answers the same key.
	body := `{"serviceAccountId":"` + sva + `","name":"ci key"}`
	first := c.must(200, "/commands/issue-api-key", a.key, body, "Idempotency-Key", "issue-ci-1")
	again := c.must(200, "/commands/issue-api-key", a.key, body, "Idempotency-Key", "issue-ci-1")
	key, keyID := str(first.Body["apiKey"]), str(first.Body["apiKeyId"])
	if again.Raw != first.Raw || again.Header.Get("Idempotent-Replayed") != "true" || !strings.HasPrefix(key, "sbk_"+keyID+"_") {
		t.Fatalf("issue-api-key and its replay: %s / %s", first.Raw, again.Raw)
	}
	c.must(422, "/commands/issue-api-key", a.key, `{"serviceAccountId":"`+sva+`"}`, "Idempotency-Key", "issue-ci-1")

	// As a viewer in eu: reads in eu, nothing else.
	c.must(200, "/queries/list-channels", key, `{"scopeId":"`+a.eu+`"}`)
	c.must(403, "/queries/list-channels", key, `{"scopeId":"`+a.us+`"}`)
	c.must(403, "/commands/create-scope", key, `{"parentScopeId":"`+a.eu+`","name":"viewer-made"}`)

	// Granted admin in eu: the same key, not reissued, may create there at once.
	grant := `{"serviceAccountId":"` + sva + `","role":"admin","scopeId":"` + a.eu + `"}`
	g := c.must(200, "/commands/grant-role", a.key, grant)
	if got, want := bindingsOf(t, g), []string{"viewer@" + a.eu, "admin@" + a.eu}; !reflect.DeepEqual(got, want) || str(g.Body["serviceAccountId"]) != sva {
		t.Fatalf("grant-role: %v, want %v", got, want)
	}
	c.must(200, "/commands/create-scope", key, `{"parentScopeId":"`+a.eu+`","name":"admin-made"}`)
	if again := c.must(200, "/commands/grant-role", a.key, grant); again.Raw != g.Raw {
		t.Fatalf("a grant of a held binding: %s, want %s", again.Raw, g.Raw)
	}
	c.must(400, "/commands/grant-role", a.key, `{"serviceAccountId":"`+sva+`","role":"root","scopeId":"`+a.eu+`"}`)

	// As admin in eu: its subtree only; accounts above it are not its own.
	c.must(403, "/commands/grant-role", key, `{"serviceAccountId":"`+sva+`","role":"admin","scopeId":"`+a.root+`"}`)
	c.must(403, "/commands/grant-role", key, `{"serviceAccountId":"`+a.sva+`","role":"viewer","scopeId":"`+a.eu+`"}`)
	c.must(403, "/commands/revoke-role", key, `{"serviceAccountId":"`+a.sva+`","role":"admin","scopeId":"`+a.root+`"}`)
	c.must(403, "/commands/issue-api-key", key, `{"serviceAccountId":"`+a.sva+`"}`)
	c.must(403, "/commands/revoke-api-key", key, `{"apiKeyId":"`+a.keyID+`"}`)
	c.must(403, "/commands/create-service-account", key, `{"scopeId":"`+a.us+`","name":"x","role":"viewer"}`)
	c.must(403, "/queries/list-api-keys", key, `{}`)
	deBot := str(c.must(200, "/commands/create-service-account", key, `{"scopeId":"`+a.de+`","name":"de bot","role":"sender"}`).Body["serviceAccountId"])
	deKey := c.must(200, "/commands/issue-api-key", key, `{"serviceAccountId":"`+deBot+`"}`)
	c.must(200, "/queries/list-api-keys", key, `{"serviceAccountId":"`+deBot+`"}`)

	// Admin in eu revoked: the key is a viewer again at once; a repeat is a 200 too.
	r := c.must(200, "/commands/revoke-role", a.key, grant)
	if got := bindingsOf(t, r); !reflect.DeepEqual(got, []string{"viewer@" + a.eu}) {
		t.Fatalf("revoke-role: %v", got)
	}
	c.must(403, "/commands/create-scope", key, `{"parentScopeId":"`+a.eu+`","name":"admin-made-2"}`)
	if again := c.must(200, "/commands/revoke-role", a.key, grant); again.Raw != r.Raw {
		t.Fatalf("a revoke of a binding not held: %s, want %s", again.Raw, r.Raw)
	}
	// Every binding may go (the key then may do nothing), and come back.
	c.must(200, "/commands/revoke-role", a.key, `{"serviceAccountId":"`+sva+`","role":"viewer","scopeId":"`+a.eu+`"}`)
	c.must(403, "/queries/list-channels", key, `{"scopeId":"`+a.eu+`"}`)
	c.must(200, "/commands/grant-role", a.key, `{"serviceAccountId":"`+sva+`","role":"viewer","scopeId":"`+a.de+`"}`)
	c.must(200, "/queries/list-channels", key, `{"scopeId":"`+a.de+`"}`)

	// list-api-keys: every key of the tenant, newest first, never a secret.
	var items []any
	eventually(t, 10*time.Second, "list-api-keys shows the three keys", func() bool {
		items, _ = c.must(200, "/queries/list-api-keys", a.key, `{}`).Body["items"].([]any)
		return len(items) == 3
	})
	all := c.must(200, "/queries/list-api-keys", a.key, `{}`)
	got, next := pageIDs(t, all, "apiKeyId")
	if want := []string{str(deKey.Body["apiKeyId"]), keyID, a.keyID}; !reflect.DeepEqual(got, want) || next != "" {
		t.Fatalf("list-api-keys = %v, want %v", got, want)
	}
	for _, s := range []string{key, str(deKey.Body["apiKey"]), a.key, "secretHash", "sbk_"} {
		if strings.Contains(all.Raw, s) {
			t.Fatalf("list-api-keys shows %.12s…: %s", s, all.Raw)
		}
	}
	mine := c.must(200, "/queries/list-api-keys", a.key, `{"serviceAccountId":"`+sva+`"}`)
	its, _ := mine.Body["items"].([]any)
	if len(its) != 1 {
		t.Fatalf("the account's keys: %s", mine.Raw)
	}
	it := its[0].(map[string]any)
	if it["apiKeyId"] != keyID || it["name"] != "ci key" || it["serviceAccountId"] != sva || it["revoked"] != false ||
		it["revokedAt"] != nil || it["lastUsedAt"] == nil || str(it["createdAt"]) == "" {
		t.Fatalf("the key as listed: %s", mine.Raw)
	}
	p1 := c.must(200, "/queries/list-api-keys", a.key, `{"limit":1}`)
	if ids, next := pageIDs(t, p1, "apiKeyId"); len(ids) != 1 || next == "" {
		t.Fatalf("page of one: %s", p1.Raw)
	} else if p2 := c.must(200, "/queries/list-api-keys", a.key, `{"limit":1,"cursor":"`+next+`"}`); str(p2.Body["items"].([]any)[0].(map[string]any)["apiKeyId"]) != keyID {
		t.Fatalf("page two: %s", p2.Raw)
	}
	c.must(400, "/queries/list-api-keys", a.key, `{"limit":0.5}`)
	c.must(400, "/queries/list-api-keys", a.key, `{"cursor":"nope"}`)

	// Revoked: the key stops at once; a repeat is a 200.
	rk := c.must(200, "/commands/revoke-api-key", a.key, `{"apiKeyId":"`+keyID+`"}`)
	if rk.Body["revoked"] != true || rk.Body["serviceAccountId"] != sva || rk.Body["apiKeyId"] != keyID {
		t.Fatalf("revoke-api-key: %s", rk.Raw)
	}
	c.must(401, "/queries/list-channels", key, `{"scopeId":"`+a.de+`"}`)
	if again := c.must(200, "/commands/revoke-api-key", a.key, `{"apiKeyId":"`+keyID+`"}`); again.Raw != rk.Raw {
		t.Fatalf("revoke again: %s", again.Raw)
	}
	c.must(200, "/commands/grant-role", a.key, grant)
	c.must(401, "/queries/list-channels", key, `{"scopeId":"`+a.de+`"}`) // a grant does not bring it back
	mine = c.must(200, "/queries/list-api-keys", a.key, `{"serviceAccountId":"`+sva+`"}`)
	if it := mine.Body["items"].([]any)[0].(map[string]any); it["revoked"] != true || it["revokedAt"] == nil {
		t.Fatalf("the revoked key as listed: %s", mine.Raw)
	}
	// A key may revoke itself; the call that does it completes.
	selfKey := c.must(200, "/commands/issue-api-key", a.key, `{"serviceAccountId":"`+sva+`"}`)
	self := str(selfKey.Body["apiKey"])
	c.must(200, "/commands/revoke-api-key", self, `{"apiKeyId":"`+str(selfKey.Body["apiKeyId"])+`"}`)
	c.must(401, "/queries/list-api-keys", self, `{}`)
	return []string{key, str(deKey.Body["apiKey"]), self}
}

// accessAcrossTenants: tenant a naming tenant b's ids, or ids one character
// off, gets 404 naming the resource, as for ids that never existed; b's
// keys cannot touch a's.
func accessAcrossTenants(t *testing.T, c *client, a, b accessTenant) {
	bBot := str(c.must(200, "/commands/create-service-account", b.key, `{"scopeId":"`+b.eu+`","name":"bot","role":"viewer"}`).Body["serviceAccountId"])
	bKey := c.must(200, "/commands/issue-api-key", b.key, `{"serviceAccountId":"`+bBot+`"}`)
	aBot := str(c.must(200, "/commands/create-service-account", a.key, `{"scopeId":"`+a.eu+`","name":"bot","role":"viewer"}`).Body["serviceAccountId"])
	type probe struct{ path, body, resource string }
	var probes []probe
	for _, scope := range []string{b.root, b.eu, mutateID(a.eu), strings.ToLower(a.eu), a.eu[:len(a.eu)-1]} {
		probes = append(probes,
			probe{"/commands/create-service-account", `{"scopeId":"` + scope + `","name":"x","role":"viewer"}`, "scope"},
			probe{"/commands/grant-role", `{"serviceAccountId":"` + aBot + `","role":"viewer","scopeId":"` + scope + `"}`, "scope"},
			probe{"/commands/revoke-role", `{"serviceAccountId":"` + aBot + `","role":"viewer","scopeId":"` + scope + `"}`, "scope"})
	}
	for _, sva := range []string{bBot, b.sva, mutateID(aBot), mutateID(a.sva), strings.ToLower(aBot), a.eu} {
		probes = append(probes,
			probe{"/commands/grant-role", `{"serviceAccountId":"` + sva + `","role":"viewer","scopeId":"` + a.eu + `"}`, "service_account"},
			probe{"/commands/revoke-role", `{"serviceAccountId":"` + sva + `","role":"viewer","scopeId":"` + a.eu + `"}`, "service_account"},
			probe{"/commands/issue-api-key", `{"serviceAccountId":"` + sva + `"}`, "service_account"},
			probe{"/queries/list-api-keys", `{"serviceAccountId":"` + sva + `"}`, "service_account"})
	}
	for _, key := range []string{str(bKey.Body["apiKeyId"]), b.keyID, mutateID(a.keyID), strings.ToLower(a.keyID), a.sva} {
		probes = append(probes, probe{"/commands/revoke-api-key", `{"apiKeyId":"` + key + `"}`, "api_key"})
	}
	for _, p := range probes {
		r := c.must(404, p.path, a.key, p.body)
		if r.Body["code"] != "errors.resource.not_found" || str(r.Body["detail"]) != "The "+p.resource+" does not exist." {
			t.Fatalf("%s %s: %s", p.path, p.body, r.Raw)
		}
		for _, id := range []string{b.tenantID, b.root, b.eu, b.sva, bBot, b.keyID} {
			if strings.Contains(r.Raw, id) {
				t.Fatalf("%s %s names B's %s: %s", p.path, p.body, id, r.Raw)
			}
		}
	}
	// B's key sees none of A's, and A's probes changed nothing of B's.
	c.must(404, "/commands/grant-role", str(bKey.Body["apiKey"]), `{"serviceAccountId":"`+aBot+`","role":"admin","scopeId":"`+b.eu+`"}`)
	bList := c.must(200, "/queries/list-api-keys", b.key, `{"serviceAccountId":"`+bBot+`"}`)
	if items, _ := bList.Body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["revoked"] != false {
		t.Fatalf("B's keys after A's probes: %s", bList.Raw)
	}
	c.must(200, "/queries/list-channels", str(bKey.Body["apiKey"]), `{"scopeId":"`+b.eu+`"}`)
}

// accessBatch: every access command runs as an item of POST /commands.
func accessBatch(t *testing.T, c *client, a accessTenant) {
	bot := str(c.must(200, "/commands/create-service-account", a.key, `{"scopeId":"`+a.us+`","name":"batch","role":"viewer"}`).Body["serviceAccountId"])
	k := c.must(200, "/commands/issue-api-key", a.key, `{"serviceAccountId":"`+bot+`"}`)
	items := []string{
		`{"name":"create-service-account","input":{"scopeId":"` + a.us + `","name":"b1","role":"sender"}}`,
		`{"name":"issue-api-key","input":{"serviceAccountId":"` + bot + `"},"idempotencyKey":"batch-issue-1"}`,
		`{"name":"grant-role","input":{"serviceAccountId":"` + bot + `","role":"admin","scopeId":"` + a.us + `"}}`,
		`{"name":"revoke-role","input":{"serviceAccountId":"` + bot + `","role":"viewer","scopeId":"` + a.us + `"}}`,
		`{"name":"revoke-api-key","input":{"apiKeyId":"` + str(k.Body["apiKeyId"]) + `"}}`,
		`{"name":"grant-role","input":{"serviceAccountId":"` + bot + `","role":"owner","scopeId":"` + a.us + `"}}`,
		`{"name":"issue-api-key","input":{"serviceAccountId":"` + mutateID(bot) + `"}}`,
		`{"name":"revoke-api-key","input":{}}`,
		`{"name":"list-api-keys","input":{}}`,
	}
	r := c.must(200, "/commands", a.key, `{"commands":[`+strings.Join(items, ",")+`]}`)
	var out struct {
		Results []struct {
			Status int            `json:"status"`
			Body   map[string]any `json:"body"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.Raw), &out); err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for _, res := range out.Results {
		statuses = append(statuses, res.Status)
	}
	if want := []int{200, 200, 200, 200, 200, 400, 404, 400, 404}; !reflect.DeepEqual(statuses, want) {
		t.Fatalf("batch statuses %v, want %v: %s", statuses, want, r.Raw)
	}
	if got := bindingsOf(t, reply{Body: out.Results[3].Body}); !reflect.DeepEqual(got, []string{"admin@" + a.us}) {
		t.Fatalf("bindings after the batch: %v", got)
	}
	c.must(401, "/queries/list-api-keys", str(k.Body["apiKey"]), `{}`)
	// The batch's new key works, as admin in us.
	nk := str(out.Results[1].Body["apiKey"])
	c.must(200, "/commands/create-scope", nk, `{"parentScopeId":"`+a.us+`","name":"from-batch"}`)
}

// TestAccessChangesReachOtherInstances: two instances on one DynamoDB table
// (Lambda instances). The instance that serves a grant, a revocation of a
// binding or of a key applies it to the next call at once; the other keeps
// its cached key record until its TTL (auth.DefaultKeyCacheTTL) runs out.
func TestAccessChangesReachOtherInstances(t *testing.T) {
	clk := clock.NewFixed(time.Now())
	env := func() map[string]string {
		return map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": t.TempDir()}
	}
	first := buildLogged(t, "dynamodb", env(), Deps{Clock: clk})
	e := env()
	e["SWITCHBOARD_TABLE"] = first.Config.Table
	second := buildOnTable(t, e, Deps{Clock: clk})
	c1, c2 := &client{t: t, h: first.Server}, &client{t: t, h: second.Server}
	a := setupAccessTenant(t, c1, "Acme")
	sva := str(c1.must(200, "/commands/create-service-account", a.key, `{"scopeId":"`+a.eu+`","name":"ci","role":"viewer"}`).Body["serviceAccountId"])
	key := str(c1.must(200, "/commands/issue-api-key", a.key, `{"serviceAccountId":"`+sva+`"}`).Body["apiKey"])
	scope := func(c *client, status int, name string) {
		t.Helper()
		c.must(status, "/commands/create-scope", key, `{"parentScopeId":"`+a.eu+`","name":"`+name+`"}`)
	}
	scope(c1, 403, "a") // both instances cache the viewer's record
	scope(c2, 403, "a")

	c1.must(200, "/commands/grant-role", a.key, `{"serviceAccountId":"`+sva+`","role":"admin","scopeId":"`+a.eu+`"}`)
	scope(c1, 200, "granted-1") // at once where it was served
	scope(c2, 403, "granted-2") // the other instance still trusts its cached record
	clk.Advance(auth.DefaultKeyCacheTTL - time.Millisecond)
	scope(c2, 403, "granted-2")
	clk.Advance(time.Millisecond)
	scope(c2, 200, "granted-2") // within the TTL

	keyID, _, _ := auth.ParseAPIKey(key)
	c1.must(200, "/commands/revoke-api-key", a.key, `{"apiKeyId":"`+keyID+`"}`)
	c1.must(401, "/queries/list-channels", key, `{"scopeId":"`+a.eu+`"}`)
	c2.must(200, "/queries/list-channels", key, `{"scopeId":"`+a.eu+`"}`)
	clk.Advance(auth.DefaultKeyCacheTTL)
	c2.must(401, "/queries/list-channels", key, `{"scopeId":"`+a.eu+`"}`)
}

// buildOnTable builds a second instance on the DynamoDB table env names
// (buildLogged makes a fresh one).
func buildOnTable(t *testing.T, env map[string]string, deps Deps) *App {
	t.Helper()
	env["SWITCHBOARD_STORE"] = "dynamodb"
	env["SWITCHBOARD_OUTBOX_SHARDS"] = testOutboxShards
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	app, err := Build(t.Context(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

// ---- hostile input: a table of its own over the hostile corpus's values ----

// The access commands change principals and keys, so they get a fixture of
// their own (hostile_test.go's would lose its keys): each tenant has, besides
// its onboarded admin (whose key makes the calls), a victim service account
// in eu with two keys. Bodies name the victim, so no single mutation can
// revoke the caller's own binding or key.
func newAccessHostileFixture(tb testing.TB, store string) *hostileFixture {
	tb.Helper()
	app, logs := hostileApp(tb, store)
	f := &hostileFixture{h: app.Server, logs: logs, opKey: hostileOperatorKey, vars: map[string]string{}, bIDs: map[string]bool{}}
	c := &client{t: tb, h: app.Server}
	setup := func(sfx string) string {
		on := c.must(200, "/commands/onboard-tenant", hostileOperatorKey, `{"name":"Access `+sfx+`","tier":"pooled"}`)
		key, root := str(on.Body["apiKey"]), str(on.Body["rootScopeId"])
		eu := str(c.must(200, "/commands/create-scope", key, `{"parentScopeId":"`+root+`","name":"eu"}`).Body["scopeId"])
		victim := str(c.must(200, "/commands/create-service-account", key, `{"scopeId":"`+eu+`","name":"victim","role":"viewer"}`).Body["serviceAccountId"])
		var keyIDs []string
		for range 2 {
			keyIDs = append(keyIDs, str(c.must(200, "/commands/issue-api-key", key, `{"serviceAccountId":"`+victim+`"}`).Body["apiKeyId"]))
		}
		var cur string
		eventually(tb, 10*time.Second, "a cursor of list-api-keys", func() bool {
			cur = str(c.must(200, "/queries/list-api-keys", key, `{"serviceAccountId":"`+victim+`","limit":1}`).Body["nextCursor"])
			return cur != ""
		})
		for k, v := range map[string]string{"tnt": str(on.Body["tenantId"]), "scp": root, "eu": eu, "sva": str(on.Body["serviceAccountId"]),
			"svaV": victim, "keyV": keyIDs[0], "keyV2": keyIDs[1], "curKey": cur} {
			f.vars[k+sfx] = v
			f.vars["mut"+strings.ToUpper(k[:1])+k[1:]+sfx] = mutateID(v)
		}
		if sfx == "B" {
			for _, id := range []string{str(on.Body["tenantId"]), root, eu, str(on.Body["serviceAccountId"]), str(on.Body["apiKeyId"]), victim, keyIDs[0], keyIDs[1]} {
				f.bIDs[id] = true
			}
		}
		return key
	}
	f.keyA, f.keyB = setup("A"), setup("B")
	return f
}

var accessHostileTargets = []hostileTarget{
	{"create-service-account", "/commands/create-service-account", []jfield{{k: "scopeId", raw: q("{{euA}}")}, {k: "name", raw: q("n")}, {k: "role", raw: q("viewer")}}},
	{"grant-role", "/commands/grant-role", []jfield{{k: "serviceAccountId", raw: q("{{svaVA}}")}, {k: "role", raw: q("sender")}, {k: "scopeId", raw: q("{{euA}}")}}},
	{"revoke-role", "/commands/revoke-role", []jfield{{k: "serviceAccountId", raw: q("{{svaVA}}")}, {k: "role", raw: q("sender")}, {k: "scopeId", raw: q("{{euA}}")}}},
	{"issue-api-key", "/commands/issue-api-key", []jfield{{k: "serviceAccountId", raw: q("{{svaVA}}")}, {k: "name", raw: q("k")}}},
	{"revoke-api-key", "/commands/revoke-api-key", []jfield{{k: "apiKeyId", raw: q("{{keyV2A}}")}}},
	{"list-api-keys", "/queries/list-api-keys", []jfield{{k: "serviceAccountId", raw: q("{{svaVA}}")}, {k: "limit", raw: "1"}, {k: "cursor", raw: q("{{curKeyA}}")}}},
}

// accessHostileCorpus is the hostile corpus (hostileValues, hostileBodies,
// headerCases) over the access targets, and the other tenant's ids.
func accessHostileCorpus(full bool) []hostileCase {
	var cs []hostileCase
	vals := append(hostileValues(full), q("{{svaB}}"), q("{{svaVB}}"), q("{{keyVB}}"), q("{{euB}}"), q("{{mutSvaVA}}"), q("{{mutKeyVA}}"),
		q("{{mutEuA}}"), q("{{curKeyB}}"), q("admin"), q("Viewer"), q("viewer "), q("{{lower:svaVA}}"), q("{{trunc:keyVA}}"))
	for _, t := range accessHostileTargets {
		for _, b := range hostileBodies(t, full) {
			cs = append(cs, hostileCase{name: t.name + " body " + clip(b), target: t.name, path: t.path, body: b})
		}
		for i, site := range sites(t.base, "") {
			for j, v := range vals {
				if !full && (i+j)%5 != 0 && site != "cursor" && site != "limit" {
					continue
				}
				cs = append(cs, hostileCase{name: t.name + " " + site + "=" + clip(v), target: t.name, path: t.path, body: render(t.base, site, v)})
			}
			cs = append(cs, hostileCase{name: t.name + " without " + site, target: t.name, path: t.path, body: render(without(t.base, site), "", "")})
		}
		cs = append(cs, headerCases(t, full)...)
	}
	// Another tenant's ids, and ids one character off: 404.
	for _, c := range []struct{ path, body string }{
		{"/commands/create-service-account", `{"scopeId":"{{euB}}","name":"n","role":"viewer"}`},
		{"/commands/create-service-account", `{"scopeId":"{{mutEuA}}","name":"n","role":"viewer"}`},
		{"/commands/grant-role", `{"serviceAccountId":"{{svaVB}}","role":"viewer","scopeId":"{{euA}}"}`},
		{"/commands/grant-role", `{"serviceAccountId":"{{svaVA}}","role":"viewer","scopeId":"{{euB}}"}`},
		{"/commands/grant-role", `{"serviceAccountId":"{{mutSvaVA}}","role":"viewer","scopeId":"{{euA}}"}`},
		{"/commands/revoke-role", `{"serviceAccountId":"{{svaB}}","role":"admin","scopeId":"{{scpB}}"}`},
		{"/commands/revoke-role", `{"serviceAccountId":"{{svaVA}}","role":"viewer","scopeId":"{{mutEuA}}"}`},
		{"/commands/issue-api-key", `{"serviceAccountId":"{{svaVB}}"}`},
		{"/commands/issue-api-key", `{"serviceAccountId":"{{mutSvaA}}"}`},
		{"/commands/revoke-api-key", `{"apiKeyId":"{{keyVB}}"}`},
		{"/commands/revoke-api-key", `{"apiKeyId":"{{mutKeyVA}}"}`},
		{"/commands/revoke-api-key", `{"apiKeyId":"{{lower:keyVA}}"}`},
		{"/queries/list-api-keys", `{"serviceAccountId":"{{svaVB}}"}`},
		{"/queries/list-api-keys", `{"serviceAccountId":"{{mutSvaVA}}"}`},
	} {
		name := strings.TrimPrefix(strings.TrimPrefix(c.path, "/commands/"), "/queries/")
		cs = append(cs, hostileCase{name: name + " another tenant's or a mutated id " + c.body, target: name, path: c.path, body: c.body, want: 404})
	}
	return cs
}

// TestAccessHostileInputs: never a 5xx, every 4xx a problem with its status
// and code, no panic logged, no id of tenant B in an answer to A, B's and
// mutated ids 404; the whole corpus on the embedded store, a reduced set on
// DynamoDB Local; then the corpus's command bodies as batch items. The
// caller's own key and binding survive it.
func TestAccessHostileInputs(t *testing.T) {
	for _, tc := range []struct {
		store string
		full  bool
	}{{"embedded", true}, {"dynamodb", false}} {
		t.Run(tc.store, func(t *testing.T) {
			f := newAccessHostileFixture(t, tc.store)
			corpus := accessHostileCorpus(tc.full)
			start := time.Now()
			byStatus := f.run(t, corpus)
			t.Logf("%d requests in %s; statuses %v", len(corpus), time.Since(start).Round(time.Millisecond), byStatus)

			// The same command bodies as batch items (100 per batch).
			var items []string
			for i, c := range corpus {
				if c.method != "" || len(c.hdr) > 0 || c.token != "" || !strings.HasPrefix(c.path, "/commands/") {
					continue
				}
				body := f.expand(c.body)
				var v any // a body the batch's own strict decoding refuses (a duplicate key) makes the whole batch a 400
				if !json.Valid([]byte(body)) || !utf8.ValidString(body) || len(body) > 2<<10 || strictjson.Unmarshal([]byte(body), &v) != nil {
					continue
				}
				item := `{"name":"` + strings.TrimPrefix(c.path, "/commands/") + `","input":` + body
				if i%3 == 0 {
					item += fmt.Sprintf(`,"idempotencyKey":"hostile-%d"`, i)
				}
				items = append(items, item+"}")
			}
			seen := 0
			for i := 0; i < len(items); i += 100 {
				r := f.do(hostileCase{name: "batch", target: "batch", path: "/commands", body: `{"commands":[` + strings.Join(items[i:min(i+100, len(items))], ",") + `]}`})
				if msg := f.check(hostileCase{target: "batch"}, r); msg != "" || r.status != 200 {
					t.Fatalf("batch %d: %d %s %s", i/100, r.status, msg, clipBytes(r.raw))
				}
				var out struct {
					Results []struct {
						Status int `json:"status"`
						Body   struct {
							Status int    `json:"status"`
							Code   string `json:"code"`
						} `json:"body"`
					} `json:"results"`
				}
				if err := json.Unmarshal(r.raw, &out); err != nil {
					t.Fatal(err)
				}
				for j, res := range out.Results {
					seen++
					if res.Status >= 500 || res.Status >= 400 && (res.Body.Status != res.Status || res.Body.Code == "") {
						t.Errorf("batch %d item %d: %d %+v", i/100, j, res.Status, res.Body)
					}
				}
			}
			if p := f.panics(); len(p) > 0 {
				t.Errorf("panic logged: %s %v", p[0].msg, p[0].attrs)
			}
			t.Logf("%d batch items", seen)

			// The callers' own keys and bindings are intact.
			c := &client{t: t, h: f.h}
			c.must(200, "/commands/create-scope", f.keyA, `{"parentScopeId":"`+f.vars["scpA"]+`","name":"after-hostile"}`)
			c.must(200, "/commands/create-scope", f.keyB, `{"parentScopeId":"`+f.vars["scpB"]+`","name":"after-hostile"}`)
			bKeys := c.must(200, "/queries/list-api-keys", f.keyB, `{"serviceAccountId":"`+f.vars["svaVB"]+`"}`)
			if items, _ := bKeys.Body["items"].([]any); len(items) != 2 || strings.Contains(bKeys.Raw, `"revoked":true`) {
				t.Fatalf("B's victim keys after A's hostile calls: %s", bKeys.Raw)
			}
		})
	}
}
