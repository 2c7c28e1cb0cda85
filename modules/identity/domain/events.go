package domain

import (
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// Event types. Persisted: never rename one.
const (
	TypeSigningKeyCreated = "identity.signing-key-created"
	TypeSigningKeyRetired = "identity.signing-key-retired"
	TypeAccessTokenIssued = "identity.access-token-issued"
)

// Event is a fact of the identity context. The JSON form of each event
// struct is its persisted data (schema version 1).
type Event interface {
	// EventType is the event's stable type string.
	EventType() string
}

// SigningKeyCreated: a new Ed25519 signing key. The private key is only
// ever kept sealed by the encryption port (KMS in AWS), for the platform
// namespace and the purpose "identity.signing-key". Stream "signing-keys" of
// the platform namespace.
type SigningKeyCreated struct {
	KeyID            string    `json:"keyId"`
	Algorithm        string    `json:"algorithm"` // "EdDSA"
	PublicKey        []byte    `json:"publicKey"` // 32 bytes
	SealedPrivateKey []byte    `json:"sealedPrivateKey"`
	CreatedAt        time.Time `json:"createdAt"`
}

// SigningKeyRetired: a key is no longer published; tokens it signed no
// longer verify. Stream "signing-keys" of the platform namespace.
type SigningKeyRetired struct {
	KeyID     string    `json:"keyId"`
	RetiredAt time.Time `json:"retiredAt"`
}

// AccessTokenIssued: a service account exchanged a credential (its session,
// an API key) for an access token. Who and when are also in the event's
// invocation; the token itself is never recorded. Stream
// "access-token-<tokenId>" of the tenant.
type AccessTokenIssued struct {
	TokenID          string                   `json:"tokenId"`
	ServiceAccountID string                   `json:"serviceAccountId"`
	SessionID        string                   `json:"sessionId"`
	SigningKeyID     string                   `json:"signingKeyId"`
	Roles            []invocation.RoleBinding `json:"roles"`
	IssuedAt         time.Time                `json:"issuedAt"`
	ExpiresAt        time.Time                `json:"expiresAt"`
}

// EventType implements Event.
func (SigningKeyCreated) EventType() string { return TypeSigningKeyCreated }

// EventType implements Event.
func (SigningKeyRetired) EventType() string { return TypeSigningKeyRetired }

// EventType implements Event.
func (AccessTokenIssued) EventType() string { return TypeAccessTokenIssued }
