package main

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
	"github.com/switchboard-dev/switchboard/modules/kernel/logging"
)

// TestNoSecretAtRest runs a full walkthrough on both stores, with
// Idempotency-Keys so that every answer carrying a secret is kept for
// replay, and with the production logger (JSON lines, at debug level)
// captured. The walkthrough hands out every secret the contract has:
//
//   - the operator key and API keys (onboard-tenant, replayed);
//   - channel credentials (create-channel "credentials", sms and email, also
//     in a batch item, in a refused request and in a reused-key request) and
//     each sandbox channel's inboundSecret (whsec_, shown once; replayed);
//   - a subscription's signing secret (create-subscription, whsec_; replayed).
//
// Messages then go all the way: dispatch with the opened credentials, the
// sandbox's signed receipts to the inbound webhook URL, an inbound message
// signed with the inboundSecret, subscriber webhooks signed with the
// subscription secret (one failed first attempt, retried). Then none of
// these may hold a secret:
//
//   - every item of the store, read raw: every key and value of the bbolt
//     file and the whole file (free pages included); every item of the
//     DynamoDB table;
//   - what lived only a moment (outbox entries, work items, receipts):
//     every write request the DynamoDB client sent, and every version of
//     every page of the bbolt file sampled every 2 ms (best effort: bbolt
//     has no write hook; the DynamoDB capture misses nothing, and both
//     stores get the same commits from the same code);
//   - every file of the data dir, and every log line.
//
// A secret is looked for whole, in its base64/base64url/hex forms, as the
// raw key of a whsec_ secret, and inside any base64 or hex run of the data,
// decoded up to three times (a []byte in JSON is base64; a binary DynamoDB
// attribute is base64 again on the wire). Controls (a channel's config, a
// message's text: stored in clear by design) must be found, or the scan saw
// nothing.
func TestNoSecretAtRest(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) { noSecretAtRest(t, store) })
	}
}

