package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/lru"
)

// Access tokens (contract section 3; ADR 0010): JWTs signed with EdDSA
// (Ed25519), the signing key's id in the header's "kid", typ "at+jwt"
// (RFC 9068), issuer TokenIssuer, at most MaxTokenLifetime long. Claims:
//
//	iss "switchboard", sub the service account, tnt the tenant, sid the API
//	key the token was issued from (the session), jti the token id (tok_...),
//	iat, nbf, exp (unix seconds), roles [{"role","scopeId"}].
//
// This file is the one place that knows the format: the identity module
// signs with SignAccessToken, the Authenticator verifies with TokenVerifier.
const (
	TokenIssuer      = "switchboard"
	TokenType        = "at+jwt"
	TokenAlgorithm   = "EdDSA"
	MaxTokenLifetime = 60 * time.Minute
)

// Defaults of TokenVerifier.
const (
	// DefaultTokenLeeway is the clock skew allowed on exp, nbf and iat.
	DefaultTokenLeeway = 30 * time.Second
	// DefaultKeyRefresh is how long the verifier trusts the public keys it
	// read: a retired (or withdrawn) signing key stops verifying within it.
	DefaultKeyRefresh = 30 * time.Second
	// DefaultUnknownKeyFloor is the least time between two reads caused by
	// unknown kids: a flood of forged kids costs one read per floor.
	DefaultUnknownKeyFloor = 5 * time.Second
	// DefaultMaxStaleKeys is how long the verifier keeps verifying with the
	// keys it has while the store cannot be read; beyond it, it fails (503).
	DefaultMaxStaleKeys = 60 * time.Second
)

// AccessToken is the content of an access token, independent of its encoding.
type AccessToken struct {
	ID               string // tok_...: the jti
	TenantID         string
	ServiceAccountID string
	SessionID        string // the API key (key_...) the token was issued from
	Roles            []invocation.RoleBinding
	IssuedAt         time.Time
	ExpiresAt        time.Time
	KeyID            string // the signing key's id (kid); set by Verify
}

// PublicKey is a published signing key.
type PublicKey struct {
	ID  string // kid
	Key ed25519.PublicKey
}

// PublicKeySource reads the published signing keys (the identity module:
// one store read). TokenVerifier caches what it returns.
type PublicKeySource interface {
	PublicKeys(ctx context.Context) ([]PublicKey, error)
}

// tokenClaims is the JWT claim set.
type tokenClaims struct {
	jwt.RegisteredClaims
	TenantID  string                   `json:"tnt"`
	SessionID string                   `json:"sid"`
	Roles     []invocation.RoleBinding `json:"roles"`
}

// SignAccessToken encodes and signs t with the private key of signing key kid.
func SignAccessToken(t AccessToken, kid string, priv ed25519.PrivateKey) (string, error) {
	if lifetime := t.ExpiresAt.Sub(t.IssuedAt); lifetime <= 0 || lifetime > MaxTokenLifetime {
		return "", fmt.Errorf("sign access token: lifetime %v out of (0, %v]", lifetime, MaxTokenLifetime)
	}
	roles := t.Roles
	if roles == nil {
		roles = []invocation.RoleBinding{}
	}
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: TokenIssuer, Subject: t.ServiceAccountID, ID: t.ID,
			IssuedAt:  jwt.NewNumericDate(t.IssuedAt),
			NotBefore: jwt.NewNumericDate(t.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(t.ExpiresAt),
		},
		TenantID: t.TenantID, SessionID: t.SessionID, Roles: roles,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = kid
	tok.Header["typ"] = TokenType
	s, err := tok.SignedString(priv)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return s, nil
}

