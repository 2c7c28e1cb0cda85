package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/webhooks/adapters"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// pit is a transport whose /pit endpoint times out (at once: the error a
// client's deadline gives) until it answers, and whose other paths answer
// 204. hold, when set, holds /pit calls until it is closed. While fails is
// set, /pit answers 500 at once (a failed attempt that does not pause).
type pit struct {
	answers atomic.Bool
	fails   atomic.Bool
	calls   atomic.Int32
	fast    atomic.Int32
	hold    chan struct{}
	mu      sync.Mutex
}

func (p *pit) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/pit" {
		p.fast.Add(1)
		return &http.Response{StatusCode: 204, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
	}
	p.calls.Add(1)
	p.mu.Lock()
	hold := p.hold
	p.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if p.fails.Load() {
		return &http.Response{StatusCode: 500, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
	}
	if !p.answers.Load() {
		return nil, context.DeadlineExceeded
	}
	return &http.Response{StatusCode: 204, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
}

// pauseOf reads a subscription's pause from its row.
func (e *env) pauseOf(tn tenant, subID string) *adapters.PauseRow {
	e.t.Helper()
	rec, err := e.store.GetRecord(context.Background(), tn.ID, adapters.CollectionSubscriptions, subID)
	if err != nil {
		e.t.Fatal(err)
	}
	var row adapters.SubscriptionRow
	if err := json.Unmarshal(rec.Data, &row); err != nil {
		e.t.Fatal(err)
	}
	return row.Pause
}

// An endpoint that gets no answer within the attempt timeout is paused for
// every process (the in-process gate bounds one process only: in Lambda
// mode such an endpoint could hold every worker instance): no attempt is
// made until the pause ends, then one attempt probes it while the others
// are still refused; a probe that times out doubles the pause, one that is
// answered resumes the endpoint. Refused attempts are failed attempts
// retried on the schedule, and reach the endpoint once it answers.
func TestEndpointThatTimesOutIsPaused(t *testing.T) {
	p := &pit{}
	testPause(t, p, newEnv(t, options{allowPrivate: true, transport: p, noJitter: true, retryScale: 0.001}))
}

// The pause and its probe on DynamoDB: the claim is a conditional write of
// the subscription's stream, committed before the call.
func TestEndpointThatTimesOutIsPausedOnDynamoDB(t *testing.T) {
	p := &pit{}
	testPause(t, p, newDynamoEnvWith(t, options{allowPrivate: true, transport: p, noJitter: true, retryScale: 0.001}))
}

func testPause(t *testing.T, p *pit, e *env) {
	tn := e.onboard("Acme")
	slow := e.subscribe(tn, tn.Root, "http://127.0.0.1:9/pit", "*")
	e.subscribe(tn, tn.Root, "http://127.0.0.1:9/fast", "*")
	fanOut := func(msg string) {
		t.Helper()
		if err := e.exec.Handle(context.Background(), e.publish(e.event(tn, "message.sent", []string{tn.Root}, msg))); err != nil {
			t.Fatal(err)
		}
	}
	health := func() {
		t.Helper()
		for _, it := range e.pending(app.WorkSubscriptionHealth) {
			if err := e.exec.Handle(context.Background(), it); err != nil {
				t.Fatal(err)
			}
			if err := e.store.AckOutbox(context.Background(), []eventstore.OutboxEntry{it}); err != nil {
				t.Fatal(err)
			}
		}
	}
	streamTypes := func() []string {
		var out []string
		for _, ev := range e.stream(tn.ID, adapters.SubscriptionStream(slow.SubscriptionID)) {
			out = append(out, ev.Type)
		}
		return out
	}

	// A timeout pauses the endpoint for 30 s (after the attempt ended).
	fanOut("msg_1")
	firstTimeout := e.pending(app.WorkSubscriptionHealth)
	if len(firstTimeout) != 1 {
		t.Fatalf("%d health items after the first timeout, want 1", len(firstTimeout))
	}
	health()
	pause := e.pauseOf(tn, slow.SubscriptionID)
	if p.calls.Load() != 1 || pause == nil || pause.Trips != 1 || !pause.Until.Equal(t0.Add(domain.PauseFirst)) || pause.Probe {
		t.Fatalf("after a timeout: %d calls, pause %+v; want 1 call and a pause of trip 1 until t0+30s", p.calls.Load(), pause)
	}

	// While paused: no call; the delivery records why and retries.
	e.clock.Set(t0.Add(10 * time.Second))
	fanOut("msg_2")
	health()
	if p.calls.Load() != 1 {
		t.Fatalf("%d calls to the paused endpoint, want 1", p.calls.Load())
	}
	paused := 0
	for _, d := range e.deliveries(tn, slow.SubscriptionID) {
		if le, _ := d["lastError"].(string); strings.HasPrefix(le, "not attempted: endpoint paused until 2026-03-04T05:06:37.000Z") && d["status"] == "pending" {
			paused++
		}
	}
	if paused != 1 {
		t.Fatalf("%d deliveries refused as paused, want 1: %v", paused, e.deliveries(tn, slow.SubscriptionID))
	}

	// After the pause: one attempt claims the probe (committed before its
	// call: another fan-out meanwhile is refused), and its timeout pauses
	// the endpoint again for twice as long.
	e.clock.Set(t0.Add(40 * time.Second))
	p.mu.Lock()
	p.hold = make(chan struct{})
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); fanOut("msg_3") }()
	waitUntil(t, "the probe's call", func() bool { return p.calls.Load() == 2 })
	if pause := e.pauseOf(tn, slow.SubscriptionID); pause == nil || !pause.Probe || !pause.Until.Equal(t0.Add(40*time.Second+domain.ProbeHold)) {
		t.Fatalf("during the probe: pause %+v, want a probe held until t0+60s", pause)
	}
	fanOut("msg_4")
	if p.calls.Load() != 2 {
		t.Fatalf("%d calls while the probe is under way, want 2", p.calls.Load())
	}
	close(p.hold)
	<-done
	p.mu.Lock()
	p.hold = nil
	p.mu.Unlock()
	// The probe writes its outcome itself, before its health item runs (in
	// Lambda mode the item may come after the hold, too late to count).
	pause = e.pauseOf(tn, slow.SubscriptionID)
	if pause == nil || pause.Trips != 2 || !pause.Until.Equal(t0.Add(40*time.Second+2*domain.PauseFirst)) || pause.Probe {
		t.Fatalf("after the probe timed out: pause %+v; want trip 2 until t0+100s", pause)
	}
	before := len(streamTypes())
	health()
	if n := len(streamTypes()); n != before {
		t.Fatalf("the probe's health item wrote %d events, want none (its outcome is recorded)", n-before)
	}

	// The endpoint answers again: the next probe resumes it, and the
	// refused deliveries are delivered on their retries.
	p.answers.Store(true)
	e.clock.Set(t0.Add(2 * time.Minute))
	fanOut("msg_5")
	if pause := e.pauseOf(tn, slow.SubscriptionID); pause != nil {
		t.Fatalf("after an answered probe: pause %+v, want none", pause)
	}
	health()
	// A late or repeated report of the first timeout does not pause the
	// endpoint again: it started before the pause ended.
	for _, it := range firstTimeout {
		if err := e.exec.Handle(context.Background(), it); err != nil {
			t.Fatal(err)
		}
	}
	if pause := e.pauseOf(tn, slow.SubscriptionID); pause != nil {
		t.Fatalf("a repeated report of the first timeout paused the endpoint again: %+v", pause)
	}
	calls := p.calls.Load()
	fanOut("msg_6")
	if p.calls.Load() != calls+1 {
		t.Fatal("an attempt after the endpoint resumed was not made")
	}
	e.runUntilIdle(t0.Add(48 * time.Hour))
	got := map[string]int{}
	for _, d := range e.deliveries(tn, slow.SubscriptionID) {
		got[d["status"].(string)]++
	}
	if got["succeeded"] != 6 {
		t.Fatalf("the paused endpoint's deliveries = %v, want 6 succeeded", got)
	}
	if p.fast.Load() != 6 {
		t.Fatalf("the other subscriber got %d calls, want 6 (one per event)", p.fast.Load())
	}
	want := []string{domain.TypeSubscriptionCreated, domain.TypeSubscriptionFailing, domain.TypeSubscriptionPaused,
		domain.TypeSubscriptionPaused, domain.TypeSubscriptionPaused, domain.TypeSubscriptionPaused,
		domain.TypeSubscriptionResumed, domain.TypeSubscriptionRecovered}
	if got := streamTypes(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("subscription stream = %v\nwant %v", got, want)
	}
}