func noSecretAtRest(t *testing.T, store string) {
	const operatorKey = "sbo_rawscan-operator-key-0123456789abcdef"
	var sec secretSet
	sec.add("operator key", operatorKey)
	sec.add("operator key secret part", strings.TrimPrefix(operatorKey, "sbo_"))

	// The public URL (provider webhooks: the sandbox's receipts) and the
	// tenant app's webhook receiver, whose first message.sent attempt fails.
	front := &lateHandler{}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	rec := &recorder{failOnce: map[string]bool{"message.sent": true}}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b struct{ Type string }
		_ = json.Unmarshal(body, &b)
		rec.mu.Lock()
		rec.hooks = append(rec.hooks, captured{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()})
		fail := rec.failOnce[b.Type]
		rec.failOnce[b.Type] = false
		rec.mu.Unlock()
		if fail {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)

	dir := t.TempDir()
	logs := &lockedBuffer{}
	// Items that live a moment (outbox entries, work items, receipts due
	// later) are gone by the final scan: every write request to DynamoDB is
	// kept as sent, and the bbolt file is sampled as it changes.
	writes := &wireRecorder{}
	app := buildLogged(t, store, map[string]string{"SWITCHBOARD_DATA_DIR": dir, "SWITCHBOARD_OPERATOR_KEY": operatorKey,
		"SWITCHBOARD_PUBLIC_URL": srv.URL, "SWITCHBOARD_WEBHOOK_RETRY_SCALE": "0.01"},
		Deps{Logger: logging.New(logs, slog.LevelDebug), DynamoDBOptions: []func(*dynamodb.Options){writes.option}})
	var pages *pageSampler
	if store == "embedded" {
		pages = samplePages(t, filepath.Join(dir, "switchboard.db"))
	}
	var h http.Handler = app.Server
	front.h.Store(&h)
	table := app.Config.Table
	app.Worker.Start()
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	swept := make(chan struct{})
	go func() { defer close(swept); app.sweepLoop(sweepCtx, time.Duration(app.Config.SweepEvery)*time.Second) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopSweep()
			<-swept
			app.Worker.Stop(context.Background())
		}
	}
	t.Cleanup(stop)
	c := &client{t: t, h: app.Server}

	// Tenants: the API key of each onboarding is replayed (kept, encrypted).
	var key, root, eu string
	for i, name := range []string{"Acme", "Globex", "Initech"} {
		on := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"`+name+`","tier":"pooled"}`, "Idempotency-Key", "onboard-"+name)
		apiKey := str(on.Body["apiKey"])
		again := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"`+name+`","tier":"pooled"}`, "Idempotency-Key", "onboard-"+name)
		if str(again.Body["apiKey"]) != apiKey || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay of onboarding %d lost the key: %s", i, again.Raw)
		}
		_, secret, ok := auth.ParseAPIKey(apiKey)
		if !ok || len(secret) < 40 {
			t.Fatalf("onboarding answered an API key of an unexpected form: %q", apiKey[:min(len(apiKey), 12)])
		}
		sec.add(name+" API key", apiKey)
		sec.add(name+" API key secret part", secret)
		scope := c.must(200, "/commands/create-scope", apiKey, `{"parentScopeId":"`+str(on.Body["rootScopeId"])+`","name":"eu"}`, "Idempotency-Key", "scope-eu")
		eventually(t, 10*time.Second, "tenant active", func() bool {
			return c.must(200, "/queries/get-tenant", apiKey, `{}`).Body["status"] == "active"
		})
		if i == 0 {
			key, root, eu = apiKey, str(on.Body["rootScopeId"]), str(scope.Body["scopeId"])
		}
	}

	// An access token, its answer kept for replay (sealed); the token and
	// the signing keys' private halves must be nowhere in clear.
	tok := str(c.must(200, "/commands/issue-token", key, `{}`, "Idempotency-Key", "token-1").Body["accessToken"])
	sec.add("access token", tok)
	sec.add("access token signature", tok[strings.LastIndexByte(tok, '.')+1:])
	sec.addForms("signing private key", signingKeySeeds(t, app)...)
	c.must(200, "/queries/list-scopes", tok, `{}`)

	// Channels with credentials, created with Idempotency-Keys and replayed:
	// the replay answers the same inboundSecret (as Stripe replays a key).
	// Controls: data stored in clear by design, which the scan must find
	// (in the items of the channels and of a message), or it saw nothing.
	var controls secretSet
	region := "eu-rawscan-" + randomText(t)
	controls.add("control: config value", region)
	text := "hello-rawscan-" + randomText(t)
	controls.add("control: message text", text)

	type channel struct{ id, url, secret string }
	createChannel := func(idemKey, typ, from, creds string) channel {
		t.Helper()
		body := `{"scopeId":"` + eu + `","name":"` + typ + `","type":"` + typ + `","provider":"sandbox","from":"` + from +
			`","config":{"region":"` + region + `"},"credentials":` + creds + `}`
		first := c.must(200, "/commands/create-channel", key, body, "Idempotency-Key", idemKey)
		ch := channel{str(first.Body["channelId"]), str(first.Body["inboundWebhookUrl"]), str(first.Body["inboundSecret"])}
		if !strings.HasPrefix(ch.secret, "whsec_") || ch.url != srv.URL+"/webhooks/sandbox/"+ch.id {
			t.Fatalf("create-channel %s: %s", typ, first.Raw)
		}
		again := c.must(200, "/commands/create-channel", key, body, "Idempotency-Key", idemKey)
		if again.Raw != first.Raw || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay of create-channel %s: %s, first %s", typ, again.Raw, first.Raw)
		}
		sec.addWhsec(typ+" channel inboundSecret", ch.secret)
		return ch
	}
	smsCreds := map[string]string{"accountSid": "AC-rawscan-" + randomText(t), "authToken": "tok-rawscan-" + randomText(t)}
	emailCreds := map[string]string{"apiKey": "SG.rawscan-" + randomText(t)}
	for k, v := range smsCreds {
		sec.add("sms credential "+k, v)
	}
	for k, v := range emailCreds {
		sec.add("email credential "+k, v)
	}
	sms := createChannel("chn-sms", "sms", "+15550000000", jsonText(t, smsCreds))
	email := createChannel("chn-email", "email", "noreply@example.com", jsonText(t, emailCreds))

	// The same in a batch item, replayed by a second batch.
	batchCred := "batch-rawscan-" + randomText(t)
	sec.add("batch credential", batchCred)
	batch := `{"commands":[{"name":"create-channel","idempotencyKey":"chn-batch","input":{"scopeId":"` + eu +
		`","name":"Batch","type":"sms","provider":"sandbox","from":"Batch","credentials":{"token":"` + batchCred + `"}}}]}`
	b1 := c.must(200, "/commands", key, batch)
	b2 := c.must(200, "/commands", key, batch)
	var br1, br2 struct {
		Results []struct {
			Status int
			Body   map[string]any
		}
	}
	_ = json.Unmarshal([]byte(b1.Raw), &br1)
	_ = json.Unmarshal([]byte(b2.Raw), &br2)
	if len(br1.Results) != 1 || br1.Results[0].Status != 200 || !strings.HasPrefix(str(br1.Results[0].Body["inboundSecret"]), "whsec_") ||
		len(br2.Results) != 1 || str(br2.Results[0].Body["inboundSecret"]) != str(br1.Results[0].Body["inboundSecret"]) {
		t.Fatalf("batch create-channel and its replay: %s / %s", b1.Raw, b2.Raw)
	}
	sec.addWhsec("batch channel inboundSecret", str(br1.Results[0].Body["inboundSecret"]))

	// Credentials of refused requests: never echoed, stored or logged.
	refusedCred := "refused-rawscan-" + randomText(t)
	sec.add("credential of a refused create-channel", refusedCred)
	bad := c.must(400, "/commands/create-channel", key, `{"scopeId":"`+eu+`","name":"Fax","type":"fax","provider":"sandbox","from":"x","credentials":{"token":"`+refusedCred+`\u0001"}}`,
		"Idempotency-Key", "chn-refused")
	if !strings.Contains(bad.Raw, `"credentials.token"`) {
		t.Fatalf("a control character in a credential: %s", bad.Raw)
	}
	reusedCred := "reused-rawscan-" + randomText(t)
	sec.add("credential of a reused-key create-channel", reusedCred)
	reused := c.must(422, "/commands/create-channel", key, `{"scopeId":"`+eu+`","name":"sms","type":"sms","provider":"sandbox","from":"+15550000000","credentials":{"authToken":"`+reusedCred+`"}}`,
		"Idempotency-Key", "chn-sms")
	for _, r := range []reply{bad, reused} {
		if hit := sec.find([]byte(r.Raw)); hit != "" {
			t.Fatalf("a refused create-channel answers %s: %s", hit, sec.redact(r.Raw))
		}
	}

	// A subscription at the root, replayed: the same secret.
	subBody := `{"scopeId":"` + root + `","url":"` + receiver.URL + `/hooks","eventTypes":["*"]}`
	sub := c.must(200, "/commands/create-subscription", key, subBody, "Idempotency-Key", "sub-all")
	subSecret := str(sub.Body["secret"])
	if !strings.HasPrefix(subSecret, "whsec_") {
		t.Fatalf("create-subscription: %s", sub.Raw)
	}
	subAgain := c.must(200, "/commands/create-subscription", key, subBody, "Idempotency-Key", "sub-all")
	if subAgain.Raw != sub.Raw || subAgain.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay of create-subscription: %s, first %s", subAgain.Raw, sub.Raw)
	}
	sec.addWhsec("subscription secret", subSecret)

	// Queries never show a secret.
	for _, q := range [][2]string{
		{"/queries/get-channel", `{"channelId":"` + sms.id + `"}`},
		{"/queries/get-channel", `{"channelId":"` + email.id + `"}`},
		{"/queries/list-channels", `{}`},
		{"/queries/list-subscriptions", `{}`},
	} {
		r := c.must(200, q[0], key, q[1])
		if hit := sec.find([]byte(r.Raw)); hit != "" {
			t.Fatalf("%s answers %s: %s", q[0], hit, sec.redact(r.Raw))
		}
	}

	// Messages to delivered (dispatch opens the credentials, the sandbox
	// posts a receipt signed with the inboundSecret), and an inbound message.
	smsMsg := str(c.must(202, "/commands/send-message", key, `{"channelId":"`+sms.id+`","to":"+15550100005","content":{"text":"`+text+`"}}`,
		"Idempotency-Key", "msg-sms").Body["messageId"])
	emailMsg := str(c.must(202, "/commands/send-message", key, `{"channelId":"`+email.id+`","to":"someone@example.com","content":{"subject":"Hi","text":"hello"}}`,
		"Idempotency-Key", "msg-email").Body["messageId"])
	if code := postSigned(t, sms.url, sms.secret, "msg_rawscan_inbound_1",
		`{"type":"inbound","providerMessageId":"sbx_rawscan_in_1","from":"+15550109999","to":"+15550000000","text":"hi there"}`); code != http.StatusNoContent {
		t.Fatalf("inbound webhook answered %d", code)
	}
	if code := postSigned(t, sms.url, subSecret, "msg_rawscan_forged_1",
		`{"type":"inbound","providerMessageId":"sbx_rawscan_in_2","from":"+15550109999","to":"+15550000000","text":"forged"}`); code != http.StatusUnauthorized {
		t.Fatalf("a webhook signed with another secret answered %d", code)
	}
	for _, id := range []string{smsMsg, emailMsg} {
		eventually(t, 30*time.Second, "message "+id+" delivered", func() bool {
			return c.must(200, "/queries/get-message", key, `{"messageId":"`+id+`"}`).Body["status"] == "delivered"
		})
	}

	// The subscriber gets signed webhooks: delivered for both, received for
	// the inbound one, and message.sent again after its failed first attempt.
	want := map[string]int{"message.delivered": 2, "message.received": 1, "message.sent": 3}
	eventually(t, 30*time.Second, "subscriber webhooks", func() bool {
		got := map[string]int{}
		for _, hook := range rec.webhooks() {
			var b struct{ Type string }
			_ = json.Unmarshal(hook.Body, &b)
			got[b.Type]++
		}
		for typ, n := range want {
			if got[typ] < n {
				return false
			}
		}
		return true
	})
	for _, hook := range rec.webhooks() {
		if err := verifySignature(t, hook.Header, hook.Body, subSecret); err != nil {
			t.Fatalf("webhook %s: %v", hook.Body, err)
		}
	}
	eventually(t, 10*time.Second, "the retried delivery logged", func() bool {
		return bytes.Contains(logs.Bytes(), []byte(`"msg":"webhook attempt failed; will retry"`))
	})

	stop()
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if pages != nil {
		pages.stop()
	}

	// The raw scan.
	var found []string
	seen := map[string]bool{}
	check := func(where string, b []byte) {
		if hit := sec.find(b); hit != "" {
			found = append(found, where+" holds "+hit)
		}
		if hit := controls.find(b); hit != "" && !strings.HasPrefix(where, "file ") {
			seen[strings.SplitN(hit, " (", 2)[0]] = true // by name
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(dir, f.Name())) // whole files: the bbolt free pages too
		if err != nil {
			t.Fatal(err)
		}
		check("file "+f.Name(), raw)
	}
	n, sampled := 0, 0
	if store == "embedded" {
		n = scanBolt(t, filepath.Join(dir, BboltFile), check) + scanBolt(t, filepath.Join(dir, AuditFile), check)
		sampled = pages.check(check)
	} else {
		n = scanDynamo(t, table, check)
		sampled = writes.check(check)
	}
	if sampled < 30 {
		t.Fatalf("only %d page versions or write requests seen during the walkthrough", sampled)
	}
	if n < 100 || len(seen) != len(controls.list) {
		t.Fatalf("read only %d raw items, found the controls %v: the scan did not see the store", n, seen)
	}

	// The logs: every line, and the walkthrough is in them.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	for _, msg := range []string{"channel created", "subscription created", "message sent", "provider webhook accepted",
		"provider webhook rejected", "webhook attempt failed; will retry", "webhook delivered", "request rejected"} {
		if !strings.Contains(logs.String(), `"msg":"`+msg+`"`) {
			t.Fatalf("no %q log line among %d: the capture missed the walkthrough", msg, len(lines))
		}
	}
	for i, line := range lines {
		if hit := sec.find([]byte(line)); hit != "" {
			found = append(found, "log line "+strconv.Itoa(i+1)+" holds "+hit+": "+sec.redact(line))
		}
	}
	if len(found) > 0 {
		if len(found) > 60 {
			found = append(found[:60], "... and "+strconv.Itoa(len(found)-60)+" more")
		}
		t.Fatalf("secrets in clear:\n%s", strings.Join(found, "\n"))
	}
	t.Logf("%d raw items, %d files, %d page versions or write requests and %d log lines read; none holds one of %d secrets",
		n, len(files), sampled, len(lines), len(sec.list))
}

