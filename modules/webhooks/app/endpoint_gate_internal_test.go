package app

import (
	"strings"
	"testing"
	"time"
)

// The gate refuses a subscription's attempts once MaxSlow of them have been
// in flight past SlowAfter, or MaxAtOnce at all; fast attempts never count
// as slow; subscriptions do not share their counts; a nil gate admits all.
func TestEndpointGate(t *testing.T) {
	g := &EndpointGate{SlowAfter: 30 * time.Millisecond, MaxSlow: 2, MaxAtOnce: 4, SlowMemory: 300 * time.Millisecond}
	enter := func(key string) func() {
		t.Helper()
		leave, busy := g.enter(key)
		if busy != "" {
			t.Fatalf("%s refused: %s", key, busy)
		}
		return leave
	}
	refused := func(key, want string) {
		t.Helper()
		if leave, busy := g.enter(key); busy == "" || !strings.Contains(busy, want) {
			if leave != nil {
				leave()
			}
			t.Fatalf("%s: busy %q, want a refusal saying %q", key, busy, want)
		}
	}

	// Fast attempts, many in a row: never slow.
	for range 20 {
		enter("t/a")()
	}
	// One slow attempt alone (a slow moment of a receiver that answers)
	// does not hold the subscription to MaxSlow afterwards.
	one := enter("t/c")
	time.Sleep(60 * time.Millisecond)
	one()
	for _, leave := range []func(){enter("t/c"), enter("t/c"), enter("t/c")} {
		leave()
	}
	// Four at once are admitted, the fifth is not.
	var open []func()
	for range 4 {
		open = append(open, enter("t/a"))
	}
	refused("t/a", "4 attempts in flight")
	enter("t/b")() // another subscription is not affected
	for _, leave := range open {
		leave()
	}
	open = nil

	// Two slow attempts close the gate until one ends.
	open = append(open, enter("t/a"), enter("t/a"))
	time.Sleep(100 * time.Millisecond)
	refused("t/a", "2 attempts in flight for over 30ms")
	enter("t/b")()
	open[0]()
	open[0]() // leaving twice is harmless
	third := enter("t/a")
	third()
	open[1]()

	// For SlowMemory after a slow attempt, MaxSlow bounds the attempts in
	// flight at all: a wave of new attempts cannot get MaxAtOnce in before
	// they count as slow (a chaos run's finding).
	open = []func(){enter("t/a"), enter("t/a")}
	refused("t/a", "attempts took over 30ms in the last 300ms")
	for _, leave := range open {
		leave()
	}
	time.Sleep(400 * time.Millisecond) // SlowMemory passed
	open = nil
	for range 4 {
		open = append(open, enter("t/a"))
	}
	for _, leave := range open {
		leave()
	}
	if len(g.state) != 0 {
		t.Fatalf("state left after every attempt ended and the slowness passed: %v", g.state)
	}

	var none *EndpointGate
	leave, busy := none.enter("t/a")
	if busy != "" {
		t.Fatal("a nil gate refused")
	}
	leave()
}
