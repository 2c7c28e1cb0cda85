package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// fromAddr serves h as if every request came from addr (the edge reads the
// source address from RemoteAddr, which the Lambda trigger fills from the
// API Gateway request context).
func fromAddr(h http.Handler, addr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = addr + ":51000"
		h.ServeHTTP(w, r)
	})
}

// TestAuthThrottle: failed authentication through the production wiring
// (ADR 0011), on the app's injected clock. A brute force on one key id gets
// 429 with Retry-After, the right secret included, while the owner's other
// key works; after the window the right secret works again; an address over
// its failure limit gets 429 for its failures only, its valid calls pass.
func TestAuthThrottle(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) { authThrottle(t, store) })
	}
}

func authThrottle(t *testing.T, store string) {
	clk := clock.NewFixed(time.Now())
	app := buildLogged(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": t.TempDir()}, Deps{Clock: clk})
	c := &client{t: t, h: fromAddr(app.Server, "192.0.2.10")}
	attacker := &client{t: t, h: fromAddr(app.Server, "198.51.100.66")}
	a := setupAccessTenant(t, c, "Throttled")
	other := str(c.must(200, "/commands/issue-api-key", a.key, `{"serviceAccountId":"`+a.sva+`"}`).Body["apiKey"])
	list := func(c *client, status int, key string) reply {
		t.Helper()
		return c.must(status, "/queries/list-channels", key, `{"scopeId":"`+a.eu+`"}`)
	}
	list(c, 200, a.key)

	// The brute force on a.key's id: 10 wrong secrets are 401s.
	for range auth.DefaultKeyFailures {
		list(attacker, 401, auth.FormatAPIKey(a.keyID, auth.NewSecret()))
	}
	clk.Advance(15 * time.Second)
	// Then the key id is refused before its secret is checked, from anywhere, the right secret too.
	r := list(c, 429, a.key)
	if r.Header.Get("Retry-After") != "45" || str(r.Body["code"]) != "errors.auth.throttled" {
		t.Fatalf("throttled answer: %v %s", r.Header, r.Raw)
	}
	// The owner's other key works, from both addresses.
	list(c, 200, other)
	list(attacker, 200, other)

	// The attacker's address: 20 more failures (random key ids, garbage) reach its 30.
	for i := range auth.DefaultAddressFailures - auth.DefaultKeyFailures {
		cred := "garbage"
		if i%2 == 0 {
			cred = auth.FormatAPIKey(ids.NewULIDs().New(ids.APIKey), auth.NewSecret())
		}
		list(attacker, 401, cred)
	}
	r = list(attacker, 429, "sbk_not_a_key")
	if r.Header.Get("Retry-After") != "45" { // the address's window opened with its first failure too
		t.Fatalf("address Retry-After %q", r.Header.Get("Retry-After"))
	}
	list(attacker, 200, other)     // valid calls from the throttled address pass
	list(c, 401, "garbage")        // another address's failure is a 401
	list(c, 429, a.key)            // the key id is still throttled
	clk.Advance(45 * time.Second)  // both windows end
	list(c, 200, a.key)            // the right secret works again
	list(attacker, 401, "garbage") // a new window for the address
	c.must(200, "/commands/create-scope", a.key, `{"parentScopeId":"`+a.eu+`","name":"after"}`)
}