// LooksLikeJWT reports whether a credential has the shape of a compact JWS
// (three base64url parts, a JSON header): API keys ("sbk_") and generated
// operator keys ("sbo_") never do.
func LooksLikeJWT(s string) bool {
	if !strings.HasPrefix(s, "eyJ") || strings.Count(s, ".") != 2 || len(s) > 8192 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// TokenVerifier verifies access tokens without a store read on the hot
// path: it keeps the published keys in memory, reads them again when they
// are older than Refresh, and on an unknown kid at most once per
// UnknownKeyFloor. Safe for concurrent use.
type TokenVerifier struct {
	Keys            PublicKeySource
	Clock           clock.Clock   // default clock.System
	Refresh         time.Duration // default DefaultKeyRefresh
	UnknownKeyFloor time.Duration // default DefaultUnknownKeyFloor
	MaxStale        time.Duration // default DefaultMaxStaleKeys
	Leeway          time.Duration // default DefaultTokenLeeway
	MaxVerified     int           // default DefaultMaxVerified

	mu       sync.Mutex
	keys     map[string]ed25519.PublicKey
	loadedAt time.Time     // last successful read
	triedAt  time.Time     // last read attempt
	loading  chan struct{} // closed when the read in flight ends; nil: none

	// verified remembers tokens whose signature and claims checked out (by
	// their exact text): a token is presented again and again, and its
	// EdDSA check is most of a request's authentication cost. At most
	// MaxVerified; when full, the least recently used one goes.
	vmu      sync.Mutex
	verified *lru.Cache[string, AccessToken]
}

// DefaultMaxVerified bounds the verified-token cache (a token's text is
// ~600 bytes: some 10 MB at most).
const DefaultMaxVerified = 10000

// Verify checks a token: EdDSA only (any other alg, "none" included, is
// refused), typ, a published kid, the signature, iss, exp/nbf/iat with
// Leeway, a lifetime of at most MaxTokenLifetime and well-formed ids.
// Errors: ErrUnauthenticated for any bad token; the source's error when
// the keys cannot be read (and the cached ones are older than MaxStale).
//
// A token verified before is not checked again while it is unexpired (with
// Leeway) and its kid is still published (the key cache's rules: a key
// withdrawn stops its tokens within Refresh): the signature and the claims
// of a given text do not change.
func (v *TokenVerifier) Verify(ctx context.Context, raw string) (AccessToken, error) {
	leeway := v.Leeway
	if leeway <= 0 {
		leeway = DefaultTokenLeeway
	}
	v.vmu.Lock()
	var t AccessToken
	var hit bool
	if v.verified != nil {
		t, hit = v.verified.Get(raw)
	}
	v.vmu.Unlock()
	if hit {
		if !v.now().Before(t.ExpiresAt.Add(leeway)) {
			return AccessToken{}, ErrUnauthenticated
		}
		if _, err := v.key(ctx, t.KeyID); err != nil {
			if errors.Is(err, ErrUnauthenticated) {
				return AccessToken{}, ErrUnauthenticated
			}
			return AccessToken{}, fmt.Errorf("verify access token: %w", err)
		}
		return t, nil
	}
	t, err := v.verify(ctx, raw, leeway)
	if err != nil {
		return AccessToken{}, err
	}
	v.vmu.Lock()
	if v.verified == nil {
		n := v.MaxVerified
		if n <= 0 {
			n = DefaultMaxVerified
		}
		v.verified = lru.New[string, AccessToken](n)
	}
	v.verified.Put(raw, t)
	v.vmu.Unlock()
	return t, nil
}

// verify checks a token's signature and claims (see Verify).
func (v *TokenVerifier) verify(ctx context.Context, raw string, leeway time.Duration) (AccessToken, error) {
	var keyErr error
	var kid string
	keyFunc := func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, TokenType) {
			return nil, ErrUnauthenticated
		}
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, ErrUnauthenticated
		}
		k, err := v.key(ctx, kid)
		if err != nil {
			keyErr = err
			return nil, err
		}
		return k, nil
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{TokenAlgorithm}),
		jwt.WithLeeway(leeway),
		jwt.WithIssuer(TokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	)
	var c tokenClaims
	if _, err := p.ParseWithClaims(raw, &c, keyFunc); err != nil {
		if keyErr != nil && !errors.Is(keyErr, ErrUnauthenticated) {
			return AccessToken{}, fmt.Errorf("verify access token: %w", keyErr)
		}
		return AccessToken{}, ErrUnauthenticated
	}
	if c.IssuedAt == nil || c.ExpiresAt == nil || c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxTokenLifetime ||
		!ids.Valid(ids.Tenant, c.TenantID) || !ids.Valid(ids.ServiceAccount, c.Subject) ||
		!ids.Valid(ids.APIKey, c.SessionID) || !ids.Valid(ids.AccessToken, c.ID) {
		return AccessToken{}, ErrUnauthenticated
	}
	return AccessToken{
		ID: c.ID, TenantID: c.TenantID, ServiceAccountID: c.Subject, SessionID: c.SessionID,
		Roles: c.Roles, IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time, KeyID: kid,
	}, nil
}

