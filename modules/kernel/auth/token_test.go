package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

const (
	kid1    = "sgk_01JD0000000000000000000G01"
	kid2    = "sgk_01JD0000000000000000000G02"
	tokID   = "tok_01JD0000000000000000000A01"
	tenant2 = "tnt_01JD0000000000000000000T02"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// keySource is a published key set that counts its reads.
type keySource struct {
	mu    sync.Mutex
	keys  []auth.PublicKey
	reads int
	err   error
}

func (s *keySource) PublicKeys(context.Context) ([]auth.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return append([]auth.PublicKey(nil), s.keys...), s.err
}

func (s *keySource) set(keys ...auth.PublicKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

type tokenFixture struct {
	clk  *clock.Fixed
	priv ed25519.PrivateKey
	src  *keySource
	v    *auth.TokenVerifier
	tok  auth.AccessToken
}

func newTokenFixture(t *testing.T) *tokenFixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFixed(t0)
	src := &keySource{keys: []auth.PublicKey{{ID: kid1, Key: pub}}}
	return &tokenFixture{
		clk: clk, priv: priv, src: src,
		v: &auth.TokenVerifier{Keys: src, Clock: clk},
		tok: auth.AccessToken{
			ID: tokID, TenantID: tenantID, ServiceAccountID: svaID, SessionID: keyID,
			Roles:    []invocation.RoleBinding{{Role: "admin", ScopeID: scopeID}},
			IssuedAt: t0, ExpiresAt: t0.Add(15 * time.Minute),
		},
	}
}

func (f *tokenFixture) sign(t *testing.T, tok auth.AccessToken) string {
	t.Helper()
	s, err := auth.SignAccessToken(tok, kid1, f.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccessTokenRoundTrip(t *testing.T) {
	f := newTokenFixture(t)
	raw := f.sign(t, f.tok)
	if !auth.LooksLikeJWT(raw) {
		t.Fatalf("%q does not look like a JWT", raw)
	}
	got, err := f.v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tokID || got.TenantID != tenantID || got.ServiceAccountID != svaID || got.SessionID != keyID ||
		got.KeyID != kid1 || !got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(15*time.Minute)) ||
		len(got.Roles) != 1 || got.Roles[0] != f.tok.Roles[0] {
		t.Fatalf("verified %+v", got)
	}
	// The header names the algorithm, the key and the type.
	head, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	for _, want := range []string{`"alg":"EdDSA"`, `"kid":"` + kid1 + `"`, `"typ":"at+jwt"`} {
		if !strings.Contains(string(head), want) {
			t.Errorf("header %s lacks %s", head, want)
		}
	}
	// A lifetime over 60 minutes is refused at signing.
	long := f.tok
	long.ExpiresAt = t0.Add(61 * time.Minute)
	if _, err := auth.SignAccessToken(long, kid1, f.priv); err == nil {
		t.Fatal("a 61-minute token was signed")
	}
}

func TestAccessTokenRefusals(t *testing.T) {
	f := newTokenFixture(t)
	ctx := context.Background()
	good := f.sign(t, f.tok)
	claims := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": "switchboard", "sub": svaID, "tnt": tenantID, "sid": keyID, "jti": tokID,
			"iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(15 * time.Minute).Unix(), "roles": []any{},
		}
		if mut != nil {
			mut(c)
		}
		return c
	}
	signWith := func(m jwt.SigningMethod, key any, c jwt.MapClaims, hdr map[string]any) string {
		tok := jwt.NewWithClaims(m, c)
		tok.Header["kid"], tok.Header["typ"] = kid1, "at+jwt"
		for k, v := range hdr {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pub := f.priv.Public().(ed25519.PublicKey)
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), tenantID, tenant2, 1))) + "." + parts[2]
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)

	cases := map[string]string{
		"alg none": signWith(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), nil),
		"alg HS256 with the public key as secret": signWith(jwt.SigningMethodHS256, []byte(pub), claims(nil), nil),
		"unknown kid":           signWith(jwt.SigningMethodEdDSA, f.priv, claims(nil), map[string]any{"kid": kid2}),
		"no kid":                signWith(jwt.SigningMethodEdDSA, f.priv, claims(nil), map[string]any{"kid": ""}),
		"another type":          signWith(jwt.SigningMethodEdDSA, f.priv, claims(nil), map[string]any{"typ": "JWT"}),
		"signed by another key": signWith(jwt.SigningMethodEdDSA, otherPriv, claims(nil), nil),
		"tampered claims":       tampered,
		"expired": signWith(jwt.SigningMethodEdDSA, f.priv, claims(func(c jwt.MapClaims) {
			c["iat"], c["nbf"], c["exp"] = t0.Add(-2*time.Hour).Unix(), t0.Add(-2*time.Hour).Unix(), t0.Add(-time.Hour-time.Minute).Unix()
		}), nil),
		"not yet valid": signWith(jwt.SigningMethodEdDSA, f.priv, claims(func(c jwt.MapClaims) {
			c["nbf"] = t0.Add(5 * time.Minute).Unix()
		}), nil),
		"issued in the future": signWith(jwt.SigningMethodEdDSA, f.priv, claims(func(c jwt.MapClaims) {
			c["iat"], c["nbf"], c["exp"] = t0.Add(5*time.Minute).Unix(), t0.Unix(), t0.Add(20*time.Minute).Unix()
		}), nil),
		"no exp":             signWith(jwt.SigningMethodEdDSA, f.priv, claims(func(c jwt.MapClaims) { delete(c, "exp") }), nil),
		"longer than 60 min": signWith(jwt.SigningMethodEdDSA, f.priv, claims(func(c jwt.MapClaims) { c["exp"] = t0.Add(2 * time.Hour).Unix() }), nil),
		"another issuer":     signWith(jwt.SigningMethodEdDSA, f.priv, claims(func(c jwt.MapClaims) { c["iss"] = "evil" }), nil),
		"malformed tenant":   signWith(jwt.SigningMethodEdDSA, f.priv, claims(func(c jwt.MapClaims) { c["tnt"] = "t1" }), nil),
		"session not a key":  signWith(jwt.SigningMethodEdDSA, f.priv, claims(func(c jwt.MapClaims) { c["sid"] = svaID }), nil),
		"garbage":            "eyJ.not.atoken",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if got, err := f.v.Verify(ctx, raw); !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("Verify = (%+v, %v), want ErrUnauthenticated", got, err)
			}
		})
	}
	// Within the leeway, an expired token still verifies; beyond, not.
	f.clk.Set(t0.Add(15*time.Minute + 20*time.Second))
	if _, err := f.v.Verify(ctx, good); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	f.clk.Set(t0.Add(15*time.Minute + time.Minute))
	if _, err := f.v.Verify(ctx, good); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("expired: %v", err)
	}
}