// TestSecretScanFinds checks the scan itself: a secret is found whole, in
// each encoding, as a whsec_ secret's raw key, and inside a JSON []byte
// (base64) of a larger plaintext; sealed-looking noise is not a hit.
func TestSecretScanFinds(t *testing.T) {
	var sec secretSet
	sec.add("credential", "tok-rawscan-0123456789abcdef")
	key := bytes.Repeat([]byte{0xA5, 0x5A, 0x01}, 8)
	sec.addWhsec("whsec", "whsec_"+base64.StdEncoding.EncodeToString(key))
	type blob struct {
		Data []byte `json:"data"`
	}
	cases := map[string][]byte{
		"whole":                   []byte(`{"credentials":{"authToken":"tok-rawscan-0123456789abcdef"}}`),
		"base64url":               []byte(base64.RawURLEncoding.EncodeToString([]byte("tok-rawscan-0123456789abcdef"))),
		"hex":                     []byte("x" + hex.EncodeToString([]byte("tok-rawscan-0123456789abcdef")) + "x"),
		"raw key":                 append([]byte("prefix"), key...),
		"key base64url":           []byte(`"` + base64.URLEncoding.EncodeToString(key) + `"`),
		"key hex":                 []byte(hex.EncodeToString(key)),
		"[]byte of a JSON object": []byte(jsonText(t, blob{Data: []byte(`{"authToken":"tok-rawscan-0123456789abcdef"}`)})),
		"[]byte of the secret":    []byte(jsonText(t, blob{Data: []byte("xx whsec_" + base64.StdEncoding.EncodeToString(key))})),
	}
	for name, b := range cases {
		if sec.find(b) == "" {
			t.Errorf("%s: not found in %s", name, b)
		}
	}
	if hit := sec.find([]byte(jsonText(t, blob{Data: bytes.Repeat([]byte{7, 1, 99}, 40)}))); hit != "" {
		t.Errorf("noise found as %s", hit)
	}
}