// barrier holds reads of subscription rows, while armed, until two readers
// are waiting, so that two attempts read the same version.
type barrier struct {
	eventstore.Store
	armed   atomic.Bool
	arrived chan struct{}
	release chan struct{}
}

func (b *barrier) GetRecord(ctx context.Context, tenantID, collection, key string) (eventstore.Record, error) {
	rec, err := b.Store.GetRecord(ctx, tenantID, collection, key)
	if collection == adapters.CollectionSubscriptions && b.armed.Load() {
		b.arrived <- struct{}{}
		<-b.release
	}
	return rec, err
}

// bothStores opens a test environment on bbolt and on DynamoDB Local.
var bothStores = map[string]func(t *testing.T, o options) *env{
	"bolt":     func(t *testing.T, o options) *env { return newEnv(t, o) },
	"dynamodb": newDynamoEnvWith,
}

// pausedPit opens an environment on open's store wrapped by wrap, with one
// subscription to a pit endpoint whose first call timed out and paused it.
func pausedPit(t *testing.T, open func(t *testing.T, o options) *env, wrap func(eventstore.Store) eventstore.Store) (*env, *pit, tenant, app.CreateSubscriptionOutput) {
	t.Helper()
	p := &pit{}
	o := options{allowPrivate: true, transport: p, noJitter: true}
	e := newEnvOn(t, wrap(open(t, o).store), o)
	tn := e.onboard("Acme")
	slow := e.subscribe(tn, tn.Root, "http://127.0.0.1:9/pit", "*")
	e.drain()
	if err := e.exec.Handle(context.Background(), e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_1"))); err != nil {
		t.Fatal(err)
	}
	e.drain() // the health item: failing and paused
	if e.pauseOf(tn, slow.SubscriptionID) == nil {
		t.Fatal("not paused")
	}
	return e, p, tn, slow
}

