package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/tools/seed/seed"
)

// TestSeed runs `make seed`'s core (tools/seed) against the production
// wiring on the embedded store, served over HTTP: four tenants with their
// scopes, accounts, keys and channels; every printed key works; the printed
// curl examples answer what they say; a second run with the same prefix is a
// replay that creates nothing; a wrong operator key or no server stop with
// what to do.
func TestSeed(t *testing.T) {
	const opKey = "sbo_seed"
	app := buildOn(t, "embedded", map[string]string{"SWITCHBOARD_OPERATOR_KEY": opKey})
	app.Worker.Start()
	t.Cleanup(func() { app.Worker.Stop(context.Background()) })
	srv := httptest.NewServer(app.Server)
	t.Cleanup(srv.Close)
	c := &client{t: t, base: srv.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var out bytes.Buffer
	start := time.Now()
	res, err := seed.Seed(ctx, srv.Client(), srv.URL, opKey, "Demo", &out)
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, out.String())
	}
	t.Logf("seeded in %s:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	printed := out.String()

	tiers := map[string]int{}
	for _, tn := range res.Tenants {
		tiers[tn.Tier]++
		if !strings.HasPrefix(tn.TenantID, "tnt_") || tn.Status != "active" || !strings.Contains(printed, tn.TenantID) {
			t.Fatalf("tenant %+v", tn)
		}
		if len(tn.Scopes) != 4 || len(tn.Accounts) != 1+2*len(seed.Roles) || len(tn.Channels) != 2 {
			t.Fatalf("tenant %s: %d scopes, %d accounts, %d channels", tn.Name, len(tn.Scopes), len(tn.Accounts), len(tn.Channels))
		}
		admin := tn.Accounts[0].APIKey
		got := c.must(200, "/queries/get-tenant", admin, `{}`)
		if got.Body["tenantId"] != tn.TenantID || got.Body["tier"] != tn.Tier || got.Body["name"] != tn.Name {
			t.Fatalf("get-tenant: %s, want %+v", got.Raw, tn)
		}
		// The scopes as the API lists them: names and paths.
		list := c.must(200, "/queries/list-scopes", admin, `{}`)
		items, _ := list.Body["items"].([]any)
		if len(items) != 4 {
			t.Fatalf("%s list-scopes: %s", tn.Name, list.Raw)
		}
		byID := map[string]map[string]any{}
		for _, it := range items {
			m := it.(map[string]any)
			byID[str(m["scopeId"])] = m
		}
		wantDepth := map[string]int{"Global": 1, "EU": 2, "France": 3, "US": 2}
		for _, sc := range tn.Scopes {
			m := byID[sc.ScopeID]
			path, _ := m["path"].([]any)
			if m == nil || str(m["name"]) != sc.Name || len(path) != wantDepth[sc.Label] || str(m["parentScopeId"]) != sc.ParentID ||
				!strings.Contains(printed, sc.ScopeID) {
				t.Fatalf("scope %+v as listed: %v", sc, m)
			}
		}
		// Every printed key works: each account reads the channels of its scope.
		for _, a := range tn.Accounts {
			if !strings.HasPrefix(a.APIKey, "sbk_") || !strings.Contains(printed, a.APIKey) {
				t.Fatalf("account %+v: key not printed", a)
			}
			c.must(200, "/queries/list-channels", a.APIKey, `{"scopeId":"`+a.ScopeID+`"}`)
		}
		for _, ch := range tn.Channels {
			g := c.must(200, "/queries/get-channel", admin, `{"channelId":"`+ch.ChannelID+`"}`)
			if g.Body["scopeId"] != ch.ScopeID || !strings.Contains(printed, ch.ChannelID) {
				t.Fatalf("channel %+v: %s", ch, g.Raw)
			}
		}
	}
	if tiers["pooled"] != 2 || tiers["siloed"] != 2 {
		t.Fatalf("tiers %v, want 2 pooled and 2 siloed", tiers)
	}

	// The printed curl examples answer what they say.
	if len(res.Examples) < 3 {
		t.Fatalf("%d examples", len(res.Examples))
	}
	wants := map[int]int{}
	for _, e := range res.Examples {
		if !strings.Contains(printed, e.Curl) || !strings.Contains(e.Curl, srv.URL+e.Path) || !strings.Contains(e.Curl, e.APIKey) {
			t.Fatalf("example %q: curl line not printed or not the call: %s", e.Title, e.Curl)
		}
		r := c.call(e.Path, e.APIKey, e.Body)
		if r.Status != e.Want {
			t.Fatalf("example %q: %d %s, want %d", e.Title, r.Status, r.Raw, e.Want)
		}
		wants[e.Want]++
	}
	if wants[202] == 0 || wants[403] < 2 {
		t.Fatalf("examples' outcomes %v: want a 202 and two 403s", wants)
	}

	// The same prefix again: a replay, the same tenants and keys, nothing new.
	var again bytes.Buffer
	res2, err := seed.Seed(ctx, srv.Client(), srv.URL, opKey, "Demo", &again)
	if err != nil {
		t.Fatalf("seed again: %v\n%s", err, again.String())
	}
	if res2.Replayed != res2.Commands || res2.Commands != res.Commands || !strings.Contains(again.String(), "replayed an earlier run") {
		t.Fatalf("second run: %d of %d commands replayed (first run %d)\n%s", res2.Replayed, res2.Commands, res.Commands, again.String())
	}
	for i, tn := range res2.Tenants {
		if tn.TenantID != res.Tenants[i].TenantID || tn.Accounts[3].APIKey != res.Tenants[i].Accounts[3].APIKey {
			t.Fatalf("second run tenant %d: %+v, want %+v", i, tn, res.Tenants[i])
		}
		if items, _ := c.must(200, "/queries/list-scopes", tn.Accounts[0].APIKey, `{}`).Body["items"].([]any); len(items) != 4 {
			t.Fatalf("%s after the second run: %d scopes", tn.Name, len(items))
		}
	}

	// Another prefix: new tenants, the first run's untouched.
	var other bytes.Buffer
	res3, err := seed.Seed(ctx, srv.Client(), srv.URL, opKey, "Demo2", &other)
	if err != nil || res3.Replayed != 0 || res3.Tenants[0].TenantID == res.Tenants[0].TenantID || res3.Tenants[0].Name != "Demo2 Pooled A" {
		t.Fatalf("seed Demo2: %v, %d replayed, %+v", err, res3.Replayed, res3.Tenants)
	}

	// Failures stop with the problem's code and what to do.
	_, err = seed.Seed(ctx, srv.Client(), srv.URL, "sbo_wrong", "Demo", &bytes.Buffer{})
	var ae *seed.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code == "" || !strings.Contains(err.Error(), "operator key") {
		t.Fatalf("wrong operator key: %v", err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err = seed.Seed(ctx, http.DefaultClient, dead.URL, opKey, "Demo", &bytes.Buffer{})
	if !errors.As(err, &ae) || ae.Status != 0 || !strings.Contains(err.Error(), "make run") {
		t.Fatalf("no server: %v", err)
	}
}
