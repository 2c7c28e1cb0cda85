package domain

import "time"

// The pause rule bounds what an endpoint that never answers costs the
// platform across every process (ADR 0003): an attempt holds a worker for up
// to its timeout (15 s), and a process's EndpointGate bounds only its own
// attempts, so in Lambda mode such an endpoint could hold every worker
// instance of the queue. When an attempt gets no answer within its timeout,
// the subscription is paused: no attempt is made before the pause ends
// (each try is put off, "endpoint paused", and not counted as an
// attempt: Delivery.RecordDeferral). Then one attempt claims the probe (an event appended under
// optimistic concurrency, so one attempt across all processes wins) and is
// made while the others are still refused; its prober records the outcome
// as soon as the call ends: any ending but a timeout (an answer of any
// status, a refused connection) resumes the endpoint, another timeout
// pauses it again for twice as long.
const (
	// PauseFirst is the pause after a first timeout; each timeout of a
	// probe in a row doubles it, up to PauseMax.
	PauseFirst = 30 * time.Second
	PauseMax   = 10 * time.Minute
	// ProbeHold is how long a claimed probe holds the other attempts back:
	// past the attempt timeout (15 s), so that a probe whose outcome was
	// never recorded (its process died) is followed by another.
	ProbeHold = 20 * time.Second
)

// PauseFor is the pause after the trips-th timeout in a row (1, 2, ...).
func PauseFor(trips int) time.Duration {
	return min(PauseFirst<<min(max(trips, 1)-1, 8), PauseMax)
}

// Pause is the pause of an endpoint (Subscription.Pause).
type Pause struct {
	// At is when it began: the end of the attempt that timed out, or the
	// probe's claim.
	At time.Time
	// Until is when it ends: no attempt is made before it; the first after
	// it claims the probe.
	Until time.Time
	// Trips counts the timeouts in a row that paused the endpoint.
	Trips int
	// Probe: the pause holds the other attempts back while one attempt,
	// claimed at At, tests the endpoint.
	Probe bool
}

// Admission is what the pause rule lets an attempt do.
type Admission int

// Admissions.
const (
	// Admit: the endpoint is not paused.
	Admit Admission = iota
	// Refuse: the endpoint is paused (or being probed) until Pause.Until;
	// the attempt is not made.
	Refuse
	// ClaimProbe: the pause has ended; the attempt is made only once it
	// claimed the probe (ClaimProbe, committed before the call).
	ClaimProbe
)

// Admit applies the pause rule to an attempt at now.
func (s *Subscription) Admit(now time.Time) Admission {
	switch {
	case s.Pause == nil:
		return Admit
	case now.Before(s.Pause.Until):
		return Refuse
	}
	return ClaimProbe
}

// ClaimProbe returns the event with which an attempt at now claims the probe
// of a paused endpoint whose pause has ended (nil when it is not paused).
// Committed under the subscription's version, it is won by one attempt of
// those that read the same version.
func (s *Subscription) ClaimProbe(now time.Time) []Event {
	if s.Pause == nil {
		return nil
	}
	return []Event{SubscriptionPaused{SubscriptionID: s.ID, At: now, Until: now.Add(ProbeHold), Trips: s.Pause.Trips, Probe: true}}
}

// RecordTimeout applies the pause rule to an attempt made from started to
// ended that got no answer: an endpoint that is not paused is paused for
// PauseFirst; a probe (an attempt started at or after its claim) that timed
// out pauses it again for PauseFor(trips + 1). An attempt that was already
// under way when the pause began changes nothing (a burst of timeouts is one
// trip), nor does an attempt started before the last pause ended (a late or
// repeated report of an earlier wave: ResumedAt), nor any attempt of a
// disabled subscription.
func (s *Subscription) RecordTimeout(started, ended time.Time) []Event {
	switch {
	case s.Status != Enabled:
		return nil
	case s.Pause == nil && s.ResumedAt != nil && started.Before(*s.ResumedAt):
		return nil
	case s.Pause == nil:
		return []Event{SubscriptionPaused{SubscriptionID: s.ID, At: ended, Until: ended.Add(PauseFor(1)), Trips: 1}}
	case s.Pause.Probe && !started.Before(s.Pause.At):
		trips := s.Pause.Trips + 1
		return []Event{SubscriptionPaused{SubscriptionID: s.ID, At: ended, Until: ended.Add(PauseFor(trips)), Trips: trips}}
	}
	return nil
}

// RecordAnswer applies the pause rule to an attempt made from started to
// ended that got an answer (any status, or a refused connection: an answer
// that does not hold a worker): a paused endpoint resumes, unless the
// attempt was already under way when the pause began.
func (s *Subscription) RecordAnswer(started, ended time.Time) []Event {
	if s.Status != Enabled || s.Pause == nil || started.Before(s.Pause.At) {
		return nil
	}
	return []Event{SubscriptionResumed{SubscriptionID: s.ID, PausedAt: s.Pause.At, Trips: s.Pause.Trips, At: ended}}
}