// buildLogged is buildOn with deps (the app's logger, DynamoDB options).
func buildLogged(t *testing.T, store string, env map[string]string, deps Deps) *App {
	t.Helper()
	env["SWITCHBOARD_STORE"] = store
	if store == "dynamodb" {
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamoEndpoint(t))
		t.Setenv("AWS_ACCESS_KEY_ID", dynamotest.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", dynamotest.SecretKey)
		t.Setenv("AWS_REGION", dynamotest.Region)
		env["SWITCHBOARD_TABLE"] = uniqueTable()
		env["SWITCHBOARD_OUTBOX_SHARDS"] = testOutboxShards
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	app, err := Build(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app
}

// wireRecorder keeps the body of every request the DynamoDB client sends:
// every item ever written, as written, deleted since or not.
type wireRecorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (w *wireRecorder) option(o *dynamodb.Options) {
	o.HTTPClient = recordingClient{next: o.HTTPClient, w: w}
}

type recordingClient struct {
	next dynamodb.HTTPClient
	w    *wireRecorder
}

func (c recordingClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		c.w.mu.Lock()
		c.w.bodies = append(c.w.bodies, b)
		c.w.mu.Unlock()
	}
	return c.next.Do(r)
}

// check checks every write request (the read-only ones carry no item).
func (w *wireRecorder) check(check func(string, []byte)) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for i, b := range w.bodies {
		if bytes.Contains(b, []byte(`"Item"`)) || bytes.Contains(b, []byte(`"TransactItems"`)) || bytes.Contains(b, []byte(`"RequestItems"`)) ||
			bytes.Contains(b, []byte(`"UpdateExpression"`)) {
			n++
			check("DynamoDB write request "+strconv.Itoa(i+1), b)
		}
	}
	return n
}

