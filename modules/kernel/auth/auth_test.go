package auth_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

const (
	keyID    = "key_01JD0000000000000000000K01"
	tenantID = "tnt_01JD0000000000000000000T01"
	svaID    = "sva_01JD0000000000000000000S01"
	scopeID  = "scp_01JD0000000000000000000R01"
)

func TestParseAPIKey(t *testing.T) {
	tests := []struct {
		name       string
		cred       string
		wantID     string
		wantSecret string
		wantOK     bool
	}{
		{"valid", "sbk_" + keyID + "_s3cret", keyID, "s3cret", true},
		{"secret containing underscores", "sbk_" + keyID + "_a_b__c_", keyID, "a_b__c_", true},
		{"one-char secret", "sbk_" + keyID + "_x", keyID, "x", true},
		{"wrong prefix", "sbx_" + keyID + "_s3cret", "", "", false},
		{"prefix case matters", "SBK_" + keyID + "_s3cret", "", "", false},
		{"no prefix", keyID + "_s3cret", "", "", false},
		{"empty", "", "", "", false},
		{"prefix only", "sbk_", "", "", false},
		{"empty secret", "sbk_" + keyID + "_", "", "", false},
		{"no separator after key id", "sbk_" + keyID + "s3cret", "", "", false},
		{"key id of another type", "sbk_tnt_01JD0000000000000000000K01_s3cret", "", "", false},
		{"key id too short", "sbk_key_01JD000000000000000000K01_s3cret", "", "", false},
		{"key id not a ulid", "sbk_key_01JD0000000000000000000KUU_s3cret", "", "", false},
		{"key id lower case", "sbk_" + strings.ToLower(keyID) + "_s3cret", "", "", false},
		{"key id overflows ulid", "sbk_key_81JD0000000000000000000K01_s3cret", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, secret, ok := auth.ParseAPIKey(tt.cred)
			if ok != tt.wantOK || id != tt.wantID || secret != tt.wantSecret {
				t.Fatalf("ParseAPIKey(%q) = (%q, %q, %v), want (%q, %q, %v)", tt.cred, id, secret, ok, tt.wantID, tt.wantSecret, tt.wantOK)
			}
		})
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	gen := ids.NewULIDs()
	for i := 0; i < 200; i++ {
		id, secret := gen.New(ids.APIKey), auth.NewSecret()
		cred := auth.FormatAPIKey(id, secret)
		if !strings.HasPrefix(cred, auth.APIKeyPrefix) {
			t.Fatalf("FormatAPIKey = %q, want prefix %q", cred, auth.APIKeyPrefix)
		}
		gotID, gotSecret, ok := auth.ParseAPIKey(cred)
		if !ok || gotID != id || gotSecret != secret {
			t.Fatalf("ParseAPIKey(FormatAPIKey(%q, %q)) = (%q, %q, %v)", id, secret, gotID, gotSecret, ok)
		}
	}
}

func TestHashSecretAndEqualHash(t *testing.T) {
	h := auth.HashSecret("s3cret")
	if len(h) != 64 || strings.ToLower(h) != h {
		t.Fatalf("HashSecret = %q, want 64 lowercase hex chars", h)
	}
	if auth.HashSecret("s3cret") != h {
		t.Fatal("HashSecret is not deterministic")
	}
	if strings.Contains(h, "s3cret") {
		t.Fatal("hash contains the secret")
	}
	if !auth.EqualHash("s3cret", h) {
		t.Fatal("EqualHash(secret, its hash) = false")
	}
	if !auth.EqualHash("s3cret", strings.ToUpper(h)) {
		t.Fatal("EqualHash must accept an upper-case hex hash of the same bytes")
	}
	for _, tt := range []struct{ name, secret, stored string }{
		{"other secret", "s3creT", h},
		{"empty secret", "", h},
		{"empty stored hash", "s3cret", ""},
		{"not hex", "s3cret", strings.Repeat("zz", 32)},
		{"truncated hash", "s3cret", h[:62]},
		{"hash too long", "s3cret", h + "00"},
		{"odd length", "s3cret", h[:63]},
		{"the secret itself as stored hash", "s3cret", "s3cret"},
	} {
		if auth.EqualHash(tt.secret, tt.stored) {
			t.Errorf("%s: EqualHash(%q, %q) = true, want false", tt.name, tt.secret, tt.stored)
		}
	}
}

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s := auth.NewSecret()
		if len(s) != 43 {
			t.Fatalf("len(NewSecret()) = %d, want 43: %q", len(s), s)
		}
		if strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("NewSecret() = %q, not base64url without padding", s)
		}
		if seen[s] {
			t.Fatalf("NewSecret() repeated %q", s)
		}
		seen[s] = true
	}
}