// Keys are read once per Refresh, and again on an unknown kid at most once
// per floor; a withdrawn key stops verifying within Refresh.
func TestTokenVerifierKeyCache(t *testing.T) {
	f := newTokenFixture(t)
	ctx := context.Background()
	raw := f.sign(t, f.tok)
	for range 100 {
		if _, err := f.v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	if f.src.reads != 1 {
		t.Fatalf("%d key reads for 100 verifications", f.src.reads)
	}
	// A flood of unknown kids: one read per floor.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := auth.SignAccessToken(f.tok, kid2, otherPriv)
	f.clk.Advance(auth.DefaultUnknownKeyFloor)
	for range 100 {
		if _, err := f.v.Verify(ctx, forged); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatal(err)
		}
	}
	if f.src.reads != 2 {
		t.Fatalf("%d key reads after 100 unknown kids, want 2", f.src.reads)
	}
	// The key is withdrawn: it verifies until the cache is Refresh old.
	f.src.set()
	f.clk.Set(t0.Add(auth.DefaultKeyRefresh - time.Second))
	if _, err := f.v.Verify(ctx, raw); err != nil {
		t.Fatalf("before the refresh: %v", err)
	}
	f.clk.Set(t0.Add(auth.DefaultUnknownKeyFloor + auth.DefaultKeyRefresh))
	if _, err := f.v.Verify(ctx, raw); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("a withdrawn key still verifies after the refresh: %v", err)
	}
	// The store down: cached keys serve until MaxStale, then 503 (not 401).
	f.src.set(auth.PublicKey{ID: kid1, Key: f.priv.Public().(ed25519.PublicKey)})
	f.v.Forget()
	if _, err := f.v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	f.src.err = errors.New("store down")
	f.clk.Advance(auth.DefaultKeyRefresh)
	if _, err := f.v.Verify(ctx, raw); err != nil {
		t.Fatalf("stale keys within MaxStale: %v", err)
	}
	f.clk.Advance(auth.DefaultMaxStaleKeys)
	if _, err := f.v.Verify(ctx, raw); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("store down beyond MaxStale: %v, want a store error", err)
	}
}

