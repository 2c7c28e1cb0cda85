package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
)

// countingWrapper counts calls to a LocalKeyring and can slow them down or
// make them fail.
type countingWrapper struct {
	inner     KeyWrapper
	generated atomic.Int64
	decrypted atomic.Int64
	delay     time.Duration
	fail      error
}

func newCounting(t testing.TB) *countingWrapper {
	t.Helper()
	return &countingWrapper{inner: testKeyring(t)}
}

func testKeyring(t testing.TB) *LocalKeyring {
	t.Helper()
	master := make([]byte, 32)
	rand.Read(master)
	k, err := NewLocalKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (c *countingWrapper) GenerateDataKey(ctx context.Context, tenantID string) ([]byte, []byte, error) {
	c.generated.Add(1)
	time.Sleep(c.delay)
	if c.fail != nil {
		return nil, nil, c.fail
	}
	return c.inner.GenerateDataKey(ctx, tenantID)
}

func (c *countingWrapper) DecryptDataKey(ctx context.Context, tenantID string, wrapped []byte) ([]byte, error) {
	c.decrypted.Add(1)
	time.Sleep(c.delay)
	if c.fail != nil {
		return nil, c.fail
	}
	return c.inner.DecryptDataKey(ctx, tenantID, wrapped)
}

func mustSeal(t testing.TB, s Sealer, tenant, purpose string, pt []byte) []byte {
	t.Helper()
	b, err := s.Seal(context.Background(), tenant, purpose, pt)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return b
}

func mustOpen(t testing.TB, s Sealer, tenant, purpose string, b []byte) []byte {
	t.Helper()
	pt, err := s.Open(context.Background(), tenant, purpose, b)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return pt
}

func wrappedOf(t testing.TB, blob []byte) []byte {
	t.Helper()
	n := int(binary.BigEndian.Uint16(blob[1:3]))
	return blob[3 : 3+n]
}

func TestRoundTrip(t *testing.T) {
	e := NewEnvelope(newCounting(t))
	big := make([]byte, 64<<10)
	rand.Read(big)
	for _, pt := range [][]byte{nil, {}, []byte("x"), []byte("whsec_0123456789abcdef"), big} {
		blob := mustSeal(t, e, "tenant-1", "webhook-signing", pt)
		if blob[0] != 0x01 {
			t.Fatalf("version byte = %#x", blob[0])
		}
		if want := 3 + len(wrappedOf(t, blob)) + 12 + len(pt) + 16; len(blob) != want {
			t.Fatalf("len(blob) = %d, want %d", len(blob), want)
		}
		got := mustOpen(t, e, "tenant-1", "webhook-signing", blob)
		if !bytes.Equal(got, pt) {
			t.Fatalf("round trip of %d bytes mismatched", len(pt))
		}
	}
}

func TestSealedHidesPlaintextAndIsRandomized(t *testing.T) {
	e := NewEnvelope(newCounting(t))
	pt := []byte("super-secret-api-token-value")
	a := mustSeal(t, e, "t1", "p", pt)
	b := mustSeal(t, e, "t1", "p", pt)
	if bytes.Contains(a, pt) || bytes.Contains(b, pt) {
		t.Fatal("sealed blob contains the plaintext")
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal")
	}
	if !bytes.Equal(wrappedOf(t, a), wrappedOf(t, b)) {
		t.Fatal("the two seals should share the cached data key")
	}
}

func TestOpenRejects(t *testing.T) {
	w := newCounting(t)
	e := NewEnvelope(w)
	pt := []byte("the-plaintext-secret")
	blob := mustSeal(t, e, "tenant-a", "purpose-1", pt)
	other := mustSeal(t, e, "tenant-b", "purpose-1", pt)

	check := func(t *testing.T, name string, e *Envelope, tenant, purpose string, b []byte) {
		t.Helper()
		got, err := e.Open(context.Background(), tenant, purpose, b)
		if !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%s: err = %v, want ErrDecrypt", name, err)
		}
		if got != nil {
			t.Fatalf("%s: returned plaintext alongside an error", name)
		}
		if strings.Contains(err.Error(), string(pt)) {
			t.Fatalf("%s: error contains the plaintext", name)
		}
		if !strings.HasPrefix(err.Error(), "open: ") {
			t.Fatalf("%s: error %q lacks the operation prefix", name, err)
		}
	}

	t.Run("wrong tenant", func(t *testing.T) {
		check(t, "wrong tenant", e, "tenant-b", "purpose-1", blob)
		// And on an envelope with a cold cache.
		check(t, "wrong tenant cold", NewEnvelope(w), "tenant-b", "purpose-1", blob)
		check(t, "empty tenant", e, "", "purpose-1", blob)
	})
	t.Run("wrong purpose", func(t *testing.T) {
		check(t, "wrong purpose", e, "tenant-a", "purpose-2", blob)
		check(t, "empty purpose", e, "tenant-a", "", blob)
	})
	t.Run("spliced wrapped key", func(t *testing.T) {
		// tenant-b's wrapped key with tenant-a's nonce and ciphertext.
		wa, wb := wrappedOf(t, blob), wrappedOf(t, other)
		spliced := append(bytes.Clone(other[:3+len(wb)]), blob[3+len(wa):]...)
		check(t, "spliced", e, "tenant-a", "purpose-1", spliced)
		check(t, "spliced", e, "tenant-b", "purpose-1", spliced)
	})
	t.Run("flipped bit", func(t *testing.T) {
		for i := range blob {
			for bit := 0; bit < 8; bit++ {
				b := bytes.Clone(blob)
				b[i] ^= 1 << bit
				check(t, fmt.Sprintf("byte %d bit %d", i, bit), e, "tenant-a", "purpose-1", b)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := 0; n < len(blob); n++ {
			check(t, fmt.Sprintf("first %d bytes", n), e, "tenant-a", "purpose-1", blob[:n])
		}
		check(t, "nil", e, "tenant-a", "purpose-1", nil)
	})
	t.Run("extended", func(t *testing.T) {
		check(t, "extra byte", e, "tenant-a", "purpose-1", append(bytes.Clone(blob), 0))
	})
	t.Run("unknown version", func(t *testing.T) {
		for _, v := range []byte{0x00, 0x02, 0xff} {
			b := bytes.Clone(blob)
			b[0] = v
			check(t, fmt.Sprintf("version %#x", v), e, "tenant-a", "purpose-1", b)
		}
	})
	// The blob itself is still fine.
	if got := mustOpen(t, e, "tenant-a", "purpose-1", blob); !bytes.Equal(got, pt) {
		t.Fatal("original blob no longer opens")
	}
}

func TestAssociatedDataIsLengthPrefixed(t *testing.T) {
	if bytes.Equal(associatedData(1, "ab", "c"), associatedData(1, "a", "bc")) {
		t.Fatal(`("ab","c") and ("a","bc") have the same associated data`)
	}
	if bytes.Equal(associatedData(1, "a", "b"), associatedData(2, "a", "b")) {
		t.Fatal("version is not bound")
	}
	// End to end: the same tenant with purposes that only differ in where
	// the boundary falls would collide without prefixes only across fields,
	// so check a purpose that is a prefix of another too.
	e := NewEnvelope(newCounting(t))
	blob := mustSeal(t, e, "t", "ab", []byte("x"))
	if _, err := e.Open(context.Background(), "t", "a", blob); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
}

func TestSealValidation(t *testing.T) {
	e := NewEnvelope(newCounting(t))
	if _, err := e.Seal(context.Background(), "", "p", []byte("x")); err == nil || !strings.HasPrefix(err.Error(), "seal: ") {
		t.Fatalf("empty tenant: err = %v", err)
	}
	if _, err := e.Seal(context.Background(), "t", "", []byte("x")); err == nil {
		t.Fatal("empty purpose accepted")
	}
}

func TestKeyReuseAndRotation(t *testing.T) {
	w := newCounting(t)
	clk := clock.NewFixed(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	e := NewEnvelope(w, WithClock(clk), WithKeyTTL(time.Minute), WithMaxUses(1000))

	var blobs [][]byte
	for i := 0; i < 500; i++ {
		blobs = append(blobs, mustSeal(t, e, "t1", "p", []byte(fmt.Sprint(i))))
	}
	if n := w.generated.Load(); n != 1 {
		t.Fatalf("GenerateDataKey called %d times for 500 seals, want 1", n)
	}

	clk.Advance(59 * time.Second)
	blobs = append(blobs, mustSeal(t, e, "t1", "p", []byte("500")))
	if n := w.generated.Load(); n != 1 {
		t.Fatalf("key rotated before its TTL (%d calls)", n)
	}
	clk.Advance(time.Second)
	blobs = append(blobs, mustSeal(t, e, "t1", "p", []byte("501")))
	if n := w.generated.Load(); n != 2 {
		t.Fatalf("GenerateDataKey called %d times after TTL, want 2", n)
	}
	if bytes.Equal(wrappedOf(t, blobs[0]), wrappedOf(t, blobs[len(blobs)-1])) {
		t.Fatal("same data key after TTL")
	}

	// Max uses: 501 uses of the first key are gone; the second key has 1.
	for i := 0; i < 999; i++ {
		mustSeal(t, e, "t1", "p", []byte("x"))
	}
	if n := w.generated.Load(); n != 2 {
		t.Fatalf("rotated before max uses (%d calls)", n)
	}
	mustSeal(t, e, "t1", "p", []byte("x"))
	if n := w.generated.Load(); n != 3 {
		t.Fatalf("GenerateDataKey called %d times after max uses, want 3", n)
	}

	// Blobs under retired keys still open, from the cache.
	for i, b := range blobs {
		if got := mustOpen(t, e, "t1", "p", b); string(got) != fmt.Sprint(i) {
			t.Fatalf("blob %d opened to %q", i, got)
		}
	}
	if n := w.decrypted.Load(); n != 0 {
		t.Fatalf("DecryptDataKey called %d times for keys this envelope made", n)
	}
}

func TestMaxUsesSmall(t *testing.T) {
	w := newCounting(t)
	e := NewEnvelope(w, WithMaxUses(10))
	for i := 0; i < 25; i++ {
		mustSeal(t, e, "t1", "p", []byte("x"))
	}
	if n := w.generated.Load(); n != 3 {
		t.Fatalf("GenerateDataKey called %d times for 25 seals at 10 uses, want 3", n)
	}
}

func TestTenantsGetDifferentKeys(t *testing.T) {
	w := newCounting(t)
	e := NewEnvelope(w)
	a := mustSeal(t, e, "tenant-a", "p", []byte("x"))
	b := mustSeal(t, e, "tenant-b", "p", []byte("x"))
	if bytes.Equal(wrappedOf(t, a), wrappedOf(t, b)) {
		t.Fatal("tenants share a data key")
	}
	if n := w.generated.Load(); n != 2 {
		t.Fatalf("GenerateDataKey called %d times, want 2", n)
	}
}

func TestOpenOnAnotherEnvelope(t *testing.T) {
	w := newCounting(t)
	e1 := NewEnvelope(w)
	var blobs [][]byte
	for i := 0; i < 10; i++ {
		blobs = append(blobs, mustSeal(t, e1, "t1", "p", []byte(fmt.Sprint(i))))
	}
	e2 := NewEnvelope(w) // a new process over the same keyring
	for i, b := range blobs {
		if got := mustOpen(t, e2, "t1", "p", b); string(got) != fmt.Sprint(i) {
			t.Fatalf("blob %d opened to %q", i, got)
		}
	}
	if n := w.decrypted.Load(); n != 1 {
		t.Fatalf("DecryptDataKey called %d times, want 1 (then cached)", n)
	}
}

func TestCacheBounded(t *testing.T) {
	w := newCounting(t)
	e := NewEnvelope(w, WithCacheSize(3))
	blobs := map[string][]byte{}
	for i := 0; i < 20; i++ {
		tenant := fmt.Sprintf("t%d", i)
		blobs[tenant] = mustSeal(t, e, tenant, "p", []byte(tenant))
	}
	e.mu.Lock()
	ns, no := e.sealing.Len(), e.opening.Len()
	e.mu.Unlock()
	if ns > 3 || no > 3 {
		t.Fatalf("cache sizes %d/%d exceed 3", ns, no)
	}
	for tenant, b := range blobs {
		if got := mustOpen(t, e, tenant, "p", b); string(got) != tenant {
			t.Fatalf("%s opened to %q", tenant, got)
		}
	}
	e.mu.Lock()
	no = e.opening.Len()
	e.mu.Unlock()
	if no > 3 {
		t.Fatalf("opening cache size %d exceeds 3", no)
	}
	if n := w.decrypted.Load(); n < 17 {
		t.Fatalf("DecryptDataKey called %d times; evicted keys must be unwrapped again", n)
	}
}

func TestWrapperErrors(t *testing.T) {
	boom := errors.New("kms unavailable")
	w := newCounting(t)
	e := NewEnvelope(w)
	blob := mustSeal(t, e, "t1", "p", []byte("secret-value"))

	w.fail = boom
	if _, err := e.Seal(context.Background(), "t2", "p", []byte("secret-value")); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "seal: ") {
		t.Fatalf("Seal err = %v, want wrapping %v with prefix", err, boom)
	}
	_, err := NewEnvelope(w).Open(context.Background(), "t1", "p", blob)
	if !errors.Is(err, boom) || errors.Is(err, ErrDecrypt) {
		t.Fatalf("Open err = %v, want the wrapper's error and not ErrDecrypt", err)
	}
	if strings.Contains(err.Error(), "secret-value") {
		t.Fatal("error contains plaintext")
	}
	// Failures are not cached.
	w.fail = nil
	if got := mustOpen(t, NewEnvelope(w), "t1", "p", blob); string(got) != "secret-value" {
		t.Fatal("open after recovery failed")
	}
}

type badWrapper struct{ key, wrapped []byte }

func (b badWrapper) GenerateDataKey(context.Context, string) ([]byte, []byte, error) {
	return bytes.Clone(b.key), bytes.Clone(b.wrapped), nil
}
func (b badWrapper) DecryptDataKey(context.Context, string, []byte) ([]byte, error) {
	return bytes.Clone(b.key), nil
}

func TestMisbehavingWrapper(t *testing.T) {
	ctx := context.Background()
	if _, err := NewEnvelope(badWrapper{key: make([]byte, 16), wrapped: []byte("w")}).Seal(ctx, "t", "p", nil); err == nil {
		t.Fatal("16-byte data key accepted")
	}
	if _, err := NewEnvelope(badWrapper{key: make([]byte, 32)}).Seal(ctx, "t", "p", nil); err == nil {
		t.Fatal("empty wrapped key accepted")
	}
	if _, err := NewEnvelope(badWrapper{key: make([]byte, 32), wrapped: make([]byte, 70000)}).Seal(ctx, "t", "p", nil); err == nil {
		t.Fatal("oversized wrapped key accepted")
	}
}

func TestConcurrentSealOpen(t *testing.T) {
	w := newCounting(t)
	w.delay = 20 * time.Millisecond // widen the miss window
	e := NewEnvelope(w, WithMaxUses(1<<30))
	const goroutines, perG, tenants = 64, 40, 4

	var mu sync.Mutex
	blobs := map[string][][]byte{}
	var wg sync.WaitGroup
	errc := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := fmt.Sprintf("t%d", g%tenants)
			for i := 0; i < perG; i++ {
				pt := []byte(fmt.Sprintf("%s-%d-%d", tenant, g, i))
				b, err := e.Seal(context.Background(), tenant, "p", pt)
				if err != nil {
					errc <- err
					return
				}
				got, err := e.Open(context.Background(), tenant, "p", b)
				if err != nil || !bytes.Equal(got, pt) {
					errc <- fmt.Errorf("open: %v", err)
					return
				}
				mu.Lock()
				blobs[tenant] = append(blobs[tenant], b)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if n := w.generated.Load(); n != tenants {
		t.Fatalf("GenerateDataKey called %d times for %d tenants", n, tenants)
	}

	// Concurrent cold-cache opens: one DecryptDataKey per tenant key.
	e2 := NewEnvelope(w)
	var wg2 sync.WaitGroup
	var failed atomic.Int64
	for tenant, bs := range blobs {
		for _, b := range bs[:16] {
			wg2.Add(1)
			go func() {
				defer wg2.Done()
				if _, err := e2.Open(context.Background(), tenant, "p", b); err != nil {
					failed.Add(1)
				}
			}()
		}
	}
	wg2.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d concurrent opens failed", failed.Load())
	}
	if n := w.decrypted.Load(); n != tenants {
		t.Fatalf("DecryptDataKey called %d times, want %d", n, tenants)
	}
}

// A waiter whose own context is fine retries when the goroutine that was
// generating the key gave up because of its context.
func TestWaiterSurvivesLeaderCancel(t *testing.T) {
	w := newCounting(t)
	w.delay = 50 * time.Millisecond
	e := NewEnvelope(w)

	ctx, cancel := context.WithCancel(context.Background())
	leaderDone := make(chan error, 1)
	ctxWrapper := &ctxAware{KeyWrapper: w}
	e.w = ctxWrapper
	go func() {
		_, err := e.Seal(ctx, "t1", "p", []byte("a"))
		leaderDone <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the leader start
	waiter := make(chan error, 1)
	go func() {
		_, err := e.Seal(context.Background(), "t1", "p", []byte("b"))
		waiter <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader err = %v, want context.Canceled", err)
	}
	if err := <-waiter; err != nil {
		t.Fatalf("waiter err = %v", err)
	}
}

// ctxAware returns the context's error after the inner call, like an SDK
// client whose request was cancelled.
type ctxAware struct{ KeyWrapper }

func (c *ctxAware) GenerateDataKey(ctx context.Context, tenantID string) ([]byte, []byte, error) {
	p, w, err := c.KeyWrapper.GenerateDataKey(ctx, tenantID)
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	return p, w, err
}
