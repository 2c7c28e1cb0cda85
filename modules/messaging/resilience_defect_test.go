//go:build defect

package messaging_test

import (
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/messaging/app"
)

// DEFECT (run with: go test -tags defect -run TestDefectProviderCallHasNoDeadline ./modules/messaging/):
// the dispatch work bounds no provider call. DispatchHandler.Handle calls
// Provider.Send with the work item's context, and the local worker runs items
// with context.Background() (work.LocalWorker.run), so a provider that never
// answers (a hung TCP connection, a client without a timeout) keeps its
// message "sending" (its attempt claimed) forever: no send-attempt-failed,
// no retry, no failure, and each such call holds one of the worker's
// goroutines for good. With
// SWITCHBOARD_WORKERS (default 4) hung calls, all local work stops: other
// messages, receipts, subscriber webhooks and tenant provisioning.
//
// Expected: each provider call gets a deadline (as the webhook sender's
// AttemptTimeout does, 15 s), its expiry is a transient failure retried with
// backoff, and a worker is never held by one call past it.
func TestDefectProviderCallHasNoDeadline(t *testing.T) {
	p := &rsProvider{timeout: time.Second, calls: map[string][]rsCall{}, sent: map[string]string{}, sends: map[string]int{},
		script: map[string][]rsStep{"+15550400009": {rsHang, rsAccept}}}
	e := newRSEnv(t, p, func(h *app.DispatchHandler) { h.RetryBase = 100 * time.Millisecond })
	var hung []string
	for range 4 { // as many as the worker has goroutines
		hung = append(hung, e.send(t, "+15550400009"))
	}
	time.Sleep(500 * time.Millisecond)
	ordinary := e.send(t, "+15550400010")

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && e.message(t, ordinary)["status"] != "sent" {
		time.Sleep(50 * time.Millisecond)
	}
	if m := e.message(t, ordinary); m["status"] != "sent" {
		t.Errorf("an ordinary message is still %v 5 s after it was sent: the worker's goroutines are all held by hung provider calls", m["status"])
	}
	deadline = time.Now().Add(20 * time.Second)
	for _, id := range hung {
		for time.Now().Before(deadline) && e.message(t, id)["status"] != "sent" {
			time.Sleep(100 * time.Millisecond)
		}
		if m := e.message(t, id); m["status"] != "sent" || m["attempts"] != 2.0 {
			calls, _ := p.report(id)
			t.Errorf("%s: %v after %v attempts (%d provider calls, the first never answered); want sent after 2 attempts", id, m["status"], m["attempts"], len(calls))
		}
	}
}