// pageSampler reads the bbolt file every 2 ms while the app
// runs and keeps every new version of each page (with a margin around it,
// for what straddles a page boundary).
type pageSampler struct {
	done     chan struct{}
	finished chan struct{}
	seen     map[[32]byte]bool
	windows  [][]byte
	where    []string
}

const samplePage, sampleMargin = 4096, 1024

func samplePages(t *testing.T, path string) *pageSampler {
	p := &pageSampler{done: make(chan struct{}), finished: make(chan struct{}), seen: map[[32]byte]bool{}}
	go func() {
		defer close(p.finished)
		for {
			p.sample(path)
			select {
			case <-p.done:
				p.sample(path)
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *pageSampler) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	<-p.finished
}

func (p *pageSampler) sample(path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return // not yet created
	}
	for off := 0; off < len(raw); off += samplePage {
		lo, hi := max(off-sampleMargin, 0), min(off+samplePage+sampleMargin, len(raw))
		h := sha256.Sum256(raw[lo:hi])
		if p.seen[h] {
			continue
		}
		p.seen[h] = true
		p.windows = append(p.windows, bytes.Clone(raw[lo:hi]))
		p.where = append(p.where, "the store file at "+strconv.Itoa(off))
	}
}

func (p *pageSampler) check(check func(string, []byte)) int {
	for i, w := range p.windows {
		check(p.where[i], w)
	}
	return len(p.windows)
}

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *lockedBuffer) String() string { return string(b.Bytes()) }

