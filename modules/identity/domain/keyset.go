package domain

import (
	"fmt"
	"time"
)

// Rules of the key set and of tokens.
const (
	// MaxTokenLifetime bounds an access token's life (contract section 3).
	MaxTokenLifetime = 60 * time.Minute
	// DefaultTokenLifetime is the life of an access token unless configured.
	DefaultTokenLifetime = 15 * time.Minute
	// DefaultRotationPeriod is how old the newest key gets before a new one
	// is made.
	DefaultRotationPeriod = 24 * time.Hour
	// PublishLead is how long a new key is published before it signs, so
	// that verifiers that cached the key set (JWKS, max-age JWKSMaxAge) know
	// it before they see its tokens.
	PublishLead = 10 * time.Minute
	// JWKSMaxAge is the Cache-Control max-age of the published key set,
	// shorter than PublishLead and than the overlap of two keys.
	JWKSMaxAge = 5 * time.Minute
	// RetireMargin is added to MaxTokenLifetime before a key that stopped
	// signing is retired (clock skew between instances).
	RetireMargin = 5 * time.Minute
)

// SigningKey is a published key of the set.
type SigningKey struct {
	KeyID            string    `json:"keyId"`
	PublicKey        []byte    `json:"publicKey"`
	SealedPrivateKey []byte    `json:"sealedPrivateKey"`
	CreatedAt        time.Time `json:"createdAt"`
}

// KeySet is the platform's set of published signing keys, oldest first: the
// aggregate of stream "signing-keys". Version is the stream version it
// reflects.
type KeySet struct {
	Version int64        `json:"version"`
	Keys    []SigningKey `json:"keys"`
}

// Apply folds an event into the set (replay and after a decision).
func (s *KeySet) Apply(ev Event) error {
	switch e := ev.(type) {
	case SigningKeyCreated:
		s.Keys = append(s.Keys, SigningKey{KeyID: e.KeyID, PublicKey: e.PublicKey, SealedPrivateKey: e.SealedPrivateKey, CreatedAt: e.CreatedAt})
	case SigningKeyRetired:
		for i, k := range s.Keys {
			if k.KeyID == e.KeyID {
				s.Keys = append(s.Keys[:i:i], s.Keys[i+1:]...)
				break
			}
		}
	default:
		return fmt.Errorf("key set: unexpected event %T", ev)
	}
	return nil
}

// Signing returns the key that signs at now: the newest key published for
// at least PublishLead, or, when none is, the newest key (the first key
// signs at once). ok is false for an empty set.
func (s *KeySet) Signing(now time.Time) (key SigningKey, ok bool) {
	if len(s.Keys) == 0 {
		return SigningKey{}, false
	}
	for i := len(s.Keys) - 1; i >= 0; i-- {
		if !now.Before(s.Keys[i].CreatedAt.Add(PublishLead)) {
			return s.Keys[i], true
		}
	}
	return s.Keys[len(s.Keys)-1], true
}

// NeedsKey reports whether a new key is due: the set is empty or its newest
// key is at least period old.
func (s *KeySet) NeedsKey(now time.Time, period time.Duration) bool {
	return len(s.Keys) == 0 || !now.Before(s.Keys[len(s.Keys)-1].CreatedAt.Add(period))
}

// Retirable lists the keys whose every token has expired at now: keys
// whose successor has signed for MaxTokenLifetime + RetireMargin. The
// newest key is never retirable.
func (s *KeySet) Retirable(now time.Time) []string {
	var out []string
	for i := 0; i+1 < len(s.Keys); i++ {
		stoppedSigning := s.Keys[i+1].CreatedAt.Add(PublishLead)
		if !now.Before(stoppedSigning.Add(MaxTokenLifetime + RetireMargin)) {
			out = append(out, s.Keys[i].KeyID)
		}
	}
	return out
}

// Rotate decides a rotation at now: newKey (made by the caller only when
// NeedsKey said so; nil otherwise) is added, and the keys whose tokens have
// all expired are retired. It returns the events, already applied.
func (s *KeySet) Rotate(now time.Time, newKey *SigningKey) ([]Event, error) {
	var evs []Event
	if newKey != nil {
		evs = append(evs, SigningKeyCreated{KeyID: newKey.KeyID, Algorithm: "EdDSA", PublicKey: newKey.PublicKey,
			SealedPrivateKey: newKey.SealedPrivateKey, CreatedAt: newKey.CreatedAt})
	}
	for _, id := range s.Retirable(now) {
		evs = append(evs, SigningKeyRetired{KeyID: id, RetiredAt: now})
	}
	for _, ev := range evs {
		if err := s.Apply(ev); err != nil {
			return nil, err
		}
	}
	return evs, nil
}
