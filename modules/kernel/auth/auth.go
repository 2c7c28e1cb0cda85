// Package auth turns bearer credentials into principals.
//
// Credentials (contract section 3):
//   - the operator key, compared in constant time with its SHA-256;
//   - API keys "sbk_<keyId>_<secret>": only SHA-256(secret) is stored; the key
//     id finds the stored record in one read, the secret is compared in
//     constant time. Secrets are 256 random bits, so a fast hash is safe (as
//     for GitHub or Stripe tokens); a slow KDF would only add latency.
//   - access tokens (EdDSA JWTs, see token.go) from issue-token: verified
//     with the published keys kept in memory (TokenVerifier) and checked
//     against the API key they were issued from, through the key cache: no
//     store read per request, and a revoked key's tokens stop working within
//     the cache's TTL (ADR 0010).
//
// Secrets never appear in logs or errors.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// APIKeyPrefix starts every API key.
const APIKeyPrefix = "sbk_"

// ErrUnauthenticated is the one answer to any bad credential: callers never
// learn which part was wrong.
var ErrUnauthenticated = errors.New("auth: unauthenticated")

// Failure is ErrUnauthenticated for a credential that names a real key of a
// tenant (a wrong secret, a revoked key, a token of a revoked session): the
// audit log of that tenant records the attempt. The caller's answer is the
// same 401 as for any bad credential.
type Failure struct {
	TenantID     string
	CredentialID string // the API key id (a token's session)
}

func (f *Failure) Error() string { return ErrUnauthenticated.Error() }

// Unwrap makes errors.Is(f, ErrUnauthenticated) true.
func (f *Failure) Unwrap() error { return ErrUnauthenticated }

// ErrNotConfigured is returned when the operator key is not configured.
var ErrNotConfigured = errors.New("auth: operator key not configured")

