package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/identity/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
)

// RotateSigningKeysHandler runs the rotation job: a new signing key when the
// newest is older than the rotation period (or there is none), published at
// once and signing after domain.PublishLead; keys whose tokens have all
// expired are retired (no longer published). Idempotent: running it twice,
// late, or on two instances at once does no harm (the second writer
// conflicts, reads again and finds nothing to do).
type RotateSigningKeysHandler struct {
	repo      Repository
	sealer    secrets.Sealer
	namespace string
	ids       ids.Generator
	clock     clock.Clock
	period    time.Duration
	log       *slog.Logger
}

// Handle implements the job.
func (h RotateSigningKeysHandler) Handle(ctx context.Context) error {
	_, err := h.rotate(ctx, false)
	return err
}

// Ensure makes the first key when there is none (issue-token before the
// first run of the job) and returns the set.
func (h RotateSigningKeysHandler) Ensure(ctx context.Context) (*domain.KeySet, error) {
	return h.rotate(ctx, true)
}

// rotate decides and saves; onlyIfEmpty limits it to the first key.
func (h RotateSigningKeysHandler) rotate(ctx context.Context, onlyIfEmpty bool) (*domain.KeySet, error) {
	for attempt := 1; ; attempt++ {
		set, err := h.repo.KeySet(ctx)
		if err != nil {
			return nil, fmt.Errorf("rotate signing keys: %w", err)
		}
		if onlyIfEmpty && len(set.Keys) > 0 {
			return set, nil
		}
		now := h.clock.Now()
		var key *domain.SigningKey
		if set.NeedsKey(now, h.period) {
			if key, err = h.newKey(ctx, now); err != nil {
				return nil, err
			}
		}
		base := set.Version
		evs, err := set.Rotate(now, key)
		if err != nil {
			return nil, err
		}
		err = h.repo.SaveKeySet(ctx, base, set, evs)
		if errors.Is(err, eventstore.ErrConflict) && attempt < 3 {
			continue // another instance rotated: decide again on its set
		}
		if err != nil {
			return nil, fmt.Errorf("rotate signing keys: %w", err)
		}
		for _, ev := range evs {
			switch e := ev.(type) {
			case domain.SigningKeyCreated:
				h.log.InfoContext(ctx, "signing key created", slog.String("keyId", e.KeyID))
			case domain.SigningKeyRetired:
				h.log.InfoContext(ctx, "signing key retired", slog.String("keyId", e.KeyID))
			}
		}
		return set, nil
	}
}

// newKey makes an Ed25519 key and seals its private half (the seed) with
// the encryption port; the seed never leaves this function in clear.
func (h RotateSigningKeysHandler) newKey(ctx context.Context, now time.Time) (*domain.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	seed := priv.Seed()
	defer clear(seed)
	defer clear(priv)
	sealed, err := h.sealer.Seal(ctx, h.namespace, PurposeSigningKey, seed)
	if err != nil {
		return nil, fmt.Errorf("seal signing key: %w", err)
	}
	return &domain.SigningKey{KeyID: h.ids.New(ids.SigningKey), PublicKey: pub, SealedPrivateKey: sealed, CreatedAt: now}, nil
}
