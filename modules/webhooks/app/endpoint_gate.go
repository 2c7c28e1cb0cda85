package app

import (
	"fmt"
	"sync"
	"time"
)

// Defaults of EndpointGate.
const (
	DefaultSlowAttemptAfter  = time.Second
	DefaultMaxSlowAttempts   = 8
	DefaultMaxAttemptsAtOnce = 64
	DefaultSlowMemory        = 30 * time.Second
)

// EndpointGate bounds the attempts one subscription has in flight in this
// process, so that a receiver that answers slowly or never (until the 15 s
// attempt timeout) cannot take every worker and stall the other work (a
// chaos run's finding: one such subscription on ["*"] held all of them):
// at most MaxSlow of a subscription's attempts may have been in flight for
// longer than SlowAfter, and at most MaxAtOnce at all; once two of its
// attempts were slow at once (memoryArm), until SlowMemory after its last
// slow attempt only MaxSlow may be in flight at all (else each wave of
// timeouts let a burst of MaxAtOnce, one per free worker, in before its
// attempts counted as slow: a second chaos run saw 40 held where 8 were
// meant). An attempt beyond these is not made:
// it is put off ("endpoint busy": domain.Delivery.RecordDeferral), not
// counted as an attempt, and tried again at the schedule's pace. A receiver that answers within
// SlowAfter is never refused below MaxAtOnce. The counts are this
// process's, and start empty. The zero value uses the defaults; a nil gate
// bounds nothing. Safe for concurrent use.
type EndpointGate struct {
	SlowAfter  time.Duration // default DefaultSlowAttemptAfter
	MaxSlow    int           // default DefaultMaxSlowAttempts
	MaxAtOnce  int           // default DefaultMaxAttemptsAtOnce
	SlowMemory time.Duration // default DefaultSlowMemory

	mu    sync.Mutex
	state map[string]*endpointLoad
}

type endpointLoad struct {
	inFlight, slow int
	slowUntil      time.Time // while after now, MaxSlow bounds inFlight
}

// memoryArm is how many of a subscription's attempts must be slow at once
// before SlowMemory applies: one slow call of a receiver that answers (a
// loaded host, a slow moment) must not hold it to MaxSlow for 30 s (a chaos
// run saw a normal receiver refused 1,513 times after 13 calls over 1 s); a
// receiver that hangs has many slow at once.
const memoryArm = 2

// maxGateEntries is how many subscriptions the gate tracks before it drops
// those without attempts in flight whose slowness it no longer needs.
const maxGateEntries = 4096

func (g *EndpointGate) limits() (after time.Duration, maxSlow, maxAtOnce int, memory time.Duration) {
	after, maxSlow, maxAtOnce, memory = g.SlowAfter, g.MaxSlow, g.MaxAtOnce, g.SlowMemory
	if after <= 0 {
		after = DefaultSlowAttemptAfter
	}
	if maxSlow <= 0 {
		maxSlow = DefaultMaxSlowAttempts
	}
	if maxAtOnce <= 0 {
		maxAtOnce = DefaultMaxAttemptsAtOnce
	}
	if memory <= 0 {
		memory = DefaultSlowMemory
	}
	return after, maxSlow, maxAtOnce, memory
}

// enter admits an attempt to the subscription key (tenant and subscription)
// and returns the function that ends it, or, when the endpoint has too many
// attempts in flight, why it is not made.
func (g *EndpointGate) enter(key string) (leave func(), busy string) {
	if g == nil {
		return func() {}, ""
	}
	after, maxSlow, maxAtOnce, memory := g.limits()
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == nil {
		g.state = map[string]*endpointLoad{}
	}
	l := g.state[key]
	if l == nil {
		if len(g.state) >= maxGateEntries {
			g.forget(now)
		}
		l = &endpointLoad{}
		g.state[key] = l
	}
	switch {
	case l.slow >= maxSlow:
		return nil, fmt.Sprintf("not attempted: endpoint busy (%d attempts in flight for over %s)", l.slow, after)
	case l.inFlight >= maxSlow && now.Before(l.slowUntil):
		return nil, fmt.Sprintf("not attempted: endpoint busy (%d attempts in flight, and attempts took over %s in the last %s)", l.inFlight, after, memory)
	case l.inFlight >= maxAtOnce:
		return nil, fmt.Sprintf("not attempted: endpoint busy (%d attempts in flight)", l.inFlight)
	}
	l.inFlight++
	done, slow := false, false
	t := time.AfterFunc(after, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !done {
			slow = true
			l.slow++
			if l.slow >= memoryArm {
				l.slowUntil = time.Now().Add(memory)
			}
		}
	})
	return func() {
		t.Stop()
		end := time.Now()
		g.mu.Lock()
		defer g.mu.Unlock()
		if done {
			return
		}
		done = true
		l.inFlight--
		if slow {
			l.slow--
			if end.Before(l.slowUntil) {
				l.slowUntil = end.Add(memory)
			}
		}
		if l.inFlight == 0 && !end.Before(l.slowUntil) && g.state[key] == l {
			delete(g.state, key)
		}
	}, ""
}

// forget drops the entries without attempts in flight whose slowness has
// passed. Call with mu held.
func (g *EndpointGate) forget(now time.Time) {
	for k, l := range g.state {
		if l.inFlight == 0 && !now.Before(l.slowUntil) {
			delete(g.state, k)
		}
	}
}
