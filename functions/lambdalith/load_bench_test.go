package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/pebblestore"
)

// The load run: the production app in local mode on the embedded store (a
// temporary data dir), served by serveLocal on a real TCP listener with its
// worker and sweep, driven over HTTP by concurrent closed-loop clients. It
// prints a report between "=== load report ===" and "=== end load report ===".
//
// SWITCHBOARD_LOAD=1 runs the full load (32 clients for 10 s); without it the
// same run is a short smoke run (4 clients, 1 s) so that `make bench` stays
// quick. Environment:
//
//	SWITCHBOARD_LOAD=1                 the full run (defaults below)
//	SWITCHBOARD_LOAD_SECONDS           duration of the load phase (10; smoke 1)
//	SWITCHBOARD_LOAD_CLIENTS           concurrent clients (32; smoke 4)
//	SWITCHBOARD_LOAD_COMMAND           send-message | create-scope | auto (auto:
//	                                   send-message when the app serves it)
//	SWITCHBOARD_LOAD_DRAIN_SECONDS     how long to wait for the work to drain (300)
//	SWITCHBOARD_LOAD_DATA_DIR          data dir to use instead of a temp dir
//	SWITCHBOARD_LOAD_WORKERS           the app's SWITCHBOARD_WORKERS (default: the app's)
//	SWITCHBOARD_ENGINE                 the embedded engine (bbolt; pebble)
//	SWITCHBOARD_LOAD_CPUPROFILE        a file for a CPU profile of the load phase alone
//
// Requests carry an Idempotency-Key, as retry-safe clients send them.
// Accepted means 202 for send-message, 200 for create-scope; anything else is
// an error (counted by status). After the load phase the run waits until the
// outbox holds no pending work and, for send-message, every accepted message
// is in a final status (it fails if one is not "delivered"), and prints that
// drain time.

type loadConfig struct {
	full            bool
	clients         int
	duration, drain time.Duration
	command         string
	dataDir         string
}

func loadConfigFromEnv(b *testing.B) loadConfig {
	c := loadConfig{full: os.Getenv("SWITCHBOARD_LOAD") == "1", clients: 4, duration: time.Second, drain: 300 * time.Second,
		command: strings.TrimSpace(os.Getenv("SWITCHBOARD_LOAD_COMMAND")), dataDir: os.Getenv("SWITCHBOARD_LOAD_DATA_DIR")}
	if c.full {
		c.clients, c.duration = 32, 10*time.Second
	}
	num := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	c.clients = num("SWITCHBOARD_LOAD_CLIENTS", c.clients)
	c.duration = time.Duration(num("SWITCHBOARD_LOAD_SECONDS", int(c.duration/time.Second))) * time.Second
	c.drain = time.Duration(num("SWITCHBOARD_LOAD_DRAIN_SECONDS", int(c.drain/time.Second))) * time.Second
	switch c.command {
	case "", "auto":
		c.command = "auto"
	case "send-message", "create-scope":
	default:
		b.Fatalf("SWITCHBOARD_LOAD_COMMAND=%q: use send-message, create-scope or auto", c.command)
	}
	return c
}

var loadOnce sync.Once

// BenchmarkLoad runs the load once, whatever b.N (ns/op is meaningless; see
// the report and the metrics accepted/s and p99-ms).
func BenchmarkLoad(b *testing.B) {
	loadOnce.Do(func() { runLoad(b, loadConfigFromEnv(b)) })
}

// warnCounter is a slog handler that counts the app's warnings and errors by
// message (a load run must not print thousands of lines, nor hide them).
type warnCounter struct {
	mu     sync.Mutex
	counts map[string]int
	first  map[string]string
}

func (w *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.counts[r.Message] == 0 {
		var sb strings.Builder
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value); return true })
		w.first[r.Message] = r.Level.String() + " " + r.Message + sb.String()
	}
	w.counts[r.Message]++
	return nil
}
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

func (w *warnCounter) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for m, n := range w.counts {
		out = append(out, fmt.Sprintf("%6d × %s", n, w.first[m]))
	}
	sort.Strings(out)
	return out
}

// readyWriter is serveLocal's stdout: it reports the address of the "Ready:"
// line once.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	addr  chan string
	found bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.found {
		for _, line := range strings.Split(w.buf.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, "Ready: curl http://"); ok {
				w.found = true
				w.addr <- strings.TrimSuffix(rest, "/healthz")
				break
			}
		}
	}
	return len(p), nil
}

// loadClient is the generator's HTTP client: a plain net/http client with
// enough idle connections for every load client.
type loadClient struct {
	base string
	hc   *http.Client
}