func randomText(t *testing.T) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func jsonText(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// secretSet is the secrets handed out, each with the forms it could be
// stored or logged in.
type secretSet struct{ list []secretForms }

type secretForms struct {
	name  string
	forms [][]byte // the secret (and a whsec_ secret's raw key) and their base64, base64url and hex encodings
}

// add registers a secret string.
func (s *secretSet) add(name, v string) { s.addForms(name, []byte(v)) }

// addWhsec registers a Standard Webhooks secret: whsec_<base64 key>, and its key.
func (s *secretSet) addWhsec(name, v string) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "whsec_"))
	if err != nil || !strings.HasPrefix(v, "whsec_") || len(k) < 16 {
		panic("not a whsec_ secret: " + name)
	}
	s.addForms(name, []byte(v), k)
}

func (s *secretSet) addForms(name string, plain ...[]byte) {
	sf := secretForms{name: name}
	for _, p := range plain {
		sf.forms = append(sf.forms, p,
			[]byte(base64.StdEncoding.EncodeToString(p)), []byte(base64.RawStdEncoding.EncodeToString(p)),
			[]byte(base64.URLEncoding.EncodeToString(p)), []byte(base64.RawURLEncoding.EncodeToString(p)),
			[]byte(hex.EncodeToString(p)), []byte(strings.ToUpper(hex.EncodeToString(p))))
	}
	s.list = append(s.list, sf)
}

// find names the first secret b holds in any form, or inside one of its
// base64 or hex runs once decoded (down to three encodings deep: a JSON
// []byte in a DynamoDB binary attribute is base64 twice on the wire); ""
// when none.
func (s *secretSet) find(b []byte) string { return s.findIn(b, 3) }

func (s *secretSet) findIn(b []byte, depth int) string {
	for _, sf := range s.list {
		for i, f := range sf.forms {
			if bytes.Contains(b, f) {
				what := formNames[i%len(formNames)]
				if i >= len(formNames) {
					what = "its key, " + what
				}
				return sf.name + " (" + what + ")"
			}
		}
	}
	if depth == 0 {
		return ""
	}
	for _, d := range decodedRuns(b) {
		if hit := s.findIn(d, depth-1); hit != "" {
			return strings.TrimSuffix(hit, ")") + ", inside a base64 or hex run)"
		}
	}
	return ""
}

var formNames = []string{"whole", "base64", "base64 raw", "base64url", "base64url raw", "hex", "HEX"}

