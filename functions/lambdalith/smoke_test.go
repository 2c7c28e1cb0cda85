package main

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/tools/smoke/smoke"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveLocalMode runs local mode as `make run` does (serveLocal: the HTTP
// server on 127.0.0.1:$PORT, the worker, the outbox sweep, the jobs) over
// the production wiring on the embedded store, and stops it at the end of
// the test. It returns the base URL.
func serveLocalMode(t *testing.T, operatorKey string) string {
	t.Helper()
	port := freePort(t)
	app := buildOn(t, "embedded", map[string]string{"SWITCHBOARD_OPERATOR_KEY": operatorKey, "PORT": strconv.Itoa(port)})
	ctx, stop := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- serveLocal(ctx, app, out) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("local mode stopped with %v\n%s", err, out.String())
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	eventually(t, 10*time.Second, "healthz", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// TestSmoke runs `make smoke`'s command (tools/smoke: smoke.Main, as `go run
// ./tools/smoke` does, settings from the environment) against local mode on
// the embedded store: with RECEIVER=local it passes (tenant, channels,
// subscription, the sandbox outcomes in their final statuses, every webhook
// verified, one retried with the same webhook-id, the deliveries, the keys
// revoked); with RECEIVER=none it passes on what list-deliveries shows; a
// wrong operator key, no server or missing settings fail with a readable
// reason and a non-zero exit code, never a panic.
func TestSmoke(t *testing.T) {
	const opKey = "sbo_smoke"
	base := serveLocalMode(t, opKey)
	ctx := context.Background()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}

	t.Run("receiver local", func(t *testing.T) {
		var out syncBuffer
		start := time.Now()
		code, res := smoke.Main(ctx, nil, env("BASE_URL", base+"/", "OPERATOR_KEY", opKey, "RECEIVER", "local", "TIMEOUT", "30"), &out)
		t.Logf("make smoke (RECEIVER=local) in %s:\n%s", time.Since(start).Round(time.Millisecond), out.String())
		last := lastLine(out.String())
		if code != smoke.ExitPass || !res.Passed || !strings.HasPrefix(last, "PASS smoke test of "+base) {
			t.Fatalf("exit %d, last line %q, want 0 and PASS", code, last)
		}
		for i := 1; i <= 9; i++ {
			if !strings.Contains(out.String(), "["+strconv.Itoa(i)+"/9] ") {
				t.Fatalf("no progress line for step %d/9", i)
			}
		}
		// What it found: every sandbox outcome, one event per status
		// change received and delivered, one webhook retried.
		if len(res.Messages) != len(smoke.Cases) {
			t.Fatalf("%d messages, want %d", len(res.Messages), len(smoke.Cases))
		}
		events := 0
		for _, m := range res.Messages {
			events += len(m.Case.Webhooks)
			if m.Status != m.Case.Status || m.StatusReason != m.Case.Reason || m.Attempts != m.Case.Attempts {
				t.Fatalf("%s: %s %q attempts %d, want %+v", m.Case.Name, m.Status, m.StatusReason, m.Attempts, m.Case)
			}
		}
		if res.Events != events || res.Deliveries != events || res.Webhooks < events+1 || res.RetriedWebhook == "" {
			t.Fatalf("events %d, deliveries %d, webhooks %d, retried %q: want %d events and deliveries, one retried",
				res.Events, res.Deliveries, res.Webhooks, res.RetriedWebhook, events)
		}
		// The cleanup revoked the admin key: it no longer works.
		c := &client{t: t, base: base}
		c.must(401, "/queries/get-tenant", res.APIKey, `{}`)
		if !res.RevokeChecked || len(res.Revoked) != 1 || res.Revoked[0] != res.APIKeyID ||
			!strings.Contains(out.String(), "no delete-tenant") || !strings.Contains(out.String(), res.TenantID) {
			t.Fatalf("cleanup: revoked %v (checked %v), leftovers %v", res.Revoked, res.RevokeChecked, res.Leftovers)
		}
	})

	t.Run("receiver none", func(t *testing.T) {
		// Port 1 on loopback refuses at once; deployments get an .invalid
		// host by default (no DNS in this test).
		var out syncBuffer
		start := time.Now()
		res := smoke.Run(ctx, smoke.Config{BaseURL: base, OperatorKey: opKey, Receiver: smoke.ReceiverSpec{Mode: smoke.ReceiverNone},
			UnreachableURL: "http://127.0.0.1:1/webhook", Timeout: 30 * time.Second, Out: &out})
		t.Logf("RECEIVER=none in %s:\n%s", time.Since(start).Round(time.Millisecond), out.String())
		if !res.Passed {
			t.Fatalf("smoke failed at %s: %v", res.FailedStep, res.Err)
		}
		if res.Deliveries != 14 || res.Webhooks != 0 || len(res.NotChecked) == 0 || !strings.Contains(out.String(), "connection refused") {
			t.Fatalf("deliveries %d, webhooks %d, not checked %v", res.Deliveries, res.Webhooks, res.NotChecked)
		}
	})

	t.Run("wrong operator key", func(t *testing.T) {
		var out syncBuffer
		code, _ := smoke.Main(ctx, []string{"-base-url", base}, env("OPERATOR_KEY", "sbo_wrong"), &out)
		t.Logf("wrong operator key:\n%s", out.String())
		last := lastLine(out.String())
		if code != smoke.ExitFail || !strings.HasPrefix(last, "FAIL smoke test of "+base) ||
			!strings.Contains(last, "onboard-tenant") || !strings.Contains(last, "401 errors.") ||
			!strings.Contains(out.String(), "what to do: OPERATOR_KEY is not this deployment's operator key") ||
			!strings.Contains(out.String(), "nothing to clean up") {
			t.Fatalf("exit %d, want 1 and a readable FAIL:\n%s", code, out.String())
		}
	})

	t.Run("no server", func(t *testing.T) {
		var out syncBuffer
		code, _ := smoke.Main(ctx, nil, env("BASE_URL", "http://127.0.0.1:"+strconv.Itoa(freePort(t)), "OPERATOR_KEY", opKey), &out)
		t.Logf("no server:\n%s", out.String())
		if code != smoke.ExitFail || !strings.Contains(lastLine(out.String()), "healthz") || !strings.Contains(out.String(), "is BASE_URL") {
			t.Fatalf("exit %d, want 1 and a FAIL at healthz:\n%s", code, out.String())
		}
	})

	t.Run("missing settings", func(t *testing.T) {
		var out syncBuffer
		code, _ := smoke.Main(ctx, nil, env("BASE_URL", base), &out)
		if code != smoke.ExitConfig || !strings.Contains(out.String(), "FAIL smoke test not started: BASE_URL and OPERATOR_KEY are required") {
			t.Fatalf("exit %d:\n%s", code, out.String())
		}
	})
}

// lastLine is the last line of s, with the indented lines that continue it.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	i := len(lines) - 1
	for i > 0 && strings.HasPrefix(lines[i], " ") {
		i--
	}
	return strings.Join(lines[i:], "\n")
}