// key returns the published key kid, reading the keys when the cache is
// older than Refresh, or when kid is unknown and the last read is older than
// UnknownKeyFloor.
func (v *TokenVerifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	k, known := v.keys[kid]
	stale := v.loadedAt.IsZero() || now.Sub(v.loadedAt) >= durationOr(v.Refresh, DefaultKeyRefresh)
	floorPassed := v.triedAt.IsZero() || now.Sub(v.triedAt) >= durationOr(v.UnknownKeyFloor, DefaultUnknownKeyFloor)
	switch {
	case (stale || !known) && floorPassed && v.loading == nil:
		// This call reads; the lock is not held meanwhile, so verifications
		// of known keys go on.
		v.triedAt = now
		keys, err := v.read(ctx)
		if err == nil {
			m := make(map[string]ed25519.PublicKey, len(keys))
			for _, pk := range keys {
				if len(pk.Key) == ed25519.PublicKeySize {
					m[pk.ID] = pk.Key
				}
			}
			v.keys, v.loadedAt = m, now
		} else if v.loadedAt.IsZero() || now.Sub(v.loadedAt) >= durationOr(v.MaxStale, DefaultMaxStaleKeys) {
			return nil, fmt.Errorf("read signing keys: %w", err)
		}
		k, known = v.keys[kid]
	case !known && v.loading != nil:
		// Another call is reading: an unknown key waits for its result.
		wait := v.loading
		v.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			v.mu.Lock()
			return nil, ctx.Err()
		}
		v.mu.Lock()
		k, known = v.keys[kid]
	case stale && now.Sub(v.loadedAt) >= durationOr(v.MaxStale, DefaultMaxStaleKeys):
		return nil, errors.New("read signing keys: the cached keys are too old and the last read failed")
	}
	if !known {
		return nil, ErrUnauthenticated
	}
	return k, nil
}

// read reads the published keys without holding v.mu (held on entry and on
// return), marking the read in flight for key's waiters. A panic of the
// source is an error: the lock and the waiters are released either way.
func (v *TokenVerifier) read(ctx context.Context) (keys []PublicKey, err error) {
	done := make(chan struct{})
	v.loading = done
	v.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			keys, err = nil, fmt.Errorf("read signing keys: panic: %v", p)
		}
		v.mu.Lock()
		v.loading = nil
		close(done)
	}()
	return v.Keys.PublicKeys(ctx)
}

// Forget drops the cached keys: the next verification reads them.
func (v *TokenVerifier) Forget() {
	v.mu.Lock()
	v.keys, v.loadedAt, v.triedAt = nil, time.Time{}, time.Time{}
	v.mu.Unlock()
	v.vmu.Lock()
	v.verified = nil
	v.vmu.Unlock()
}

func (v *TokenVerifier) now() time.Time {
	if v.Clock == nil {
		return time.Now()
	}
	return v.Clock.Now()
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// intersectRoles returns the bindings of token that the key record still
// holds: a binding revoked since the token was issued stops applying with
// the key cache's TTL; one granted since applies from the next token.
func intersectRoles(token, current []invocation.RoleBinding) []invocation.RoleBinding {
	out := make([]invocation.RoleBinding, 0, len(token))
	for _, b := range token {
		if slices.Contains(current, b) && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}