// Two attempts that read the ended pause at the same version both try to
// claim the probe: one wins and calls, the other is refused without a call.
func TestOneProbeWinsTheClaim(t *testing.T) {
	for name, open := range bothStores {
		t.Run(name, func(t *testing.T) {
			var b *barrier
			e, p, tn, slow := pausedPit(t, open, func(s eventstore.Store) eventstore.Store {
				b = &barrier{Store: s, arrived: make(chan struct{}, 2), release: make(chan struct{})}
				return b
			})
			e.clock.Set(t0.Add(time.Hour))
			entries := []eventstore.OutboxEntry{
				e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_2")),
				e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_3")),
			}
			b.armed.Store(true)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, entry := range entries {
				wg.Go(func() { errs[i] = e.exec.Handle(context.Background(), entry) })
			}
			<-b.arrived
			<-b.arrived
			b.armed.Store(false)
			close(b.release)
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := p.calls.Load(); n != 2 {
				t.Fatalf("%d calls, want 2 (the first timeout and one probe)", n)
			}
			// The loser reads the subscription again after its claim
			// conflicts: it finds the winner's claim ("another attempt is
			// testing it") or, when the winner's call already timed out, the
			// pause that followed; either way it is put off without a call.
			refused := 0
			for _, d := range e.deliveries(tn, slow.SubscriptionID) {
				if le, _ := d["lastError"].(string); strings.HasPrefix(le, "not attempted: endpoint paused") && d["attempts"] == 0.0 {
					refused++
				}
			}
			if refused != 1 {
				t.Fatalf("%d deliveries refused while the other probes, want 1: %v", refused, e.deliveries(tn, slow.SubscriptionID))
			}
		})
	}
}

