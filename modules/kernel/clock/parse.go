package clock

import (
	"errors"
	"strings"
	"time"
)

// TimeFormat is how the API writes times (contract section 2): RFC 3339, UTC,
// exactly three fraction digits. Every module's answers use it.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// ParseRFC3339 reads a date-time of an API input as RFC 3339 says (section
// 5.6): "T" and "Z" in either case, a fraction of any length after a period
// (not a comma, which ISO 8601 allows and RFC 3339 does not), any offset, a
// year from 1 to 9999.
func ParseRFC3339(s string) (time.Time, error) {
	if strings.ContainsRune(s, ',') {
		return time.Time{}, errors.New("a fraction of a second follows a period in RFC 3339")
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, err
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, errors.New("year out of range")
	}
	return t, nil
}
