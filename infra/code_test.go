package main

// Drift checks between the infrastructure and the code it deploys.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/identity/ports"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/logging"
	"github.com/switchboard-dev/switchboard/modules/kernel/trigger"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	messagingapp "github.com/switchboard-dev/switchboard/modules/messaging/app"
	messagingports "github.com/switchboard-dev/switchboard/modules/messaging/ports"
	webhooksadapters "github.com/switchboard-dev/switchboard/modules/webhooks/adapters"
)

// discardCommits is a store that accepts every commit.
type discardCommits struct{}

func (discardCommits) Commit(context.Context, *eventstore.Commit) error { return nil }

// TestParkedLogTerm: the line the work path writes when it parks an entry
// matches the metric filter (a quoted CloudWatch term matches a log event
// containing the phrase).
func TestParkedLogTerm(t *testing.T) {
	var buf bytes.Buffer
	q := &work.Requeuer{
		Runner:      &uow.Runner{Store: discardCommits{}},
		Logger:      logging.New(&buf, slog.LevelInfo),
		MaxAttempts: 1,
	}
	it := work.Item{ID: "wrk_01K94G2DA8R6T3M1N0P5Q7V9XW", TenantID: siloedID, Type: "test.park", Attempt: 1, DueAt: time.Now()}
	if err := q.RetryLater(context.Background(), it, errors.New("always fails")); err != nil {
		t.Fatalf("RetryLater: %v", err)
	}
	line := strings.TrimSpace(buf.String())
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["level"] != "ERROR" {
		t.Fatalf("parked log line %q: %v", line, err)
	}
	if !strings.Contains(line, ParkedLogTerm) {
		t.Errorf("parked log line %q does not contain the filter's term %q", line, ParkedLogTerm)
	}
}

// TestWorkerTimeoutFitsABatch: a whole batch of records at their time
// bounds, plus the router's deadline margin, fits the worker's timeout.
func TestWorkerTimeoutFitsABatch(t *testing.T) {
	slowest := max(messagingapp.ProviderCallTimeout, webhooksadapters.AttemptTimeout)
	need := WorkBatchSize*slowest + trigger.DefaultDeadlineMargin
	if have := WorkerTimeoutSeconds * time.Second; need > have {
		t.Errorf("a batch of %d records at %s each plus %s margin needs %s; the worker has %s",
			WorkBatchSize, slowest, trigger.DefaultDeadlineMargin, need, have)
	}
	if WorkerTimeoutSeconds*WorkVisibilityFactor > 12*3600 {
		t.Errorf("visibility timeout above SQS's 12 h")
	}
}

// TestRoutesCoverTheCode: every path the binary serves reaches it through
// the API's routes.
func TestRoutesCoverTheCode(t *testing.T) {
	// The rpc server's own routes (modules/kernel/rpc/server.go) and the
	// modules' route patterns.
	paths := []string{"/healthz", "/commands", "/commands/send-message", "/queries/get-tenant"}
	for _, pattern := range []string{ports.JWKSPattern, messagingports.WebhookPattern} {
		paths = append(paths, pattern[strings.IndexByte(pattern, ' ')+1:])
	}
	for _, p := range paths {
		covered := false
		for _, r := range APIRoutes {
			if (r.Exact && p == r.Path) || (r.Proxy && strings.HasPrefix(p, r.Path+"/")) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("path %s is not routed to the function", p)
		}
	}
}

// TestJobEventIsTheSample: the schedules send the event of
// events/samples/eventbridge-scheduler-job.json, which the router's tests
// route to the sweep.
func TestJobEventIsTheSample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "events", "samples", "eventbridge-scheduler-job.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sample any
	if err := json.Unmarshal(b, &sample); err != nil {
		t.Fatal(err)
	}
	eq(t, "sweep event", JobEvent(work.SweepJob), sample)
	if trigger.Detect(b) != trigger.KindScheduledJob {
		t.Errorf("the router does not see the sample as a scheduled job")
	}
	got, _ := json.Marshal(JobEvent(ScheduledJobs[1].Name))
	if trigger.Detect(got) != trigger.KindScheduledJob {
		t.Errorf("the router does not see %s as a scheduled job", got)
	}
}
