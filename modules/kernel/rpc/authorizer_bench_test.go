package rpc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// BenchmarkRequestPathAuthorizer: BenchmarkRequestPath's command with each
// authorizer, side by side in one run: "roles" is authz.Roles (the rules the
// Cedar authorizer replaced), "cedar" the default. The channel lies three
// scopes below the root, where the key is sender, and the key is also viewer
// at the root: the decision walks the path and evaluates two roles.
func BenchmarkRequestPathAuthorizer(b *testing.B) {
	for _, c := range []struct {
		name string
		a    authz.Authorizer
	}{{"roles", authz.Roles{}}, {"cedar", nil}} {
		b.Run(c.name, func(b *testing.B) {
			gen := ids.NewULIDs()
			keyID, secret := gen.New(ids.APIKey), auth.NewSecret()
			tenant := gen.New(ids.Tenant)
			path := []string{gen.New(ids.Scope), gen.New(ids.Scope), gen.New(ids.Scope), gen.New(ids.Scope)}
			keys := memKeys{auth.APIKeyRecord{KeyID: keyID, TenantID: tenant, ServiceAccountID: gen.New(ids.ServiceAccount),
				SecretHash: auth.HashSecret(secret), Roles: []invocation.RoleBinding{{Role: "viewer", ScopeID: path[0]}, {Role: "sender", ScopeID: path[1]}}}}
			srv := rpc.NewServer(rpc.Config{Auth: &auth.Authenticator{Keys: keys}, Store: nopStore{}, Authorizer: c.a})
			srv.Register(rpc.Command("send-message", "messaging:send-message", func(ctx context.Context, in sendIn) (map[string]string, error) {
				if err := authz.Require(ctx, authz.Resource{Type: authz.ResourceChannel, ID: in.ChannelID, ScopePath: path}); err != nil {
					return nil, err
				}
				err := eventstore.Write(ctx, nopStore{}, &eventstore.Commit{TenantID: invocation.From(ctx).TenantID()})
				return map[string]string{"messageId": gen.New(ids.Message), "status": "queued"}, err
			}, rpc.WithStatus(http.StatusAccepted)))
			body := `{"channelId":"` + gen.New(ids.Channel) + `","to":"+4915112345678","text":"Your code is 123456","metadata":{"order":"42"}}`
			cred := "Bearer " + auth.FormatAPIKey(keyID, secret)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/commands/send-message", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", cred)
				req.Header.Set("Idempotency-Key", "bench-key")
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
