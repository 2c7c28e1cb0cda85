package auth_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// changingKeys is a key store that publishes its changes (as the tenancy
// module's resolver does) and records uses. A read may be held in flight.
type changingKeys struct {
	countingKeys
	subs []func([]auth.APIKeyRecord)
	uses []string

	hold    chan struct{} // when set, the next read blocks after it read until hold is closed
	reading chan struct{} // the held read signals here that it read
}

func (k *changingKeys) ResolveAPIKey(ctx context.Context, id string) (auth.APIKeyRecord, error) {
	rec, err := k.countingKeys.ResolveAPIKey(ctx, id)
	k.mu.Lock()
	hold, reading := k.hold, k.reading
	k.hold = nil
	k.mu.Unlock()
	if hold != nil {
		reading <- struct{}{}
		<-hold
	}
	return rec, err
}

func (k *changingKeys) SubscribeKeyChanges(f func([]auth.APIKeyRecord)) { k.subs = append(k.subs, f) }

// change writes a record and publishes it, as a commit of this instance does.
func (k *changingKeys) change(rec auth.APIKeyRecord) {
	k.mu.Lock()
	k.recs[rec.KeyID] = rec
	k.mu.Unlock()
	for _, f := range k.subs {
		f([]auth.APIKeyRecord{rec})
	}
}

func (k *changingKeys) RecordAPIKeyUse(_ context.Context, rec auth.APIKeyRecord) {
	k.mu.Lock()
	k.uses = append(k.uses, rec.KeyID)
	k.mu.Unlock()
}

// The instance that changes a key serves the change at once, from the
// record the change wrote (no store read: a replica might not have it yet);
// another instance takes it within the TTL.
func TestCachedResolverTakesThisInstancesChangesAtOnce(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFixed(t0)
	viewer := []invocation.RoleBinding{{Role: "viewer", ScopeID: "scp_1"}}
	admin := []invocation.RoleBinding{{Role: "viewer", ScopeID: "scp_1"}, {Role: "admin", ScopeID: "scp_1"}}
	store := &changingKeys{countingKeys: countingKeys{recs: map[string]auth.APIKeyRecord{"key_a": {KeyID: "key_a", Roles: viewer}}}}
	serving := &auth.CachedResolver{Resolver: store, Clock: clk}
	other := &auth.CachedResolver{Resolver: &store.countingKeys, Clock: clk} // another instance: no subscription
	ctx := context.Background()
	for _, c := range []*auth.CachedResolver{serving, other} {
		if r, err := c.ResolveAPIKey(ctx, "key_a"); err != nil || len(r.Roles) != 1 {
			t.Fatal(r, err)
		}
	}
	reads := store.reads

	store.change(auth.APIKeyRecord{KeyID: "key_a", Roles: admin})
	if r, _ := serving.ResolveAPIKey(ctx, "key_a"); len(r.Roles) != 2 {
		t.Fatalf("the serving instance still has roles %v", r.Roles)
	}
	if store.reads != reads {
		t.Fatalf("the serving instance read the store again (%d reads) instead of taking the written record", store.reads-reads)
	}
	if r, _ := other.ResolveAPIKey(ctx, "key_a"); len(r.Roles) != 1 {
		t.Fatal("the other instance saw the change before its TTL: the test's premise is off")
	}
	clk.Advance(auth.DefaultKeyCacheTTL)
	if r, _ := other.ResolveAPIKey(ctx, "key_a"); len(r.Roles) != 2 {
		t.Fatalf("the other instance still has roles %v after the TTL", r.Roles)
	}

	// A revocation of a key this instance never cached is served at once too.
	store.recs["key_b"] = auth.APIKeyRecord{KeyID: "key_b"}
	store.change(auth.APIKeyRecord{KeyID: "key_b", Revoked: true})
	if r, _ := serving.ResolveAPIKey(ctx, "key_b"); !r.Revoked {
		t.Fatal("the revocation of an uncached key is not served")
	}
}

// A read that was under way while a change committed on this instance is
// answered but not cached: it may predate the change.
func TestCachedResolverDoesNotCacheAReadOverlappingAChange(t *testing.T) {
	store := &changingKeys{countingKeys: countingKeys{recs: map[string]auth.APIKeyRecord{"key_a": {KeyID: "key_a"}}}}
	c := &auth.CachedResolver{Resolver: store}
	ctx := context.Background()
	if _, err := c.ResolveAPIKey(ctx, "key_z"); err == nil { // subscribes; a miss is not cached
		t.Fatal("unknown key resolved")
	}
	hold := make(chan struct{})
	store.hold, store.reading = hold, make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var stale auth.APIKeyRecord
	go func() {
		defer wg.Done()
		stale, _ = c.ResolveAPIKey(ctx, "key_a")
	}()
	<-store.reading // the read has the old record
	store.change(auth.APIKeyRecord{KeyID: "key_a", Revoked: true})
	close(hold)
	wg.Wait()
	if stale.Revoked {
		t.Fatal("the test's premise is off: the overlapping read saw the change")
	}
	if r, _ := c.ResolveAPIKey(ctx, "key_a"); !r.Revoked {
		t.Fatal("a read that overlapped the revocation was cached over it")
	}
	// Invalidate drops an entry: the next call reads the store.
	reads := store.reads
	c.Invalidate("key_a")
	if r, _ := c.ResolveAPIKey(ctx, "key_a"); !r.Revoked || store.reads != reads+1 {
		t.Fatalf("after Invalidate: %+v, %d reads", r, store.reads-reads)
	}
}

// The authenticator reports each successful key use to the key store
// through the cache, never a failed one.
func TestAuthenticatorRecordsSuccessfulUses(t *testing.T) {
	secret := auth.NewSecret()
	store := &changingKeys{countingKeys: countingKeys{recs: map[string]auth.APIKeyRecord{
		keyID: {KeyID: keyID, TenantID: tenantID, ServiceAccountID: svaID, SecretHash: auth.HashSecret(secret)},
	}}}
	a := &auth.Authenticator{Keys: &auth.CachedResolver{Resolver: store}}
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, auth.FormatAPIKey(keyID, secret+"x")); err == nil {
		t.Fatal("a wrong secret authenticated")
	}
	for range 3 {
		if _, err := a.Authenticate(ctx, auth.FormatAPIKey(keyID, secret)); err != nil {
			t.Fatal(err)
		}
	}
	if len(store.uses) != 3 || store.uses[0] != keyID {
		t.Fatalf("uses = %v, want 3 of %s (the store throttles, not the cache)", store.uses, keyID)
	}
	store.change(auth.APIKeyRecord{KeyID: keyID, TenantID: tenantID, SecretHash: auth.HashSecret(secret), Revoked: true})
	if _, err := a.Authenticate(ctx, auth.FormatAPIKey(keyID, secret)); err == nil || len(store.uses) != 3 {
		t.Fatalf("a revoked key: %v, uses %v", err, store.uses)
	}
}
