package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/logging"
)

const (
	invID    = "inv_01JD0000000000000000000I01"
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	tenantID = "tnt_01JD0000000000000000000T01"
	svaID    = "sva_01JD0000000000000000000S01"
)

// lines decodes the JSON lines written so far.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func invCtx(level *slog.Level) context.Context {
	return invocation.With(context.Background(), &invocation.Context{
		InvocationID: invID, TraceID: traceID, Trigger: "http",
		Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: svaID, TenantID: tenantID},
		Toggles:   invocation.Toggles{LogLevel: level},
	})
}

func TestNewWritesJSONWithInvocationAttrs(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelInfo)
	log.InfoContext(invCtx(nil), "scope created", "scopeId", "scp_1")

	got := lines(t, &buf)
	if len(got) != 1 {
		t.Fatalf("got %d lines, want 1: %s", len(got), buf.String())
	}
	want := map[string]any{
		"level": "INFO", "msg": "scope created", "scopeId": "scp_1",
		"invocationId": invID, "traceId": traceID, "trigger": "http",
		"principal": "service_account:" + svaID, "tenantId": tenantID,
	}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, got[0][k], v, got[0])
		}
	}
	if _, ok := got[0]["time"]; !ok {
		t.Errorf("line has no time: %v", got[0])
	}
}

func TestNoInvocationNoAttrs(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelInfo)
	log.Info("starting", "port", 8080)
	log.InfoContext(invocation.With(context.Background(), &invocation.Context{}), "empty invocation")
	for _, l := range lines(t, &buf) {
		for _, k := range []string{"invocationId", "traceId", "principal", "tenantId"} {
			if _, ok := l[k]; ok {
				t.Errorf("line without invocation has %s: %v", k, l)
			}
		}
	}
}

func TestProcessLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelWarn)
	ctx := invCtx(nil)
	log.DebugContext(ctx, "debug")
	log.InfoContext(ctx, "info")
	log.WarnContext(ctx, "warn")
	log.ErrorContext(ctx, "error")
	log.Info("info without ctx")
	var msgs []string
	for _, l := range lines(t, &buf) {
		msgs = append(msgs, l["msg"].(string))
	}
	if strings.Join(msgs, ",") != "warn,error" {
		t.Fatalf("at level warn, logged %v; want [warn error]", msgs)
	}
	if log.Enabled(context.Background(), slog.LevelInfo) || !log.Enabled(context.Background(), slog.LevelWarn) {
		t.Fatal("Enabled does not follow the process level")
	}
}

func TestPerInvocationDebugToggle(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelInfo)
	debug := slog.LevelDebug
	debugCtx := invCtx(&debug)
	plainCtx := invCtx(nil)

	log.DebugContext(plainCtx, "hidden")
	log.Debug("hidden too")
	log.DebugContext(debugCtx, "shown")
	// Derived contexts and loggers with attributes keep the toggle.
	child, cancel := context.WithCancel(debugCtx)
	defer cancel()
	log.With("component", "x").DebugContext(child, "shown with attrs")
	log.DebugContext(plainCtx, "hidden again")

	got := lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("got %d lines, want the 2 debug lines of the toggled invocation: %s", len(got), buf.String())
	}
	if got[0]["msg"] != "shown" || got[0]["level"] != "DEBUG" || got[0]["invocationId"] != invID {
		t.Fatalf("first line = %v", got[0])
	}
	if got[1]["msg"] != "shown with attrs" || got[1]["component"] != "x" || got[1]["invocationId"] != invID {
		t.Fatalf("second line = %v", got[1])
	}
	if !log.Enabled(debugCtx, slog.LevelDebug) || log.Enabled(plainCtx, slog.LevelDebug) {
		t.Fatal("Enabled does not follow the invocation toggle")
	}
}

func TestWithAttrsKeepsLevelAndInvocation(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelInfo).With("module", "tenancy")
	log.DebugContext(invCtx(nil), "hidden")
	log.InfoContext(invCtx(nil), "shown")
	got := lines(t, &buf)
	if len(got) != 1 || got[0]["module"] != "tenancy" || got[0]["invocationId"] != invID || got[0]["tenantId"] != tenantID {
		t.Fatalf("lines = %v", got)
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"DEBUG", slog.LevelDebug},
		{" debug\n", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"Warn", slog.LevelWarn},
		{"error", slog.LevelError},
		{"", slog.LevelInfo},
		{"verbose", slog.LevelInfo},
		{"warning", slog.LevelInfo},
	}
	for _, tt := range tests {
		if got := logging.ParseLevel(tt.in); got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestToggleNeverHidesWhatTheProcessLogs(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelInfo)
	quiet := slog.LevelError
	log.InfoContext(invCtx(&quiet), "still shown")
	if got := lines(t, &buf); len(got) != 1 || got[0]["msg"] != "still shown" {
		t.Fatalf("a toggle above the process level hid a line: %s", buf.String())
	}
}
