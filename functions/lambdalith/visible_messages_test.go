package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestListMessagesBelowTheRoot: list-messages without a scope, for a caller
// bound below the root (ADR 0009 plan B): the messages of the scopes it may
// list in (EU and DE for a viewer at EU, not US or the root), newest first
// across them, at limit 1 through the merged cursor; a status filter keeps
// the merge; a caller at the root still reads the tenant's list; another
// list's cursor is a 400; more visible scopes than MaxVisibleScopes is a 400
// asking for a scopeId.
func TestListMessagesBelowTheRoot(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": t.TempDir()})
			c := &client{t: t, h: app.Server}
			a := setupAccessTenant(t, c, "Acme")
			channel := func(scope, name string) string {
				return str(c.must(200, "/commands/create-channel", a.key, `{"scopeId":"`+scope+`","name":"`+name+`","type":"sms","provider":"sandbox","from":"+15550000000"}`).Body["channelId"])
			}
			send := func(ch string) string {
				return str(c.must(202, "/commands/send-message", a.key, `{"channelId":"`+ch+`","to":"+15550100000","content":{"text":"hi"}}`).Body["messageId"])
			}
			chRoot, chEU, chDE, chUS := channel(a.root, "root"), channel(a.eu, "eu"), channel(a.de, "de"), channel(a.us, "us")
			sent := map[string][]string{}
			for range 2 {
				for name, ch := range map[string]string{"root": chRoot, "eu": chEU, "de": chDE, "us": chUS} {
					sent[name] = append(sent[name], send(ch))
				}
			}
			_, viewer := accountKey(t, c, a, a.eu, "viewer")
			_, usViewer := accountKey(t, c, a, a.us, "viewer")

			// pages lists messages at limit 1, in answer order.
			pages := func(key, body string) []string {
				t.Helper()
				var ids []string
				cursor := ""
				for n := 0; ; n++ {
					b := strings.TrimSuffix(body, "}")
					if b != "{" {
						b += ","
					}
					b += `"limit":1`
					if cursor != "" {
						b += `,"cursor":"` + cursor + `"`
					}
					r := c.must(200, "/queries/list-messages", key, b+"}")
					items := r.Body["items"].([]any)
					if len(items) > 1 || n > 40 {
						t.Fatalf("page %d: %d items", n, len(items))
					}
					for _, it := range items {
						ids = append(ids, str(it.(map[string]any)["messageId"]))
					}
					next, _ := r.Body["nextCursor"].(string)
					if next == "" {
						return ids
					}
					cursor = next
				}
			}
			newestFirst := func(ids ...[]string) []string {
				var all []string
				for _, s := range ids {
					all = append(all, s...)
				}
				slices.Sort(all)
				slices.Reverse(all)
				return all
			}
			if got, want := pages(viewer, `{}`), newestFirst(sent["eu"], sent["de"]); !slices.Equal(got, want) {
				t.Errorf("viewer at EU lists %v, want EU's and DE's newest first %v", got, want)
			}
			if got, want := pages(usViewer, `{}`), newestFirst(sent["us"]); !slices.Equal(got, want) {
				t.Errorf("viewer at US lists %v, want %v", got, want)
			}
			if got, want := pages(a.key, `{}`), newestFirst(sent["root"], sent["eu"], sent["de"], sent["us"]); !slices.Equal(got, want) {
				t.Errorf("admin at the root lists %v, want all %v", got, want)
			}
			// A binding that grants no list-messages anywhere: an empty page.
			role := str(c.must(200, "/commands/create-role", a.key, `{"name":"ChannelReader","actions":["channels:get-channel"]}`).Body["roleId"])
			_, reader := accountKey(t, c, a, a.eu, role)
			if r := c.must(200, "/queries/list-messages", reader, `{}`); len(r.Body["items"].([]any)) != 0 || r.Body["nextCursor"] != nil {
				t.Errorf("a caller who may list no messages: %s", r.Raw)
			}
			// A status filter: every message listed has it, and only visible ones.
			r := c.must(200, "/queries/list-messages", viewer, `{"status":"queued","limit":100}`)
			for _, it := range r.Body["items"].([]any) {
				m := it.(map[string]any)
				if m["status"] != "queued" || (m["channelId"] != chEU && m["channelId"] != chDE) {
					t.Errorf("status filter lists %v", m)
				}
			}
			// The tenant list's cursor is not this list's.
			first := c.must(200, "/queries/list-messages", a.key, `{"limit":1}`)
			c.must(400, "/queries/list-messages", viewer, `{"limit":1,"cursor":"`+str(first.Body["nextCursor"])+`"}`)
			// With a scopeId nothing changed: its own scope only, 403 outside.
			if got := pages(viewer, `{"scopeId":"`+a.de+`"}`); !slices.Equal(got, newestFirst(sent["de"])) {
				t.Errorf("viewer at EU, scope DE: %v", got)
			}
			c.must(403, "/queries/list-messages", viewer, `{"scopeId":"`+a.us+`"}`)

			// More visible scopes than a page may read: ask for a scopeId.
			for i := range 16 {
				c.must(200, "/commands/create-scope", a.key, fmt.Sprintf(`{"parentScopeId":"%s","name":"eu-%d"}`, a.eu, i))
			}
			eventually(t, 15e9, "the scope tree cache sees the new scopes", func() bool {
				return c.call("/queries/list-messages", viewer, `{}`).Status == 400
			})
			c.must(200, "/queries/list-messages", viewer, `{"scopeId":"`+a.eu+`"}`)
		})
	}
}
