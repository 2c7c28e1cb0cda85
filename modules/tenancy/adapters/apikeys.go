package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// APIKeyResolver implements auth.APIKeyResolver with one eventually
// consistent read of the global "api-keys" lookup row (half the cost of a
// consistent one), and a consistent read when that finds nothing: a key
// issued a moment ago is found, an unknown key costs one read more.
type APIKeyResolver struct {
	store eventstore.RecordReader
}

var _ auth.APIKeyResolver = (*APIKeyResolver)(nil)

// NewAPIKeyResolver returns a resolver reading store.
func NewAPIKeyResolver(store eventstore.RecordReader) *APIKeyResolver {
	return &APIKeyResolver{store: store}
}

// ResolveAPIKey implements auth.APIKeyResolver: auth.ErrUnauthenticated for an
// unknown key id; a store error otherwise. The caller compares the secret.
func (r *APIKeyResolver) ResolveAPIKey(ctx context.Context, keyID string) (auth.APIKeyRecord, error) {
	rec, err := r.store.GetGlobalRecord(ctx, CollectionAPIKeys, keyID, eventstore.Eventually)
	if errors.Is(err, eventstore.ErrNotFound) {
		rec, err = r.store.GetGlobalRecord(ctx, CollectionAPIKeys, keyID)
	}
	if errors.Is(err, eventstore.ErrNotFound) {
		return auth.APIKeyRecord{}, auth.ErrUnauthenticated
	}
	if err != nil {
		return auth.APIKeyRecord{}, fmt.Errorf("resolve api key %s: %w", keyID, err)
	}
	var k auth.APIKeyRecord
	if err := json.Unmarshal(rec.Data, &k); err != nil {
		return auth.APIKeyRecord{}, fmt.Errorf("decode api key %s: %w", keyID, err)
	}
	return k, nil
}
