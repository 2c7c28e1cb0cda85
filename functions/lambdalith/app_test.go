package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWalkthrough runs the README walkthrough against the production wiring,
// on the embedded store (bbolt, and pebble) and on DynamoDB (Local).
func TestWalkthrough(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb", EnginePebble} {
		t.Run(store, func(t *testing.T) {
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": "sbo_walkthrough"})
			app.Worker.Start()
			t.Cleanup(func() { app.Worker.Stop(context.Background()) })
			walkthrough(t, &client{t: t, h: app.Server}, "sbo_walkthrough")
		})
	}
}

func walkthrough(t *testing.T, c *client, operatorKey string) {
	c.must(401, "/commands/onboard-tenant", "", `{"name":"Acme","tier":"pooled"}`)
	c.must(401, "/commands/onboard-tenant", "sbo_wrong", `{"name":"Acme","tier":"pooled"}`)
	c.must(400, "/commands/onboard-tenant", operatorKey, `{"name":"Acme","tier":"gold"}`)

	// Onboard, with an idempotency key; the retry replays the first answer.
	on := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"Acme","tier":"pooled"}`, "Idempotency-Key", "onboard-acme-1")
	again := c.must(200, "/commands/onboard-tenant", operatorKey, `{"tier":"pooled","name":"Acme"}`, "Idempotency-Key", "onboard-acme-1")
	if on.Raw != again.Raw || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("onboard replay: %s vs %s", on.Raw, again.Raw)
	}
	c.must(422, "/commands/onboard-tenant", operatorKey, `{"name":"Other","tier":"pooled"}`, "Idempotency-Key", "onboard-acme-1")
	key, tenantID, root := str(on.Body["apiKey"]), str(on.Body["tenantId"]), str(on.Body["rootScopeId"])
	if !strings.HasPrefix(key, "sbk_key_") || !strings.HasPrefix(tenantID, "tnt_") || !strings.HasPrefix(root, "scp_") || !strings.HasPrefix(str(on.Body["serviceAccountId"]), "sva_") {
		t.Fatalf("onboard answer: %s", on.Raw)
	}

	// The operator key cannot read tenant data; the API key cannot onboard.
	c.must(403, "/queries/get-tenant", operatorKey, `{}`)
	c.must(403, "/commands/onboard-tenant", key, `{"name":"X","tier":"pooled"}`)

	// The tenant becomes active once the provisioning work ran.
	eventually(t, 10*time.Second, "tenant active", func() bool {
		r := c.must(200, "/queries/get-tenant", key, `{}`)
		return r.Body["status"] == "active"
	})
	got := c.must(200, "/queries/get-tenant", key, ``)
	if got.Body["tenantId"] != tenantID || got.Body["name"] != "Acme" || got.Body["tier"] != "pooled" || got.Body["rootScopeId"] != root {
		t.Fatalf("get-tenant: %s", got.Raw)
	}

	// Nested scopes, with paths.
	eu := c.must(200, "/commands/create-scope", key, `{"parentScopeId":"`+root+`","name":"eu"}`)
	de := c.must(200, "/commands/create-scope", key, `{"parentScopeId":"`+str(eu.Body["scopeId"])+`","name":"de"}`)
	c.must(409, "/commands/create-scope", key, `{"parentScopeId":"`+root+`","name":"EU"}`)
	c.must(404, "/commands/create-scope", key, `{"parentScopeId":"nope","name":"x"}`) // a malformed id names nothing
	c.must(404, "/commands/create-scope", key, `{"parentScopeId":"scp_01JD0000000000000000000000","name":"x"}`)
	list := c.must(200, "/queries/list-scopes", key, `{"limit":2}`)
	items, _ := list.Body["items"].([]any)
	if len(items) != 2 || list.Body["nextCursor"] == nil {
		t.Fatalf("list-scopes page 1: %s", list.Raw)
	}
	first := items[0].(map[string]any)
	path, _ := first["path"].([]any)
	if first["scopeId"] != de.Body["scopeId"] || len(path) != 3 || path[0] != root || path[2] != de.Body["scopeId"] {
		t.Fatalf("newest first with path: %s", list.Raw)
	}
	rest := c.must(200, "/queries/list-scopes", key, `{"limit":2,"cursor":"`+str(list.Body["nextCursor"])+`"}`)
	items, _ = rest.Body["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["scopeId"] != root || rest.Body["nextCursor"] != nil {
		t.Fatalf("list-scopes page 2: %s", rest.Raw)
	}

	// Another tenant sees none of it.
	other := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"Globex","tier":"siloed"}`)
	okey := str(other.Body["apiKey"])
	c.must(404, "/commands/create-scope", okey, `{"parentScopeId":"`+root+`","name":"steal"}`)
	ol := c.must(200, "/queries/list-scopes", okey, `{}`)
	if items, _ := ol.Body["items"].([]any); len(items) != 1 {
		t.Fatalf("other tenant's scopes: %s", ol.Raw)
	}

	// Batch.
	b := c.must(200, "/commands", key, `{"commands":[{"name":"create-scope","input":{"parentScopeId":"`+root+`","name":"us"}},{"name":"create-scope","input":{"parentScopeId":"`+root+`","name":"us"}}]}`)
	res, _ := b.Body["results"].([]any)
	if len(res) != 2 || res[0].(map[string]any)["status"] != 200.0 || res[1].(map[string]any)["status"] != 409.0 {
		t.Fatalf("batch: %s", b.Raw)
	}
}

// TestConcurrentDuplicatesReplay: 20 concurrent create-scope calls with one
// Idempotency-Key and the same body all answer the first 200, on both stores.
// The handler has a precondition (the sibling name is free) that the first
// commit breaks for its twins: they must replay, not answer 409.
func TestConcurrentDuplicatesReplay(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb", EnginePebble} {
		t.Run(store, func(t *testing.T) {
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": "sbo_twins"})
			c := &client{t: t, h: app.Server}
			on := c.must(200, "/commands/onboard-tenant", "sbo_twins", `{"name":"Acme","tier":"pooled"}`)
			key, root := str(on.Body["apiKey"]), str(on.Body["rootScopeId"])

			const n = 20
			replies := make([]reply, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					replies[i] = c.call("/commands/create-scope", key, `{"parentScopeId":"`+root+`","name":"eu"}`, "Idempotency-Key", "twins-1")
				}()
			}
			wg.Wait()
			replayed := 0
			for i, r := range replies {
				if r.Status != 200 || r.Raw != replies[0].Raw {
					t.Fatalf("answer %d: %d %s, want every answer to be the first 200 %s", i, r.Status, r.Raw, replies[0].Raw)
				}
				if r.Header.Get("Idempotent-Replayed") == "true" {
					replayed++
				}
			}
			if replayed != n-1 {
				t.Fatalf("%d answers replayed, want %d", replayed, n-1)
			}
			list := c.must(200, "/queries/list-scopes", key, `{}`)
			if items, _ := list.Body["items"].([]any); len(items) != 2 {
				t.Fatalf("scopes after 20 duplicates: %s", list.Raw)
			}
		})
	}
}
