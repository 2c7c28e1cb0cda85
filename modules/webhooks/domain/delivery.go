package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// DeliveryStatus is where a delivery stands. Persisted and public.
type DeliveryStatus string

// Delivery statuses.
const (
	Pending   DeliveryStatus = "pending"   // an attempt is due or running
	Succeeded DeliveryStatus = "succeeded" // an attempt got a 2xx
	Failed    DeliveryStatus = "failed"    // every attempt failed, or it was abandoned
)

// Reasons of DeliveryAbandoned. Persisted.
const (
	AbandonedSubscriptionDisabled = "subscription_disabled"
	AbandonedSubscriptionMissing  = "subscription_missing"
)

// MaxErrorLength bounds the error recorded for an attempt, in bytes.
const MaxErrorLength = 300

// CodeInvalidState: a command on an aggregate in a state that does not allow
// it, which the application should have checked (a bug): internal.
const CodeInvalidState = "errors.webhook.invalid_state"

// TimeFormat renders the body's timestamp: RFC 3339, UTC, milliseconds.
const TimeFormat = clock.TimeFormat

// Delivery is one integration event on its way to one subscription: up to
// MaxAttempts POSTs on the Schedule, until one gets a 2xx. An attempt that
// could not be made (the endpoint paused or busy) is put off (a deferral),
// not counted: up to MaxDeferrals times, besides the tries held only while
// another attempt probed the endpoint (Held).
type Delivery struct {
	ID             string
	SubscriptionID string
	EventID        string // the webhook-id of every attempt
	EventType      string
	MessageID      string // the event's message; "" when not recorded
	Status         DeliveryStatus
	Attempts       int // attempts made (calls), at most MaxAttempts
	// Deferrals counts the tries put off without a call (the endpoint
	// was paused, probed or busy: RecordDeferral). Of them, Held were put
	// off only until another attempt's probe ended (Hold.Probe): those do
	// not count toward MaxDeferrals nor the Schedule's pace.
	Deferrals      int
	Held           int
	heldLast       bool   // the last try was put off until a probe's end
	LastStatusCode int    // of the last try: 0 when none was made, it was put off, or no response came
	LastError      string // "" when the last attempt succeeded or none was made
	NextAttemptAt  *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Version        int64
}

// AttemptResult is what one POST came to.
type AttemptResult struct {
	At         time.Time // when it was made (the webhook-timestamp)
	StatusCode int       // 0 when no response came
	Error      string    // why it failed, as the tenant sees it; "" for a 2xx
	// Detail is what the operator's log adds to Error (the refused
	// address of a forbidden target); never recorded, never shown to the
	// tenant.
	Detail   string
	Duration time.Duration
	// TimedOut: the call got no answer within the attempt's timeout (the
	// pause rule's trigger, RecordTimeout).
	TimedOut bool
	// Interrupted: the call was cut short by its caller's end (an
	// invocation's deadline, a shutdown), not by the endpoint: it says
	// nothing of the endpoint (the pause rule ignores it).
	Interrupted bool
	// EndedAt is when the attempt ended, by the clock At is read from (the
	// next attempt's delay counts from it); zero: At.
	EndedAt time.Time
}

// Succeeded reports whether the attempt got a 2xx.
func (r AttemptResult) Succeeded() bool {
	return r.StatusCode >= 200 && r.StatusCode <= 299
}

