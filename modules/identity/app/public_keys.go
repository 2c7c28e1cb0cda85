package app

import (
	"context"
	"crypto/ed25519"
	"fmt"
)

// PublicKey is a published signing key.
type PublicKey struct {
	KeyID string
	Key   ed25519.PublicKey
}

// PublicKeysHandler answers the published keys (one store read; callers
// cache: the verifier in memory, JWKS clients by Cache-Control).
type PublicKeysHandler struct {
	repo Repository
}

// Handle returns every key of the set, oldest first: the key that signs,
// the one it replaced until that one's tokens expired, and a new key from
// its creation (before it signs).
func (h PublicKeysHandler) Handle(ctx context.Context) ([]PublicKey, error) {
	set, err := h.repo.KeySet(ctx)
	if err != nil {
		return nil, fmt.Errorf("public keys: %w", err)
	}
	out := make([]PublicKey, 0, len(set.Keys))
	for _, k := range set.Keys {
		if len(k.PublicKey) == ed25519.PublicKeySize {
			out = append(out, PublicKey{KeyID: k.KeyID, Key: ed25519.PublicKey(k.PublicKey)})
		}
	}
	return out, nil
}
