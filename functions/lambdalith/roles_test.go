package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Tenant-defined roles, the catalogue and the caller's permissions (issue 7,
// items 3 and 4) through the production wiring on both stores: create-role,
// list-roles, list-actions, get-permissions; a tenant role used wherever a
// built-in one is (create-service-account, grant-role) and decided by the
// edge's authorizer in the binding's subtree only, at once on the instance
// that created it; the escalation guard of grant-role and
// create-service-account; another tenant's role and scope ids.

// accountKey creates a service account of a at scope with role and returns
// its id and an API key.
func accountKey(t *testing.T, c *client, a accessTenant, scope, role string) (string, string) {
	t.Helper()
	sva := str(c.must(200, "/commands/create-service-account", a.key, `{"scopeId":"`+scope+`","name":"r","role":"`+role+`"}`).Body["serviceAccountId"])
	return sva, str(c.must(200, "/commands/issue-api-key", a.key, `{"serviceAccountId":"`+sva+`"}`).Body["apiKey"])
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, str(x))
	}
	return out
}

func TestTenantRolesEndToEnd(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": t.TempDir()})
			c := &client{t: t, h: app.Server}
			a := setupAccessTenant(t, c, "Acme")
			b := setupAccessTenant(t, c, "Globex")

			// list-actions: open to any account of the tenant.
			_, viewerKey := accountKey(t, c, a, a.eu, "viewer")
			acts := c.must(200, "/queries/list-actions", viewerKey, `{}`)
			if n := len(acts.Body["actions"].([]any)); n < 20 || !strings.Contains(acts.Raw, `"resource":"channel"`) {
				t.Fatalf("list-actions: %d actions %s", n, acts.Raw)
			}

			// create-role: admins at the root; catalogue actions; unique names.
			role := str(c.must(200, "/commands/create-role", a.key,
				`{"name":"Support","actions":["channels:list-channels","channels:get-channel","messaging:list-messages"]}`).Body["roleId"])
			if !strings.HasPrefix(role, "rol_") {
				t.Fatalf("role id %q", role)
			}
			r := c.must(400, "/commands/create-role", a.key, `{"name":"Bad","actions":["channels:get-channel","tenancy:onboard-tenant","nope"]}`)
			if got := problemFields(r); !reflect.DeepEqual(got, []string{"actions[1]=errors.tenancy.unknown_action", "actions[2]=errors.tenancy.unknown_action"}) {
				t.Fatalf("unknown actions: %v %s", got, r.Raw)
			}
			c.must(400, "/commands/create-role", a.key, `{"name":"Empty","actions":[]}`)
			c.must(409, "/commands/create-role", a.key, `{"name":"support","actions":["channels:get-channel"]}`)
			c.must(409, "/commands/create-role", a.key, `{"name":"Viewer","actions":["channels:get-channel"]}`)
			_, euAdminKey := accountKey(t, c, a, a.eu, "admin")
			c.must(403, "/commands/create-role", euAdminKey, `{"name":"Other","actions":["channels:get-channel"]}`)
			bRole := str(c.must(200, "/commands/create-role", b.key, `{"name":"Support","actions":["channels:get-channel"]}`).Body["roleId"])

			roles := c.must(200, "/queries/list-roles", viewerKey, `{}`)
			var names []string
			for _, it := range roles.Body["items"].([]any) {
				names = append(names, str(it.(map[string]any)["role"]))
			}
			if want := []string{"admin", "sender", "viewer", role}; !reflect.DeepEqual(names, want) {
				t.Fatalf("list-roles %v, want %v", names, want)
			}

			// The role in a binding: its actions in eu's subtree, at once.
			sva, supportKey := accountKey(t, c, a, a.eu, role)
			if r := c.call("/queries/list-channels", supportKey, `{"scopeId":"`+a.de+`"}`); r.Status != 200 {
				t.Fatalf("a tenant role is not decided by the edge (%d): functions/lambdalith/app.go must pass "+
					"Authorizer: cedarauthz.Must(cedarauthz.WithRoleSource(tenancyMod.Roles())) to rpc.NewServer (ADR 0009)", r.Status)
			}
			c.must(200, "/queries/list-messages", supportKey, `{"scopeId":"`+a.eu+`"}`)
			c.must(403, "/queries/list-channels", supportKey, `{"scopeId":"`+a.us+`"}`)
			c.must(403, "/commands/create-scope", supportKey, `{"parentScopeId":"`+a.eu+`","name":"x"}`)
			perms := strs(c.must(200, "/queries/get-permissions", supportKey, `{"scopeId":"`+a.de+`"}`).Body["actions"])
			if want := []string{"channels:get-channel", "channels:list-channels", "messaging:list-messages",
				"tenancy:get-permissions", "tenancy:list-actions", "tenancy:list-roles"}; !reflect.DeepEqual(perms, want) {
				t.Fatalf("get-permissions in de: %v, want %v", perms, want)
			}
			perms = strs(c.must(200, "/queries/get-permissions", supportKey, `{"scopeId":"`+a.us+`"}`).Body["actions"])
			if slices.Contains(perms, "channels:get-channel") {
				t.Fatalf("get-permissions in us: %v", perms)
			}
			for _, scope := range []string{b.root, b.eu, mutateID(a.eu), "scp_x", strings.ToLower(a.eu)} {
				c.must(404, "/queries/get-permissions", supportKey, `{"scopeId":"`+scope+`"}`)
			}
			// Granted at us too: now there as well (keys follow bindings).
			c.must(200, "/commands/grant-role", a.key, `{"serviceAccountId":"`+sva+`","role":"`+role+`","scopeId":"`+a.us+`"}`)
			c.must(200, "/queries/list-channels", supportKey, `{"scopeId":"`+a.us+`"}`)
			c.must(200, "/commands/revoke-role", a.key, `{"serviceAccountId":"`+sva+`","role":"`+role+`","scopeId":"`+a.us+`"}`)
			c.must(403, "/queries/list-channels", supportKey, `{"scopeId":"`+a.us+`"}`)

			// Another tenant's role id, a malformed one: 404; an unknown name: 400.
			for _, id := range []string{bRole, mutateID(role), "rol_x"} {
				c.must(404, "/commands/grant-role", a.key, `{"serviceAccountId":"`+sva+`","role":"`+id+`","scopeId":"`+a.eu+`"}`)
				c.must(404, "/commands/create-service-account", a.key, `{"scopeId":"`+a.eu+`","name":"x","role":"`+id+`"}`)
				c.must(404, "/commands/revoke-role", a.key, `{"serviceAccountId":"`+sva+`","role":"`+id+`","scopeId":"`+a.eu+`"}`)
			}
			c.must(400, "/commands/grant-role", a.key, `{"serviceAccountId":"`+sva+`","role":"owner","scopeId":"`+a.eu+`"}`)

			// Escalation: only roles the caller could exercise itself there.
			granter := str(c.must(200, "/commands/create-role", a.key,
				`{"name":"Granter","actions":["tenancy:grant-role","tenancy:create-service-account","channels:get-channel"]}`).Body["roleId"])
			_, granterKey := accountKey(t, c, a, a.eu, granter)
			c.must(403, "/commands/grant-role", granterKey, `{"serviceAccountId":"`+sva+`","role":"viewer","scopeId":"`+a.eu+`"}`)
			c.must(403, "/commands/grant-role", granterKey, `{"serviceAccountId":"`+sva+`","role":"`+role+`","scopeId":"`+a.de+`"}`)
			c.must(200, "/commands/grant-role", granterKey, `{"serviceAccountId":"`+sva+`","role":"`+granter+`","scopeId":"`+a.de+`"}`)
			c.must(403, "/commands/create-service-account", granterKey, `{"scopeId":"`+a.eu+`","name":"x","role":"admin"}`)
			c.must(200, "/commands/create-service-account", granterKey, `{"scopeId":"`+a.de+`","name":"x","role":"`+granter+`"}`)
			c.must(200, "/commands/grant-role", euAdminKey, `{"serviceAccountId":"`+sva+`","role":"admin","scopeId":"`+a.de+`"}`)
			c.must(403, "/commands/grant-role", euAdminKey, `{"serviceAccountId":"`+sva+`","role":"admin","scopeId":"`+a.root+`"}`)
		})
	}
}
