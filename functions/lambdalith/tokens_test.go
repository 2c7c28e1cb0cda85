package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-dev/switchboard/modules/identity"
	"github.com/switchboard-dev/switchboard/modules/identity/adapters"
	identityapp "github.com/switchboard-dev/switchboard/modules/identity/app"
	"github.com/switchboard-dev/switchboard/modules/identity/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// Access tokens (contract sections 3 and 6, ADR 0010) through the production
// wiring on both stores: issue-token with an API key, commands with the
// token, the JWKS verifying it independently of the server's code, the
// issue recorded as an event, the token refused once its API key is revoked
// (at once where revoked, within the key cache's TTL on another instance),
// and the rotation job publishing a new key while the previous one stays
// published until its tokens expired.
func TestAccessTokens(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) { accessTokens(t, store) })
	}
}

// jwksOf fetches the published keys: kid -> key; it checks the JWK form
// and the caching headers.
func jwksOf(t *testing.T, h http.Handler) map[string]ed25519.PublicKey {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	if w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=300" ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("jwks: %d %v %s", w.Code, w.Header(), w.Body)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if err != nil || len(x) != ed25519.PublicKeySize || k["kty"] != "OKP" || k["crv"] != "Ed25519" ||
			k["use"] != "sig" || k["alg"] != "EdDSA" || !ids.Valid(ids.SigningKey, k["kid"]) || len(k) != 6 {
			t.Fatalf("jwk %v", k)
		}
		out[k["kid"]] = x
	}
	return out
}

// verifyIndependently checks a token against the JWKS with plain
// crypto/ed25519 over the JWS signing input, and with an independent parse
// of the JWT library (not the server's verifier); it returns the claims.
func verifyIndependently(t *testing.T, token string, keys map[string]ed25519.PublicKey) (kid string, claims jwt.MapClaims) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", token)
	}
	var head map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(raw, &head); err != nil || head["alg"] != "EdDSA" || head["typ"] != "at+jwt" {
		t.Fatalf("header %s", raw)
	}
	kid, _ = head["kid"].(string)
	pub, ok := keys[kid]
	if !ok {
		t.Fatalf("kid %q not in the JWKS", kid)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("the signature does not verify with the published key")
	}
	claims = jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithoutClaimsValidation()); err != nil {
		t.Fatal(err)
	}
	return kid, claims
}