func newLoadClient(base string, clients int) *loadClient {
	tr := &http.Transport{
		MaxIdleConns:        2 * max(64, clients),
		MaxIdleConnsPerHost: max(64, clients),
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &loadClient{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// call posts body to path and decodes a JSON answer into out (when non-nil
// and the status is 2xx).
func (c *loadClient) call(ctx context.Context, path, token string, body any, idemKey string, out any) (int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s: %d %s", path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: decode %s: %w", path, data, err)
		}
	}
	return resp.StatusCode, nil
}

// clientResult is what one load client saw.
type clientResult struct {
	latencies []time.Duration // of accepted requests
	perSecond []int           // accepted requests by second of the run
	statuses  map[int]int     // non-accepted answers by status (0: transport error)
	firstErr  error
	ids       []string // accepted message ids (send-message)
}

func runLoad(b *testing.B, cfg loadConfig) {
	b.Helper()
	dataDir := cfg.dataDir
	if dataDir == "" {
		dataDir = b.TempDir()
	}
	warns := &warnCounter{counts: map[string]int{}, first: map[string]string{}}
	// A free port, known before the app is built: the sandbox provider posts
	// its receipts to the public URL.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(probe.Addr().(*net.TCPAddr).Port)
	probe.Close()
	env := map[string]string{"SWITCHBOARD_STORE": "embedded", "SWITCHBOARD_DATA_DIR": dataDir, "PORT": port}
	if n := os.Getenv("SWITCHBOARD_LOAD_WORKERS"); n != "" {
		env["SWITCHBOARD_WORKERS"] = n
	}
	if e := os.Getenv("SWITCHBOARD_ENGINE"); e != "" {
		env["SWITCHBOARD_ENGINE"] = e
	}
	appCfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	app, err := Build(context.Background(), appCfg, Deps{Logger: slog.New(warns)})
	if err != nil {
		b.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(context.Background())
	stdout := &readyWriter{addr: make(chan string, 1)}
	served := make(chan error, 1)
	go func() { served <- serveLocal(serveCtx, app, stdout) }()
	defer func() {
		stopServe()
		if err := <-served; err != nil {
			b.Errorf("serveLocal: %v", err)
		}
	}()
	var addr string
	select {
	case addr = <-stdout.addr:
	case err := <-served:
		b.Fatalf("serveLocal ended before it was ready: %v\n%s", err, stdout.buf.String())
	case <-time.After(30 * time.Second):
		b.Fatal("serveLocal not ready after 30 s")
	}
	ctx := context.Background()
	cl := newLoadClient("http://"+addr, cfg.clients)

	// Onboard a tenant and wait until its provisioning ran.
	var tenant struct{ TenantID, APIKey, RootScopeID string }
	if _, err := cl.call(ctx, "/commands/onboard-tenant", app.OperatorKey, map[string]string{"name": "Load", "tier": "pooled"}, "", &tenant); err != nil {
		b.Fatal(err)
	}
	eventually(b, 30*time.Second, "tenant active", func() bool {
		var t struct{ Status string }
		_, err := cl.call(ctx, "/queries/get-tenant", tenant.APIKey, map[string]any{}, "", &t)
		return err == nil && t.Status == "active"
	})

	command := cfg.command
	if command == "auto" {
		command = "create-scope"
		// The messaging module answers create-channel once it is wired.
		if st, _ := cl.call(ctx, "/commands/create-channel", tenant.APIKey, map[string]any{}, "", nil); st != http.StatusNotFound {
			command = "send-message"
		}
	}
	var channelID string
	if command == "send-message" {
		var ch struct{ ChannelID string }
		_, err := cl.call(ctx, "/commands/create-channel", tenant.APIKey, map[string]any{
			"scopeId": tenant.RootScopeID, "name": "load", "type": "sms", "provider": "sandbox", "from": "+15550000000",
		}, "", &ch)
		if err != nil {
			b.Fatal(err)
		}
		channelID = ch.ChannelID
	}

	// The load phase: closed-loop clients until the deadline.
	accepted := http.StatusOK
	if command == "send-message" {
		accepted = http.StatusAccepted
	}
	loadAvgStart := loadAvg() // other processes on the machine skew the figures
	if path := os.Getenv("SWITCHBOARD_LOAD_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
	}
	seconds := int(cfg.duration/time.Second) + 2
	results := make([]clientResult, cfg.clients)
	var seq atomic.Int64
	start := time.Now()
	deadline := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for i := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.perSecond, r.statuses = make([]int, seconds), map[int]int{}
			rc := newRawClient(addr)
			defer rc.close()
			var body, idem []byte
			for time.Now().Before(deadline) {
				n := seq.Add(1)
				var path string
				var out struct{ MessageID string }
				switch command {
				case "send-message":
					path = "/commands/send-message"
					// The sandbox's last four digits 0001-0004 fail, retry, stay silent
					// or bounce: normal recipients end in 1000-9999 (delivered).
					body = append(body[:0], `{"channelId":"`...)
					body = append(body, channelID...)
					body = fmt.Appendf(body, `","to":"+1555%03d%04d","content":{"text":"load %d"}}`, n/9000%1000, 1000+n%9000, n)
				default:
					path = "/commands/create-scope"
					body = append(body[:0], `{"parentScopeId":"`...)
					body = append(body, tenant.RootScopeID...)
					body = fmt.Appendf(body, `","name":"load-%d"}`, n)
				}
				idem = fmt.Appendf(idem[:0], "load-%d-%d", start.UnixNano(), n)
				t0 := time.Now()
				st, answer, err := rc.post(path, tenant.APIKey, string(idem), body)
				lat := time.Since(t0)
				if err == nil && st == accepted && command == "send-message" {
					if err = json.Unmarshal(answer, &out); err == nil && out.MessageID == "" {
						err = fmt.Errorf("no messageId in %s", answer)
					}
				}
				if err != nil || st != accepted {
					r.statuses[st]++
					if r.firstErr == nil {
						r.firstErr = fmt.Errorf("status %d: %v %s", st, err, answer)
					}
					continue
				}
				r.latencies = append(r.latencies, lat)
				r.perSecond[min(int(t0.Sub(start)/time.Second), seconds-1)]++
				if command == "send-message" {
					r.ids = append(r.ids, out.MessageID)
				}
			}
		}()
	}
	wg.Wait()
	loadEnd := time.Now()
	pprof.StopCPUProfile() // (no-op without a profile)
	var storeStats *boltstore.WriteStats
	var pebbleStats *pebblestore.WriteStats
	switch s := app.Store.(type) {
	case *boltstore.Store:
		st := s.WriteStats()
		storeStats = &st
	case *pebblestore.Store:
		st := s.WriteStats()
		pebbleStats = &st
	}
	elapsed := loadEnd.Sub(start)

	var lat []time.Duration
	perSecond := make([]int, seconds)
	statuses := map[int]int{}
	var ids []string
	var firstErr error
	for _, r := range results {
		lat = append(lat, r.latencies...)
		for s, n := range r.perSecond {
			perSecond[s] += n
		}
		for st, n := range r.statuses {
			statuses[st] += n
		}
		ids = append(ids, r.ids...)
		if firstErr == nil {
			firstErr = r.firstErr
		}
	}
	slices.Sort(lat)
	errCount := 0
	for _, n := range statuses {
		errCount += n
	}

	// The drain: no pending work left, and every message final.
	drainErr := waitDrained(ctx, app.Store, cl, tenant.APIKey, ids, loadEnd.Add(cfg.drain))
	drain := time.Since(loadEnd)
	parked, _ := app.Store.ParkedOutbox(ctx, 100)

	rate := float64(len(lat)) / elapsed.Seconds()
	var rep strings.Builder
	fmt.Fprintln(&rep, "=== load report ===")
	mode := "smoke (SWITCHBOARD_LOAD=1 for the full run)"
	if cfg.full {
		mode = "full"
	}
	fmt.Fprintf(&rep, "mode:        %s; local mode, embedded store (%s), %d workers, sweep every %d s\n", mode, appCfg.EmbeddedEngine(), appCfg.Workers, appCfg.SweepEvery)
	fmt.Fprintf(&rep, "machine:     GOMAXPROCS %d; load average at start %s, at the end %s\n", runtime.GOMAXPROCS(0), loadAvgStart, loadAvg())
	fmt.Fprintf(&rep, "command:     POST /commands/%s (with Idempotency-Key)\n", command)
	fmt.Fprintf(&rep, "clients:     %d concurrent, closed loop, for %s\n", cfg.clients, elapsed.Round(time.Millisecond))
	fmt.Fprintf(&rep, "accepted:    %d (%.0f/s)\n", len(lat), rate)
	fmt.Fprintf(&rep, "latency:     p50 %s  p90 %s  p99 %s  max %s\n", pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100))
	full := perSecond[:min(len(perSecond), int(elapsed/time.Second))]
	fmt.Fprintf(&rep, "per second:  %v\n", full)
	if st := storeStats; st != nil && st.Transactions > 0 && st.Writes > 0 {
		fmt.Fprintf(&rep, "store:       until the end of the load %d writes in %d transactions (%.1f per transaction, %s each), %.1f pages written per write\n",
			st.Writes, st.Transactions, float64(st.Writes)/float64(st.Transactions),
			(st.Busy / time.Duration(st.Transactions)).Round(10*time.Microsecond), float64(st.PagesWritten)/float64(st.Writes))
		per := func(d time.Duration) time.Duration {
			return (d / time.Duration(st.Transactions)).Round(10 * time.Microsecond)
		}
		fmt.Fprintf(&rep, "             a transaction: %s applying the writes, %s building pages, %s writing and syncing them\n",
			per(st.Busy-st.SpillTime-st.WriteTime), per(st.SpillTime), per(st.WriteTime))
	}
	if st := pebbleStats; st != nil && st.Transactions > 0 && st.Syncs > 0 {
		fmt.Fprintf(&rep, "store:       until the end of the load %d writes in %d group commits (%.1f per group, %s of committer time each), %d log syncs (%.1f writes per sync, %s waited each), %.0f log bytes per write\n",
			st.Writes, st.Transactions, float64(st.Writes)/float64(st.Transactions), (st.Busy / time.Duration(st.Transactions)).Round(10*time.Microsecond),
			st.Syncs, float64(st.Writes)/float64(st.Syncs), (st.SyncTime / time.Duration(st.Syncs)).Round(10*time.Microsecond), float64(st.WALBytes)/float64(max(st.Writes, 1)))
	}
	fmt.Fprintf(&rep, "errors:      %d", errCount)
	if errCount > 0 {
		fmt.Fprintf(&rep, " by status %v (0: transport error); first: %v", statuses, firstErr)
	}
	fmt.Fprintln(&rep)
	if drainErr != nil {
		fmt.Fprintf(&rep, "drain:       NOT DRAINED after %s: %v\n", drain.Round(time.Millisecond), drainErr)
	} else if command == "send-message" {
		fmt.Fprintf(&rep, "drain:       %s after the load until every accepted message was delivered and no work was pending\n", drain.Round(time.Millisecond))
	} else {
		fmt.Fprintf(&rep, "drain:       %s after the load until no work was pending\n", drain.Round(time.Millisecond))
	}
	fmt.Fprintf(&rep, "parked work: %d\n", len(parked))
	for _, l := range warns.lines() {
		fmt.Fprintf(&rep, "app log:     %s\n", l)
	}
	fmt.Fprintln(&rep, "=== end load report ===")
	fmt.Print(rep.String())

	b.ReportMetric(rate, "accepted/s")
	b.ReportMetric(float64(pct(lat, 99))/float64(time.Millisecond), "p99-ms")
	b.ReportMetric(drain.Seconds(), "drain-s")
	switch {
	case len(lat) == 0:
		b.Errorf("no request accepted; first error: %v", firstErr)
	case errCount > 0:
		b.Errorf("%d requests failed; first: %v", errCount, firstErr)
	case drainErr != nil:
		b.Errorf("not drained: %v", drainErr)
	case len(parked) > 0:
		b.Errorf("%d work items parked, first: %+v", len(parked), parked[0])
	}
}

