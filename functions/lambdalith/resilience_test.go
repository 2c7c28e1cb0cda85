package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
)

// Resilience tests (issue item "Resilience tests"): crashes of the real
// binary during a burst of sends and during dispatch, duplicate and
// out-of-order provider receipts over HTTP, and a subscriber that is down for
// a while. Provider timeouts and transient errors through the work path are in
// modules/messaging/resilience_test.go (a custom provider cannot be wired
// into the production Build).

// ---- the binary as a subprocess (the technique of local_test.go, with its
// output kept in a file for the failure report) ----

type rslProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	logf   string
	exited chan struct{}
	err    error
}

// rslStart runs local mode on port with env and waits until /healthz answers.
func rslStart(t *testing.T, port int, name string, env ...string) *rslProc {
	t.Helper()
	p := &rslProc{t: t, cmd: exec.Command(binary(t)), base: "http://127.0.0.1:" + strconv.Itoa(port),
		logf: filepath.Join(t.TempDir(), name+".log"), exited: make(chan struct{})}
	f, err := os.Create(p.logf)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=" + strconv.Itoa(port)}, env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", name, p.err, p.tail(40))
		default:
		}
		if resp, err := hc.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 15 s\n%s", name, p.tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *rslProc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.exited
}

// stop stops the process with SIGTERM and expects a clean exit.
func (p *rslProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("no exit 20 s after SIGTERM\n%s", p.tail(40))
	}
	if p.err != nil {
		p.t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.tail(40))
	}
}

// tail is the last n lines of the process's output.
func (p *rslProc) tail(n int) string {
	b, _ := os.ReadFile(p.logf)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// rslPost is one API call that reports transport errors instead of failing
// (the process may be dead).
func rslPost(hc *http.Client, url, token, body string, hdr ...string) (int, http.Header, map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err // the answer was cut: lost
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header, m, nil
}

// rslBurstSend is one send-message of a burst and what came back.
type rslBurstSend struct {
	key, body string
	status    int
	messageID string
	replayed  bool
	err       error
}

// rslRunBurst sends every request of sends from `clients` concurrent clients;
// after the killAt-th answer (0: never) it calls kill once. Requests made
// after the kill fail (their answer is lost).
func rslRunBurst(base, token string, sends []*rslBurstSend, clients, killAt int, kill func()) {
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer hc.CloseIdleConnections()
	next := make(chan *rslBurstSend)
	var answered atomic.Int64
	var killOnce sync.Once
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				s.status, s.messageID, s.replayed, s.err = 0, "", false, nil
				st, h, m, err := rslPost(hc, base+"/commands/send-message", token, s.body, "Idempotency-Key", s.key)
				if err != nil {
					s.err = err
					continue
				}
				s.status, s.messageID, s.replayed = st, str(m["messageId"]), h.Get("Idempotent-Replayed") == "true"
				if n := answered.Add(1); killAt > 0 && int(n) == killAt {
					killOnce.Do(kill)
				}
			}
		}()
	}
	for _, s := range sends {
		next <- s
	}
	close(next)
	wg.Wait()
}

// rslRecipient is an sms recipient the sandbox delivers (its last four
// digits are never 0001..0004).
func rslRecipient(i int) string { return fmt.Sprintf("+1555%07d", 2005000+i) }