func accessTokens(t *testing.T, store string) {
	clk := clock.NewFixed(time.Now())
	env := map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": t.TempDir()}
	app := buildLogged(t, store, env, Deps{Clock: clk})
	c := &client{t: t, h: app.Server}
	ctx := context.Background()
	a := setupAccessTenant(t, c, "Acme")
	b := setupAccessTenant(t, c, "Globex")

	// A service account, admin in eu, with a key of its own.
	sva := str(c.must(200, "/commands/create-service-account", a.key, `{"scopeId":"`+a.eu+`","name":"ci","role":"admin"}`).Body["serviceAccountId"])
	key := str(c.must(200, "/commands/issue-api-key", a.key, `{"serviceAccountId":"`+sva+`"}`).Body["apiKey"])
	keyID, _, _ := auth.ParseAPIKey(key)

	// issue-token: no credential, a bad one, a body: refused.
	c.must(401, "/commands/issue-token", "", `{}`)
	c.must(401, "/commands/issue-token", "eyJhbGciOiJub25lIn0.e30.", `{}`)
	c.must(400, "/commands/issue-token", key, `{"ttl":60}`)
	c.must(403, "/commands/issue-token", accessOperatorKey, `{}`)
	r := c.must(200, "/commands/issue-token", key, `{}`)
	tok := str(r.Body["accessToken"])
	if r.Body["tokenType"] != "Bearer" || r.Body["expiresIn"] != float64(900) || len(r.Body) != 3 {
		t.Fatalf("issue-token answered %s", r.Raw)
	}

	// The JWKS verifies it, independently of the server's verifier.
	keys := jwksOf(t, app.Server)
	if len(keys) != 1 {
		t.Fatalf("%d published keys, want 1", len(keys))
	}
	kid, claims := verifyIndependently(t, tok, keys)
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if claims["sub"] != sva || claims["tnt"] != a.tenantID || claims["sid"] != keyID || claims["iss"] != "switchboard" ||
		!ids.Valid(ids.AccessToken, str(claims["jti"])) || exp.Sub(iat.Time) != 15*time.Minute ||
		!strings.Contains(jsonText(t, claims["roles"]), `{"role":"admin","scopeId":"`+a.eu+`"}`) {
		t.Fatalf("claims %v", claims)
	}

	// Commands with the token: as the account, with its bindings.
	c.must(200, "/commands/create-scope", tok, `{"parentScopeId":"`+a.eu+`","name":"by-token"}`)
	c.must(403, "/commands/create-scope", tok, `{"parentScopeId":"`+a.us+`","name":"by-token"}`)
	c.must(200, "/queries/list-channels", tok, `{"scopeId":"`+a.eu+`"}`)
	c.must(404, "/commands/create-scope", tok, `{"parentScopeId":"`+b.eu+`","name":"other-tenant"}`)
	c.must(403, "/commands/onboard-tenant", tok, `{"name":"X","tier":"pooled"}`)
	// A tampered token (another tenant in its claims) is refused.
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.ReplaceAll(string(payload), a.tenantID, b.tenantID))) + "." + parts[2]
	c.must(401, "/queries/list-channels", forged, `{"scopeId":"`+b.eu+`"}`)

	// The issue is an event of the tenant: who, when, which key, which
	// session; never the token.
	evs, err := app.Store.ReadStream(ctx, a.tenantID, adapters.TokenStream(str(claims["jti"])), 1, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("token events: %v %v", evs, err)
	}
	var issued domain.AccessTokenIssued
	if err := json.Unmarshal(evs[0].Data, &issued); err != nil {
		t.Fatal(err)
	}
	if evs[0].Type != domain.TypeAccessTokenIssued || issued.SigningKeyID != kid || issued.SessionID != keyID ||
		issued.ServiceAccountID != sva || !issued.IssuedAt.Equal(iat.Time) || evs[0].Invocation.Principal != "service_account:"+sva ||
		strings.Contains(string(evs[0].Data), parts[2]) {
		t.Fatalf("event %s %s %+v", evs[0].Type, evs[0].Data, evs[0].Invocation)
	}

	// A token exchanged for a token: the same session, never more roles.
	tok2 := str(c.must(200, "/commands/issue-token", tok, `{}`).Body["accessToken"])
	if _, cl := verifyIndependently(t, tok2, keys); cl["sid"] != keyID || cl["jti"] == claims["jti"] {
		t.Fatalf("exchanged token claims %v", cl)
	}

	// Revocation: another instance (DynamoDB: a Lambda instance on the same
	// table) still trusts its cached key record until the cache's TTL.
	var other *client
	if store == "dynamodb" {
		e := map[string]string{"SWITCHBOARD_OPERATOR_KEY": accessOperatorKey, "SWITCHBOARD_DATA_DIR": t.TempDir(), "SWITCHBOARD_TABLE": app.Config.Table}
		other = &client{t: t, h: buildOnTable(t, e, Deps{Clock: clk}).Server}
		other.must(200, "/queries/list-channels", tok, `{"scopeId":"`+a.eu+`"}`)
	}
	c.must(200, "/commands/revoke-api-key", a.key, `{"apiKeyId":"`+keyID+`"}`)
	c.must(401, "/queries/list-channels", tok, `{"scopeId":"`+a.eu+`"}`) // at once where revoked
	c.must(401, "/queries/list-channels", tok2, `{"scopeId":"`+a.eu+`"}`)
	c.must(401, "/commands/issue-token", tok, `{}`)
	if other != nil {
		other.must(200, "/queries/list-channels", tok, `{"scopeId":"`+a.eu+`"}`)
		clk.Advance(auth.DefaultKeyCacheTTL)
		other.must(401, "/queries/list-channels", tok, `{"scopeId":"`+a.eu+`"}`)
	}

	// Rotation: nothing to do before the period; after it, a new key is
	// published at once, signs after PublishLead, and the previous key
	// stays published until every token it signed has expired.
	if err := app.Jobs.Run(ctx, identity.RotationJob); err != nil {
		t.Fatal(err)
	}
	if n := len(jwksOf(t, app.Server)); n != 1 {
		t.Fatalf("the job rotated before the period: %d keys", n)
	}
	clk.Advance(24 * time.Hour)
	if err := app.Jobs.Run(ctx, identity.RotationJob); err != nil {
		t.Fatal(err)
	}
	keys = jwksOf(t, app.Server)
	if len(keys) != 2 {
		t.Fatalf("%d published keys after the rotation, want 2", len(keys))
	}
	var newKid string
	for k := range keys {
		if k != kid {
			newKid = k
		}
	}
	old := str(c.must(200, "/commands/issue-token", a.key, `{}`).Body["accessToken"])
	if k, _ := verifyIndependently(t, old, keys); k != kid {
		t.Fatalf("a token signed by %s before the new key was published for %v", k, domain.PublishLead)
	}
	clk.Advance(domain.PublishLead + identityapp.KeyRingRefresh)
	fresh := str(c.must(200, "/commands/issue-token", a.key, `{}`).Body["accessToken"])
	if k, _ := verifyIndependently(t, fresh, keys); k != newKid {
		t.Fatalf("a token signed by %s, want the new key %s", k, newKid)
	}
	c.must(200, "/queries/list-scopes", fresh, `{}`)
	// The last token of the old key: verifies while it lives (the old key is
	// still published: the job retires nothing yet).
	c.must(200, "/queries/list-scopes", old, `{}`)
	if err := app.Jobs.Run(ctx, identity.RotationJob); err != nil {
		t.Fatal(err)
	}
	if len(jwksOf(t, app.Server)) != 2 {
		t.Fatal("the previous key was retired while its tokens live")
	}
	clk.Advance(domain.MaxTokenLifetime + domain.RetireMargin)
	if err := app.Jobs.Run(ctx, identity.RotationJob); err != nil {
		t.Fatal(err)
	}
	keys = jwksOf(t, app.Server)
	if _, ok := keys[newKid]; !ok || len(keys) != 1 {
		t.Fatalf("after the old key's tokens expired: %v", keys)
	}
	if !slices.Contains(app.Jobs.Names(), "signing-key-rotation") {
		t.Fatal("the rotation job is not registered under the name the EventBridge rule uses")
	}
}

// signingKeySeeds opens the private halves (seeds) of the published signing
// keys, for the scan of the store: they must be nowhere in clear.
func signingKeySeeds(t *testing.T, app *App) [][]byte {
	t.Helper()
	set, err := adapters.NewRepository(app.Store, ids.NewULIDs(), clock.System{}).KeySet(context.Background())
	if err != nil || len(set.Keys) == 0 {
		t.Fatalf("key set: %v, %d keys", err, len(set.Keys))
	}
	var out [][]byte
	for _, k := range set.Keys {
		seed, err := app.Sealer.Open(context.Background(), adapters.PlatformNamespace, identityapp.PurposeSigningKey, k.SealedPrivateKey)
		if err != nil || len(seed) != ed25519.SeedSize {
			t.Fatalf("open signing key %s: %v", k.KeyID, err)
		}
		out = append(out, seed, ed25519.NewKeyFromSeed(seed))
	}
	return out
}
