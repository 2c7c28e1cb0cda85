package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/lru"
)

// ErrDecrypt is wrapped by every error that means "this blob does not open
// for this tenant and purpose": tampering, truncation, an unknown format
// version, a wrong tenant or purpose, or a wrapped key the KeyWrapper rejects.
// Infrastructure failures (KMS unreachable, throttling) do not wrap it.
var ErrDecrypt = errors.New("secrets: decryption failed")

// Sealer encrypts and decrypts small secrets bound to a tenant and a purpose.
type Sealer interface {
	Seal(ctx context.Context, tenantID, purpose string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, tenantID, purpose string, sealed []byte) ([]byte, error)
}

// KeyWrapper makes and unwraps data keys (the KMS seam).
//
// The caller owns the returned slices (an Envelope clears plaintext keys once
// it has built a cipher from them). DecryptDataKey must return an error
// wrapping ErrDecrypt when the wrapped key is not valid for the tenant, and
// any other error for failures that may go away on retry.
type KeyWrapper interface {
	// GenerateDataKey returns a fresh 32-byte data key and its wrapped form, bound to tenantID.
	GenerateDataKey(ctx context.Context, tenantID string) (plaintext, wrapped []byte, err error)
	// DecryptDataKey unwraps a data key; the tenant must be the one it was made for.
	DecryptDataKey(ctx context.Context, tenantID string, wrapped []byte) ([]byte, error)
}

const (
	version1     byte = 0x01
	dataKeySize       = 32
	nonceSize         = 12
	tagSize           = 16
	headerSize        = 1 + 2
	maxWrappedSz      = 0xFFFF

	defaultKeyTTL    = 5 * time.Minute
	defaultMaxUses   = 100000
	defaultCacheSize = 10000
)

// Option configures an Envelope.
type Option func(*Envelope)

// WithClock sets the clock used for data key expiry (default clock.System).
func WithClock(c clock.Clock) Option {
	return func(e *Envelope) {
		if c != nil {
			e.clock = c
		}
	}
}

// WithKeyTTL sets how long one data key is used for new seals (default 5
// minutes). Blobs sealed under an older key still open. Non-positive values
// are ignored.
func WithKeyTTL(d time.Duration) Option {
	return func(e *Envelope) {
		if d > 0 {
			e.ttl = d
		}
	}
}

// WithMaxUses sets how many seals one data key may perform (default 100000).
// Non-positive values are ignored.
func WithMaxUses(n int) Option {
	return func(e *Envelope) {
		if n > 0 {
			e.maxUses = n
		}
	}
}

// WithCacheSize bounds the number of tenants with a cached sealing key and,
// separately, the number of cached unwrapped keys (default 10000 each; least
// recently used entries are evicted). Non-positive values are ignored.
func WithCacheSize(n int) Option {
	return func(e *Envelope) {
		if n > 0 {
			e.cacheSize = n
		}
	}
}

// Envelope implements Sealer over a KeyWrapper with an in-memory cache of data keys.
// It is safe for concurrent use.
type Envelope struct {
	w         KeyWrapper
	clock     clock.Clock
	ttl       time.Duration
	maxUses   int
	cacheSize int

	mu      sync.Mutex
	sealing *lru.Cache[string, *sealKey]               // tenant -> current key for new seals
	opening *lru.Cache[[sha256.Size]byte, cipher.AEAD] // hash(tenant, wrapped) -> cipher
	flights map[string]*flight                         // in-progress KeyWrapper calls
}

// sealKey is a data key in use for new seals of one tenant.
type sealKey struct {
	aead    cipher.AEAD
	wrapped []byte
	expires time.Time
	uses    int
}

type flight struct {
	done chan struct{}
	err  error
}

var _ Sealer = (*Envelope)(nil)

// NewEnvelope returns an Envelope that gets its data keys from w.
func NewEnvelope(w KeyWrapper, opts ...Option) *Envelope {
	e := &Envelope{
		w:         w,
		clock:     clock.System{},
		ttl:       defaultKeyTTL,
		maxUses:   defaultMaxUses,
		cacheSize: defaultCacheSize,
		flights:   make(map[string]*flight),
	}
	for _, o := range opts {
		o(e)
	}
	e.sealing = lru.New[string, *sealKey](e.cacheSize)
	e.opening = lru.New[[sha256.Size]byte, cipher.AEAD](e.cacheSize)
	return e
}