// The Authenticator tells tokens from API keys and the operator key, and
// checks the token's session (API key) through the key store: revoked, of
// another tenant or account: refused; its roles: those the key still holds.
func TestAuthenticatorAcceptsAccessTokens(t *testing.T) {
	f := newTokenFixture(t)
	ctx := context.Background()
	admin := invocation.RoleBinding{Role: "admin", ScopeID: scopeID}
	viewer := invocation.RoleBinding{Role: "viewer", ScopeID: scopeID}
	store := &countingKeys{recs: map[string]auth.APIKeyRecord{
		keyID: {KeyID: keyID, TenantID: tenantID, ServiceAccountID: svaID, SecretHash: auth.HashSecret("x"), Roles: []invocation.RoleBinding{admin, viewer}},
	}}
	a := &auth.Authenticator{OperatorKeyHash: auth.HashSecret("sbo_op"), Keys: store, Tokens: f.v}
	raw := f.sign(t, f.tok)
	p, err := a.Authenticate(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != invocation.KindServiceAccount || p.ID != svaID || p.TenantID != tenantID || p.CredentialID != keyID ||
		len(p.Roles) != 1 || p.Roles[0] != admin {
		t.Fatalf("principal %+v (roles: the token's, not the key's extra viewer)", p)
	}
	if p, err := a.Authenticate(ctx, "sbo_op"); err != nil || p.Kind != invocation.KindOperator {
		t.Fatalf("operator key: %+v %v", p, err)
	}

	// Another tenant's claims on this key (as if forged with a stolen signing key).
	other := f.tok
	other.TenantID = tenant2
	if _, err := a.Authenticate(ctx, f.sign(t, other)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("another tenant's token on this key: %v", err)
	}
	// A role revoked from the key no longer applies.
	store.mu.Lock()
	r := store.recs[keyID]
	r.Roles = []invocation.RoleBinding{viewer}
	store.recs[keyID] = r
	store.mu.Unlock()
	if p, err := a.Authenticate(ctx, raw); err != nil || len(p.Roles) != 0 {
		t.Fatalf("after revoke-role: %+v %v", p, err)
	}
	// The key revoked: refused.
	store.revoke(keyID)
	if _, err := a.Authenticate(ctx, raw); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("token of a revoked key: %v", err)
	}
	// Without a verifier, a JWT is not a credential.
	a.Tokens = nil
	if _, err := a.Authenticate(ctx, raw); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("no verifier: %v", err)
	}
}

// slowSource blocks every read until release is closed.
type slowSource struct {
	keySource
	entered chan struct{}
	release chan struct{}
}

func (s *slowSource) PublicKeys(ctx context.Context) ([]auth.PublicKey, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.keySource.PublicKeys(ctx)
}

// A key read in flight (a refresh) does not hold up verifications with a
// known key; a verification with an unknown key waits for that read instead
// of starting another.
func TestTokenVerifierReadsWithoutBlocking(t *testing.T) {
	f := newTokenFixture(t)
	ctx := context.Background()
	raw := f.sign(t, f.tok)
	if _, err := f.v.Verify(ctx, raw); err != nil { // loads the keys
		t.Fatal(err)
	}
	src := &slowSource{entered: make(chan struct{}, 4), release: make(chan struct{})}
	src.set(auth.PublicKey{ID: kid1, Key: f.priv.Public().(ed25519.PublicKey)})
	f.v.Keys = src
	f.clk.Advance(auth.DefaultKeyRefresh) // stale: the next verification reads

	refreshed := make(chan error)
	go func() { _, err := f.v.Verify(ctx, raw); refreshed <- err }()
	<-src.entered // the refresh is reading

	// Meanwhile a known key verifies at once.
	fast := make(chan error)
	go func() { _, err := f.v.Verify(ctx, raw); fast <- err }()
	select {
	case err := <-fast:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a verification with a known key waited for the key read")
	}
	// An unknown kid waits for the read in flight and starts none.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := auth.SignAccessToken(f.tok, kid2, otherPriv)
	unknown := make(chan error)
	go func() { _, err := f.v.Verify(ctx, forged); unknown <- err }()
	select {
	case err := <-unknown:
		t.Fatalf("an unknown kid did not wait for the read: %v", err)
	case <-src.entered:
		t.Fatal("an unknown kid started a second read")
	case <-time.After(100 * time.Millisecond):
	}
	close(src.release)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if err := <-unknown; !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("unknown kid: %v", err)
	}
	if src.reads != 1 {
		t.Fatalf("%d reads, want 1", src.reads)
	}
}

