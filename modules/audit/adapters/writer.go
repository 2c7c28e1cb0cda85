package adapters

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/audit/app"
	"github.com/switchboard-dev/switchboard/modules/audit/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// Writer defaults.
const (
	DefaultFlushEvery = 100 * time.Millisecond
	DefaultMaxPending = 20000
	// DefaultMaxPendingPerTenant keeps one tenant's burst from pushing out
	// the entries of the others.
	DefaultMaxPendingPerTenant = 5000
	flushAttempts              = 3
)

// Writer is the rpc.Auditor of the audit log: it turns each entry of the
// audit hook into a domain.Entry of the caller's tenant (the operator's go
// to eventstore.OperatorNamespace; calls of no known tenant are only in the
// log lines) and writes them in batches, per tenant, outside the calls'
// commits: denied, failed and unauthenticated calls are recorded like the
// others.
//
// In the background mode (Start; local mode) a goroutine writes what is
// pending every FlushEvery, and at once when MaxBatch entries wait; Stop
// writes the rest. Without Start (Lambda mode) nothing runs between
// invocations: the server calls FlushAudit at the end of every HTTP request,
// so an invocation's entries are written before its response leaves.
//
// A failed write is tried flushAttempts times, then the entries are logged
// at error level ("audit entries lost") with their invocation ids. At most
// MaxPending entries wait; beyond that new entries are dropped and logged the
// same way (a store that cannot keep up must not exhaust memory).
type Writer struct {
	Log        app.Log
	IDs        ids.Generator
	Logger     *slog.Logger
	FlushEvery time.Duration // default DefaultFlushEvery
	MaxPending int           // default DefaultMaxPending
	// MaxPendingPerTenant bounds one tenant's waiting entries (default
	// DefaultMaxPendingPerTenant).
	MaxPendingPerTenant int
	MaxBatch            int // default 100

	mu       sync.Mutex
	pending  map[string][]domain.Entry // by tenant
	n        int
	flushing sync.Mutex // one flush at a time
	started  bool
	stopped  bool
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

var (
	_ rpc.Auditor      = (*Writer)(nil)
	_ rpc.AuditFlusher = (*Writer)(nil)
)

// Audit implements rpc.Auditor.
func (w *Writer) Audit(ctx context.Context, e rpc.AuditEntry) {
	tenantID := e.TenantID
	if tenantID == "" {
		if invocation.From(ctx).Principal.Kind != invocation.KindOperator {
			return // no tenant known: the log line is the record
		}
		tenantID = eventstore.OperatorNamespace
	}
	entry := domain.Entry{
		AuditID: w.IDs.New(ids.Audit), At: e.At, TenantID: tenantID, InvocationID: e.InvocationID, TraceID: e.TraceID,
		ActionID: e.ActionID, Principal: e.Principal, CredentialID: e.CredentialID, Endpoint: e.Endpoint, Kind: string(e.Kind),
		Action: e.Action, Resources: e.Resources, Outcome: e.Outcome, Status: e.Status, Code: e.Code, Replayed: e.Replayed,
		SourceIP: e.Source.IP, UserAgent: rpc.CleanUserAgent(e.Source.UserAgent), DurationMs: float64(e.Duration.Microseconds()) / 1000,
	}
	w.mu.Lock()
	if w.pending == nil {
		w.pending = map[string][]domain.Entry{}
	}
	if w.n >= w.maxPending() || len(w.pending[tenantID]) >= or(w.MaxPendingPerTenant, DefaultMaxPendingPerTenant) {
		w.mu.Unlock()
		w.lost(ctx, "audit writer full", []domain.Entry{entry})
		return
	}
	w.pending[tenantID] = append(w.pending[tenantID], entry)
	w.n++
	full := w.n >= w.maxBatch()
	started := w.started
	w.mu.Unlock()
	if full && started {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// FlushAudit implements rpc.AuditFlusher: without Start it writes what is
// pending; with Start the background loop does.
func (w *Writer) FlushAudit(ctx context.Context) {
	w.mu.Lock()
	background := w.started && !w.stopped
	w.mu.Unlock()
	if !background {
		w.Flush(ctx)
	}
}

// Flush writes every pending entry now.
func (w *Writer) Flush(ctx context.Context) {
	w.flushing.Lock()
	defer w.flushing.Unlock()
	w.mu.Lock()
	batch := w.pending
	w.pending, w.n = nil, 0
	w.mu.Unlock()
	for tenantID, entries := range batch {
		var err error
		for attempt := range flushAttempts {
			err = w.Log.Append(ctx, tenantID, entries)
			if err == nil || errors.Is(err, app.ErrEntriesRefused) || ctx.Err() != nil {
				break
			}
			if attempt+1 < flushAttempts {
				time.Sleep(time.Duration(10<<attempt) * time.Millisecond)
			}
		}
		switch {
		case errors.Is(err, app.ErrEntriesRefused):
			w.logger().ErrorContext(ctx, "audit entries lost", slog.String("reason", err.Error()), slog.String("tenantId", tenantID))
		case err != nil:
			w.lost(ctx, "audit write failed: "+err.Error(), entries)
		}
	}
}

// lost logs entries that will not be written.
func (w *Writer) lost(ctx context.Context, reason string, entries []domain.Entry) {
	invs := make([]string, 0, len(entries))
	for _, e := range entries {
		invs = append(invs, e.InvocationID)
	}
	w.logger().ErrorContext(ctx, "audit entries lost", slog.String("reason", reason),
		slog.Int("entries", len(entries)), slog.String("tenantId", entries[0].TenantID), slog.Any("invocationIds", invs))
}

// Start runs the background loop until Stop.
func (w *Writer) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return
	}
	w.started = true
	w.wake, w.stop, w.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go w.loop()
}

// Stop ends the loop and writes what is pending (within ctx).
func (w *Writer) Stop(ctx context.Context) {
	w.mu.Lock()
	started := w.started && !w.stopped
	w.stopped = true
	w.mu.Unlock()
	if started {
		close(w.stop)
		select {
		case <-w.done:
		case <-ctx.Done():
		}
	}
	w.Flush(ctx)
}

func (w *Writer) loop() {
	defer close(w.done)
	every := w.FlushEvery
	if every <= 0 {
		every = DefaultFlushEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.wake:
		}
		w.Flush(context.Background())
	}
}

func (w *Writer) maxPending() int {
	if w.MaxPending > 0 {
		return w.MaxPending
	}
	return DefaultMaxPending
}

func or(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func (w *Writer) maxBatch() int {
	if w.MaxBatch > 0 {
		return w.MaxBatch
	}
	return 100
}

func (w *Writer) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.New(slog.DiscardHandler)
}