// NewSecret returns 32 random bytes, base64url without padding (43 chars).
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("auth: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret returns the hex SHA-256 of a secret, the only form that is stored.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// EqualHash compares a secret with a stored hex hash in constant time.
func EqualHash(secret, storedHash string) bool {
	want, err := hex.DecodeString(storedHash)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// FormatAPIKey builds the credential shown once to the caller.
func FormatAPIKey(keyID, secret string) string { return APIKeyPrefix + keyID + "_" + secret }

// ParseAPIKey splits "sbk_key_<ULID>_<secret>" into key id and secret.
func ParseAPIKey(cred string) (keyID, secret string, ok bool) {
	rest, ok := strings.CutPrefix(cred, APIKeyPrefix)
	if !ok {
		return "", "", false
	}
	// key id is "key_" + 26-char ULID; the secret follows the next "_".
	const idLen = len(ids.APIKey) + 1 + 26
	if len(rest) < idLen+2 || rest[idLen] != '_' {
		return "", "", false
	}
	keyID, secret = rest[:idLen], rest[idLen+1:]
	if !ids.Valid(ids.APIKey, keyID) || secret == "" {
		return "", "", false
	}
	return keyID, secret, true
}

// APIKeyRecord is what the key store knows of an API key.
type APIKeyRecord struct {
	KeyID            string                   `json:"apiKeyId"`
	TenantID         string                   `json:"tenantId"`
	ServiceAccountID string                   `json:"serviceAccountId"`
	SecretHash       string                   `json:"secretHash"`
	Roles            []invocation.RoleBinding `json:"roles"`
	Revoked          bool                     `json:"revoked"`
}

// APIKeyResolver finds API keys by id. Implemented by the tenancy module, which
// owns service accounts and keys. Returns ErrUnauthenticated for unknown ids.
type APIKeyResolver interface {
	ResolveAPIKey(ctx context.Context, keyID string) (APIKeyRecord, error)
}

// KeyChangeSource is implemented by an APIKeyResolver whose owner changes key
// records in this process (issues and revokes keys, changes the role
// bindings they carry): after each commit that wrote key records it hands
// them, as written, to its subscribers. CachedResolver subscribes to the
// resolver it wraps, so the instance that made a change serves the new
// records at once.
type KeyChangeSource interface {
	// SubscribeKeyChanges registers f; f must not block.
	SubscribeKeyChanges(f func(recs []APIKeyRecord))
}

// UsageRecorder is implemented by an APIKeyResolver that keeps when keys were
// last used. The Authenticator calls it after a key authenticated a call.
// Implementations must be cheap on the request path (write at most once per
// key per period, never per request) and never fail the call.
type UsageRecorder interface {
	RecordAPIKeyUse(ctx context.Context, rec APIKeyRecord)
}

// Authenticator turns a bearer credential into a principal.
type Authenticator struct {
	// OperatorKeyHash is the hex SHA-256 of the operator key; empty: not configured.
	OperatorKeyHash string
	Keys            APIKeyResolver
	// Tokens verifies access tokens; nil: tokens are not accepted.
	Tokens *TokenVerifier
}

// Authenticate checks a bearer credential. Errors: ErrUnauthenticated,
// ErrNotConfigured (operator key unset and nothing else matched), or a store error.
func (a *Authenticator) Authenticate(ctx context.Context, credential string) (invocation.Principal, error) {
	if credential == "" {
		return invocation.Principal{}, ErrUnauthenticated
	}
	if keyID, secret, ok := ParseAPIKey(credential); ok {
		if a.Keys == nil {
			return invocation.Principal{}, ErrUnauthenticated
		}
		rec, err := a.Keys.ResolveAPIKey(ctx, keyID)
		if err != nil {
			return invocation.Principal{}, err
		}
		if rec.KeyID != keyID {
			return invocation.Principal{}, ErrUnauthenticated
		}
		if !EqualHash(secret, rec.SecretHash) || rec.Revoked {
			return invocation.Principal{}, &Failure{TenantID: rec.TenantID, CredentialID: keyID}
		}
		if u, ok := a.Keys.(UsageRecorder); ok {
			u.RecordAPIKeyUse(ctx, rec)
		}
		return invocation.Principal{
			Kind: invocation.KindServiceAccount, ID: rec.ServiceAccountID,
			TenantID: rec.TenantID, CredentialID: keyID, Roles: rec.Roles,
		}, nil
	}
	operator := a.OperatorKeyHash != "" && EqualHash(credential, a.OperatorKeyHash)
	if !operator && a.Tokens != nil && LooksLikeJWT(credential) {
		return a.authenticateToken(ctx, credential)
	}
	if a.OperatorKeyHash == "" {
		return invocation.Principal{}, ErrNotConfigured
	}
	if operator {
		return invocation.Principal{Kind: invocation.KindOperator, ID: string(invocation.KindOperator)}, nil
	}
	return invocation.Principal{}, ErrUnauthenticated
}

// authenticateToken verifies an access token and checks that the API key it
// was issued from (its session) still stands, through Keys (the instance's
// key cache: no store read per request). The principal is the token's
// service account with the token's role bindings that the key still
// carries: a binding revoked since the token was issued no longer applies,
// one granted since applies from the next token.
func (a *Authenticator) authenticateToken(ctx context.Context, credential string) (invocation.Principal, error) {
	t, err := a.Tokens.Verify(ctx, credential)
	if err != nil {
		return invocation.Principal{}, err
	}
	if a.Keys == nil {
		return invocation.Principal{}, ErrUnauthenticated
	}
	rec, err := a.Keys.ResolveAPIKey(ctx, t.SessionID)
	if err != nil {
		return invocation.Principal{}, err
	}
	if rec.KeyID != t.SessionID || rec.TenantID != t.TenantID || rec.ServiceAccountID != t.ServiceAccountID {
		return invocation.Principal{}, ErrUnauthenticated
	}
	if rec.Revoked {
		return invocation.Principal{}, &Failure{TenantID: rec.TenantID, CredentialID: t.SessionID}
	}
	if u, ok := a.Keys.(UsageRecorder); ok {
		u.RecordAPIKeyUse(ctx, rec)
	}
	return invocation.Principal{
		Kind: invocation.KindServiceAccount, ID: t.ServiceAccountID, TenantID: t.TenantID,
		CredentialID: t.SessionID, Roles: intersectRoles(t.Roles, rec.Roles),
	}, nil
}
