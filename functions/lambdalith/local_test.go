package main

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// localProc is the binary running in local mode.
type localProc struct {
	cmd    *exec.Cmd
	base   string
	mu     sync.Mutex
	stdout strings.Builder
	done   chan error
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startLocal starts local mode and waits until /healthz answers 200.
func startLocal(t *testing.T, port int, env ...string) *localProc {
	t.Helper()
	p := &localProc{cmd: exec.Command(binary(t)), base: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan error, 1)}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=" + strconv.Itoa(port)}, env...)
	out, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			p.mu.Lock()
			p.stdout.WriteString(s.Text() + "\n")
			p.mu.Unlock()
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	eventually(t, 15*time.Second, "healthz", func() bool {
		resp, err := http.Get(p.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func (p *localProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// TestKill9LosesNothing: work accepted before a kill -9 runs after the restart.
func TestKill9LosesNothing(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	env := []string{"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_OPERATOR_KEY=sbo_kill9"}
	// Work paused: the provisioning work stays in the outbox.
	p := startLocal(t, port, append(env, "SWITCHBOARD_WORKERS=0")...)
	c := &client{t: t, base: p.base}
	on := c.must(200, "/commands/onboard-tenant", "sbo_kill9", `{"name":"Crashy","tier":"pooled"}`)
	key := str(on.Body["apiKey"])
	if r := c.must(200, "/queries/get-tenant", key, `{}`); r.Body["status"] != "provisioning" {
		t.Fatalf("before: %s", r.Raw)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	p2 := startLocal(t, port, env...)
	c2 := &client{t: t, base: p2.base}
	eventually(t, 15*time.Second, "provisioning after restart", func() bool {
		return c2.must(200, "/queries/get-tenant", key, `{}`).Body["status"] == "active"
	})
	// The idempotent replay survives the crash too.
	c2.must(200, "/queries/list-scopes", key, `{}`)
}

// TestSIGTERMStopsCleanly: SIGTERM drains and exits 0.
func TestSIGTERMStopsCleanly(t *testing.T) {
	p := startLocal(t, freePort(t), "SWITCHBOARD_DATA_DIR="+t.TempDir(), "SWITCHBOARD_OPERATOR_KEY=sbo_term")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.output())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop within 20 s")
	}
	if !strings.Contains(p.output(), "Stopped.") {
		t.Fatalf("output: %s", p.output())
	}
}

// TestGeneratedOperatorKey: without SWITCHBOARD_OPERATOR_KEY, local mode makes
// one, keeps it in the data dir, prints it, and keeps it across restarts.
func TestGeneratedOperatorKey(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	p := startLocal(t, port, "SWITCHBOARD_DATA_DIR="+dir)
	b, err := os.ReadFile(filepath.Join(dir, "operator.key"))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(b))
	eventually(t, 5*time.Second, "the banner", func() bool { return strings.Contains(p.output(), "Ready:") })
	if !strings.HasPrefix(key, "sbo_") || !strings.Contains(p.output(), key) {
		t.Fatalf("key %q not printed:\n%s", key, p.output())
	}
	if fi, _ := os.Stat(filepath.Join(dir, "operator.key")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("operator.key mode %v", fi.Mode())
	}
	(&client{t: t, base: p.base}).must(200, "/commands/onboard-tenant", key, `{"name":"Keyed","tier":"pooled"}`)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p2 := startLocal(t, port, "SWITCHBOARD_DATA_DIR="+dir)
	// stdout is read asynchronously: wait until the banner is through.
	eventually(t, 5*time.Second, "the restart's banner", func() bool { return strings.Contains(p2.output(), "Ready:") })
	if !strings.Contains(p2.output(), key) {
		t.Fatalf("restart printed another key:\n%s", p2.output())
	}
}

// TestForegroundCountsAPIRequestsOnly: commands and queries make the local
// worker yield while in flight and for foregroundLinger after; provider
// webhooks (the sandbox's receipts) do not.
func TestForegroundCountsAPIRequestsOnly(t *testing.T) {
	fg := &foreground{threshold: 1}
	var during bool
	h := fg.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { during = fg.busy() }))
	for _, c := range []struct {
		path string
		busy bool
	}{{"/webhooks/sandbox/chn_1", false}, {"/healthz", false}, {"/queries/get-message", true}, {"/commands/send-message", true}} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, c.path, nil))
		if during != c.busy {
			t.Errorf("%s: busy during the request = %v, want %v", c.path, during, c.busy)
		}
	}
	if !fg.busy() {
		t.Error("not busy right after an API request; want busy for foregroundLinger")
	}
	time.Sleep(foregroundLinger + 20*time.Millisecond)
	if fg.busy() {
		t.Errorf("still busy %s after the last API request", foregroundLinger+20*time.Millisecond)
	}
}

// TestForegroundIsBusyOnlyWhenLoaded: requests one or two at a time (a
// steady 50 sends/s) leave the worker running all its workers; it yields
// from threshold requests in flight at once (acceptance finding: at 50
// sends/s the work fell 26 s behind).
func TestForegroundIsBusyOnlyWhenLoaded(t *testing.T) {
	fg := &foreground{threshold: 3}
	release := make(chan struct{})
	started := make(chan struct{})
	h := fg.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		started <- struct{}{}
		<-release
	}))
	var wg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/commands/send-message", nil))
		}()
		<-started
		if busy, want := fg.busy(), i >= 3; busy != want {
			t.Errorf("%d requests in flight: busy = %v, want %v", i, busy, want)
		}
	}
	close(release)
	wg.Wait()
	if !fg.busy() {
		t.Error("not busy right after the API was loaded; want busy for foregroundLinger")
	}
	time.Sleep(foregroundLinger + 20*time.Millisecond)
	if fg.busy() {
		t.Error("still busy after foregroundLinger")
	}
	// One request at a time never makes it busy.
	h = fg.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 10 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/commands/send-message", nil))
		if fg.busy() {
			t.Fatal("busy after requests one at a time")
		}
	}
}