// An endpoint that stays paused longer than the whole retry schedule
// (27.6 h) loses no delivery to the pause: a try the pause refuses is put
// off, not counted as an attempt, so every delivery either reaches the
// endpoint once it answers again or failed after MaxAttempts calls that
// were all made. (Refused tries used to be failed attempts: the deliveries
// whose tries fell in pauses failed without a call.)
func TestDeliveriesOutlastAPauseLongerThanTheSchedule(t *testing.T) {
	p := &pit{}
	testOutlast(t, p, newEnv(t, options{allowPrivate: true, transport: p, noJitter: true}))
}

// The same on DynamoDB: deferrals are events of the delivery's stream.
func TestDeliveriesOutlastAPauseLongerThanTheScheduleOnDynamoDB(t *testing.T) {
	p := &pit{}
	testOutlast(t, p, newDynamoEnvWith(t, options{allowPrivate: true, transport: p, noJitter: true}))
}

func testOutlast(t *testing.T, p *pit, e *env) {
	tn := e.onboard("Acme")
	slow := e.subscribe(tn, tn.Root, "http://127.0.0.1:9/pit", "*")
	e.drain()
	fanOut := func(msg string) {
		t.Helper()
		if err := e.exec.Handle(context.Background(), e.publish(e.event(tn, "message.sent", []string{tn.Root}, msg))); err != nil {
			t.Fatal(err)
		}
	}
	fanOut("msg_0")
	e.drain() // its health item pauses the endpoint
	if e.pauseOf(tn, slow.SubscriptionID) == nil {
		t.Fatal("not paused after a timeout")
	}
	e.clock.Set(t0.Add(time.Second))
	for i := range 9 {
		fanOut(fmt.Sprintf("msg_%d", i+1))
	}
	e.runUntilIdle(t0.Add(30 * time.Hour))
	timedOut := p.calls.Load()
	p.answers.Store(true)
	e.runUntilIdle(t0.Add(30 * 24 * time.Hour))

	got, attempts := map[string]int{}, 0
	for _, d := range e.deliveries(tn, slow.SubscriptionID) {
		got[d["status"].(string)]++
		n := int(d["attempts"].(float64))
		attempts += n
		if d["status"] == "failed" && n != domain.MaxAttempts {
			t.Errorf("delivery %s failed after %d attempts (%s), want %d calls made first", d["deliveryId"], n, d["lastError"], domain.MaxAttempts)
		}
	}
	if got["succeeded"]+got["failed"] != 10 || got["succeeded"] < 8 {
		t.Errorf("deliveries %v, want 10 finished, at least 8 of them succeeded (the endpoint answers after 30 h)", got)
	}
	if int32(attempts) != p.calls.Load() {
		t.Errorf("the deliveries count %d attempts, the endpoint got %d calls: a refused try counted as an attempt", attempts, p.calls.Load())
	}
	t.Logf("calls while paused: %d; deliveries %v; attempts %d", timedOut, got, attempts)
}

// interloper, while armed, commits a change of the subscription (its
// recovery: a health write) just before the next commit that appends to
// the subscription's stream, so that commit (the probe's claim) conflicts.
// It does so for the next left such commits.
type interloper struct {
	eventstore.Store
	left   atomic.Int32
	stream string
	write  func() error
}

func (s *interloper) Commit(ctx context.Context, c *eventstore.Commit) error {
	for _, a := range c.Appends {
		if a.StreamID == s.stream && s.left.Add(-1) >= 0 {
			if err := s.write(); err != nil {
				return err
			}
		}
	}
	return s.Store.Commit(ctx, c)
}

