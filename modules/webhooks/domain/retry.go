package domain

import "time"

// Schedule is Svix's retry schedule: the delay before each attempt, counted
// from the previous attempt (the first is made at once). So a delivery makes
// at most MaxAttempts attempts over about 27.6 hours before it is failed.
var Schedule = [...]time.Duration{
	0,
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	10 * time.Hour,
}

// MaxAttempts is how many attempts a delivery makes at most.
const MaxAttempts = len(Schedule)

// MaxDeferrals is how many times an attempt of a delivery may be put off
// without a call (the endpoint paused or busy: Delivery.RecordDeferral)
// before the delivery fails. A deferral does not count as one of the
// MaxAttempts; past the Schedule each try waits its last delay (10 h), so a
// delivery whose every try is put off is tried for about 6.1 days (147.6 h;
// 5.5 days at the shortest jitter) before it fails: longer than an endpoint
// can fail before its subscription is disabled (DisableAfter, 5 days),
// which gives its deliveries up. Tries held only while another attempt
// probed the endpoint (Hold.Probe) are not counted here.
const MaxDeferrals = 20

// DefaultJitter is the share of each delay drawn at random (±10%).
const DefaultJitter = 0.1

// RetryPolicy turns the Schedule into due times.
type RetryPolicy struct {
	// Scale multiplies every delay: 1 (or 0) is the Schedule; tests use 0.001.
	Scale float64
	// Jitter is the share of each delay drawn at random, in [0, 1): a delay d
	// becomes d × (1 + Jitter × (2r − 1)) for a draw r in [0, 1).
	Jitter float64
}

// Delay returns the delay before attempt next (2..MaxAttempts) for the draw r
// in [0, 1) (r = 0.5 gives the scaled delay exactly), and false when there is
// no such attempt.
func (p RetryPolicy) Delay(next int, r float64) (time.Duration, bool) {
	if next < 2 || next > MaxAttempts {
		return 0, false
	}
	scale := p.Scale
	if scale <= 0 {
		scale = 1
	}
	r = min(max(r, 0), 1)
	f := scale * (1 + p.Jitter*(2*r-1))
	return time.Duration(float64(Schedule[next-1]) * f), true
}

// TryDelay returns the delay after a delivery's tries-th try (attempts made
// and deferrals together): the Schedule's delay before attempt tries+1,
// and its last delay from the MaxAttempts-th try on. So a delivery whose
// attempts were never put off follows the Schedule exactly, and one whose
// tries were put off keeps the Schedule's pace in time.
func (p RetryPolicy) TryDelay(tries int, r float64) time.Duration {
	d, _ := p.Delay(min(max(tries+1, 2), MaxAttempts), r)
	return d
}
