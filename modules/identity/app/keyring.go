package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/identity/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
)

// KeyRingRefresh is how long the key ring trusts the key set it read before
// reading it again: a key made by another instance signs here at most this
// long after it would have (it is published for domain.PublishLead first,
// far longer).
const KeyRingRefresh = 30 * time.Second

// KeyRing keeps the signing key set in memory and the opened private key of
// the key that signs now: issuing a token costs no store read and no KMS
// call, except once per KeyRingRefresh and per new key. Safe for concurrent
// use.
type KeyRing struct {
	repo      Repository
	sealer    secrets.Sealer
	namespace string
	clock     clock.Clock
	bootstrap RotateSigningKeysHandler

	mu       sync.Mutex
	set      *domain.KeySet
	loadedAt time.Time
	opened   map[string]ed25519.PrivateKey // kid -> private key
}

// errNoKey is a key set that stays empty after the bootstrap (a bug).
var errNoKey = errors.New("key ring: no signing key")

// Signer returns the key that signs now: its id and private key.
func (r *KeyRing) Signer(ctx context.Context) (string, ed25519.PrivateKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	if r.set == nil || now.Sub(r.loadedAt) >= KeyRingRefresh || len(r.set.Keys) == 0 {
		set, err := r.bootstrap.Ensure(ctx)
		if err != nil {
			return "", nil, err
		}
		r.set, r.loadedAt = set, now
	}
	k, ok := r.set.Signing(now)
	if !ok {
		return "", nil, errNoKey
	}
	if priv, ok := r.opened[k.KeyID]; ok {
		return k.KeyID, priv, nil
	}
	seed, err := r.sealer.Open(ctx, r.namespace, PurposeSigningKey, k.SealedPrivateKey)
	if err != nil {
		return "", nil, fmt.Errorf("open signing key %s: %w", k.KeyID, err)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return "", nil, fmt.Errorf("open signing key %s: %d bytes", k.KeyID, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if r.opened == nil {
		r.opened = map[string]ed25519.PrivateKey{}
	}
	for kid := range r.opened { // keep only keys still in the set
		if !inSet(r.set, kid) {
			delete(r.opened, kid)
		}
	}
	r.opened[k.KeyID] = priv
	return k.KeyID, priv, nil
}

func inSet(s *domain.KeySet, kid string) bool {
	for _, k := range s.Keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}