// keyStore is an in-memory APIKeyResolver.
type keyStore struct {
	mu    sync.Mutex
	recs  map[string]auth.APIKeyRecord
	err   error
	calls []string
}

func (k *keyStore) ResolveAPIKey(_ context.Context, id string) (auth.APIKeyRecord, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, id)
	if k.err != nil {
		return auth.APIKeyRecord{}, k.err
	}
	rec, ok := k.recs[id]
	if !ok {
		return auth.APIKeyRecord{}, auth.ErrUnauthenticated
	}
	return rec, nil
}

type fixture struct {
	keys     *keyStore
	a        *auth.Authenticator
	apiKey   string // a valid credential of keyID
	secret   string
	operator string
	roles    []invocation.RoleBinding
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{secret: auth.NewSecret(), operator: "op-" + auth.NewSecret()}
	f.roles = []invocation.RoleBinding{{Role: "admin", ScopeID: scopeID}, {Role: "viewer", ScopeID: scopeID}}
	f.keys = &keyStore{recs: map[string]auth.APIKeyRecord{keyID: {
		KeyID: keyID, TenantID: tenantID, ServiceAccountID: svaID,
		SecretHash: auth.HashSecret(f.secret), Roles: f.roles,
	}}}
	f.apiKey = auth.FormatAPIKey(keyID, f.secret)
	f.a = &auth.Authenticator{OperatorKeyHash: auth.HashSecret(f.operator), Keys: f.keys}
	return f
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAuthenticateAPIKey(t *testing.T) {
	f := newFixture(t)
	p, err := f.a.Authenticate(ctxT(t), f.apiKey)
	if err != nil {
		t.Fatalf("Authenticate(valid API key): %v", err)
	}
	want := invocation.Principal{
		Kind: invocation.KindServiceAccount, ID: svaID, TenantID: tenantID,
		CredentialID: keyID, Roles: f.roles,
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("principal = %+v, want %+v", p, want)
	}
	if got := p.String(); got != "service_account:"+svaID {
		t.Fatalf("principal.String() = %q", got)
	}
	if len(f.keys.calls) != 1 || f.keys.calls[0] != keyID {
		t.Fatalf("resolver calls = %v, want one for %s", f.keys.calls, keyID)
	}
}

func TestAuthenticateRejectsBadAPIKeys(t *testing.T) {
	f := newFixture(t)
	const otherID = "key_01JD0000000000000000000K02"
	// A record whose stored id does not match the id it was found under
	// (a resolver bug) must not authenticate.
	f.keys.recs[otherID] = auth.APIKeyRecord{KeyID: keyID, TenantID: tenantID, ServiceAccountID: svaID, SecretHash: auth.HashSecret(f.secret)}
	revokedSecret := auth.NewSecret()
	const revokedID = "key_01JD0000000000000000000K03"
	f.keys.recs[revokedID] = auth.APIKeyRecord{KeyID: revokedID, TenantID: tenantID, ServiceAccountID: svaID, SecretHash: auth.HashSecret(revokedSecret), Revoked: true}

	// failedKey is the real key a failure names (the audit log of its
	// tenant records it); "" for a credential that names none.
	for _, tt := range []struct{ name, cred, failedKey string }{
		{"empty credential", "", ""},
		{"wrong secret", auth.FormatAPIKey(keyID, auth.NewSecret()), keyID},
		{"secret with a suffix", f.apiKey + "x", keyID},
		{"secret truncated", f.apiKey[:len(f.apiKey)-1], keyID},
		{"revoked key", auth.FormatAPIKey(revokedID, revokedSecret), revokedID},
		{"unknown key id", auth.FormatAPIKey("key_01JD0000000000000000000K99", f.secret), ""},
		{"record of another id", auth.FormatAPIKey(otherID, f.secret), ""},
		{"hash instead of secret", auth.FormatAPIKey(keyID, auth.HashSecret(f.secret)), keyID},
		{"malformed key", "sbk_garbage", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.a.Authenticate(ctxT(t), tt.cred)
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("Authenticate = (%+v, %v), want ErrUnauthenticated", p, err)
			}
			var fail *auth.Failure
			switch {
			case tt.failedKey == "" && errors.As(err, &fail):
				t.Fatalf("failure %+v names a key", fail)
			case tt.failedKey != "" && (!errors.As(err, &fail) || fail.CredentialID != tt.failedKey || fail.TenantID != tenantID):
				t.Fatalf("failure %v, want one naming %s of %s", err, tt.failedKey, tenantID)
			}
			if !reflect.DeepEqual(p, invocation.Principal{}) {
				t.Fatalf("principal on failure = %+v, want zero", p)
			}
			if strings.Contains(err.Error(), f.secret) || strings.Contains(err.Error(), revokedSecret) {
				t.Fatalf("error %q leaks a secret", err)
			}
		})
	}
}