// Seal encrypts plaintext for tenantID and purpose. The result is
// self-contained; see the package documentation for its format.
func (e *Envelope) Seal(ctx context.Context, tenantID, purpose string, plaintext []byte) ([]byte, error) {
	if tenantID == "" {
		return nil, errors.New("seal: tenant id is required")
	}
	if purpose == "" {
		return nil, errors.New("seal: purpose is required")
	}
	k, err := e.sealKey(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("seal: data key: %w", err)
	}
	n := len(k.wrapped)
	out := make([]byte, headerSize+n+nonceSize, headerSize+n+nonceSize+len(plaintext)+tagSize)
	out[0] = version1
	binary.BigEndian.PutUint16(out[1:3], uint16(n))
	copy(out[headerSize:], k.wrapped)
	nonce := out[headerSize+n : headerSize+n+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return k.aead.Seal(out, nonce, plaintext, associatedData(version1, tenantID, purpose)), nil
}

// Open decrypts a blob made by Seal for the same tenantID and purpose. Any
// blob that does not verify yields an error wrapping ErrDecrypt.
func (e *Envelope) Open(ctx context.Context, tenantID, purpose string, sealed []byte) ([]byte, error) {
	if tenantID == "" {
		return nil, fmt.Errorf("open: tenant id is required: %w", ErrDecrypt)
	}
	if len(sealed) < headerSize+1+nonceSize+tagSize {
		return nil, fmt.Errorf("open: blob too short: %w", ErrDecrypt)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("open: unknown format version: %w", ErrDecrypt)
	}
	n := int(binary.BigEndian.Uint16(sealed[1:3]))
	if n == 0 || len(sealed) < headerSize+n+nonceSize+tagSize {
		return nil, fmt.Errorf("open: malformed blob: %w", ErrDecrypt)
	}
	wrapped := sealed[headerSize : headerSize+n]
	nonce := sealed[headerSize+n : headerSize+n+nonceSize]
	ct := sealed[headerSize+n+nonceSize:]

	aead, err := e.openKey(ctx, tenantID, wrapped)
	if err != nil {
		return nil, fmt.Errorf("open: data key: %w", err)
	}
	pt, err := aead.Open(nil, nonce, ct, associatedData(version1, tenantID, purpose))
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrDecrypt)
	}
	return pt, nil
}

// sealKey returns the tenant's current sealing key with one use reserved,
// generating a new one when there is none or it is spent.
func (e *Envelope) sealKey(ctx context.Context, tenantID string) (*sealKey, error) {
	for {
		e.mu.Lock()
		if k, ok := e.sealing.Get(tenantID); ok {
			if k.uses < e.maxUses && e.clock.Now().Before(k.expires) {
				k.uses++
				e.mu.Unlock()
				return k, nil
			}
			e.sealing.Remove(tenantID)
		}
		e.mu.Unlock()

		var mine *sealKey
		leader, err := e.once(ctx, "seal\x00"+tenantID, func() error {
			plain, wrapped, err := e.w.GenerateDataKey(ctx, tenantID)
			if err != nil {
				return err
			}
			if len(wrapped) == 0 || len(wrapped) > maxWrappedSz {
				return fmt.Errorf("key wrapper returned a wrapped key of %d bytes", len(wrapped))
			}
			aead, err := newAEAD(plain)
			if err != nil {
				return err
			}
			mine = &sealKey{
				aead:    aead,
				wrapped: append([]byte(nil), wrapped...),
				expires: e.clock.Now().Add(e.ttl),
				uses:    1, // reserved for the caller that made it
			}
			e.mu.Lock()
			e.sealing.Put(tenantID, mine)
			e.opening.Put(cacheKey(tenantID, mine.wrapped), aead)
			e.mu.Unlock()
			return nil
		})
		if err != nil {
			if !leader && ctx.Err() == nil && isContextErr(err) {
				continue // the leader's context ended, not ours: try again
			}
			return nil, err
		}
		if mine != nil {
			return mine, nil
		}
		// Another goroutine made the key (or panicked): look again.
	}
}

// openKey returns the cipher for a wrapped data key of tenantID.
func (e *Envelope) openKey(ctx context.Context, tenantID string, wrapped []byte) (cipher.AEAD, error) {
	ck := cacheKey(tenantID, wrapped)
	for {
		e.mu.Lock()
		aead, ok := e.opening.Get(ck)
		e.mu.Unlock()
		if ok {
			return aead, nil
		}
		leader, err := e.once(ctx, "open\x00"+string(ck[:]), func() error {
			plain, err := e.w.DecryptDataKey(ctx, tenantID, wrapped)
			if err != nil {
				return err
			}
			a, err := newAEAD(plain)
			if err != nil {
				return err
			}
			aead = a
			e.mu.Lock()
			e.opening.Put(ck, a)
			e.mu.Unlock()
			return nil
		})
		if err != nil {
			if !leader && ctx.Err() == nil && isContextErr(err) {
				continue
			}
			return nil, err
		}
		if aead != nil {
			return aead, nil
		}
	}
}

// once runs fn unless a call for the same key is already in progress, in
// which case it waits for that call and returns its error. leader reports
// whether fn was run by this call. Results are passed through the caches.
func (e *Envelope) once(ctx context.Context, key string, fn func() error) (leader bool, err error) {
	e.mu.Lock()
	if f, ok := e.flights[key]; ok {
		e.mu.Unlock()
		select {
		case <-f.done:
			return false, f.err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	e.flights[key] = f
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.flights, key)
		e.mu.Unlock()
		close(f.done)
	}()
	f.err = fn()
	return true, f.err
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// newAEAD builds AES-256-GCM from a data key and clears the key bytes.
func newAEAD(key []byte) (cipher.AEAD, error) {
	defer clear(key)
	if len(key) != dataKeySize {
		return nil, fmt.Errorf("key wrapper returned a data key of %d bytes, want %d", len(key), dataKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// cacheKey indexes unwrapped keys by tenant and wrapped bytes, so that a
// cache hit never hands one tenant's key to another tenant.
func cacheKey(tenantID string, wrapped []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(lengthPrefixed(nil, tenantID))
	h.Write(wrapped)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// associatedData binds the format version, tenant and purpose.
func associatedData(version byte, tenantID, purpose string) []byte {
	ad := make([]byte, 0, 1+4+len(tenantID)+4+len(purpose))
	ad = append(ad, version)
	ad = lengthPrefixed(ad, tenantID)
	return lengthPrefixed(ad, purpose)
}

func lengthPrefixed(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}
