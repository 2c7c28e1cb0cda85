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
)

// EndpointGate bounds the attempts one subscription has in flight in this
// process, so that a receiver that answers slowly or never (until the 15 s
// attempt timeout) cannot take every worker and stall the other work (a
// chaos run's finding: one such subscription on ["*"] held all of them):
// at most MaxSlow of a subscription's attempts may have been in flight for
// longer than SlowAfter, and at most MaxAtOnce at all. An attempt beyond
// either is not made: it is recorded as a failed attempt ("endpoint busy")
// and retried on the schedule, as its timeout would have been. A receiver
// that answers within SlowAfter is never refused below MaxAtOnce. The zero
// value uses the defaults; a nil gate bounds nothing. Safe for concurrent
// use.
type EndpointGate struct {
	SlowAfter time.Duration // default DefaultSlowAttemptAfter
	MaxSlow   int           // default DefaultMaxSlowAttempts
	MaxAtOnce int           // default DefaultMaxAttemptsAtOnce

	mu    sync.Mutex
	state map[string]*endpointLoad
}

type endpointLoad struct{ inFlight, slow int }

func (g *EndpointGate) limits() (time.Duration, int, int) {
	after, maxSlow, maxAtOnce := g.SlowAfter, g.MaxSlow, g.MaxAtOnce
	if after <= 0 {
		after = DefaultSlowAttemptAfter
	}
	if maxSlow <= 0 {
		maxSlow = DefaultMaxSlowAttempts
	}
	if maxAtOnce <= 0 {
		maxAtOnce = DefaultMaxAttemptsAtOnce
	}
	return after, maxSlow, maxAtOnce
}

// enter admits an attempt to the subscription key (tenant and subscription)
// and returns the function that ends it, or, when the endpoint has too many
// attempts in flight, why it is not made.
func (g *EndpointGate) enter(key string) (leave func(), busy string) {
	if g == nil {
		return func() {}, ""
	}
	after, maxSlow, maxAtOnce := g.limits()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == nil {
		g.state = map[string]*endpointLoad{}
	}
	l := g.state[key]
	if l == nil {
		l = &endpointLoad{}
		g.state[key] = l
	}
	switch {
	case l.slow >= maxSlow:
		return nil, fmt.Sprintf("not attempted: endpoint busy (%d attempts in flight for over %s)", l.slow, after)
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
		}
	})
	return func() {
		t.Stop()
		g.mu.Lock()
		defer g.mu.Unlock()
		if done {
			return
		}
		done = true
		l.inFlight--
		if slow {
			l.slow--
		}
		if l.inFlight == 0 {
			delete(g.state, key)
		}
	}, ""
}