// pct is the p-th percentile of sorted durations (nearest rank).
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)].Round(10 * time.Microsecond)
}

// waitDrained waits until the outbox holds no pending work (any due time,
// parked entries aside) and every message of ids is in a final status, which
// must be "delivered". It polls the store's outbox index (cheap) and then
// asks get-message for the messages not seen final yet.
func waitDrained(ctx context.Context, store eventstore.Outbox, cl *loadClient, apiKey string, ids []string, deadline time.Time) error {
	for {
		e, err := store.PendingOutbox(ctx, eventstore.ParkedAt.Add(-time.Nanosecond), 1)
		if err != nil {
			return err
		}
		if len(e) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("work still pending, e.g. %s (%s, attempt %d, due %s)", e[0].ID, e[0].Type, e[0].Attempt, e[0].DueAt.Format(time.RFC3339Nano))
		}
		time.Sleep(20 * time.Millisecond)
	}
	left := ids
	var bad, lastErr error // a message not delivered; the last failed call
	for len(left) > 0 {
		var mu sync.Mutex
		var notFinal []string
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(left) {
						return
					}
					var m struct{ Status string }
					_, err := cl.call(ctx, "/queries/get-message", apiKey, map[string]string{"messageId": left[i]}, "", &m)
					mu.Lock()
					switch {
					case err != nil:
						lastErr = err
						notFinal = append(notFinal, left[i])
					case m.Status == "delivered":
					case finalStatus(m.Status):
						bad = cmpOr(bad, fmt.Errorf("message %s ended %q, want delivered", left[i], m.Status))
					default:
						notFinal = append(notFinal, left[i])
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		left = notFinal
		if len(left) > 0 && time.Now().After(deadline) {
			return fmt.Errorf("%d messages not final, e.g. %s (last error: %v)", len(left), left[0], lastErr)
		}
		if len(left) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return bad
}

// loadAvg is the machine's 1-minute load average ("?" where /proc has none).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func finalStatus(s string) bool {
	switch s {
	case "delivered", "undelivered", "failed", "canceled", "received":
		return true
	}
	return false
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
