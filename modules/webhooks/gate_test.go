package webhooks_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
)

// tarpit answers requests to /tarpit only once released (or when the
// request gives up), and every other request at once with 204.
type tarpit struct {
	release  chan struct{}
	inFlight atomic.Int32
	fast     atomic.Int32
}

func (p *tarpit) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/tarpit" {
		p.inFlight.Add(1)
		defer p.inFlight.Add(-1)
		select {
		case <-p.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	} else {
		p.fast.Add(1)
	}
	return &http.Response{StatusCode: 204, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
}

// A subscriber that answers slowly or never must not hold every worker (a
// chaos run's finding: one on ["*"] stalled all local work): once MaxSlow of
// its attempts have been in flight past SlowAfter, its next attempts are not
// made (put off, "endpoint busy": not one of the delivery's attempts, tried
// again on the schedule's pace), and the fan-outs of later events finish at
// once, delivering to the other subscribers.
func TestSlowSubscriberIsGated(t *testing.T) {
	pit := &tarpit{release: make(chan struct{})}
	e := newEnv(t, options{allowPrivate: true, transport: pit, noJitter: true,
		gate: &app.EndpointGate{SlowAfter: 50 * time.Millisecond, MaxSlow: 2}})
	tn := e.onboard("Acme")
	slow := e.subscribe(tn, tn.Root, "http://127.0.0.1:9/tarpit", "*")
	fast := e.subscribe(tn, tn.Root, "http://127.0.0.1:9/fast", "*")
	run := func(entry eventstore.OutboxEntry) error { return e.exec.Handle(context.Background(), entry) }

	var first []eventstore.OutboxEntry
	for range 2 {
		first = append(first, e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_1")))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(first))
	for i, entry := range first {
		wg.Go(func() { errs[i] = run(entry) })
	}
	released := false
	defer func() {
		if !released {
			close(pit.release)
		}
		wg.Wait()
	}()
	waitUntil(t, "two attempts held by the slow subscriber", func() bool { return pit.inFlight.Load() == 2 })
	time.Sleep(150 * time.Millisecond) // past SlowAfter

	for range 3 {
		start := time.Now()
		if err := run(e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_2"))); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("a fan-out took %v while the slow subscriber holds its attempts", d)
		}
	}
	if n := pit.inFlight.Load(); n != 2 {
		t.Fatalf("%d attempts in flight at the slow subscriber, want 2 (MaxSlow)", n)
	}
	if n := pit.fast.Load(); n != 5 {
		t.Fatalf("the other subscriber got %d attempts, want 5 (2 fan-outs waiting, 3 done)", n)
	}
	busy := 0
	for _, d := range e.deliveries(tn, slow.SubscriptionID) {
		if d["status"] == "pending" && d["attempts"] == 0.0 && strings.Contains(d["lastError"].(string), "endpoint busy") && d["nextAttemptAt"] != nil {
			busy++
		}
	}
	if busy != 3 {
		t.Fatalf("%d deliveries refused as busy with a retry, want 3: %v", busy, e.deliveries(tn, slow.SubscriptionID))
	}
	if n := len(e.pending(app.WorkDeliver)); n != 3 {
		t.Fatalf("%d retry items, want 3", n)
	}

	close(pit.release)
	released = true
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int{}
	for _, d := range e.deliveries(tn, slow.SubscriptionID) {
		got[d["status"].(string)]++
	}
	if got["succeeded"] != 2 || got["pending"] != 3 {
		t.Fatalf("slow subscriber's deliveries = %v, want 2 succeeded, 3 pending", got)
	}
	if n := len(e.deliveries(tn, fast.SubscriptionID)); n != 5 {
		t.Fatalf("the other subscriber has %d deliveries, want 5", n)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
