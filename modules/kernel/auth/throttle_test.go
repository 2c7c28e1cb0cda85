package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

func testKey(gen ids.Generator) (cred, keyID string) {
	keyID = gen.New(ids.APIKey)
	return FormatAPIKey(keyID, NewSecret()), keyID
}

// A key id is refused after KeyFailures failures until its window ends, with
// Retry-After counting down; another key id and a fresh window are not.
func TestThrottleKeyWindow(t *testing.T) {
	clk := clock.NewFixed(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	th := NewThrottle(ThrottleLimits{KeyFailures: 3, AddressFailures: 1000}, clk)
	gen := ids.NewULIDs()
	cred, _ := testKey(gen)
	other, _ := testKey(gen)
	for i := range 3 {
		if _, blocked := th.Check(cred, ""); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		if _, throttled := th.Fail(cred, "198.51.100.7"); throttled {
			t.Fatalf("failure %d answered throttled", i+1)
		}
		clk.Advance(10 * time.Second) // failures at 0 s, 10 s, 20 s
	}
	// 30 s into the window opened at 0 s: 30 s left.
	if ra, blocked := th.Check(cred, ""); !blocked || ra != 30 {
		t.Fatalf("Check = %d, %v; want 30, true", ra, blocked)
	}
	// The same secret with another key id, and garbage, are not affected.
	if _, blocked := th.Check(other, ""); blocked {
		t.Fatal("another key id is blocked")
	}
	if _, blocked := th.Check("not-a-key", ""); blocked {
		t.Fatal("a non-key credential is blocked")
	}
	clk.Advance(29*time.Second + 500*time.Millisecond)
	if ra, blocked := th.Check(cred, ""); !blocked || ra != 1 {
		t.Fatalf("Check 0.5 s before the end = %d, %v; want 1 (rounded up), true", ra, blocked)
	}
	clk.Advance(500 * time.Millisecond)
	if _, blocked := th.Check(cred, ""); blocked {
		t.Fatal("still blocked when the window ended")
	}
	// A new window opens with the next failure.
	if _, throttled := th.Fail(cred, ""); throttled {
		t.Fatal("first failure of a new window throttled")
	}
	if _, blocked := th.Check(cred, ""); blocked {
		t.Fatal("blocked after one failure of a new window")
	}
}

// An address over its limit has its further failures throttled; the
// failure that reaches the limit is not; IPv6 counts per /64; "" is never
// counted; the Retry-After is the address window's.
func TestThrottleAddress(t *testing.T) {
	clk := clock.NewFixed(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	th := NewThrottle(ThrottleLimits{KeyFailures: 1000, AddressFailures: 2}, clk)
	for _, c := range []struct{ first, second string }{
		{"198.51.100.7", "198.51.100.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"}, // one /64
		{"garbage", "garbage"},
	} {
		th.Fail("x", c.first)
		clk.Advance(15 * time.Second)
		if _, throttled := th.Fail("x", c.second); throttled {
			t.Fatalf("%s: the failure reaching the limit is throttled", c.first)
		}
		if ra, throttled := th.Fail("x", c.second); !throttled || ra != 45 {
			t.Fatalf("%s: Fail = %d, %v; want 45, true", c.first, ra, throttled)
		}
	}
	if _, throttled := th.Fail("x", "2001:db8:1:3::1"); throttled {
		t.Fatal("another /64 is throttled")
	}
	for range 10 {
		if _, throttled := th.Fail("x", ""); throttled {
			t.Fatal("an unknown address is counted")
		}
	}
	// An address's failures never block a key id.
	cred, _ := testKey(ids.NewULIDs())
	if _, blocked := th.Check(cred, ""); blocked {
		t.Fatal("key blocked by an address throttle")
	}
}

// A flood of distinct key ids keeps the table at MaxEntries, evicting the
// least recently failed; expired entries are swept, so a quiet throttle is
// empty again (Check's fast path).
func TestThrottleBounded(t *testing.T) {
	clk := clock.NewFixed(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	th := NewThrottle(ThrottleLimits{KeyFailures: 2, MaxEntries: 100}, clk)
	gen := ids.NewULIDs()
	hot, _ := testKey(gen)
	th.Fail(hot, "")
	th.Fail(hot, "")
	for i := range 1000 {
		cred, _ := testKey(gen)
		th.Fail(cred, fmt.Sprintf("203.0.113.%d", i%256))
		if i == 50 {
			th.Fail(hot, "") // still recent at i=50
		}
		if n := th.keys.len(); n > 100 {
			t.Fatalf("%d key entries", n)
		}
	}
	if n := th.addrs.len(); n != 100 {
		t.Fatalf("%d address entries, want 100", n)
	}
	// The hot key failed last long ago (in LRU order): evicted by the flood.
	if _, blocked := th.Check(hot, ""); blocked {
		t.Fatal("the evicted key is still blocked")
	}
	clk.Advance(DefaultThrottleWindow)
	th.Check(hot, "")
	th.Fail("x", "192.0.2.1")
	if th.keys.n.Load() != 0 || th.addrs.len() != 1 {
		t.Fatalf("expired entries kept: %d keys, %d addresses", th.keys.n.Load(), th.addrs.len())
	}
}

// Concurrent failures on one key id are all counted (no lost updates).
func TestThrottleConcurrent(t *testing.T) {
	clk := clock.NewFixed(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	th := NewThrottle(ThrottleLimits{KeyFailures: 800, AddressFailures: 800}, clk)
	cred, _ := testKey(ids.NewULIDs())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				th.Fail(cred, "198.51.100.1")
				th.Check(cred, "")
				th.Fail(fmt.Sprintf("x%d-%d", g, i), fmt.Sprintf("198.51.%d.%d", g, i))
			}
		}()
	}
	wg.Wait()
	if _, blocked := th.Check(cred, ""); !blocked {
		t.Fatal("800 concurrent failures did not block the key")
	}
	if ra, throttled := th.Fail(cred, "198.51.100.1"); !throttled || ra != 60 {
		t.Fatalf("address after 800 failures: %d, %v", ra, throttled)
	}
}

// The successful path's cost: Check with an empty table (the usual case) and
// with entries for other key ids.
func BenchmarkThrottleCheck(b *testing.B) {
	gen := ids.NewULIDs()
	cred, _ := testKey(gen)
	b.Run("empty", func(b *testing.B) {
		th := NewThrottle(ThrottleLimits{}, nil)
		for b.Loop() {
			th.Check(cred, "")
		}
	})
	b.Run("busy", func(b *testing.B) {
		th := NewThrottle(ThrottleLimits{}, nil)
		for range 5000 {
			c, _ := testKey(gen)
			th.Fail(c, "")
		}
		for b.Loop() {
			th.Check(cred, "")
		}
	})
}

// TestThrottleOperatorKeyGuesses: once an address is over its failure
// limit, operator key attempts from it are refused before they are
// checked (found in review: a weak operator key could be guessed at any
// pace, every guess checked); API keys and tokens from it still pass
// Check, and other addresses are not affected.
func TestThrottleOperatorKeyGuesses(t *testing.T) {
	clk := clock.NewFixed(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	th := NewThrottle(ThrottleLimits{KeyFailures: 10, AddressFailures: 3, Window: time.Minute}, clk)
	for i := range 3 {
		if _, blocked := th.Check("guess", "203.0.113.7"); blocked {
			t.Fatalf("guess %d refused before the limit", i)
		}
		th.Fail("guess", "203.0.113.7")
	}
	if ra, blocked := th.Check("the-right-operator-key", "203.0.113.7"); !blocked || ra <= 0 {
		t.Fatalf("an operator key attempt from an address over its limit: blocked %v, Retry-After %d", blocked, ra)
	}
	if _, blocked := th.Check("sbk_"+"key_01JD0000000000000000000000_secret", "203.0.113.7"); blocked {
		t.Error("an API key from the address was refused: only its key id's failures count for it")
	}
	if _, blocked := th.Check("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln", "203.0.113.7"); blocked {
		t.Error("an access token from the address was refused")
	}
	if _, blocked := th.Check("the-right-operator-key", "198.51.100.1"); blocked {
		t.Error("another address was refused")
	}
	clk.Advance(time.Minute)
	if _, blocked := th.Check("the-right-operator-key", "203.0.113.7"); blocked {
		t.Error("still refused after the window")
	}
}

// TestThrottleFloodDoesNotEvictATarget: an address over its limit sending
// random key ids does not push a key id under attack out of the table (it
// would get a fresh window).
func TestThrottleFloodDoesNotEvictATarget(t *testing.T) {
	clk := clock.NewFixed(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	th := NewThrottle(ThrottleLimits{KeyFailures: 3, AddressFailures: 5, Window: time.Minute, MaxEntries: 8}, clk)
	gen := ids.NewSequence(clk.Now())
	target, _ := testKey(gen)
	for range 3 {
		th.Fail(target, "198.51.100.9")
	}
	if _, blocked := th.Check(target, ""); !blocked {
		t.Fatal("the target key id is not throttled after its limit")
	}
	for range 100 { // far more than MaxEntries
		k, _ := testKey(gen)
		th.Fail(k, "203.0.113.7")
	}
	if _, blocked := th.Check(target, ""); !blocked {
		t.Fatal("a flood of random key ids from one address evicted the target's entry")
	}
}
