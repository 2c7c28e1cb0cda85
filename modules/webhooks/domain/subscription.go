package domain

import (
	"fmt"
	"slices"
	"time"
)

// SubscriptionStatus is whether a subscription receives deliveries. Persisted and public.
type SubscriptionStatus string

// Subscription statuses.
const (
	Enabled  SubscriptionStatus = "enabled"
	Disabled SubscriptionStatus = "disabled"
)

// DisableAfter is how long an endpoint may fail continuously (no successful
// attempt since its first failed one) before its subscription is disabled,
// as Svix does.
const DisableAfter = 5 * 24 * time.Hour

// DisabledEndpointFailing is the reason of SubscriptionDisabled by the
// health rule. Persisted.
const DisabledEndpointFailing = "endpoint_failing"

// Subscription is an endpoint of a tenant app that receives the events of
// the messages in its scope and every scope below it.
type Subscription struct {
	ID           string
	ScopeID      string
	ScopePath    []string // root .. ScopeID
	URL          string
	EventTypes   []string
	SealedSecret []byte
	Status       SubscriptionStatus
	// FailingSince is the first failed attempt since the last success, nil
	// while the endpoint is healthy.
	FailingSince *time.Time
	// RecoveredAt is when it last recovered: a failure of an attempt made
	// before it is a late report and changes nothing.
	RecoveredAt *time.Time
	DisabledAt  *time.Time
	// Pause is set while the endpoint is paused by the pause rule (or has
	// been, until an attempt gets an answer): see Admit.
	Pause *Pause
	// ResumedAt is when the last pause ended (an answer): a timeout of an
	// attempt started before it is older news and pauses nothing.
	ResumedAt *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version is the version of the last applied event (0: no events).
	Version int64
}

// CreateSubscription checks a new subscription and returns its event. The
// URL must pass ParseTargetURL and the event types ParseEventTypes (whose
// canonical order is recorded); whether the URL's host may be reached is the
// caller's check. sealedSecret is the signing key as sealed by the caller.
func CreateSubscription(subscriptionID string, scopePath []string, rawURL string, eventTypes []string, sealedSecret []byte) (SubscriptionCreated, error) {
	if err := requireID("subscriptionId", subscriptionID); err != nil {
		return SubscriptionCreated{}, err
	}
	if len(scopePath) == 0 || scopePath[len(scopePath)-1] == "" {
		return SubscriptionCreated{}, requireID("scopeId", "")
	}
	if len(sealedSecret) == 0 {
		return SubscriptionCreated{}, requireID("sealedSecret", "")
	}
	if _, err := ParseTargetURL(rawURL); err != nil {
		return SubscriptionCreated{}, err
	}
	types, err := ParseEventTypes(eventTypes)
	if err != nil {
		return SubscriptionCreated{}, err
	}
	return SubscriptionCreated{
		SubscriptionID: subscriptionID, ScopeID: scopePath[len(scopePath)-1], ScopePath: slices.Clone(scopePath),
		URL: rawURL, EventTypes: types, SealedSecret: slices.Clone(sealedSecret),
	}, nil
}

// Receives reports whether s gets a delivery of an event of type t about a
// resource in the scope whose path is path: s is enabled, its types match,
// and its scope is on the path (its scope or one above it).
func (s *Subscription) Receives(t string, path []string) bool {
	return s.Status == Enabled && MatchesEventType(s.EventTypes, t) && slices.Contains(path, s.ScopeID)
}

// RecordFailure applies the health rule to a failed attempt at `at`: a
// healthy endpoint becomes failing since `at` (unless it recovered after
// `at`: a late or repeated report); one failing for DisableAfter
// or longer is disabled. Otherwise (failing for less, or disabled already)
// nothing changes and no event is returned, so the subscription is written
// only when its state changes.
func (s *Subscription) RecordFailure(at time.Time) []Event {
	switch {
	case s.Status != Enabled:
		return nil
	case s.FailingSince == nil && s.RecoveredAt != nil && at.Before(*s.RecoveredAt):
		return nil
	case s.FailingSince == nil:
		return []Event{SubscriptionFailing{SubscriptionID: s.ID, Since: at}}
	case at.Sub(*s.FailingSince) >= DisableAfter:
		return []Event{SubscriptionDisabled{SubscriptionID: s.ID, Reason: DisabledEndpointFailing, FailingSince: *s.FailingSince, At: at}}
	}
	return nil
}

// RecordSuccess applies the health rule to a successful attempt at `at`: a
// failing endpoint recovers, unless its failing state began after `at` (a
// late report of an older success). A healthy or disabled subscription does
// not change.
func (s *Subscription) RecordSuccess(at time.Time) []Event {
	if s.Status != Enabled || s.FailingSince == nil || at.Before(*s.FailingSince) {
		return nil
	}
	return []Event{SubscriptionRecovered{SubscriptionID: s.ID, FailingSince: *s.FailingSince, At: at}}
}

// ReplaySubscription rebuilds a subscription from its stream; (nil, nil)
// when it is empty.
func ReplaySubscription(history []Recorded) (*Subscription, error) {
	if len(history) == 0 {
		return nil, nil
	}
	s := &Subscription{}
	for _, r := range history {
		if err := s.Apply(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Apply moves the subscription forward by one recorded event.
func (s *Subscription) Apply(r Recorded) error {
	switch e := r.Event.(type) {
	case SubscriptionCreated:
		if s.Version != 0 {
			return errCorrupt(fmt.Sprintf("subscription %s created at version %d", e.SubscriptionID, r.Version))
		}
		if len(e.ScopePath) == 0 || e.ScopePath[len(e.ScopePath)-1] != e.ScopeID {
			return errCorrupt(fmt.Sprintf("subscription %s has scope %s and path %v", e.SubscriptionID, e.ScopeID, e.ScopePath))
		}
		s.ID, s.ScopeID, s.ScopePath, s.URL = e.SubscriptionID, e.ScopeID, slices.Clone(e.ScopePath), e.URL
		s.EventTypes, s.SealedSecret = slices.Clone(e.EventTypes), slices.Clone(e.SealedSecret)
		s.Status = Enabled
		s.CreatedAt = r.OccurredAt
	case SubscriptionFailing:
		if err := s.check(e.SubscriptionID, r); err != nil {
			return err
		}
		since := e.Since
		s.FailingSince = &since
	case SubscriptionRecovered:
		if err := s.check(e.SubscriptionID, r); err != nil {
			return err
		}
		at := e.At
		s.FailingSince, s.RecoveredAt = nil, &at
	case SubscriptionDisabled:
		if err := s.check(e.SubscriptionID, r); err != nil {
			return err
		}
		at := e.At
		s.Status, s.DisabledAt = Disabled, &at
	case SubscriptionPaused:
		if err := s.check(e.SubscriptionID, r); err != nil {
			return err
		}
		s.Pause = &Pause{At: e.At, Until: e.Until, Trips: e.Trips, Probe: e.Probe}
	case SubscriptionResumed:
		if err := s.check(e.SubscriptionID, r); err != nil {
			return err
		}
		at := e.At
		s.Pause, s.ResumedAt = nil, &at
	default:
		return errCorrupt(fmt.Sprintf("event %T in a subscription stream", r.Event))
	}
	s.Version = r.Version
	s.UpdatedAt = r.OccurredAt
	return nil
}

// check rejects an event of another subscription or before the creation.
func (s *Subscription) check(id string, r Recorded) error {
	if s.Version == 0 || id != s.ID {
		return errCorrupt(fmt.Sprintf("%s of %s in the stream of %q at version %d", r.Event.EventType(), id, s.ID, r.Version))
	}
	return nil
}