// redact hides every secret form in a line (for the failure message).
func (s *secretSet) redact(line string) string {
	for _, sf := range s.list {
		for _, f := range sf.forms {
			line = strings.ReplaceAll(line, string(f), "<"+sf.name+">")
		}
	}
	return line
}

// decodedRuns decodes every run of at least 16 base64/base64url characters
// (each of the four encodings that accepts it) and of at least 32 hex digits.
func decodedRuns(b []byte) [][]byte {
	isB64 := func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_' || c == '='
	}
	isHex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
	var out [][]byte
	for _, run := range runs(b, isB64, 16) {
		trimmed := strings.TrimRight(string(run), "=")
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			if d, err := enc.DecodeString(string(run)); err == nil {
				out = append(out, d)
			}
		}
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			if d, err := enc.DecodeString(trimmed); err == nil {
				out = append(out, d)
			}
		}
	}
	for _, run := range runs(b, isHex, 32) {
		if d, err := hex.DecodeString(string(run[:len(run)/2*2])); err == nil {
			out = append(out, d)
		}
	}
	return out
}

func runs(b []byte, in func(byte) bool, minLen int) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i <= len(b); i++ {
		if i < len(b) && in(b[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= minLen {
			out = append(out, b[start:i])
		}
		start = -1
	}
	return out
}

// scanBolt walks every bucket of a bbolt file and checks every key and value.
func scanBolt(t *testing.T, path string, check func(string, []byte)) int {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	var walk func(name string, b *bolt.Bucket) error
	walk = func(name string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			n++
			where := name + "/" + strings.Trim(strconv.QuoteToASCII(string(k)), `"`)
			check(where, k)
			if v == nil {
				if sub := b.Bucket(k); sub != nil {
					return walk(where, sub)
				}
				return nil
			}
			check(where, v)
			return nil
		})
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name), b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// scanDynamo reads every item of the table (a test may scan) and checks every value.
func scanDynamo(t *testing.T, table string, check func(string, []byte)) int {
	endpoint, err := dynamotest.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	client := dynamotest.Client(endpoint, nil)
	n := 0
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			n++
			where := "item " + attrString(item["pk"]) + "/" + attrString(item["sk"])
			for name, v := range item {
				checkAttr(where+"."+name, v, check)
			}
		}
	}
	return n
}

func attrString(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func checkAttr(where string, v types.AttributeValue, check func(string, []byte)) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		check(where, []byte(v.Value))
	case *types.AttributeValueMemberB:
		check(where, v.Value)
		// The store keeps large values compressed (raw DEFLATE under the
		// "dataz"/"payloadz" names): search what they hold, too.
		if strings.HasSuffix(where, ".dataz") || strings.HasSuffix(where, ".payloadz") {
			// (A value that does not inflate is the store's bug, which its
			// own tests catch; what did inflate is searched all the same.)
			plain, _ := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(v.Value)), 1<<20))
			check(where+" (inflated)", plain)
		}
	case *types.AttributeValueMemberSS:
		for _, s := range v.Value {
			check(where, []byte(s))
		}
	case *types.AttributeValueMemberL:
		for _, e := range v.Value {
			checkAttr(where, e, check)
		}
	case *types.AttributeValueMemberM:
		for k, e := range v.Value {
			checkAttr(where+"."+k, e, check)
		}
	}
}

// The scan of raw DynamoDB items searches compressed values too: a secret in
// a "dataz" attribute is found, as in a plain "data".
func TestCheckAttrInflatesCompressedValues(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	_, _ = w.Write([]byte(`{"note":"` + strings.Repeat("padding ", 100) + `sk_live_SECRET123"}`))
	_ = w.Close()
	var found []string
	check := func(where string, b []byte) {
		if bytes.Contains(b, []byte("sk_live_SECRET123")) {
			found = append(found, where)
		}
	}
	checkAttr("item x.dataz", &types.AttributeValueMemberB{Value: buf.Bytes()}, check)
	if len(found) != 1 || found[0] != "item x.dataz (inflated)" {
		t.Fatalf("found = %v, want the secret in the inflated dataz", found)
	}
}