// TestKill9DuringSendBurstAndDispatch runs the real binary in local mode,
// fires a burst of keyed send-message calls from concurrent clients and kills
// the process with SIGKILL in the middle of it (dispatch and receipts run
// meanwhile); after a restart on the same data dir the clients resend the
// requests whose answer was lost, with the same Idempotency-Key; a second
// burst follows, and a second SIGKILL hits while its messages are being
// dispatched and their receipts posted. After the last restart every
// accepted message must be delivered, after one attempt, with one message
// per accepted id (no ghost from a lost answer), one sent and one delivered
// event each, and the sandbox's durable send log (read from a copy of the
// stopped store) must show each message accepted exactly once. A subscriber
// of every event (its deliveries are interrupted by the kills too) must get
// each event, signed, under one webhook-id, with one succeeded delivery per
// event in list-deliveries.
func TestKill9DuringSendBurstAndDispatch(t *testing.T) {
	const (
		operatorKey = "sbo_resilience_kill9"
		burst1      = 300
		burst2      = 100
		clients     = 8
		killAt      = 120 // answers before the first SIGKILL
	)
	began := time.Now()
	dir, port := t.TempDir(), freePort(t)
	env := []string{"SWITCHBOARD_DATA_DIR=" + dir, "SWITCHBOARD_OPERATOR_KEY=" + operatorKey, "SWITCHBOARD_WEBHOOK_RETRY_SCALE=0.001"}

	p1 := rslStart(t, port, "run1", env...)
	c := &client{t: t, base: p1.base}
	on := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"Crash Burst","tier":"pooled"}`)
	key, tenantID, root := str(on.Body["apiKey"]), str(on.Body["tenantId"]), str(on.Body["rootScopeId"])
	eventually(t, 10*time.Second, "tenant active", func() bool {
		return c.must(200, "/queries/get-tenant", key, `{}`).Body["status"] == "active"
	})
	channelID := str(c.must(200, "/commands/create-channel", key,
		`{"scopeId":"`+root+`","name":"burst","type":"sms","provider":"sandbox","from":"+15550000000"}`).Body["channelId"])
	// A subscriber of every event: its deliveries are work that the kills interrupt too.
	rv := &rslReceiver{}
	hook := httptest.NewServer(rv)
	t.Cleanup(hook.Close)
	sub := c.must(200, "/commands/create-subscription", key, `{"scopeId":"`+root+`","url":"`+hook.URL+`","eventTypes":["*"]}`)
	subID := str(sub.Body["subscriptionId"])
	rv.mu.Lock()
	rv.secret = str(sub.Body["secret"])
	rv.mu.Unlock()

	newSends := func(from, n int) []*rslBurstSend {
		out := make([]*rslBurstSend, n)
		for i := range n {
			out[i] = &rslBurstSend{key: fmt.Sprintf("burst-%04d", from+i),
				body: `{"channelId":"` + channelID + `","to":"` + rslRecipient(from+i) + `","content":{"text":"burst ` + strconv.Itoa(from+i) + `"}}`}
		}
		return out
	}
	accepted := map[string]string{} // idempotency key -> message id
	record := func(s *rslBurstSend) {
		t.Helper()
		if s.status != 202 || !ids.Valid(ids.Message, s.messageID) {
			t.Fatalf("send %s: status %d, messageId %q", s.key, s.status, s.messageID)
		}
		if prev, ok := accepted[s.key]; ok && prev != s.messageID {
			t.Fatalf("send %s answered %s, then %s", s.key, prev, s.messageID)
		}
		accepted[s.key] = s.messageID
	}

	// Kill 1: in the middle of the burst (the worker dispatches meanwhile).
	sends1 := newSends(0, burst1)
	t0 := time.Now()
	rslRunBurst(p1.base, key, sends1, clients, killAt, func() { _ = p1.cmd.Process.Signal(syscall.SIGKILL) })
	<-p1.exited
	var lost []*rslBurstSend
	for _, s := range sends1 {
		switch {
		case s.err != nil:
			lost = append(lost, s)
		default:
			record(s)
		}
	}
	t.Logf("burst 1: %d answered (202) and %d lost in %s; killed after answer %d", len(accepted), len(lost), time.Since(t0).Round(time.Millisecond), killAt)
	if len(lost) == 0 || len(accepted) < killAt {
		t.Fatalf("the kill did not land in the burst: %d answered, %d lost", len(accepted), len(lost))
	}

	// Restart; the clients resend what they got no answer for, with the same keys.
	p2 := rslStart(t, port, "run2", env...)
	t1 := time.Now()
	rslRunBurst(p2.base, key, lost, clients, 0, nil)
	replayed := 0
	for _, s := range lost {
		if s.err != nil {
			t.Fatalf("resend %s: %v\n%s", s.key, s.err, p2.tail(20))
		}
		if s.replayed {
			replayed++ // its first request committed before the kill
		}
		record(s)
	}
	t.Logf("resent %d lost requests in %s: %d replayed (committed before the kill), %d new",
		len(lost), time.Since(t1).Round(time.Millisecond), replayed, len(lost)-replayed)
	// A replay of an answered request gives the same message.
	for _, s := range sends1[:5] {
		st, h, m, err := rslPost(http.DefaultClient, p2.base+"/commands/send-message", key, s.body, "Idempotency-Key", s.key)
		if err != nil || st != 202 || h.Get("Idempotent-Replayed") != "true" || str(m["messageId"]) != accepted[s.key] {
			t.Fatalf("replay of %s after the restart: %d %v %v (want %s): %v", s.key, st, h.Get("Idempotent-Replayed"), m, accepted[s.key], err)
		}
	}

	// Kill 2: a second burst, then SIGKILL while its messages are being
	// dispatched and their receipts posted (some are sent, awaiting a receipt).
	sends2 := newSends(burst1, burst2)
	rslRunBurst(p2.base, key, sends2, clients, 0, nil)
	for _, s := range sends2 {
		if s.err != nil {
			t.Fatalf("burst 2 %s: %v", s.key, s.err)
		}
		record(s)
	}
	c2 := &client{t: t, base: p2.base}
	count := func(c *client, status string) int {
		items, _ := c.must(200, "/queries/list-messages", key, `{"channelId":"`+channelID+`","status":"`+status+`","limit":100}`).Body["items"].([]any)
		return len(items)
	}
	var queued, sent int
	eventually(t, 5*time.Second, "a message awaiting its receipt", func() bool {
		queued, sent = count(c2, "queued"), count(c2, "sent")
		return sent > 0
	})
	p2.kill9()
	t.Logf("kill 2 with (up to 100 counted) %d queued and %d sent awaiting a receipt", queued, sent)

	// Last start: everything accepted finishes.
	p3 := rslStart(t, port, "run3", env...)
	c3 := &client{t: t, base: p3.base}
	t2 := time.Now()
	pending := map[string]bool{}
	for _, id := range accepted {
		pending[id] = true
	}
	msgs := map[string]map[string]any{}
	deadline := time.Now().Add(20 * time.Second)
	for len(pending) > 0 {
		for id := range pending {
			r := c3.must(200, "/queries/get-message", key, `{"messageId":"`+id+`"}`)
			if s := str(r.Body["status"]); s == "delivered" || s == "undelivered" || s == "failed" || s == "canceled" {
				msgs[id] = r.Body
				delete(pending, id)
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var sample []string
			for id := range pending {
				sample = append(sample, id+"="+str(c3.must(200, "/queries/get-message", key, `{"messageId":"`+id+`"}`).Body["status"]))
				if len(sample) == 5 {
					break
				}
			}
			t.Fatalf("%d of %d accepted messages not final 20 s after the restart, e.g. %v\n%s", len(pending), len(accepted), sample, p3.tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("all %d accepted messages final %s after the last restart", len(accepted), time.Since(t2).Round(time.Millisecond))

	for id, m := range msgs {
		if m["status"] != "delivered" || m["attempts"] != 1.0 || m["statusReason"] != nil {
			t.Errorf("%s: status %v, attempts %v, reason %v; want delivered after 1 attempt", id, m["status"], m["attempts"], m["statusReason"])
		}
	}
	// One message per accepted id: a lost answer made no ghost.
	var listed []string
	cursor := ""
	for {
		body := `{"channelId":"` + channelID + `","limit":100}`
		if cursor != "" {
			body = `{"channelId":"` + channelID + `","limit":100,"cursor":"` + cursor + `"}`
		}
		page, next := pageIDs(t, c3.must(200, "/queries/list-messages", key, body), "messageId")
		listed = append(listed, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	want := make([]string, 0, len(accepted))
	for _, id := range accepted {
		want = append(want, id)
	}
	slices.Sort(want)
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("the channel lists %d messages, %d accepted ids", len(listed), len(want))
	}
	// The streams: one sent and one delivered event each.
	for _, id := range want {
		h := c3.must(200, "/queries/get-message-history", key, `{"messageId":"`+id+`"}`)
		evs, _ := h.Body["events"].([]any)
		n := map[string]int{}
		for _, e := range evs {
			n[str(e.(map[string]any)["type"])]++
		}
		// One of each, and no failed attempt; the only other events are the
		// claims of attempts (send-attempt-started), one for the one attempt.
		if n["messaging.message-accepted"] != 1 || n["messaging.message-sent"] != 1 || n["messaging.message-delivered"] != 1 ||
			n["messaging.send-attempt-started"] > 1 || len(evs) != 3+n["messaging.send-attempt-started"] {
			t.Errorf("%s: history %v", id, n)
		}
	}

	// Every event of every message reached the subscriber, signed, and
	// list-deliveries shows one succeeded delivery per event: the kills
	// neither lost a delivery nor made a second one for an event.
	type evKey struct{ messageID, typ string }
	var deliveries []map[string]any
	eventually(t, 20*time.Second, "every delivery succeeded", func() bool {
		deliveries = nil
		cursor := ""
		for {
			body := `{"subscriptionId":"` + subID + `","limit":100}`
			if cursor != "" {
				body = `{"subscriptionId":"` + subID + `","limit":100,"cursor":"` + cursor + `"}`
			}
			r := c3.must(200, "/queries/list-deliveries", key, body)
			page, _ := r.Body["items"].([]any)
			for _, it := range page {
				deliveries = append(deliveries, it.(map[string]any))
			}
			if cursor = str(r.Body["nextCursor"]); cursor == "" {
				break
			}
		}
		if len(deliveries) < 3*len(want) {
			return false
		}
		for _, d := range deliveries {
			if d["status"] != "succeeded" {
				return false
			}
		}
		return true
	})
	perEvent := map[string]int{}
	for _, d := range deliveries {
		perEvent[str(d["eventId"])]++
	}
	got := map[evKey]string{} // event -> webhook-id
	posts := 0
	for _, h := range rv.hooks() {
		posts++
		if h.verifyErr != nil {
			t.Errorf("webhook %s: %v", h.webhookID, h.verifyErr)
		}
		k := evKey{h.messageID, h.typ}
		if prev, ok := got[k]; ok && prev != h.webhookID {
			t.Errorf("%v came with webhook-ids %s and %s", k, prev, h.webhookID)
		}
		got[k] = h.webhookID
	}
	for _, id := range want {
		for _, typ := range []string{"message.queued", "message.sent", "message.delivered"} {
			if wid, ok := got[evKey{id, typ}]; !ok {
				t.Errorf("%s: %s never reached the subscriber", id, typ)
			} else if perEvent[wid] != 1 {
				t.Errorf("%s %s (%s): %d deliveries, want 1", id, typ, wid, perEvent[wid])
			}
		}
	}
	if len(deliveries) != 3*len(want) {
		t.Errorf("%d deliveries for %d messages of 3 events each", len(deliveries), len(want))
	}
	t.Logf("subscriber: %d deliveries succeeded, %d posts received (%d repeats of an event after a kill)", len(deliveries), posts, posts-len(got))
	p3.stop()

	// The sandbox's durable send log, from a copy of the stopped store.
	copyPath := filepath.Join(t.TempDir(), "switchboard.db")
	b, err := os.ReadFile(filepath.Join(dir, "switchboard.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	probe := sandbox.New(sandbox.Deps{Store: st})
	callsHist := map[int]int{}
	for _, id := range want {
		acc, calls, err := probe.Sends(context.Background(), tenantID, id)
		if err != nil || acc != 1 || calls < 1 {
			t.Errorf("%s: sandbox accepted %d times in %d calls (%v); want exactly once", id, acc, calls, err)
		}
		callsHist[calls]++
	}
	t.Logf("sandbox calls per message: %v (more than 1: a dispatch re-run after a kill, answered as a replay)", callsHist)
	t.Logf("total %s", time.Since(began).Round(time.Millisecond))
}

// ---- the production wiring in-process, served over real HTTP ----

// rslBuild is buildOn (embedded store) with the dependencies a test
// replaces (ids, logger).
func rslBuild(t *testing.T, env map[string]string, d Deps) *App {
	t.Helper()
	env["SWITCHBOARD_STORE"] = "embedded"
	if env["SWITCHBOARD_DATA_DIR"] == "" {
		env["SWITCHBOARD_DATA_DIR"] = t.TempDir()
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	app, err := Build(context.Background(), cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

// rslServe builds the production wiring behind an httptest server (its URL is
// SWITCHBOARD_PUBLIC_URL, so the sandbox's receipts come back over HTTP) and
// runs the worker and the outbox sweep as local mode does.
func rslServe(t *testing.T, env map[string]string, d Deps) (*App, *httptest.Server) {
	t.Helper()
	front := &lateHandler{}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	env["SWITCHBOARD_PUBLIC_URL"] = srv.URL
	a := rslBuild(t, env, d)
	var h http.Handler = a.Server
	front.h.Store(&h)
	a.Worker.Start()
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); a.sweepLoop(sweepCtx, time.Duration(a.Config.SweepEvery)*time.Second) }()
	t.Cleanup(func() {
		stopSweep()
		<-sweepDone
		a.Worker.Stop(context.Background())
	})
	return a, srv
}

// rslPresetIDs is the production id generator, except that the next ids of a
// prefix can be fixed in advance (to know a provider message id before the
// sandbox makes it).
type rslPresetIDs struct {
	ids.Generator
	mu   sync.Mutex
	next map[string][]string
}

func (p *rslPresetIDs) New(prefix string) string {
	p.mu.Lock()
	if q := p.next[prefix]; len(q) > 0 {
		p.next[prefix] = q[1:]
		p.mu.Unlock()
		return q[0]
	}
	p.mu.Unlock()
	return p.Generator.New(prefix)
}

func (p *rslPresetIDs) preset(prefix, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == nil {
		p.next = map[string][]string{}
	}
	p.next[prefix] = append(p.next[prefix], id)
}

// rslLogs is a slog handler that keeps every record (message and
// attributes, flattened), to wait for what the work path did.
type rslLogs struct {
	mu    *sync.Mutex
	recs  *[]rslLogRec
	attrs []slog.Attr
}

type rslLogRec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newRslLogs() *rslLogs {
	return &rslLogs{mu: &sync.Mutex{}, recs: &[]rslLogRec{}}
}

func (l *rslLogs) Enabled(context.Context, slog.Level) bool { return true }

func (l *rslLogs) Handle(_ context.Context, r slog.Record) error {
	rec := rslLogRec{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range l.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	*l.recs = append(*l.recs, rec)
	l.mu.Unlock()
	return nil
}

func (l *rslLogs) WithAttrs(as []slog.Attr) slog.Handler {
	return &rslLogs{mu: l.mu, recs: l.recs, attrs: append(slices.Clone(l.attrs), as...)}
}

func (l *rslLogs) WithGroup(string) slog.Handler { return l }

// find returns the records with msg whose attributes include kv (pairs).
func (l *rslLogs) find(msg string, kv ...string) []rslLogRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []rslLogRec
next:
	for _, r := range *l.recs {
		if r.msg != msg {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if !strings.Contains(r.attrs[kv[i]], kv[i+1]) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// rslPostSigned posts body to a channel's inbound webhook URL, signed with its
// inboundSecret by the Standard Webhooks library, and returns the status.
func rslPostSigned(t *testing.T, url, secret, webhookID, body string) int {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign(webhookID, now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(standardwebhooks.HeaderWebhookID, webhookID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// rslHistory counts the event types of a message's history (without the
// "messaging." prefix) and returns them in order.
func rslHistory(t *testing.T, c *client, key, messageID string) (map[string]int, []map[string]any) {
	t.Helper()
	h := c.must(200, "/queries/get-message-history", key, `{"messageId":"`+messageID+`"}`)
	evs, _ := h.Body["events"].([]any)
	n := map[string]int{}
	var out []map[string]any
	for _, e := range evs {
		ev := e.(map[string]any)
		n[strings.TrimPrefix(str(ev["type"]), "messaging.")]++
		out = append(out, ev)
	}
	return n, out
}

// TestReceiptsDuplicatedLateAndEarly posts provider receipts over HTTP, signed
// with the channel's inboundSecret, in the orders a real provider produces:
// the same receipt twice (same webhook-id), the same receipt again under a new
// webhook-id, "delivered" then "undelivered", "undelivered" then "delivered",
// and a receipt that arrives before the message is sent (its provider
// message id is fixed in advance), which must apply once the message is sent,
// through the work path's retry. Statuses only move forward; each history
// shows one final event. Recipients are the sandbox's "silent" ones, so the
// sandbox posts no receipt of its own.
func TestReceiptsDuplicatedLateAndEarly(t *testing.T) {
	const operatorKey = "sbo_receipts"
	gen := &rslPresetIDs{Generator: ids.NewULIDs()}
	logs := newRslLogs()
	_, srv := rslServe(t, map[string]string{"SWITCHBOARD_OPERATOR_KEY": operatorKey}, Deps{IDs: gen, Logger: slog.New(logs)})
	c := &client{t: t, base: srv.URL}
	on := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"Receipts","tier":"pooled"}`)
	key, root := str(on.Body["apiKey"]), str(on.Body["rootScopeId"])
	eventually(t, 10*time.Second, "tenant active", func() bool {
		return c.must(200, "/queries/get-tenant", key, `{}`).Body["status"] == "active"
	})
	ch := c.must(200, "/commands/create-channel", key, `{"scopeId":"`+root+`","name":"sms","type":"sms","provider":"sandbox","from":"+15550000000"}`)
	channelID, url, secret := str(ch.Body["channelId"]), str(ch.Body["inboundWebhookUrl"]), str(ch.Body["inboundSecret"])
	if url != srv.URL+"/webhooks/sandbox/"+channelID {
		t.Fatalf("inboundWebhookUrl %s", url)
	}
	receipt := func(pmid, status string) string {
		return `{"type":"receipt","providerMessageId":"` + pmid + `","status":"` + status + `"}`
	}
	status := func(id string) map[string]any {
		return c.must(200, "/queries/get-message", key, `{"messageId":"`+id+`"}`).Body
	}
	sendSilent := func(extra string) string {
		return str(c.must(202, "/commands/send-message", key, `{"channelId":"`+channelID+`","to":"+15550100003","content":{"text":"hi"}`+extra+`}`).Body["messageId"])
	}
	sentPMID := func(id string) string {
		var pmid string
		eventually(t, 10*time.Second, id+" sent", func() bool {
			if status(id)["status"] != "sent" {
				return false
			}
			_, evs := rslHistory(t, c, key, id)
			for _, ev := range evs {
				if ev["type"] == "messaging.message-sent" {
					pmid = str(ev["data"].(map[string]any)["providerMessageId"])
				}
			}
			return pmid != ""
		})
		return pmid
	}
	// processed waits until the receipt with webhook-id wid was processed and
	// changed nothing.
	processedNoop := func(wid string) {
		eventually(t, 10*time.Second, "receipt "+wid+" processed", func() bool {
			return len(logs.find("receipt changes nothing", "webhookId", wid)) > 0
		})
	}

	// 1. The same receipt twice, then again under a new webhook-id; then a
	// late "undelivered".
	m1 := sendSilent("")
	p1 := sentPMID(m1)
	for range 2 {
		if s := rslPostSigned(t, url, secret, "rcpt-dup-1", receipt(p1, "delivered")); s != 204 {
			t.Fatalf("receipt rcpt-dup-1: %d", s)
		}
	}
	eventually(t, 10*time.Second, "m1 delivered", func() bool { return status(m1)["status"] == "delivered" })
	if s := rslPostSigned(t, url, secret, "rcpt-dup-2", receipt(p1, "delivered")); s != 204 {
		t.Fatalf("receipt rcpt-dup-2: %d", s)
	}
	if s := rslPostSigned(t, url, secret, "rcpt-late-1", receipt(p1, "undelivered")); s != 204 {
		t.Fatalf("receipt rcpt-late-1: %d", s)
	}
	processedNoop("rcpt-dup-2")
	processedNoop("rcpt-late-1")
	if n := len(logs.find("provider webhook accepted", "webhookId", "rcpt-dup-1")); n != 1 {
		t.Errorf("rcpt-dup-1 accepted as new work %d times, want 1", n)
	}
	if got := status(m1); got["status"] != "delivered" || got["statusReason"] != nil {
		t.Errorf("m1 after the late undelivered receipt: %v", got)
	}
	if n, _ := rslHistory(t, c, key, m1); n["message-delivered"] != 1 || n["message-undelivered"] != 0 || n["message-sent"] != 1 {
		t.Errorf("m1 history %v: want one sent and one delivered", n)
	}

	// 2. "undelivered" first, then "delivered": the first final status stays.
	m2 := sendSilent("")
	p2 := sentPMID(m2)
	if s := rslPostSigned(t, url, secret, "rcpt-undl-2", `{"type":"receipt","providerMessageId":"`+p2+`","status":"undelivered","reason":"carrier.blocked"}`); s != 204 {
		t.Fatalf("receipt rcpt-undl-2: %d", s)
	}
	eventually(t, 10*time.Second, "m2 undelivered", func() bool { return status(m2)["status"] == "undelivered" })
	if s := rslPostSigned(t, url, secret, "rcpt-dlv-2", receipt(p2, "delivered")); s != 204 {
		t.Fatalf("receipt rcpt-dlv-2: %d", s)
	}
	processedNoop("rcpt-dlv-2")
	if got := status(m2); got["status"] != "undelivered" || got["statusReason"] != "carrier.blocked" {
		t.Errorf("m2 after the late delivered receipt: %v", got)
	}
	if n, _ := rslHistory(t, c, key, m2); n["message-delivered"] != 0 || n["message-undelivered"] != 1 {
		t.Errorf("m2 history %v: want one undelivered", n)
	}

	// 3. A receipt before the message is sent: the message is scheduled 3 s
	// ahead and its provider message id fixed; the receipt is accepted (204),
	// waits with its provider message id (its work item done, no retry), and
	// the send's commit applies it with the send.
	p3 := gen.Generator.New("sbx")
	gen.preset("sbx", p3)
	m3 := sendSilent(`,"sendAt":"` + time.Now().Add(3*time.Second).UTC().Format(time.RFC3339Nano) + `"`)
	if s := rslPostSigned(t, url, secret, "rcpt-early-3", receipt(p3, "delivered")); s != 204 {
		t.Fatalf("early receipt: %d", s)
	}
	eventually(t, 5*time.Second, "the early receipt waiting", func() bool {
		return len(logs.find("receipt waits for its message's send", "webhookId", "rcpt-early-3")) > 0
	})
	if n := len(logs.find("work failed; will retry", "type", "messaging.provider-webhook")); n != 0 {
		t.Errorf("the early receipt's work failed %d times; it should wait without failing", n)
	}
	if st := status(m3)["status"]; st != "scheduled" {
		t.Fatalf("m3 is %v while its early receipt waits; want scheduled", st)
	}
	start := time.Now()
	eventually(t, 20*time.Second, "m3 delivered by its early receipt", func() bool { return status(m3)["status"] == "delivered" })
	t.Logf("the early receipt applied %s after it started waiting", time.Since(start).Round(time.Millisecond))
	n, evs := rslHistory(t, c, key, m3)
	if n["message-delivered"] != 1 || n["message-sent"] != 1 || n["message-undelivered"] != 0 {
		t.Errorf("m3 history %v", n)
	}
	var order []string
	for _, ev := range evs {
		if ev["type"] == "messaging.send-attempt-started" {
			continue // the claim of an attempt
		}
		order = append(order, strings.TrimPrefix(str(ev["type"]), "messaging."))
		if ev["type"] == "messaging.message-sent" && str(ev["data"].(map[string]any)["providerMessageId"]) != p3 {
			t.Errorf("m3 sent as %v, want the preset %s", ev["data"], p3)
		}
	}
	if got := strings.Join(order, ","); got != "message-accepted,message-released,message-sent,message-delivered" {
		t.Errorf("m3 history %s", got)
	}
}

