// Package domain is the messaging context's model, pure: channels and
// messages, the message state machine and the events that record it.
package domain

// Status is a message's status. Persisted and public: never rename one.
type Status string

// Statuses of the contract (section 6).
const (
	StatusScheduled   Status = "scheduled"   // accepted with a future sendAt
	StatusQueued      Status = "queued"      // accepted, waiting for dispatch
	StatusSending     Status = "sending"     // a provider call is under way, or failed transiently and will be retried
	StatusSent        Status = "sent"        // the provider accepted it
	StatusDelivered   Status = "delivered"   // receipt: delivered (final)
	StatusUndelivered Status = "undelivered" // receipt: not delivered (final)
	StatusFailed      Status = "failed"      // never accepted by the provider (final)
	StatusCanceled    Status = "canceled"    // canceled before dispatch (final)
	StatusReceived    Status = "received"    // an inbound message (final)
)

// rank orders statuses: a message only moves to a higher rank (or stays in
// sending while it retries). Final statuses share the top rank, so none
// replaces another.
var rank = map[Status]int{
	StatusScheduled:   1,
	StatusQueued:      2,
	StatusSending:     3,
	StatusSent:        4,
	StatusDelivered:   5,
	StatusUndelivered: 5,
	StatusFailed:      5,
	StatusCanceled:    5,
	StatusReceived:    5,
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { _, ok := rank[s]; return ok }

// Final reports whether no event moves a message out of s.
func (s Status) Final() bool { return rank[s] == 5 }

// Statuses lists every status, in lifecycle order (for validation messages).
func Statuses() []Status {
	return []Status{StatusScheduled, StatusQueued, StatusSending, StatusSent, StatusDelivered,
		StatusUndelivered, StatusFailed, StatusCanceled, StatusReceived}
}

// transitions are the allowed moves. Anything else is refused by the
// aggregate (commands) or ignored (receipts and redelivered work: late,
// duplicate or out of order, they never move a message back).
var transitions = map[Status][]Status{
	StatusScheduled: {StatusQueued, StatusCanceled},
	StatusQueued:    {StatusSending, StatusSent, StatusFailed, StatusCanceled},
	StatusSending:   {StatusSending, StatusSent, StatusFailed},
	StatusSent:      {StatusDelivered, StatusUndelivered},
}

// CanMove reports whether a message in from may move to to.
func CanMove(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}