func TestAuthenticateOperator(t *testing.T) {
	f := newFixture(t)
	p, err := f.a.Authenticate(ctxT(t), f.operator)
	if err != nil {
		t.Fatalf("Authenticate(operator key): %v", err)
	}
	if p.Kind != invocation.KindOperator || p.TenantID != "" || p.String() != "operator" {
		t.Fatalf("operator principal = %+v (%s)", p, p)
	}
	for _, cred := range []string{f.operator + "x", f.operator[:len(f.operator)-1], "operator", auth.HashSecret(f.operator)} {
		if _, err := f.a.Authenticate(ctxT(t), cred); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) err = %v, want ErrUnauthenticated", cred, err)
		}
	}
	if len(f.keys.calls) != 0 {
		t.Fatalf("the key store was read for operator credentials: %v", f.keys.calls)
	}
}

func TestAuthenticateOperatorNotConfigured(t *testing.T) {
	f := newFixture(t)
	f.a.OperatorKeyHash = ""
	if _, err := f.a.Authenticate(ctxT(t), f.operator); !errors.Is(err, auth.ErrNotConfigured) {
		t.Fatalf("operator key with none configured: err = %v, want ErrNotConfigured", err)
	}
	// API keys keep working and failing as before without an operator key.
	if p, err := f.a.Authenticate(ctxT(t), f.apiKey); err != nil || p.ID != svaID {
		t.Fatalf("API key without operator key = (%+v, %v)", p, err)
	}
	if _, err := f.a.Authenticate(ctxT(t), auth.FormatAPIKey(keyID, "wrong")); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("bad API key without operator key: err = %v, want ErrUnauthenticated", err)
	}
	if _, err := f.a.Authenticate(ctxT(t), ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("empty credential: err = %v, want ErrUnauthenticated", err)
	}
}

func TestAPIKeyIsNeverTakenForTheOperatorKey(t *testing.T) {
	f := newFixture(t)
	// An operator key configured (by mistake) to a string shaped like an API
	// key must not make that string an operator credential.
	unknown := auth.FormatAPIKey("key_01JD0000000000000000000K99", auth.NewSecret())
	f.a.OperatorKeyHash = auth.HashSecret(unknown)
	p, err := f.a.Authenticate(ctxT(t), unknown)
	if !errors.Is(err, auth.ErrUnauthenticated) || p.Kind == invocation.KindOperator {
		t.Fatalf("API-key-shaped operator key = (%+v, %v), want ErrUnauthenticated", p, err)
	}
	f.a.OperatorKeyHash = auth.HashSecret(f.apiKey)
	p, err = f.a.Authenticate(ctxT(t), f.apiKey)
	if err != nil || p.Kind != invocation.KindServiceAccount {
		t.Fatalf("valid API key equal to the operator key = (%+v, %v), want the service account", p, err)
	}
	// Without a key store an API key is unauthenticated, not an operator key.
	f.a.Keys = nil
	if p, err := f.a.Authenticate(ctxT(t), f.apiKey); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("API key without a key store = (%+v, %v), want ErrUnauthenticated", p, err)
	}
}

func TestAuthenticatePropagatesResolverErrors(t *testing.T) {
	f := newFixture(t)
	storeDown := errors.New("store down")
	f.keys.err = storeDown
	p, err := f.a.Authenticate(ctxT(t), f.apiKey)
	if !errors.Is(err, storeDown) {
		t.Fatalf("Authenticate with failing resolver = (%+v, %v), want the store error", p, err)
	}
	if errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatal("a store failure must not read as a bad credential")
	}
	if strings.Contains(err.Error(), f.secret) {
		t.Fatalf("error %q leaks the secret", err)
	}
}
