package clock_test

import (
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
)

// Inputs are read as RFC 3339 (acceptance finding: a comma fraction was
// taken, lowercase "t" and "z" refused).
func TestParseRFC3339(t *testing.T) {
	want := time.Date(2026, 11, 23, 10, 0, 0, 500_000_000, time.UTC)
	for _, ok := range []string{"2026-11-23T10:00:00.5Z", "2026-11-23t10:00:00.5z", "2026-11-23T11:00:00.500+01:00", "2026-11-23T10:00:00.500000000Z"} {
		if got, err := clock.ParseRFC3339(ok); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v, %v", ok, got, err)
		}
	}
	for _, bad := range []string{"2026-11-23T10:00:00,5Z", "tomorrow", "", "2026-11-23", "2026-11-23T10:00:00", "0000-01-01T00:00:00Z", "2026-11-23 10:00:00Z"} {
		if _, err := clock.ParseRFC3339(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
