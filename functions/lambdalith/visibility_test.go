package main

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
)

// TestListsShowWhatTheCallerMaySee: a caller bound below the root (viewer
// at EU) lists the scopes, channels and subscriptions it may see, at EU and below it,
// instead of a 403 for the whole tenant; a caller bound at the root sees
// every scope; a caller with no binding left sees none (issue 7 item 4:
// "lists return only what the caller may see in the scopes it may see").
func TestListsShowWhatTheCallerMaySee(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": t.TempDir()})
			c := &client{t: t, h: app.Server}
			a := setupAccessTenant(t, c, "Acme")
			account := func(scope, role string) (sva, key string) {
				sva = str(c.must(200, "/commands/create-service-account", a.key, `{"scopeId":"`+scope+`","name":"v-`+role+`","role":"`+role+`"}`).Body["serviceAccountId"])
				key = str(c.must(200, "/commands/issue-api-key", a.key, `{"serviceAccountId":"`+sva+`"}`).Body["apiKey"])
				return sva, key
			}
			want := func(ids ...string) []string { slices.Sort(ids); return ids }
			cursors := map[string][]string{} // by key: the decoded cursors it was answered
			// pages lists path page by page (limit 1: short pages), its
			// items' idField; every page is at most one item.
			pages := func(path, key, idField string) []string {
				var ids []string
				for cursor, n := "", 0; ; n++ {
					body := `{"limit":1}`
					if cursor != "" {
						body = `{"limit":1,"cursor":"` + cursor + `"}`
					}
					r := c.must(200, path, key, body)
					items, _ := r.Body["items"].([]any)
					if len(items) > 1 {
						t.Fatalf("%s: a page of %d items with limit 1", path, len(items))
					}
					for _, it := range items {
						ids = append(ids, str(it.(map[string]any)[idField]))
					}
					next, _ := r.Body["nextCursor"].(string)
					if next == "" {
						break
					}
					if n > 50 {
						t.Fatalf("%s: the list does not end", path)
					}
					if raw, err := base64.RawURLEncoding.DecodeString(next); err == nil {
						cursors[key] = append(cursors[key], string(raw))
					}
					cursor = next
				}
				slices.Sort(ids)
				return ids
			}
			listed := func(key string) []string { return pages("/queries/list-scopes", key, "scopeId") }

			if got := listed(a.key); !slices.Equal(got, want(a.root, a.eu, a.de, a.us)) {
				t.Errorf("admin at the root lists %v, want every scope", got)
			}
			viewerSva, viewer := account(a.eu, "viewer")
			if got := listed(viewer); !slices.Equal(got, want(a.eu, a.de)) {
				t.Errorf("viewer at EU lists %v, want EU and DE %v", got, want(a.eu, a.de))
			}
			// list-channels without a scope: the channels it may see.
			channel := func(scope, name string) string {
				return str(c.must(200, "/commands/create-channel", a.key, `{"scopeId":"`+scope+`","name":"`+name+`","type":"sms","provider":"sandbox","from":"+15550000000"}`).Body["channelId"])
			}
			chRoot, chEU, chDE, chUS := channel(a.root, "root"), channel(a.eu, "eu"), channel(a.de, "de"), channel(a.us, "us")
			channels := func(key string) []string { return pages("/queries/list-channels", key, "channelId") }
			if got := channels(a.key); !slices.Equal(got, want(chRoot, chEU, chDE, chUS)) {
				t.Errorf("admin at the root lists channels %v, want all four", got)
			}
			if got := channels(viewer); !slices.Equal(got, want(chEU, chDE)) {
				t.Errorf("viewer at EU lists channels %v, want EU's and DE's %v", got, want(chEU, chDE))
			}
			// With a scope outside its reach, still 403.
			c.must(403, "/queries/list-channels", viewer, `{"scopeId":"`+a.us+`"}`)

			// list-subscriptions without a scope: the subscriptions it may see.
			subscription := func(scope string) string {
				return str(c.must(200, "/commands/create-subscription", a.key, `{"scopeId":"`+scope+`","url":"http://127.0.0.1:9/hook","eventTypes":["*"]}`).Body["subscriptionId"])
			}
			subRoot, subEU, subDE, subUS, subEU2 := subscription(a.root), subscription(a.eu), subscription(a.de), subscription(a.us), subscription(a.eu)
			subscriptions := func(key string) []string { return pages("/queries/list-subscriptions", key, "subscriptionId") }
			if got := subscriptions(a.key); !slices.Equal(got, want(subRoot, subEU, subDE, subUS, subEU2)) {
				t.Errorf("admin at the root lists subscriptions %v, want all five", got)
			}
			if got := subscriptions(viewer); !slices.Equal(got, want(subEU, subDE, subEU2)) {
				t.Errorf("viewer at EU lists subscriptions %v, want EU's and DE's %v", got, want(subEU, subDE, subEU2))
			}
			// No cursor answered to the viewer names what it may not see (a
			// store cursor is the position of the last item read).
			for _, cur := range cursors[viewer] {
				for _, hidden := range []string{a.root, a.us, chRoot, chUS, subRoot, subUS} {
					if strings.Contains(cur, hidden) {
						t.Errorf("a cursor answered to the viewer at EU names %s, which it may not see", hidden)
					}
				}
			}
			c.must(403, "/queries/list-subscriptions", viewer, `{"scopeId":"`+a.us+`"}`)
			if got := str(c.must(200, "/queries/list-subscriptions", viewer, `{"scopeId":"`+a.de+`"}`).Body["items"].([]any)[0].(map[string]any)["subscriptionId"]); got != subDE {
				t.Errorf("viewer at EU lists DE's subscriptions: %s, want %s", got, subDE)
			}

			c.must(200, "/commands/revoke-role", a.key, `{"serviceAccountId":"`+viewerSva+`","role":"viewer","scopeId":"`+a.eu+`"}`)
			if got := listed(viewer); len(got) != 0 {
				t.Errorf("a caller without bindings lists %v, want none", got)
			}
			if got := channels(viewer); len(got) != 0 {
				t.Errorf("a caller without bindings lists channels %v, want none", got)
			}
			if got := subscriptions(viewer); len(got) != 0 {
				t.Errorf("a caller without bindings lists subscriptions %v, want none", got)
			}
			// list-messages without a scope: the messages of no scope
			// (visible_messages_test.go has the rest).
			if r := c.must(200, "/queries/list-messages", viewer, `{}`); r.Raw != `{"items":[],"nextCursor":null}` {
				t.Errorf("a caller without bindings lists messages: %s", r.Raw)
			}
		})
	}
}
