// Package logging builds the process logger: slog JSON lines that carry the
// invocation context (invocationId, traceId, principal, tenantId, ...) of the
// ctx they are logged with, and honour a per-invocation level toggle, so one
// request can be debugged without raising the level of the whole process.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// New returns a JSON logger writing to w at level (the process default).
func New(w io.Writer, level slog.Level) *slog.Logger {
	base := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(&handler{next: base, level: level})
}

// ParseLevel reads "debug", "info", "warn", "error" (default info).
func ParseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return slog.LevelInfo
	}
	return l
}

type handler struct {
	next  slog.Handler
	level slog.Level
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	if ctx != nil {
		if t := invocation.From(ctx).Toggles.LogLevel; t != nil {
			return l >= min(*t, h.level) // a toggle only ever adds detail
		}
	}
	return l >= h.level
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if c := invocation.From(ctx); c.InvocationID != "" {
			r.AddAttrs(c.LogAttrs()...)
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(attrs), level: h.level}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), level: h.level}
}
