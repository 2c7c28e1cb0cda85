package auth_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
)

// countingKeys is a key store that counts its reads and can revoke keys.
type countingKeys struct {
	mu    sync.Mutex
	reads int
	recs  map[string]auth.APIKeyRecord
}

func (k *countingKeys) ResolveAPIKey(_ context.Context, id string) (auth.APIKeyRecord, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reads++
	r, ok := k.recs[id]
	if !ok {
		return r, auth.ErrUnauthenticated
	}
	return r, nil
}

func (k *countingKeys) revoke(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.recs[id]
	r.Revoked = true
	k.recs[id] = r
}

func TestCachedResolverRevocationSemantics(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFixed(t0)
	store := &countingKeys{recs: map[string]auth.APIKeyRecord{"key_a": {KeyID: "key_a", TenantID: "tnt_1"}}}
	serving := &auth.CachedResolver{Resolver: store, Clock: clk} // the instance that revokes
	other := &auth.CachedResolver{Resolver: store, Clock: clk}   // another Lambda instance
	ctx := context.Background()
	for range 100 {
		if _, err := serving.ResolveAPIKey(ctx, "key_a"); err != nil {
			t.Fatal(err)
		}
		if _, err := other.ResolveAPIKey(ctx, "key_a"); err != nil {
			t.Fatal(err)
		}
	}
	if store.reads != 2 {
		t.Fatalf("%d store reads for 200 lookups on two instances, want 2", store.reads)
	}
	store.revoke("key_a")
	serving.Invalidate("key_a")
	if r, _ := serving.ResolveAPIKey(ctx, "key_a"); !r.Revoked {
		t.Fatal("the serving instance still trusts the revoked key")
	}
	clk.Set(t0.Add(auth.DefaultKeyCacheTTL - time.Millisecond))
	if r, _ := other.ResolveAPIKey(ctx, "key_a"); r.Revoked {
		t.Fatal("another instance saw the revocation before its cache expired: the test's premise is off")
	}
	clk.Set(t0.Add(auth.DefaultKeyCacheTTL))
	if r, _ := other.ResolveAPIKey(ctx, "key_a"); !r.Revoked {
		t.Fatalf("another instance still trusts the revoked key after %v", auth.DefaultKeyCacheTTL)
	}
}

func TestCachedResolverNeverCachesMisses(t *testing.T) {
	store := &countingKeys{recs: map[string]auth.APIKeyRecord{}}
	c := &auth.CachedResolver{Resolver: store}
	ctx := context.Background()
	if _, err := c.ResolveAPIKey(ctx, "key_new"); err == nil {
		t.Fatal("unknown key resolved")
	}
	store.mu.Lock()
	store.recs["key_new"] = auth.APIKeyRecord{KeyID: "key_new"}
	store.mu.Unlock()
	if _, err := c.ResolveAPIKey(ctx, "key_new"); err != nil {
		t.Fatalf("a key issued after a miss is not found: %v", err)
	}
}

func TestCachedResolverIsBounded(t *testing.T) {
	store := &countingKeys{recs: map[string]auth.APIKeyRecord{}}
	for i := range 50 {
		id := fmt.Sprintf("key_%d", i)
		store.recs[id] = auth.APIKeyRecord{KeyID: id}
	}
	c := &auth.CachedResolver{Resolver: store, MaxEntries: 10}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ResolveAPIKey(ctx, fmt.Sprintf("key_%d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	before := store.reads
	for i := 40; i < 50; i++ { // the last ten may or may not be cached; none may fail
		if _, err := c.ResolveAPIKey(ctx, fmt.Sprintf("key_%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if store.reads-before > 10 {
		t.Fatalf("reads grew by %d", store.reads-before)
	}
}
