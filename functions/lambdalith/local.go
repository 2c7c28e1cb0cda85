package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/modules/identity"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// LocalMaxHeaderBytes bounds a request's headers in local mode (API Gateway
// takes 10 KB in AWS).
const LocalMaxHeaderBytes = 64 << 10

// serveLocal runs local mode until ctx ends (SIGTERM/SIGINT): the HTTP server
// on 127.0.0.1:$PORT, the in-process worker, the outbox sweep and the signing
// key rotation (the scheduled jobs of AWS, on tickers). Work accepted
// before a stop, even kill -9, is in the store and runs after the next start.
func serveLocal(ctx context.Context, a *App, stdout io.Writer) error {
	cfg := a.Config
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w (set PORT to use another port)", cfg.Port, err)
	}
	fg := &foreground{}
	a.Worker.Busy = fg.busy
	srv := &http.Server{Handler: fg.wrap(a.Server), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		MaxHeaderBytes: LocalMaxHeaderBytes}

	// Audit entries are written in the background (App.Close writes the rest).
	a.Audit.Start()
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	rotated := make(chan struct{})
	go func() { defer close(rotated); a.jobLoop(sweepCtx, identity.RotationJob, LocalRotationEvery) }()
	sweepDone := make(chan struct{})
	if cfg.Workers > 0 {
		a.Worker.Start()
		go func() {
			defer close(sweepDone)
			a.sweepLoop(sweepCtx, time.Duration(cfg.SweepEvery)*time.Second)
		}()
	} else {
		close(sweepDone)
		fmt.Fprintln(stdout, "Work is paused (SWITCHBOARD_WORKERS=0): accepted work waits in the store.")
	}

	addr := ln.Addr().String()
	fmt.Fprintf(stdout, "Switchboard local mode on http://%s (store: %s", addr, cfg.Store)
	if cfg.Store == "embedded" {
		fmt.Fprintf(stdout, " (%s) in %s", cfg.EmbeddedEngine(), cfg.DataDir)
	} else {
		fmt.Fprintf(stdout, ", table %s", cfg.Table)
	}
	fmt.Fprintln(stdout, ")")
	if a.OperatorKey != "" && cfg.OperatorKey == "" {
		how := "kept in"
		if a.OperatorKeyGenerated {
			how = "generated, saved to"
		}
		fmt.Fprintf(stdout, "Operator key (%s %s/operator.key):\n  %s\n", how, cfg.DataDir, a.OperatorKey)
	}
	fmt.Fprintf(stdout, "Ready: curl http://%s/healthz\n", addr)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	fmt.Fprintln(stdout, "Stopping: draining requests and running work...")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// The worker stops starting items at once (those running finish) while
	// the requests drain: work they commit waits in the store for the next
	// start (chaos run finding: an item started after SIGTERM held a
	// webhook attempt for the whole budget).
	workerStopped := make(chan struct{})
	go func() {
		a.Worker.Stop(shutdownCtx)
		close(workerStopped)
	}()
	err = srv.Shutdown(shutdownCtx)
	stopSweep()
	<-sweepDone
	<-rotated
	<-workerStopped
	if cerr := a.Close(); cerr != nil && err == nil {
		err = cerr
	}
	fmt.Fprintln(stdout, "Stopped.")
	return err
}

// sweepLoop runs the outbox sweep now (recovering work accepted before a
// crash) and then every period.
func (a *App) sweepLoop(ctx context.Context, period time.Duration) {
	a.jobLoop(ctx, work.SweepJob, period)
}

// LocalRotationEvery is how often local mode runs the signing key rotation
// job (it acts only when a key is due; issue-token makes the first key).
const LocalRotationEvery = 5 * time.Minute

// jobLoop runs a scheduled job now and then every period until ctx ends:
// local mode's stand-in for the EventBridge schedules of AWS.
func (a *App) jobLoop(ctx context.Context, job string, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := a.Jobs.Run(ctx, job); err != nil && ctx.Err() == nil {
			a.Logger.WarnContext(ctx, "scheduled job failed", "job", job, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// foreground tracks the API requests (commands and queries) in flight, so
// that the local worker runs in the background while the API is loaded: a
// burst of sends keeps the CPU and the store's commits, and the work it
// created runs when the burst is over (it waits in the store meanwhile).
// Loaded means at least threshold requests in flight at once (default
// twice the cores): a steady trickle of requests (one or two at a time,
// 50 sends/s) leaves every worker running, or its work falls behind
// without end (acceptance finding: at 50 sends/s scheduled messages went
// out 26 s late, the API being "busy" whenever a request had ended less
// than foregroundLinger ago). Provider and subscriber webhooks
// (/webhooks/...) are work, not foreground: the sandbox posts its receipts
// there.
type foreground struct {
	threshold int64 // requests in flight that make the API loaded; 0: 2 × GOMAXPROCS
	inflight  atomic.Int64
	lastBusy  atomic.Int64 // unix nanos of the last moment it was loaded
}

// foregroundLinger is how long after the API was last loaded the worker
// still counts it as busy (closed-loop clients leave gaps between requests).
const foregroundLinger = 100 * time.Millisecond

func (f *foreground) loaded(n int64) bool {
	t := f.threshold
	if t <= 0 {
		t = int64(2 * runtime.GOMAXPROCS(0))
	}
	return n >= t
}

func (f *foreground) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/commands") && !strings.HasPrefix(r.URL.Path, "/queries") {
			h.ServeHTTP(w, r)
			return
		}
		if f.loaded(f.inflight.Add(1)) {
			f.lastBusy.Store(time.Now().UnixNano())
		}
		defer func() {
			if f.loaded(f.inflight.Add(-1) + 1) {
				f.lastBusy.Store(time.Now().UnixNano())
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func (f *foreground) busy() bool {
	return f.loaded(f.inflight.Load()) || time.Since(time.Unix(0, f.lastBusy.Load())) < foregroundLinger
}
