package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// UsagePeriod is how often at most an instance records a use of one key: the
// "api-key-usage" row costs one write per key per hour per instance, never
// one per request, and lastUsedAt is late by at most this much.
const UsagePeriod = time.Hour

// maxTrackedUses bounds the keys whose last recorded use an instance
// remembers; beyond it, uses of further keys are not recorded until entries
// older than UsagePeriod make room.
const maxTrackedUses = 10_000

// usageWriteTimeout bounds the write of a use (it runs on the request path).
const usageWriteTimeout = time.Second

// APIKeyResolver implements auth.APIKeyResolver with one eventually
// consistent read of the global "api-keys" lookup row (half the cost of a
// consistent one), and a consistent read when that finds nothing: a key
// issued a moment ago is found, an unknown key costs one read more.
//
// It is also this instance's source of key changes (auth.KeyChangeSource):
// the repository publishes the lookup rows it committed (Publish), and the
// kernel's auth.CachedResolver, which wraps it, replaces its cached records
// with them at once. With RecordingUses it records when keys were last used
// (auth.UsageRecorder).
type APIKeyResolver struct {
	store eventstore.RecordReader
	usage *usageRecorder // nil: uses are not recorded

	mu   sync.Mutex
	subs []func([]auth.APIKeyRecord)
}

var (
	_ auth.APIKeyResolver  = (*APIKeyResolver)(nil)
	_ auth.KeyChangeSource = (*APIKeyResolver)(nil)
	_ auth.UsageRecorder   = (*APIKeyResolver)(nil)
)

// NewAPIKeyResolver returns a resolver reading store.
func NewAPIKeyResolver(store eventstore.RecordReader) *APIKeyResolver {
	return &APIKeyResolver{store: store}
}

// RecordingUses makes r record the uses of keys in store (see
// RecordAPIKeyUse) and returns r. log receives failed writes (nil: discard).
func (r *APIKeyResolver) RecordingUses(store eventstore.Appender, clk clock.Clock, log *slog.Logger) *APIKeyResolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r.usage = &usageRecorder{store: store, clock: clk, log: log, last: map[string]time.Time{}}
	return r
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

// SubscribeKeyChanges implements auth.KeyChangeSource.
func (r *APIKeyResolver) SubscribeKeyChanges(f func(recs []auth.APIKeyRecord)) {
	r.mu.Lock()
	r.subs = append(r.subs, f)
	r.mu.Unlock()
}

// Publish hands the lookup rows of a commit, as written, to the subscribers
// (Repository.OnKeysWritten calls it after the commit).
func (r *APIKeyResolver) Publish(_ context.Context, recs []auth.APIKeyRecord) {
	r.mu.Lock()
	subs := slices.Clone(r.subs)
	r.mu.Unlock()
	for _, f := range subs {
		f(recs)
	}
}

// RecordAPIKeyUse implements auth.UsageRecorder: it writes the key's
// "api-key-usage" row ({"lastUsedAt": now}) in the key's tenant, at most once
// per key per UsagePeriod on this instance, in a commit of its own (never
// the invocation's: the use is recorded whatever the call does). It is best
// effort: a failed write is logged and the call goes on; the next attempt
// is a period later.
func (r *APIKeyResolver) RecordAPIKeyUse(ctx context.Context, rec auth.APIKeyRecord) {
	if r.usage == nil || rec.TenantID == "" || rec.KeyID == "" {
		return
	}
	r.usage.record(ctx, rec)
}

// usageRecorder is the per-instance state of RecordAPIKeyUse.
type usageRecorder struct {
	store eventstore.Appender
	clock clock.Clock
	log   *slog.Logger

	mu   sync.Mutex
	last map[string]time.Time // key id -> when this instance last recorded a use
}

func (u *usageRecorder) record(ctx context.Context, rec auth.APIKeyRecord) {
	now := u.clock.Now()
	if !u.due(rec.KeyID, now) {
		return
	}
	data, err := json.Marshal(APIKeyUsageRow{LastUsedAt: now})
	if err != nil {
		u.log.WarnContext(ctx, "api key use not recorded", slog.String("apiKeyId", rec.KeyID), slog.String("error", err.Error()))
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), usageWriteTimeout)
	defer cancel()
	err = u.store.Commit(wctx, &eventstore.Commit{TenantID: rec.TenantID, Records: []eventstore.Record{{
		Collection: CollectionAPIKeyUsage, Key: rec.KeyID, Data: data,
	}}})
	if err != nil {
		u.log.WarnContext(ctx, "api key use not recorded", slog.String("apiKeyId", rec.KeyID), slog.String("error", err.Error()))
	}
}

// due reports whether a use of keyID at now is to be recorded, and if so
// remembers it.
func (u *usageRecorder) due(keyID string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if last, ok := u.last[keyID]; ok && now.Sub(last) < UsagePeriod {
		return false
	}
	if _, ok := u.last[keyID]; !ok && len(u.last) >= maxTrackedUses {
		for k, t := range u.last {
			if now.Sub(t) >= UsagePeriod {
				delete(u.last, k)
			}
		}
		if len(u.last) >= maxTrackedUses {
			return false
		}
	}
	u.last[keyID] = now
	return true
}
