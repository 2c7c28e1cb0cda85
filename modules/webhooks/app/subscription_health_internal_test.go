package app

import (
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// One attempt's outcome changes the subscription by the health rule, then
// by the pause rule: a call that timed out pauses it, a call that was not
// made (refused, or cut short by the invocation) pauses nothing, and a
// failure that disables the subscription pauses nothing either.
func TestHealthChangeAppliesBothRules(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	healthy := &domain.Subscription{ID: "sub_1", Status: domain.Enabled, Version: 1}
	types := func(evs []domain.Event) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.EventType())
		}
		return out
	}
	for _, tc := range []struct {
		name string
		sub  *domain.Subscription
		p    SubscriptionHealthPayload
		want []string
	}{
		{"timed out", healthy, SubscriptionHealthPayload{At: t0, Call: CallTimedOut, EndedAt: t0.Add(15 * time.Second)},
			[]string{domain.TypeSubscriptionFailing, domain.TypeSubscriptionPaused}},
		{"not called", healthy, SubscriptionHealthPayload{At: t0}, []string{domain.TypeSubscriptionFailing}},
		{"answered with a 500", healthy, SubscriptionHealthPayload{At: t0, Call: CallAnswered, EndedAt: t0}, []string{domain.TypeSubscriptionFailing}},
		{"disabling timeout", &domain.Subscription{ID: "sub_1", Status: domain.Enabled, Version: 2, FailingSince: new(t0.Add(-domain.DisableAfter))},
			SubscriptionHealthPayload{At: t0, Call: CallTimedOut, EndedAt: t0.Add(15 * time.Second)}, []string{domain.TypeSubscriptionDisabled}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := types(healthChange(tc.sub, tc.p))
			if len(got) != len(tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("events %v, want %v", got, tc.want)
				}
			}
		})
	}
}