// rslHook is one request a subscriber received.
type rslHook struct {
	webhookID, typ, messageID, from string
	answered                        int
	verifyErr                       error
	at                              time.Time
}

// rslReceiver is a subscriber endpoint that answers 503 until downUntil, then 200.
type rslReceiver struct {
	secret    string
	mu        sync.Mutex
	downUntil time.Time
	got       []rslHook
}

func (rv *rslReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	h := rslHook{webhookID: r.Header.Get(standardwebhooks.HeaderWebhookID), at: time.Now()}
	wh, err := standardwebhooks.NewWebhook(rv.secret)
	if err == nil {
		err = wh.Verify(body, r.Header)
	}
	if err == nil && r.Header.Get("Content-Type") != "application/json" {
		err = fmt.Errorf("content type %q", r.Header.Get("Content-Type"))
	}
	h.verifyErr = err
	var b struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &b); err != nil && h.verifyErr == nil {
		h.verifyErr = fmt.Errorf("body: %w", err)
	}
	h.typ, h.messageID, h.from = b.Type, str(b.Data["messageId"]), str(b.Data["from"])
	h.answered = 200
	if time.Now().Before(rv.downUntil) {
		h.answered = 503
	}
	rv.got = append(rv.got, h)
	w.WriteHeader(h.answered)
}

