package rpc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// memPublicKeys publishes one signing key from memory.
type memPublicKeys []auth.PublicKey

func (m memPublicKeys) PublicKeys(context.Context) ([]auth.PublicKey, error) { return m, nil }

// BenchmarkRequestOverhead: the edge's cost of one query that does nothing
// (routing, invocation context, authentication, one Cedar decision, decoding,
// the audit hook, the response), per credential: an API key (a hash compare,
// the key cached) and an access token (no store read). Issue 7's target: at
// most 100 µs with token verification.
func BenchmarkRequestOverhead(b *testing.B) {
	gen := ids.NewULIDs()
	keyID, secret := gen.New(ids.APIKey), auth.NewSecret()
	tenant, root, sva := gen.New(ids.Tenant), gen.New(ids.Scope), gen.New(ids.ServiceAccount)
	roles := []invocation.RoleBinding{{Role: "viewer", ScopeID: root}}
	keys := memKeys{auth.APIKeyRecord{KeyID: keyID, TenantID: tenant, ServiceAccountID: sva, SecretHash: auth.HashSecret(secret), Roles: roles}}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	kid := gen.New(ids.SigningKey)
	now := time.Now()
	token, err := auth.SignAccessToken(auth.AccessToken{ID: gen.New(ids.AccessToken), TenantID: tenant, ServiceAccountID: sva, SessionID: keyID,
		Roles: roles, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, kid, priv)
	if err != nil {
		b.Fatal(err)
	}
	verifier := &auth.TokenVerifier{Keys: memPublicKeys{{ID: kid, Key: pub}}}
	srv := rpc.NewServer(rpc.Config{Auth: &auth.Authenticator{Keys: keys, Tokens: verifier}, Store: nopStore{}})
	type in struct{}
	srv.Register(rpc.Query("get-tenant", "tenancy:get-tenant", func(ctx context.Context, _ in) (map[string]string, error) {
		if err := authz.Require(ctx, authz.Tenant(tenant, root)); err != nil {
			return nil, err
		}
		return map[string]string{"tenantId": tenant}, nil
	}))
	// "token" is a token presented again (the verifier remembers it);
	// "token-first-use" forgets it before each call, so every call checks
	// the EdDSA signature.
	for _, c := range []struct {
		name, cred string
		forget     bool
	}{
		{"api-key", auth.FormatAPIKey(keyID, secret), false},
		{"token", token, false},
		{"token-first-use", token, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c.forget {
					verifier.Forget()
				}
				req := httptest.NewRequest("POST", "/queries/get-tenant", strings.NewReader(`{}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+c.cred)
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
