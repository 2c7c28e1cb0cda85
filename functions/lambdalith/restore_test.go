package main

import (
	"strings"
	"testing"
)

// TestRestoreTenantAdmin: a tenant that revoked its only admin's only key is
// locked out; the operator's restore-tenant-admin gives it a new root admin
// with a key that works, recorded in the tenant's history and the operator's
// audit log; nobody else may call it, and an unknown tenant is a 404.
func TestRestoreTenantAdmin(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": t.TempDir()})
			c := &client{t: t, h: app.Server}
			a := setupAccessTenant(t, c, "Acme")
			b := setupAccessTenant(t, c, "Globex")

			// Locked out: the only admin revokes its only key.
			c.must(200, "/commands/revoke-api-key", a.key, `{"apiKeyId":"`+a.keyID+`"}`)
			c.must(401, "/queries/get-tenant", a.key, `{}`)

			// Only the operator may restore; a tenant's key is refused.
			c.must(403, "/commands/restore-tenant-admin", b.key, `{"tenantId":"`+a.tenantID+`"}`)
			c.must(404, "/commands/restore-tenant-admin", accessOperatorKey, `{"tenantId":"`+mutateID(a.tenantID)+`"}`)
			c.must(404, "/commands/restore-tenant-admin", accessOperatorKey, `{"tenantId":"nope"}`)
			c.must(400, "/commands/restore-tenant-admin", accessOperatorKey, `{}`)
			r := c.must(200, "/commands/restore-tenant-admin", accessOperatorKey, `{"tenantId":"`+a.tenantID+`"}`)
			key := str(r.Body["apiKey"])
			if r.Body["tenantId"] != a.tenantID || !strings.HasPrefix(str(r.Body["serviceAccountId"]), "sva_") || !strings.HasPrefix(key, "sbk_") {
				t.Fatalf("restore: %s", r.Raw)
			}

			// The new admin acts at the root: reads the tenant, creates a scope.
			if tn := c.must(200, "/queries/get-tenant", key, `{}`); tn.Body["tenantId"] != a.tenantID {
				t.Fatalf("get-tenant with the restored key: %s", tn.Raw)
			}
			c.must(200, "/commands/create-scope", key, `{"parentScopeId":"`+a.root+`","name":"after"}`)
			// Another tenant is not touched.
			if tn := c.must(200, "/queries/get-tenant", b.key, `{}`); tn.Body["tenantId"] != b.tenantID {
				t.Fatalf("B: %s", tn.Raw)
			}
			// The operator's log records the restore.
			op := c.must(200, "/queries/list-operator-audit-log", accessOperatorKey, `{"limit":5}`)
			if !strings.Contains(op.Raw, `"endpoint":"restore-tenant-admin"`) {
				t.Fatalf("operator log: %s", op.Raw)
			}
		})
	}
}