func (rv *rslReceiver) hooks() []rslHook {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return slices.Clone(rv.got)
}

// TestSubscriberDownThenRecovers: through the production wiring with
// SWITCHBOARD_WEBHOOK_RETRY_SCALE=0.001 (Svix's schedule a thousand times
// faster: 0, 5 ms, 0.3 s, 1.8 s, 7.2 s, ...), a subscriber that answers 503
// for its first 3 seconds and 200 after receives every message event of the
// messages sent meanwhile (queued, sent, delivered, undelivered, failed,
// canceled, received) at least once, every attempt signed (verified with the
// Standard Webhooks library), with one webhook-id per event kept across its
// retries, and list-deliveries shows every delivery succeeded. One of the
// messages is the largest there is (64 KiB of content and full metadata in
// characters JSON stores in six bytes), so its events and webhook bodies are
// at their largest.
func TestSubscriberDownThenRecovers(t *testing.T) {
	const operatorKey = "sbo_subscriber_down"
	const down = 3 * time.Second
	_, srv := rslServe(t, map[string]string{"SWITCHBOARD_OPERATOR_KEY": operatorKey, "SWITCHBOARD_WEBHOOK_RETRY_SCALE": "0.001"}, Deps{})
	c := &client{t: t, base: srv.URL}
	on := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"Subscriber","tier":"pooled"}`)
	key, root := str(on.Body["apiKey"]), str(on.Body["rootScopeId"])
	eventually(t, 10*time.Second, "tenant active", func() bool {
		return c.must(200, "/queries/get-tenant", key, `{}`).Body["status"] == "active"
	})
	eu := str(c.must(200, "/commands/create-scope", key, `{"parentScopeId":"`+root+`","name":"eu"}`).Body["scopeId"])
	ch := c.must(200, "/commands/create-channel", key, `{"scopeId":"`+eu+`","name":"sms","type":"sms","provider":"sandbox","from":"+15550000000"}`)
	channelID, inboundURL, inboundSecret := str(ch.Body["channelId"]), str(ch.Body["inboundWebhookUrl"]), str(ch.Body["inboundSecret"])

	rv := &rslReceiver{}
	hook := httptest.NewServer(rv)
	t.Cleanup(hook.Close)
	sub := c.must(200, "/commands/create-subscription", key, `{"scopeId":"`+root+`","url":"`+hook.URL+`/hooks","eventTypes":["*"]}`)
	subID := str(sub.Body["subscriptionId"])
	rv.mu.Lock()
	rv.secret, rv.downUntil = str(sub.Body["secret"]), time.Now().Add(down)
	rv.mu.Unlock()
	began := time.Now()

	// The messages, and the events each must bring.
	want := map[string][]string{} // messageId -> event types
	send := func(to string, types ...string) string {
		id := str(c.must(202, "/commands/send-message", key, `{"channelId":"`+channelID+`","to":"`+to+`","content":{"text":"hi"}}`).Body["messageId"])
		want[id] = types
		return id
	}
	send("+15550200005", "message.queued", "message.sent", "message.delivered")
	send("+15550200004", "message.queued", "message.sent", "message.undelivered")
	send("+15550200001", "message.queued", "message.failed")
	send("+15550200002", "message.queued", "message.sent", "message.delivered") // two transient failures first
	// The largest message: 64 KiB of content and full metadata, all in
	// characters that JSON stores in six bytes (U+2028), so that every event
	// and webhook body of it is at its largest.
	mail := str(c.must(200, "/commands/create-channel", key, `{"scopeId":"`+eu+`","name":"mail","type":"email","provider":"sandbox","from":"noreply@example.com"}`).Body["channelId"])
	var meta []string
	for i := range 20 {
		meta = append(meta, fmt.Sprintf(`"%s%02d":"%s"`, strings.Repeat("\u2028", 38), i, strings.Repeat("\u2028", 500)))
	}
	big := str(c.must(202, "/commands/send-message", key, `{"channelId":"`+mail+`","to":"big@example.com","content":{"subject":"s","text":"`+
		strings.Repeat("\u2028", 21845)+`"},"metadata":{`+strings.Join(meta, ",")+`}}`).Body["messageId"])
	want[big] = []string{"message.queued", "message.sent", "message.delivered"}
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	canceled := str(c.must(202, "/commands/send-message", key, `{"channelId":"`+channelID+`","to":"+15550200006","content":{"text":"later"},"sendAt":"`+later+`"}`).Body["messageId"])
	c.must(200, "/commands/cancel-message", key, `{"messageId":"`+canceled+`"}`)
	want[canceled] = []string{"message.canceled"}
	const inboundFrom = "+15550209999"
	if s := rslPostSigned(t, inboundURL, inboundSecret, "wh-inbound-1", `{"type":"inbound","providerMessageId":"sbx_inbound_sub_1","from":"`+inboundFrom+`","to":"+15550000000","text":"hello"}`); s != 204 {
		t.Fatalf("inbound webhook: %d", s)
	}

	// Wait until every wanted event got a 200.
	type evKey struct{ messageID, typ string }
	var inboundID string
	ok200 := func() map[evKey]bool {
		got := map[evKey]bool{}
		for _, h := range rv.hooks() {
			if h.typ == "message.received" && h.from == inboundFrom {
				inboundID = h.messageID
			}
			if h.answered == 200 {
				got[evKey{h.messageID, h.typ}] = true
			}
		}
		return got
	}
	eventually(t, 25*time.Second, "every event delivered after the subscriber recovered", func() bool {
		got := ok200()
		if inboundID == "" || !got[evKey{inboundID, "message.received"}] {
			return false
		}
		for id, types := range want {
			for _, typ := range types {
				if !got[evKey{id, typ}] {
					return false
				}
			}
		}
		return true
	})
	want[inboundID] = []string{"message.received"}
	t.Logf("every event delivered %s after the subscriber went down for %s", time.Since(began).Round(time.Millisecond), down)

	// Signatures, and one webhook-id per event, the same on its retries.
	hooks := rv.hooks()
	idsOf := map[evKey]map[string]bool{}
	owner := map[string]evKey{}
	failedAttempts := 0
	for _, h := range hooks {
		if h.verifyErr != nil {
			t.Errorf("%s %s (%s): %v", h.typ, h.messageID, h.webhookID, h.verifyErr)
		}
		if !strings.HasPrefix(h.webhookID, "evt_") {
			t.Errorf("webhook-id %q", h.webhookID)
		}
		k := evKey{h.messageID, h.typ}
		if idsOf[k] == nil {
			idsOf[k] = map[string]bool{}
		}
		idsOf[k][h.webhookID] = true
		if o, seen := owner[h.webhookID]; seen && o != k {
			t.Errorf("webhook-id %s used for %v and %v", h.webhookID, o, k)
		}
		owner[h.webhookID] = k
		if h.answered != 200 {
			failedAttempts++
		}
	}
	for k, set := range idsOf {
		if len(set) != 1 {
			t.Errorf("%v came with %d webhook-ids", k, len(set))
		}
	}
	if failedAttempts == 0 {
		t.Fatal("no attempt met the subscriber down: the test proves nothing")
	}
	t.Logf("%d requests received for %d events, %d of them answered 503", len(hooks), len(idsOf), failedAttempts)

	// list-deliveries: one delivery per event, each succeeded, with the
	// event's webhook-id and type.
	var items []map[string]any
	eventually(t, 10*time.Second, "every delivery succeeded", func() bool {
		items = nil
		cursor := ""
		for {
			body := `{"subscriptionId":"` + subID + `","limit":100}`
			if cursor != "" {
				body = `{"subscriptionId":"` + subID + `","limit":100,"cursor":"` + cursor + `"}`
			}
			r := c.must(200, "/queries/list-deliveries", key, body)
			page, _ := r.Body["items"].([]any)
			for _, it := range page {
				items = append(items, it.(map[string]any))
			}
			if cursor = str(r.Body["nextCursor"]); cursor == "" {
				break
			}
		}
		if len(items) != len(owner) {
			return false
		}
		for _, it := range items {
			if it["status"] != "succeeded" {
				return false
			}
		}
		return true
	})
	retried := 0
	for _, it := range items {
		k, ok := owner[str(it["eventId"])]
		if !ok || k.typ != it["eventType"] || it["lastStatusCode"] != 200.0 || it["nextAttemptAt"] != nil {
			t.Errorf("delivery %v (event %v)", it, k)
		}
		if it["attempts"].(float64) > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Error("no delivery needed a retry")
	}
	t.Logf("%d deliveries succeeded, %d after retries", len(items), retried)
}