// A claim of the probe that conflicts with a write that is not another
// claim (a health change) reads the subscription again and claims again:
// the endpoint is probed, not held back for the probe hold as if another
// attempt were testing it.
func TestClaimAfterAnotherWriteClaimsAgain(t *testing.T) {
	for name, open := range bothStores {
		t.Run(name, func(t *testing.T) {
			var s *interloper
			e, p, tn, slow := pausedPit(t, open, func(st eventstore.Store) eventstore.Store {
				s = &interloper{Store: st}
				return s
			})
			repo := adapters.NewRepository(e.store, e.ids, e.clock)
			s.stream = adapters.SubscriptionStream(slow.SubscriptionID)
			s.write = func() error {
				sub, err := repo.Subscription(context.Background(), tn.ID, slow.SubscriptionID)
				if err != nil {
					return err
				}
				evs := sub.RecordSuccess(e.clock.Now())
				if len(evs) == 0 {
					return fmt.Errorf("no health change to write: %+v", sub)
				}
				return repo.Save(context.Background(), app.Changes{TenantID: tn.ID, Subscriptions: []app.SubscriptionChange{{Before: sub, Events: evs}}})
			}
			e.clock.Set(t0.Add(time.Hour))
			s.left.Store(1)
			p.answers.Store(true)
			if err := e.exec.Handle(context.Background(), e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_2"))); err != nil {
				t.Fatal(err)
			}
			if s.left.Load() > 0 {
				t.Fatal("the interloper did not write")
			}
			if n := p.calls.Load(); n != 2 {
				t.Fatalf("%d calls, want 2 (the first timeout, then the probe claimed again)", n)
			}
			if pause := e.pauseOf(tn, slow.SubscriptionID); pause != nil {
				t.Fatalf("after the answered probe: pause %+v, want none", pause)
			}
		})
	}
}

// A try refused while another attempt probes the paused endpoint comes again
// when the probe's hold ends, not at the Schedule's pace: deep in the
// schedule that pace is 10 h, while the probe knows within seconds whether
// the endpoint answers again. (It used to wait the pace: the deliveries that
// came during a probe that resumed the endpoint were the last to get
// through, hours after the others.)
func TestTryRefusedDuringAProbeComesAgainAtItsEnd(t *testing.T) {
	for name, open := range bothStores {
		t.Run(name, func(t *testing.T) {
			p := &pit{}
			e, tn, sub, due, save := deepRetry(t, open, p, func(st eventstore.Store) eventstore.Store { return st })

			// Another attempt claimed the probe of the endpoint's ended pause
			// a second before the 6th attempt is due.
			claimed := due.Add(-time.Second)
			e.clock.Set(claimed)
			save(func(s *domain.Subscription) []domain.Event {
				return []domain.Event{domain.SubscriptionPaused{SubscriptionID: s.ID, At: claimed.Add(-domain.PauseFirst),
					Until: claimed, Trips: 1}}
			})
			save(func(s *domain.Subscription) []domain.Event { return s.ClaimProbe(claimed) })

			e.clock.Set(due)
			e.drain()
			d := e.deliveries(tn, sub.SubscriptionID)[0]
			next, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(d["nextAttemptAt"]))
			holdEnd := claimed.Add(domain.ProbeHold)
			if d["attempts"] != 5.0 || next.Before(holdEnd) || next.After(holdEnd.Add(2*time.Second)) {
				t.Fatalf("refused during the probe: attempts %v, next try %v, want 5 and within 2 s after the hold's end %v (%v)",
					d["attempts"], next, holdEnd, d)
			}

			// The probe is answered: the endpoint resumes, and the try put
			// off gets through at the hold's end.
			p.fails.Store(false)
			p.answers.Store(true)
			save(func(s *domain.Subscription) []domain.Event {
				return s.RecordAnswer(claimed, claimed.Add(2*time.Second))
			})
			e.runUntilIdle(holdEnd.Add(time.Minute))
			if d := e.deliveries(tn, sub.SubscriptionID)[0]; d["status"] != "succeeded" || d["attempts"] != 6.0 {
				t.Fatalf("a minute after the hold: %v, want succeeded at attempt 6", d)
			}
		})
	}
}

