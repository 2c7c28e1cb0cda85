package domain

import (
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
)

// TimestampLayout is how a Timestamp is written: RFC 3339, UTC, exactly three
// fraction digits (the contract's time format, section 2).
const TimestampLayout = clock.TimeFormat

// Timestamp is an instant in an event's data. It is written in
// TimestampLayout, so that the data get-message-history shows is in the
// contract's format (acceptance finding: the default encoding gave up to nine
// fraction digits, or none), and reads any RFC 3339 time, so events stored
// before it still decode.
type Timestamp struct{ time.Time }

// At is t as a Timestamp, in UTC and truncated to the millisecond: what it
// reads back as.
func At(t time.Time) Timestamp { return Timestamp{t.UTC().Truncate(time.Millisecond)} }

// AtOrAfter is t as a Timestamp, in UTC and rounded up to the millisecond: a
// time that must not come early (a sendAt: the release at it never comes
// before the time asked, and a sendAt in the future stays in the future).
func AtOrAfter(t time.Time) Timestamp {
	at := At(t)
	if at.Before(t) {
		at.Time = at.Add(time.Millisecond)
	}
	return at
}

// MarshalJSON implements json.Marshaler.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimestampLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimestampLayout)
	return append(b, '"'), nil
}