// BuildPayload returns the body of every attempt of an event's deliveries:
// {"type","timestamp","data"}, with the timestamp in TimeFormat and data as
// given (compacted). data must be a JSON object.
func BuildPayload(eventType string, at time.Time, data json.RawMessage) ([]byte, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil || compact.Len() == 0 || compact.Bytes()[0] != '{' {
		return nil, errs.Invalid(errs.FieldError{Field: "data", Code: "errors.validation.type", Params: map[string]any{"expected": "object"}})
	}
	// Not HTML-escaped: "<" in an email's html stays one byte, so every
	// valid message fits a stored body (escaping would cost six bytes each).
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{eventType, at.UTC().Format(TimeFormat), compact.Bytes()}); err != nil {
		return nil, err
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

// CreateDelivery returns the event that creates a delivery of an event to a subscription.
func CreateDelivery(deliveryID, subscriptionID, eventID, eventType string) (DeliveryCreated, error) {
	for _, f := range [][2]string{{"deliveryId", deliveryID}, {"subscriptionId", subscriptionID}, {"eventId", eventID}, {"eventType", eventType}} {
		if err := requireID(f[0], f[1]); err != nil {
			return DeliveryCreated{}, err
		}
	}
	return DeliveryCreated{DeliveryID: deliveryID, SubscriptionID: subscriptionID, EventID: eventID, WebhookType: eventType}, nil
}

// FoldFirstAttempt returns the events that record a new delivery and what
// followed its creation: the creation alone carrying the first attempt
// (DeliveryCreated.FirstAttempt: one event, one stored item) when then is
// exactly that attempt, or carrying the first try put off
// (FirstDeferral); else created followed by then.
func FoldFirstAttempt(created DeliveryCreated, then []Event) []Event {
	if len(then) == 1 {
		switch e := then[0].(type) {
		case DeliveryAttempted:
			if e.Attempt == 1 && e.DeliveryID == created.DeliveryID {
				created.FirstAttempt = &e
				return []Event{created}
			}
		case DeliveryDeferred:
			if e.Attempt == 1 && e.Deferral == 1 && e.DeliveryID == created.DeliveryID {
				created.FirstDeferral = &e
				return []Event{created}
			}
		}
	}
	return append([]Event{created}, then...)
}

// Due reports whether attempt is the delivery's next one: it is pending and
// made Attempts = attempt-1 so far.
func (d *Delivery) Due(attempt int) bool {
	return d.Status == Pending && attempt == d.Attempts+1
}

// Next reports whether the try of attempt after deferrals put-off tries is
// the delivery's next one (Due, with Deferrals = deferrals). A redelivered
// work item of a try already recorded, made or put off, is not.
func (d *Delivery) Next(attempt, deferrals int) bool {
	return d.Due(attempt) && deferrals == d.Deferrals
}

// tries counts the delivery's tries so far that set the Schedule's pace:
// attempts made and tries put off, but not those put off until a probe's
// end (Held).
func (d *Delivery) tries() int { return d.Attempts + d.Deferrals - d.Held }

// RecordAttempt returns the event of attempt (which must be Due) with
// result: succeeded on a 2xx; otherwise another attempt is due after the
// policy's delay for draw r, or, after the last one, the delivery failed.
func (d *Delivery) RecordAttempt(attempt int, res AttemptResult, p RetryPolicy, r float64) (DeliveryAttempted, error) {
	if !d.Due(attempt) {
		return DeliveryAttempted{}, (&errs.Error{Kind: errs.KindInternal, Code: CodeInvalidState}).
			With("detail", fmt.Sprintf("attempt %d of delivery %s in status %s after %d attempts", attempt, d.ID, d.Status, d.Attempts))
	}
	e := DeliveryAttempted{
		DeliveryID: d.ID, Attempt: attempt, AttemptedAt: res.At, StatusCode: res.StatusCode,
		Succeeded: res.Succeeded(), DurationMs: res.Duration.Milliseconds(),
	}
	if !e.Succeeded {
		e.Error = TruncateError(res.Error)
		if e.Error == "" {
			e.Error = fmt.Sprintf("unexpected status %d", res.StatusCode)
		}
		if attempt < MaxAttempts {
			// From the attempt's end: a retry due 5 s after a 15 s timeout
			// is 5 s after the timeout, not at once (chaos run finding).
			next := res.end().Add(p.TryDelay(d.tries()+1, r))
			e.NextAttemptAt = &next
		}
	}
	return e, nil
}

// end is when the attempt ended: EndedAt, or At when unset or earlier.
func (r AttemptResult) end() time.Time {
	if r.EndedAt.After(r.At) {
		return r.EndedAt
	}
	return r.At
}

// Hold is how long a try put off is held back.
type Hold struct {
	// NotBefore is when the refusal ends (a pause's end, a probe's hold's
	// end); zero: unknown.
	NotBefore time.Time
	// Probe: the try was refused only because another attempt is probing
	// the endpoint; its outcome is known by NotBefore (ProbeHold).
	Probe bool
}

// RecordDeferral returns the event that puts off the try of attempt after
// deferrals put-off tries (which must be Next) without a call: res.Error
// says why (the endpoint paused, being probed, busy). It is not one of the
// delivery's attempts: the attempt is tried again after the policy's delay
// for the delivery's tries so far (the Schedule's pace; draw r), and not
// before hold.NotBefore. A try refused only while another attempt probes
// the endpoint (hold.Probe) comes again at hold.NotBefore instead, without
// the pace, and counts neither toward the pace nor MaxDeferrals (the event
// is Held), unless the try before it was held too: one held try in a row,
// so they stay bounded by the others. The delivery fails when it was put off
// MaxDeferrals times already (held tries aside).
func (d *Delivery) RecordDeferral(attempt, deferrals int, res AttemptResult, hold Hold, p RetryPolicy, r float64) (DeliveryDeferred, error) {
	if !d.Next(attempt, deferrals) {
		return DeliveryDeferred{}, (&errs.Error{Kind: errs.KindInternal, Code: CodeInvalidState}).
			With("detail", fmt.Sprintf("deferral %d of attempt %d of delivery %s in status %s after %d attempts and %d deferrals",
				deferrals+1, attempt, d.ID, d.Status, d.Attempts, d.Deferrals))
	}
	e := DeliveryDeferred{DeliveryID: d.ID, Attempt: attempt, Deferral: deferrals + 1, At: res.At, Error: TruncateError(res.Error)}
	if e.Error == "" {
		e.Error = "not attempted"
	}
	switch {
	case hold.Probe && !hold.NotBefore.IsZero() && !d.heldLast:
		e.Held = true
		next := hold.NotBefore
		e.NextAttemptAt = &next
	case d.Deferrals-d.Held+1 < MaxDeferrals:
		next := res.end().Add(p.TryDelay(d.tries()+1, r))
		if next.Before(hold.NotBefore) {
			next = hold.NotBefore
		}
		e.NextAttemptAt = &next
	}
	return e, nil
}

// Abandon gives a pending delivery up (its subscription was disabled or is
// gone); nothing for a finished one.
func (d *Delivery) Abandon(reason string) []Event {
	if d.Status != Pending {
		return nil
	}
	return []Event{DeliveryAbandoned{DeliveryID: d.ID, Reason: reason}}
}

// TruncateError returns s as recorded: valid UTF-8 without control
// characters, at most MaxErrorLength bytes, cut at a character boundary.
func TruncateError(s string) string {
	s = strings.ToValidUTF8(s, "\ufffd")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= MaxErrorLength {
		return s
	}
	n := MaxErrorLength
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ReplayDelivery rebuilds a delivery from its stream; (nil, nil) when it is empty.
func ReplayDelivery(history []Recorded) (*Delivery, error) {
	if len(history) == 0 {
		return nil, nil
	}
	d := &Delivery{}
	for _, r := range history {
		if err := d.Apply(r); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Apply moves the delivery forward by one recorded event.
func (d *Delivery) Apply(r Recorded) error {
	switch e := r.Event.(type) {
	case DeliveryCreated:
		if d.Version != 0 {
			return errCorrupt(fmt.Sprintf("delivery %s created at version %d", e.DeliveryID, r.Version))
		}
		d.ID, d.SubscriptionID, d.EventID, d.EventType, d.MessageID = e.DeliveryID, e.SubscriptionID, e.EventID, e.WebhookType, e.MessageID
		d.Status = Pending
		d.CreatedAt = r.OccurredAt
		switch {
		case e.FirstAttempt != nil && e.FirstDeferral != nil:
			return errCorrupt(fmt.Sprintf("delivery %s created with an attempt and a deferral", d.ID))
		case e.FirstAttempt != nil:
			if e.FirstAttempt.Attempt != 1 || e.FirstAttempt.DeliveryID != d.ID {
				return errCorrupt(fmt.Sprintf("delivery %s created with attempt %d of %s", d.ID, e.FirstAttempt.Attempt, e.FirstAttempt.DeliveryID))
			}
			d.applyAttempt(*e.FirstAttempt)
		case e.FirstDeferral != nil:
			if e.FirstDeferral.Attempt != 1 || e.FirstDeferral.Deferral != 1 || e.FirstDeferral.DeliveryID != d.ID {
				return errCorrupt(fmt.Sprintf("delivery %s created with deferral %d of attempt %d of %s", d.ID,
					e.FirstDeferral.Deferral, e.FirstDeferral.Attempt, e.FirstDeferral.DeliveryID))
			}
			d.applyDeferral(*e.FirstDeferral)
		}
	case DeliveryAttempted:
		if d.Version == 0 || e.DeliveryID != d.ID || !d.Due(e.Attempt) {
			return errCorrupt(fmt.Sprintf("attempt %d of %s in the stream of %q (status %s, %d attempts)", e.Attempt, e.DeliveryID, d.ID, d.Status, d.Attempts))
		}
		d.applyAttempt(e)
	case DeliveryDeferred:
		if d.Version == 0 || e.DeliveryID != d.ID || !d.Next(e.Attempt, e.Deferral-1) {
			return errCorrupt(fmt.Sprintf("deferral %d of attempt %d of %s in the stream of %q (status %s, %d attempts, %d deferrals)",
				e.Deferral, e.Attempt, e.DeliveryID, d.ID, d.Status, d.Attempts, d.Deferrals))
		}
		d.applyDeferral(e)
	case DeliveryAbandoned:
		if d.Version == 0 || e.DeliveryID != d.ID || d.Status != Pending {
			return errCorrupt(fmt.Sprintf("delivery %s abandoned in the stream of %q (status %s)", e.DeliveryID, d.ID, d.Status))
		}
		d.Status, d.NextAttemptAt = Failed, nil
		d.LastError = "abandoned: " + e.Reason
	default:
		return errCorrupt(fmt.Sprintf("event %T in a delivery stream", r.Event))
	}
	d.Version = r.Version
	d.UpdatedAt = r.OccurredAt
	return nil
}

// applyDeferral records a try put off: the last try made no call, so it
// has no status code.
func (d *Delivery) applyDeferral(e DeliveryDeferred) {
	d.Deferrals, d.LastStatusCode, d.LastError, d.NextAttemptAt = e.Deferral, 0, e.Error, nil
	d.heldLast = e.Held
	if e.Held {
		d.Held++
	}
	if e.NextAttemptAt != nil {
		next := *e.NextAttemptAt
		d.NextAttemptAt = &next
	} else {
		d.Status = Failed
	}
}

// applyAttempt records a due attempt's outcome.
func (d *Delivery) applyAttempt(e DeliveryAttempted) {
	d.heldLast = false
	d.Attempts, d.LastStatusCode, d.LastError = e.Attempt, e.StatusCode, e.Error
	d.NextAttemptAt = nil
	switch {
	case e.Succeeded:
		d.Status = Succeeded
	case e.NextAttemptAt != nil:
		next := *e.NextAttemptAt
		d.NextAttemptAt = &next
	default:
		d.Status = Failed
	}
}