// deepRetry opens an environment on open's store wrapped by wrap, with one
// subscription to a pit endpoint that answered 500 to the 5 first attempts
// of a delivery (no pause), so that its 6th is due 5 h later (due) and the
// pace of its tries is 10 h; save commits events of the subscription.
func deepRetry(t *testing.T, open func(t *testing.T, o options) *env, p *pit, wrap func(eventstore.Store) eventstore.Store) (
	e *env, tn tenant, sub app.CreateSubscriptionOutput, due time.Time, save func(func(*domain.Subscription) []domain.Event)) {
	t.Helper()
	o := options{allowPrivate: true, transport: p, noJitter: true}
	plain := open(t, o)
	e = newEnvOn(t, wrap(plain.store), o)
	tn = e.onboard("Acme")
	sub = e.subscribe(tn, tn.Root, "http://127.0.0.1:9/pit", "*")
	e.drain()
	p.fails.Store(true)
	if err := e.exec.Handle(context.Background(), e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_1"))); err != nil {
		t.Fatal(err)
	}
	e.runUntilIdle(t0.Add(7 * time.Hour)) // attempts 1-5 (0, 5 s, 5 min, 30 min, 2 h); the 6th is due 5 h after the 5th
	retry := e.pending(app.WorkDeliver)
	if len(retry) != 1 || p.calls.Load() != 5 {
		t.Fatalf("%d retries pending after %d calls, want 1 after 5", len(retry), p.calls.Load())
	}
	repo := adapters.NewRepository(plain.store, e.ids, e.clock)
	save = func(evs func(*domain.Subscription) []domain.Event) {
		t.Helper()
		s, err := repo.Subscription(context.Background(), tn.ID, sub.SubscriptionID)
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Save(context.Background(), app.Changes{TenantID: tn.ID, Subscriptions: []app.SubscriptionChange{{Before: s, Events: evs(s)}}}); err != nil {
			t.Fatal(err)
		}
	}
	return e, tn, sub, retry[0].DueAt, save
}

// A claim of the probe that conflicts with other writes each time it is
// made (probeWrites times) gives up without a call, and holds its try only
// until a probe's hold from then would end, not at the Schedule's pace.
func TestClaimThatKeepsConflictingHoldsItsTry(t *testing.T) {
	for name, open := range bothStores {
		t.Run(name, func(t *testing.T) {
			p := &pit{}
			var s *interloper
			e, tn, sub, due, save := deepRetry(t, open, p, func(st eventstore.Store) eventstore.Store {
				s = &interloper{Store: st}
				return s
			})
			// The endpoint's pause ended a second before the 6th attempt.
			save(func(sb *domain.Subscription) []domain.Event {
				return []domain.Event{domain.SubscriptionPaused{SubscriptionID: sb.ID, At: due.Add(-time.Minute), Until: due.Add(-time.Second), Trips: 1}}
			})
			s.stream = adapters.SubscriptionStream(sub.SubscriptionID)
			s.write = func() error { // a health change each time: recovered, failing, recovered
				save(func(sb *domain.Subscription) []domain.Event {
					if evs := sb.RecordSuccess(e.clock.Now()); len(evs) > 0 {
						return evs
					}
					return sb.RecordFailure(e.clock.Now())
				})
				return nil
			}
			e.clock.Set(due)
			s.left.Store(3)
			e.drain()
			if s.left.Load() > 0 || p.calls.Load() != 5 {
				t.Fatalf("%d interloper writes left, %d calls; want 0 and 5 (the claim gave up)", s.left.Load(), p.calls.Load())
			}
			d := e.deliveries(tn, sub.SubscriptionID)[0]
			next, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(d["nextAttemptAt"]))
			if end := due.Add(domain.ProbeHold); next.Before(end) || next.After(end.Add(2*time.Second)) {
				t.Fatalf("the try whose claim kept conflicting: %v, want it put off to %v (+ up to 2 s)", d, end)
			}
		})
	}
}
