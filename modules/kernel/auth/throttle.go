package auth

import (
	"container/list"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
)

// Defaults of ThrottleLimits (ADR 0011).
const (
	DefaultKeyFailures        = 10          // failed attempts per API key id per window
	DefaultAddressFailures    = 30          // failed attempts per source address per window
	DefaultThrottleWindow     = time.Minute // a fixed window, opened by its first failure
	DefaultThrottleMaxEntries = 10_000      // per table (key ids, addresses)
)

// ThrottleLimits configure a Throttle; zero fields take the defaults.
type ThrottleLimits struct {
	KeyFailures     int
	AddressFailures int
	Window          time.Duration
	MaxEntries      int
}

// Throttle counts failed authentication attempts per API key id and per
// source address, in memory, per instance (ADR 0011):
//
//   - a key id with KeyFailures failures in its window is refused before its
//     secret is checked, even the right one, until the window ends: a brute
//     force on one key learns nothing more. Other key ids (the owner's other
//     keys) are not affected.
//   - an address with AddressFailures failures in its window has its further
//     failures answered as throttled (429) instead of unauthenticated (401);
//     credentials that verify still pass, so a NAT shared by a tenant's apps
//     is never locked out by one misconfigured app or an attacker behind it.
//     IPv6 addresses count per /64 (one host's usual allocation).
//
// Both tables are LRU-bounded (MaxEntries each): a flood of random key ids or
// addresses evicts the entries whose last failure is oldest, never grows
// memory. Safe for concurrent use. The check and the count are not one
// atomic step: concurrent guesses on one key id may overshoot the limit by
// the number in flight (one per Lambda instance).
type Throttle struct {
	keys, addrs *window
}

// NewThrottle returns a throttle with limits l (zero fields: defaults) on clk
// (nil: the system clock).
func NewThrottle(l ThrottleLimits, clk clock.Clock) *Throttle {
	if l.KeyFailures <= 0 {
		l.KeyFailures = DefaultKeyFailures
	}
	if l.AddressFailures <= 0 {
		l.AddressFailures = DefaultAddressFailures
	}
	if l.Window <= 0 {
		l.Window = DefaultThrottleWindow
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultThrottleMaxEntries
	}
	if clk == nil {
		clk = clock.System{}
	}
	return &Throttle{
		keys:  newWindow(l.KeyFailures, l.Window, l.MaxEntries, clk),
		addrs: newWindow(l.AddressFailures, l.Window, l.MaxEntries, clk),
	}
}

// Check reports whether a credential is refused before it is checked, and
// in how many seconds its window frees: an API key id over its limit; or an
// operator key attempt (a credential that is neither an API key nor an
// access token) from an address over its limit, so that a weak operator key
// cannot be guessed at the address's pace (found in review: the address
// limit alone only turned failures into 429s and let every guess be
// checked). Valid API keys and tokens from a throttled address still pass.
// Cheap when nothing failed recently (the successful path): no lock.
func (t *Throttle) Check(credential, addr string) (retryAfter int, throttled bool) {
	if keyID, _, ok := ParseAPIKey(credential); ok {
		if t.keys.n.Load() == 0 {
			return 0, false
		}
		return t.keys.blocked(keyID)
	}
	if t.addrs.n.Load() == 0 || LooksLikeJWT(credential) {
		return 0, false
	}
	if a := addressKey(addr); a != "" {
		return t.addrs.blocked(a)
	}
	return 0, false
}

// Fail records a failed credential from addr: against its API key id, if it
// has one, and against addr ("" is not counted). It reports whether the
// answer is throttled (the address was over its limit already, or the key id
// is now) and in how many seconds the longer of the two windows frees.
//
// An address over its limit no longer adds key ids to the table: a flood of
// random key ids from one address cannot evict a key id under attack and so
// give it a fresh window (found in review).
func (t *Throttle) Fail(credential, addr string) (retryAfter int, throttled bool) {
	a := addressKey(addr)
	overAlready := false
	if a != "" {
		_, overAlready = t.addrs.blocked(a)
	}
	if keyID, _, ok := ParseAPIKey(credential); ok && !overAlready {
		// The failure that reaches the limit is still a 401; the next attempt is refused.
		t.keys.fail(keyID)
	}
	if a != "" {
		if ra, over := t.addrs.fail(a); over {
			retryAfter, throttled = ra, true
		}
	}
	return retryAfter, throttled
}

// addressKey is the counting key of a source address: the address itself,
// an IPv6 address's /64 prefix, or addr as it is when it does not parse.
func addressKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is6() || ip.Is4In6() {
		return addr
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// window is one LRU-bounded table of fixed windows.
type window struct {
	limit int
	d     time.Duration
	max   int
	clk   clock.Clock

	n  atomic.Int64 // len(m), read without the lock
	mu sync.Mutex
	m  map[string]*list.Element // of *entry
	l  list.List                // front: most recent failure
}

type entry struct {
	key   string
	start time.Time // the window's first failure
	count int
}

func newWindow(limit int, d time.Duration, max int, clk clock.Clock) *window {
	return &window{limit: limit, d: d, max: max, clk: clk, m: make(map[string]*list.Element)}
}

// blocked reports whether key has reached the limit in its current window.
func (w *window) blocked(key string) (int, bool) {
	now := w.clk.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sweep(now)
	el, ok := w.m[key]
	if !ok {
		return 0, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.start.Add(w.d)) || e.count < w.limit {
		return 0, false
	}
	return w.retryAfter(e, now), true
}

// fail counts a failure of key; over is true when the limit was reached
// before this failure.
func (w *window) fail(key string) (int, bool) {
	now := w.clk.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sweep(now)
	el, ok := w.m[key]
	if !ok {
		for len(w.m) >= w.max {
			w.evict(w.l.Back())
		}
		el = w.l.PushFront(&entry{key: key, start: now})
		w.m[key] = el
		w.n.Store(int64(len(w.m)))
	} else {
		w.l.MoveToFront(el)
	}
	e := el.Value.(*entry)
	if !now.Before(e.start.Add(w.d)) {
		e.start, e.count = now, 0 // the window ended: a new one opens
	}
	over := e.count >= w.limit
	e.count++
	return w.retryAfter(e, now), over
}

// sweep drops expired entries from the least recently failed end, so that
// a quiet table empties (and Check takes its fast path again).
func (w *window) sweep(now time.Time) {
	for el := w.l.Back(); el != nil && !now.Before(el.Value.(*entry).start.Add(w.d)); el = w.l.Back() {
		w.evict(el)
	}
}

func (w *window) evict(el *list.Element) {
	w.l.Remove(el)
	delete(w.m, el.Value.(*entry).key)
	w.n.Store(int64(len(w.m)))
}

// retryAfter is the whole seconds until e's window ends, at least 1.
func (w *window) retryAfter(e *entry, now time.Time) int {
	left := e.start.Add(w.d).Sub(now)
	s := int((left + time.Second - 1) / time.Second)
	return max(s, 1)
}

// len is the number of entries (tests).
func (w *window) len() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.m) }