// A token verified once is served from memory: the same answer, no
// signature check; it still expires, and its key's withdrawal still stops it.
func TestTokenVerifierRemembersVerifiedTokens(t *testing.T) {
	f := newTokenFixture(t)
	ctx := context.Background()
	raw := f.sign(t, f.tok)
	first, err := f.v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.v.Verify(ctx, raw)
	if err != nil || again.ID != first.ID || again.KeyID != kid1 || again.SessionID != keyID || len(again.Roles) != 1 {
		t.Fatalf("again: %+v %v", again, err)
	}
	// A tampered copy is not the remembered text: checked, refused.
	i := len(raw) - 10 // a character inside the signature, changed for sure
	c := byte('A')
	if raw[i] == 'A' {
		c = 'B'
	}
	if _, err := f.v.Verify(ctx, raw[:i]+string(c)+raw[i+1:]); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("tampered: %v", err)
	}
	// Expiry (with the leeway).
	f.clk.Set(f.tok.ExpiresAt.Add(auth.DefaultTokenLeeway))
	if _, err := f.v.Verify(ctx, raw); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("expired remembered token: %v", err)
	}
	// Key withdrawal: a fresh token of the key, remembered, stops once the
	// key cache refreshed without it.
	f.clk.Set(t0)
	f.v.Forget()
	raw = f.sign(t, f.tok)
	if _, err := f.v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	f.src.set()
	f.clk.Advance(auth.DefaultKeyRefresh)
	if _, err := f.v.Verify(ctx, raw); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("token of a withdrawn key: %v", err)
	}
}

// panicSource panics on every read.
type panicSource struct{}

func (panicSource) PublicKeys(context.Context) ([]auth.PublicKey, error) { panic("boom") }

// A key source that panics fails the verification with an error; it does not
// take the process down (an unlock of an unlocked mutex is fatal) and the next
// verification still works (review finding).
func TestTokenVerifierSurvivesAPanickingSource(t *testing.T) {
	f := newTokenFixture(t)
	raw := f.sign(t, f.tok)
	f.v.Keys = panicSource{}
	if _, err := f.v.Verify(context.Background(), raw); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("panicking source: %v, want a read error", err)
	}
	f.v.Keys = f.src
	f.clk.Advance(auth.DefaultUnknownKeyFloor)
	if _, err := f.v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}

// The verified-token cache drops the least recently used token when it is
// full, not every token at once (which sent every client of a busy process
// back to a signature check at the same moment). Observed through a key
// replaced under the same kid: a remembered token passes without a
// signature check, a forgotten one fails it.
func TestTokenVerifierDropsTheLeastRecentlyUsedToken(t *testing.T) {
	f := newTokenFixture(t)
	f.v.MaxVerified = 2
	ctx := context.Background()
	signed := func(id string) string {
		tok := f.tok
		tok.ID = id
		return f.sign(t, tok)
	}
	a, b, c := signed(tokID), signed("tok_01JD0000000000000000000A02"), signed("tok_01JD0000000000000000000A03")
	for _, raw := range []string{a, b, a, c} { // a used again after b: b is the least recently used
		if _, err := f.v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.src.set(auth.PublicKey{ID: kid1, Key: other})
	f.clk.Advance(auth.DefaultKeyRefresh) // the key cache reads the replaced key
	for _, raw := range []string{a, c} {
		if _, err := f.v.Verify(ctx, raw); err != nil {
			t.Fatalf("a remembered token checked again: %v", err)
		}
	}
	if _, err := f.v.Verify(ctx, b); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("the least recently used token: %v, want it checked again (and refused)", err)
	}
}
