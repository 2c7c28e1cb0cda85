package app

import (
	"context"

	"github.com/switchboard-dev/switchboard/modules/identity/domain"
)

// Repository is the identity context's store.
type Repository interface {
	// KeySet loads the platform key set (empty when there is none yet).
	KeySet(ctx context.Context) (*domain.KeySet, error)
	// SaveKeySet commits evs on top of version base with the new state set
	// (its Version is set on success). eventstore.ErrConflict when another
	// writer moved the set first.
	SaveKeySet(ctx context.Context, base int64, set *domain.KeySet, evs []domain.Event) error
	// SaveTokenIssued records an issued token in the invocation's unit of work.
	SaveTokenIssued(ctx context.Context, tenantID string, ev domain.AccessTokenIssued) error
}

// PurposeSigningKey is the sealing purpose of signing private keys; they are
// sealed for the platform namespace (adapters.PlatformNamespace).
const PurposeSigningKey = "identity.signing-key"
