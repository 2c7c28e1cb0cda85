package domain

import (
	"fmt"
	"slices"
)

// ScopeSubscriptions is the set of enabled subscriptions created at one
// scope: what the fan-out delivers an event of that scope (and of the scopes
// below it) to. It is an aggregate of its own, with a stream per scope, so
// that the set is read strongly consistent and changed under optimistic
// concurrency: a list index that lags its table (DynamoDB's) could leave a
// subscription created a moment before an event out of that event's
// fan-out, where the contract says it sees every event from its creation on.
type ScopeSubscriptions struct {
	ScopeID string
	// SubscriptionIDs are the enabled subscriptions, sorted (ids are ULIDs:
	// oldest first).
	SubscriptionIDs []string
	// Version is the version of the last applied event (0: no events).
	Version int64
}

// MaxScopeSubscriptions bounds the enabled subscriptions of one scope: the
// fan-out reads each of them for every event of the scope (and of the scopes
// below it), and the set's row holds their ids (~33 bytes each).
const MaxScopeSubscriptions = 1000

// Add returns the event that adds subscriptionID to the set, or nil when it
// is in it; ErrTooManyInScope when the set holds MaxScopeSubscriptions.
func (s *ScopeSubscriptions) Add(subscriptionID string) ([]Event, error) {
	if _, found := slices.BinarySearch(s.SubscriptionIDs, subscriptionID); found {
		return nil, nil
	}
	if len(s.SubscriptionIDs) >= MaxScopeSubscriptions {
		return nil, ErrTooManyInScope
	}
	return []Event{ScopeSubscriptionAdded{ScopeID: s.ScopeID, SubscriptionID: subscriptionID}}, nil
}

// Start returns the event that starts an empty set (Version 0) with the
// subscriptions made before the sets existed, or nil when there are none.
func (s *ScopeSubscriptions) Start(subscriptionIDs []string) []Event {
	if s.Version != 0 || len(subscriptionIDs) == 0 {
		return nil
	}
	return []Event{ScopeSubscriptionsStarted{ScopeID: s.ScopeID, SubscriptionIDs: slices.Clone(subscriptionIDs)}}
}

// Remove returns the event that takes subscriptionID out of the set, or nil
// when it is not in it.
func (s *ScopeSubscriptions) Remove(subscriptionID string) []Event {
	if _, found := slices.BinarySearch(s.SubscriptionIDs, subscriptionID); !found {
		return nil
	}
	return []Event{ScopeSubscriptionRemoved{ScopeID: s.ScopeID, SubscriptionID: subscriptionID}}
}

// Apply moves the set forward by one recorded event.
func (s *ScopeSubscriptions) Apply(r Recorded) error {
	if r.Version != s.Version+1 {
		return errCorrupt(fmt.Sprintf("scope subscriptions %s: event at version %d after %d", s.ScopeID, r.Version, s.Version))
	}
	switch e := r.Event.(type) {
	case ScopeSubscriptionsStarted:
		if r.Version != 1 {
			return errCorrupt(fmt.Sprintf("scope subscriptions %s: started at version %d", e.ScopeID, r.Version))
		}
		if err := s.check(e.ScopeID); err != nil {
			return err
		}
		s.SubscriptionIDs = slices.Compact(slices.Sorted(slices.Values(e.SubscriptionIDs)))
	case ScopeSubscriptionAdded:
		if err := s.check(e.ScopeID); err != nil {
			return err
		}
		if i, found := slices.BinarySearch(s.SubscriptionIDs, e.SubscriptionID); !found {
			s.SubscriptionIDs = slices.Insert(s.SubscriptionIDs, i, e.SubscriptionID)
		}
	case ScopeSubscriptionRemoved:
		if err := s.check(e.ScopeID); err != nil {
			return err
		}
		if i, found := slices.BinarySearch(s.SubscriptionIDs, e.SubscriptionID); found {
			s.SubscriptionIDs = slices.Delete(s.SubscriptionIDs, i, i+1)
		}
	default:
		return errCorrupt(fmt.Sprintf("scope subscriptions %s: event %s", s.ScopeID, r.Event.EventType()))
	}
	s.Version = r.Version
	return nil
}

// check takes the scope of the first event and refuses an event of another.
func (s *ScopeSubscriptions) check(scopeID string) error {
	if s.ScopeID == "" {
		s.ScopeID = scopeID
	}
	if scopeID != s.ScopeID {
		return errCorrupt(fmt.Sprintf("scope subscriptions %s: event of scope %s", s.ScopeID, scopeID))
	}
	return nil
}
