package main

import (
	"context"
	"encoding/json"
	"fmt"
	auditadapters "github.com/switchboard-dev/switchboard/modules/audit/adapters"
	"maps"
	"math"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/capacity"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	msgadapters "github.com/switchboard-dev/switchboard/modules/messaging/adapters"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
	messagingapp "github.com/switchboard-dev/switchboard/modules/messaging/app"
	whadapters "github.com/switchboard-dev/switchboard/modules/webhooks/adapters"
	webhooksapp "github.com/switchboard-dev/switchboard/modules/webhooks/app"
)

// The capacity workload: bounded so that it runs in about a minute on two
// cores against DynamoDB Local.
const (
	capTenants          = 200  // onboarded through the API
	capClients          = 8    // concurrent clients of every phase
	capScopesPerTenant  = 3    // create-scope per tenant
	capQueriesPerTenant = 5    // get-tenant per tenant
	capListWrites       = 4000 // records of one tenant in one list
	capWorkItems        = 10000
	capWorkTenants      = 100 // tenants of the work items

	provisionOp     = "provision-tenant (work)"
	benchWorkType   = "bench.capacity-noop"
	benchWorkAction = "bench-work-item"
)

// The ceilings the design must reach (the definition of done).
const (
	wantAuthPlatform    = 100_000 // authenticated requests/s, platform-wide
	wantOnboardPlatform = 10_000  // onboardings/s, platform-wide
	wantWorkPlatform    = 100_000 // work items/s through the outbox, platform-wide
	wantListTenant      = 5_000   // list writes/s of one tenant
)

// benchMessages is the shape the messages list will take.
var benchMessages = eventstore.List{Name: "bench-messages", Slot: 2, Shards: 16}

var (
	capacityOnce   sync.Once
	capacityResult *capacity.Report
	// capacityOnboard is the report with onboarding's provisioning work
	// counted as part of onboarding.
	capacityOnboard *capacity.Report
	// capacityLifecycle are the figures of the message lifecycle.
	capacityLifecycle *lifecycleFigures
)

// BenchmarkCapacity runs a scripted multi-tenant workload against DynamoDB
// Local through the production wiring, records every DynamoDB request
// (capacity.Recorder) and prints the capacity report: units per operation,
// the busiest shared partition keys, and the ceilings that follow (hashed
// shard families at their measured spread: capacity.NewReportWith); then the
// message lifecycle (queued to delivered, with its receipt and webhooks):
// units per delivered message, step by step and item by item, and its
// ceilings. It fails when a ceiling is below the design's requirement. The
// workload runs once, whatever b.N; ns/op is meaningless.
func BenchmarkCapacity(b *testing.B) {
	capacityOnce.Do(func() {
		var out strings.Builder
		// Printed even when a phase fails (b.Fatal runs the deferred calls).
		defer func() { fmt.Print(out.String()) }()
		fmt.Fprintf(&out, "=== capacity report ===\n")
		capacityResult, capacityOnboard = runCapacityWorkload(b, &out)
		capacityLifecycle = runLifecycleWorkload(b, &out)
		fmt.Fprintf(&out, "=== end capacity report ===\n")
	})
	rep, lc := capacityResult, capacityLifecycle
	if rep == nil || capacityOnboard == nil || lc == nil {
		b.Fatal("the capacity workload failed (see above)")
	}
	checks := []struct {
		op, what string
		got      capacity.Ceiling
		want     float64
	}{
		{"get-tenant", "authenticated requests, platform", platform(rep, "get-tenant"), wantAuthPlatform},
		{"onboard-tenant", "onboarding with its provisioning work, platform", platform(capacityOnboard, "onboard-tenant"), wantOnboardPlatform},
		{"work-item", "work items through the outbox, platform", platform(rep, "work-item"), wantWorkPlatform},
		{"list-write", "list writes of one tenant", tenantCeiling(rep, "list-write"), wantListTenant},
		{"message", "delivered messages (whole lifecycle), platform, before a shared key reaches 1,000 WCU/s", lc.platformWrite, wantMessagesPlatform},
		{"message-one-tenant", "delivered messages (whole lifecycle) of one tenant, before a recurring key reaches 1,000 WCU/s", lc.tenantWrite, wantMessagesTenant},
	}
	for _, c := range checks {
		if !c.got.Unbounded() {
			b.ReportMetric(c.got.PerSecond, c.op+"/s")
		}
	}
	b.ReportMetric(lc.wcuPerMessage, "WCU/message")
	for _, c := range checks {
		if c.got.PerSecond < c.want {
			b.Errorf("%s: ceiling %s, want >= %.0f/s", c.what, c.got, c.want)
		}
	}
}

func platform(rep *capacity.Report, op string) capacity.Ceiling {
	c, ok := rep.PlatformCeiling(op)
	if !ok {
		return capacity.Ceiling{} // 0/s: the workload lacked the operation
	}
	return c
}

func tenantCeiling(rep *capacity.Report, op string) capacity.Ceiling {
	c, ok := rep.TenantCeiling(op)
	if !ok {
		return capacity.Ceiling{}
	}
	return c
}

// samplePlatform and sampleTenant are platform and tenantCeiling by the
// sample's busiest key (every shard of a hashed family by its own units).
func samplePlatform(rep *capacity.Report, op string) capacity.Ceiling {
	s, ok := rep.Op(op)
	if !ok {
		return capacity.Ceiling{}
	}
	return lowerCeiling(s.SamplePlatformWrite, s.PlatformRead)
}

func sampleTenant(rep *capacity.Report, op string) capacity.Ceiling {
	s, ok := rep.Op(op)
	if !ok {
		return capacity.Ceiling{}
	}
	return lowerCeiling(s.SampleTenantWrite, s.TenantRead)
}

func lowerCeiling(a, b capacity.Ceiling) capacity.Ceiling {
	if b.PerSecond < a.PerSecond {
		return b
	}
	return a
}

// runCapacityWorkload runs the workload and writes the report to out; it
// returns the report and the report with onboarding's provisioning work
// counted as part of onboarding.
func runCapacityWorkload(b *testing.B, out *strings.Builder) (*capacity.Report, *capacity.Report) {
	b.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamoEndpoint(b))
	const operatorKey = "sbo_capacity"
	env := map[string]string{
		"SWITCHBOARD_DATA_DIR":      b.TempDir(),
		"SWITCHBOARD_STORE":         "dynamodb",
		"SWITCHBOARD_OPERATOR_KEY":  operatorKey,
		"SWITCHBOARD_TABLE":         uniqueTable(),
		"SWITCHBOARD_WORKERS":       "16",
		"SWITCHBOARD_OUTBOX_SHARDS": strconv.Itoa(dynamostore.DefaultOutboxShards), // the deployed default, not local mode's
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	if cfg.OutboxShards != dynamostore.DefaultOutboxShards {
		b.Fatalf("outbox shards %d: the capacity report measures the production default (%d)", cfg.OutboxShards, dynamostore.DefaultOutboxShards)
	}
	rec := capacity.NewRecorder(capacity.StoreSchema())
	// Work run by the local worker has no workload label: label it from its
	// invocation (the worker continues the invocation that queued it).
	rec.Fallback = func(ctx context.Context) (string, string, string) {
		inv := invocation.From(ctx)
		if inv.Trigger != work.TriggerWorker {
			return "", "", ""
		}
		if inv.ActionID == benchWorkAction {
			return "work-item", inv.TenantID(), "" // counted by its commit
		}
		return provisionOp, inv.TenantID(), inv.InvocationID
	}
	clk := &steppedClock{}
	app, err := Build(context.Background(), cfg, Deps{Clock: clk, DynamoDBOptions: []func(*dynamodb.Options){rec.Option()}})
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	app.Work.Register(benchWorkType, func(context.Context, work.Item) error { handled.Add(1); return nil })
	// Acknowledgements carry no label (see workLabels): label them as the
	// item's run is labelled.
	acks := &workLabels{}
	app.Worker.Handler = acks.wrap(app.Worker.Handler, func(it work.Item) workLabel {
		if it.Invocation.ActionID == benchWorkAction {
			return workLabel{op: "work-item", tenant: it.TenantID}
		}
		return workLabel{op: provisionOp, tenant: it.TenantID, instance: it.Invocation.InvocationID}
	}, false)
	app.Worker.Start()
	defer func() { app.Worker.Stop(context.Background()); app.Close() }()
	h := app.Server
	start := time.Now()

	// Onboarding through the API (operator key).
	type tenant struct{ id, key, root string }
	tenants := make([]tenant, capTenants)
	t0 := time.Now()
	parallel(b, capTenants, func(i int) error {
		ctx := capacity.WithOp(context.Background(), "onboard-tenant")
		st, body := apiCall(ctx, h, "/commands/onboard-tenant", operatorKey, fmt.Sprintf(`{"name":"Tenant %d","tier":"pooled"}`, i))
		if st != 200 {
			return fmt.Errorf("onboard-tenant %d: %d %v", i, st, body)
		}
		tenants[i] = tenant{id: str(body["tenantId"]), key: str(body["apiKey"]), root: str(body["rootScopeId"])}
		return nil
	})
	phase("onboard-tenant", t0, capTenants)

	// Scopes, through the API (tenant key).
	t0 = time.Now()
	parallel(b, capTenants*capScopesPerTenant, func(i int) error {
		tn := tenants[i%capTenants]
		ctx := capacity.WithTenant(capacity.WithOp(context.Background(), "create-scope"), tn.id)
		st, body := apiCall(ctx, h, "/commands/create-scope", tn.key, fmt.Sprintf(`{"parentScopeId":%q,"name":"scope-%d"}`, tn.root, i))
		if st != 200 {
			return fmt.Errorf("create-scope %d: %d %v", i, st, body)
		}
		return nil
	})
	phase("create-scope", t0, capTenants*capScopesPerTenant)

	// List writes of one tenant: one record per commit, in one list
	// partition spread over 16 shards.
	t0 = time.Now()
	gen := ids.NewULIDs()
	listTenant := "tnt_capacitylist"
	parallel(b, capListWrites, func(i int) error {
		ctx := capacity.WithTenant(capacity.WithOp(context.Background(), "list-write"), listTenant)
		id := gen.New("msg")
		data, _ := json.Marshal(map[string]any{"messageId": id, "from": "sva_capacity", "body": strings.Repeat("x", 200), "n": i})
		return app.Store.Commit(ctx, &eventstore.Commit{TenantID: listTenant, Records: []eventstore.Record{{
			Collection: "bench-messages", Key: id, Data: data,
			Lists: []eventstore.ListEntry{{List: benchMessages, Sort: id}},
		}}})
	})
	phase("list-write", t0, capListWrites)

	// Work items: an outbox entry committed alone, handed to the worker as
	// the edge does after a commit, run (a no-op handler) and acknowledged.
	t0 = time.Now()
	parallel(b, capWorkItems, func(i int) error {
		tn := fmt.Sprintf("tnt_capacitywork%03d", i%capWorkTenants)
		ctx := capacity.WithTenant(capacity.WithOp(context.Background(), "work-item"), tn)
		payload, _ := json.Marshal(map[string]any{"tenantId": tn, "n": i, "note": "capacity benchmark work item"})
		e := eventstore.OutboxEntry{
			ID: gen.New("wrk"), TenantID: tn, Type: benchWorkType, Payload: payload, DueAt: time.Now(),
			Invocation: invocation.Meta{InvocationID: gen.New("inv"), ActionID: benchWorkAction, TraceID: invocation.NewTraceID(), Principal: "system"},
		}
		if err := app.Store.Commit(ctx, &eventstore.Commit{TenantID: tn, Outbox: []eventstore.OutboxEntry{e}}); err != nil {
			return err
		}
		app.Relay.AfterCommit(ctx, []work.Item{e})
		return nil
	})
	// Entries the worker's queue refused wait for the sweep (labelled as
	// work items too: it is part of their path).
	deadline := time.Now().Add(3 * time.Minute)
	for last := int64(-1); handled.Load() < capWorkItems; {
		if time.Now().After(deadline) {
			b.Fatalf("work items: %d of %d handled after 3 minutes", handled.Load(), capWorkItems)
		}
		time.Sleep(time.Second)
		if n := handled.Load(); n == last {
			if _, err := app.Relay.Sweep(capacity.WithOp(context.Background(), "work-item")); err != nil {
				b.Fatalf("sweep: %v", err)
			}
		} else {
			last = n
		}
	}
	app.Worker.Stop(context.Background()) // lets the last items be acknowledged
	phase("work-item", t0, capWorkItems)

	// Authenticated queries (tenant key), tenants interleaved, last: the
	// app's API key cache (auth.CachedResolver) is defeated by moving the
	// app clock past its TTL before every request, so that every request
	// reads its key (the worst case: no instance has the key cached).
	t0 = time.Now()
	parallel(b, capTenants*capQueriesPerTenant, func(i int) error {
		tn := tenants[i%capTenants]
		clk.advance(auth.DefaultKeyCacheTTL + time.Second)
		ctx := capacity.WithTenant(capacity.WithOp(context.Background(), "get-tenant"), tn.id)
		st, body := apiCall(ctx, h, "/queries/get-tenant", tn.key, `{}`)
		if st != 200 || body["tenantId"] != tn.id {
			return fmt.Errorf("get-tenant %d: %d %v", i, st, body)
		}
		return nil
	})
	phase("get-tenant", t0, capTenants*capQueriesPerTenant)

	reqs := rec.Requests()
	acks.relabel(reqs, "")
	families := hashedFamilies(cfg.OutboxShards)
	rep := capacity.NewReportWith(reqs, capacity.DefaultLimits, families)
	combined := make([]capacity.Request, len(reqs))
	for i, q := range reqs {
		if q.Op == provisionOp {
			q.Op, q.Instance = "onboard-tenant", "" // units of the onboarding that queued it
		}
		combined[i] = q
	}
	onboard := capacity.NewReportWith(combined, capacity.DefaultLimits, families)
	fmt.Fprintf(out, "Workload: %d tenants onboarded by %d concurrent clients, %d create-scope, %d get-tenant (tenants interleaved), %d list writes of one tenant (list %s, slot %d, %d shards), %d work items of %d tenants; %d DynamoDB requests in %.0fs against DynamoDB Local (outbox index: %d shards, the production default).\n",
		capTenants, capClients, capTenants*capScopesPerTenant, capTenants*capQueriesPerTenant, capListWrites,
		benchMessages.Name, benchMessages.Slot, benchMessages.Shards, capWorkItems, capWorkTenants, len(reqs), time.Since(start).Seconds(), cfg.OutboxShards)
	fmt.Fprintf(out, "API key lookups: %s\n", apiKeyCacheNote(reqs, rep))
	fmt.Fprintf(out, "Work items are committed alone and run by a no-op handler: their row is the outbox's own cost (put, index put, run, acknowledgement); onboarding's provisioning work is its own row.\n\n")
	_, _ = rep.WriteTo(out)
	if s, ok := onboard.Op("onboard-tenant"); ok {
		fmt.Fprintf(out, "\nonboard-tenant with its provisioning work: %.2f WCU (%.2f table, %.2f index), %.2f RCU per onboarding; platform %s / %s; one tenant %s / %s\n",
			s.TableWCU+s.IndexWCU, s.TableWCU, s.IndexWCU, s.TableRCU+s.IndexRCU, s.PlatformWrite, s.PlatformRead, s.TenantWrite, s.TenantRead)
	}
	fmt.Fprintf(out, "\nRequirements (the ceilings above: hashed families at their spread with a %dσ margin, other keys by their measured per-key shares; in brackets the sample's busiest key, ADR 0007's first method):\n", capacity.SpreadSigmas)
	for _, c := range []struct {
		what        string
		got, sample capacity.Ceiling
		want        float64
	}{
		{"authenticated request (get-tenant), platform", platform(rep, "get-tenant"), samplePlatform(rep, "get-tenant"), wantAuthPlatform},
		{"onboard-tenant with its provisioning work, platform", platform(onboard, "onboard-tenant"), samplePlatform(onboard, "onboard-tenant"), wantOnboardPlatform},
		{"work item through the outbox, platform", platform(rep, "work-item"), samplePlatform(rep, "work-item"), wantWorkPlatform},
		{"list write, one tenant", tenantCeiling(rep, "list-write"), sampleTenant(rep, "list-write"), wantListTenant},
	} {
		verdict := "ok"
		if c.got.PerSecond < c.want {
			verdict = "FAILS"
		}
		fmt.Fprintf(out, "  %-52s >= %7s/s  %-5s  %s  [sample: %s]\n", c.what, fmtInt(c.want), verdict, c.got, c.sample)
	}
	return rep, onboard
}

// steppedClock is the wall clock (UTC) plus an offset that the workload
// moves forward.
type steppedClock struct{ offset atomic.Int64 }

func (c *steppedClock) Now() time.Time {
	return time.Now().UTC().Add(time.Duration(c.offset.Load()))
}

func (c *steppedClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// apiKeyCacheNote tells whether authenticated requests read their API key
// from the table (no cache: the worst case measured) or not.
func apiKeyCacheNote(reqs []capacity.Request, rep *capacity.Report) string {
	reads := 0
	for _, q := range reqs {
		if q.Op != "get-tenant" {
			continue
		}
		for _, u := range q.Units {
			if strings.HasPrefix(u.PK, "G#R#api-keys#") && u.Read > 0 {
				reads++
			}
		}
	}
	s, _ := rep.Op("get-tenant")
	perOp := float64(reads) / math.Max(1, float64(s.Count))
	if perOp >= 1 {
		return fmt.Sprintf("measured WITHOUT the in-process API key cache (worst case; the app clock passes its %s TTL before every request): %.2f key reads per authenticated request", auth.DefaultKeyCacheTTL, perOp)
	}
	return fmt.Sprintf("an in-process cache served some lookups (%.2f key reads per authenticated request): the figures are not the uncached worst case", perOp)
}

func fmtInt(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// parallel runs f(0..n-1) on capClients goroutines and fails b on the first error.
func parallel(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, capClients)
	for range capClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// apiCall posts one request to the in-process edge with ctx (which carries
// the workload label) and returns the status and the decoded body.
func apiCall(ctx context.Context, h http.Handler, path, token, body string) (int, map[string]any) {
	req := httptest.NewRequestWithContext(ctx, "POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var m map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &m)
	return w.Code, m
}

// workLabel is the workload label of one work item's run.
type workLabel struct{ op, tenant, instance string }

// workLabels labels work items and, after them, their acknowledgements: the
// local worker acknowledges finished items in batches on a context of its
// own (no invocation, no workload label), so the Recorder sees them
// unlabelled; relabel gives each such delete of an outbox entry the label
// of the run of the entry's item.
type workLabels struct{ byID sync.Map } // work id -> workLabel

// wrap returns h recording label(it) for every item it runs; with setCtx,
// the run's context carries the label too (WithOp, WithTenant,
// WithInstance), else the Recorder's Fallback labels the run.
func (l *workLabels) wrap(h work.ItemHandler, label func(work.Item) workLabel, setCtx bool) work.ItemHandler {
	return itemHandlerFunc(func(ctx context.Context, it work.Item) error {
		lb := label(it)
		l.byID.Store(it.ID, lb)
		if setCtx {
			ctx = capacity.WithInstance(capacity.WithTenant(capacity.WithOp(ctx, lb.op), lb.tenant), lb.instance)
		}
		return h.Handle(ctx, it)
	})
}

// relabel labels the unlabelled deletes of outbox entries ("T#<t>#W#<id>")
// with the label of their item's run (its op replaced by ackOp when that is
// set and the run belongs to an operation instance) and returns how many it
// labelled.
func (l *workLabels) relabel(reqs []capacity.Request, ackOp string) int {
	n := 0
	for i := range reqs {
		q := &reqs[i]
		if q.Op != capacity.Unlabelled {
			continue
		}
		if lb, ok := l.ackedRun(*q); ok {
			q.Op, q.Tenant, q.Instance = lb.op, lb.tenant, lb.instance
			if ackOp != "" && lb.instance != "" {
				q.Op = ackOp
			}
			n++
		}
	}
	return n
}

// ackedRun is the label of the run of the item whose outbox entry the
// DeleteItem q acknowledges; ok is false when q is no such delete or the
// item's run is unknown.
func (l *workLabels) ackedRun(q capacity.Request) (workLabel, bool) {
	if q.Operation != "DeleteItem" || len(q.Writes) == 0 {
		return workLabel{}, false
	}
	_, id, ok := strings.Cut(q.Writes[0].ItemPK, "#W#")
	if !ok {
		return workLabel{}, false
	}
	v, ok := l.byID.Load(id)
	if !ok {
		return workLabel{}, false
	}
	return v.(workLabel), true
}

type itemHandlerFunc func(ctx context.Context, it work.Item) error

func (f itemHandlerFunc) Handle(ctx context.Context, it work.Item) error { return f(ctx, it) }

// The message lifecycle workload: tenants with an sms sandbox channel and
// one subscription to every event (a receiver answering 204), messages to
// ordinary recipients (the sandbox accepts, then posts a "delivered"
// receipt), each sent with an Idempotency-Key, drained until every message
// is delivered and every webhook delivered. One tenant sends more: its
// message lists are write-sharded, and the single-tenant ceiling counts each
// of its hashed list families at its measured spread (the sample's share of
// its busiest shard, which a small sample overstates, is printed beside).
const (
	lcTenants            = 20  // tenants, each with a channel and a subscription
	lcMessages           = 10  // messages of each tenant but the busy one
	lcBusyMessages       = 300 // messages of the busy tenant (tenant 0)
	lcWebhooksPerMessage = 3   // webhooks of a delivered message: message.queued, .sent, .delivered
)

// The lifecycle's requirements (the definition of done): delivered
// messages per second before any partition key reaches 1,000 WCU/s; and the
// write units of one delivered message (reported, not checked: the lead
// decides).
const (
	wantMessagesPlatform = 100_000
	wantMessagesTenant   = 5_000
	targetWCUPerMessage  = 10
)

// Lifecycle steps: what every DynamoDB request of a message's lifecycle is
// attributed to, in the order a message goes through them.
const (
	stepSend     = "send-message request"
	stepDispatch = "dispatch work"
	stepSandbox  = "sandbox provider"
	stepRoute    = "receipt webhook route"
	stepReceipt  = "receipt processing"
	stepFanOut   = "fan-out with first attempts"
	stepDeliver  = "webhook retries, health"
	stepRelay    = "relay: acks, retries, sweeps"
	lcSetup      = "lifecycle setup" // onboarding, channels, subscriptions: not counted
	lcCheck      = "lifecycle check" // the benchmark's own checks: not counted
	lcMessageOp  = "message"         // every step of one message, for its ceilings
)

var lifecycleSteps = []string{stepSend, stepDispatch, stepSandbox, stepRoute, stepReceipt, stepFanOut, stepDeliver, stepRelay}

// stepOfWork is the step of a work type. The sandbox's own unit inside the
// dispatch is told apart by its keys (attributeSandbox).
func stepOfWork(typ string) string {
	switch typ {
	case messagingapp.WorkDispatch:
		return stepDispatch
	case sandbox.WorkPostReceipt:
		return stepSandbox
	case messagingapp.WorkProviderWebhook:
		return stepReceipt
	case work.PublishType, webhooksapp.WorkFanOut:
		return stepFanOut
	case webhooksapp.WorkDeliver, webhooksapp.WorkSubscriptionHealth:
		return stepDeliver
	}
	return "other work: " + typ
}

// lifecycleRun is the bookkeeping of the lifecycle workload: which trace
// ids are messages (every request of a message's lifecycle carries its
// trace id: the send sets it with traceparent, work items continue it, the
// sandbox posts its receipt with it), whose channels are whose, and what
// the receiver got.
type lifecycleRun struct {
	mu       sync.Mutex
	traces   map[string]string // trace id -> tenant
	channels map[string]string // channel id -> tenant
	// received webhooks: message id -> event type -> count
	webhooks map[string]map[string]int
	received int
	// delivers are the items that record deliveries (publications and
	// fan-out continuations, which make first attempts; webhooks.deliver,
	// the retries) that ran without error.
	delivers map[string]bool
	running  atomic.Int64 // work items running now
	progress atomic.Int64 // work items finished
}

func (r *lifecycleRun) message(trace string) (tenant string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tenant, ok = r.traces[trace]
	return tenant, ok
}

// label labels a work item by its step and its message (its trace id);
// items of no message are the setup's.
func (r *lifecycleRun) label(it work.Item) workLabel {
	if tenant, ok := r.message(it.Invocation.TraceID); ok {
		return workLabel{op: stepOfWork(it.Type), tenant: tenant, instance: it.Invocation.TraceID}
	}
	return workLabel{op: lcSetup, tenant: it.TenantID}
}

// counting wraps the worker's handler to count the running and finished
// items and the deliveries done.
func (r *lifecycleRun) counting(h work.ItemHandler) work.ItemHandler {
	return itemHandlerFunc(func(ctx context.Context, it work.Item) error {
		r.running.Add(1)
		err := h.Handle(ctx, it)
		r.running.Add(-1)
		r.progress.Add(1)
		if err == nil && (it.Type == work.PublishType || it.Type == webhooksapp.WorkFanOut || it.Type == webhooksapp.WorkDeliver) {
			r.mu.Lock()
			r.delivers[it.ID] = true
			r.mu.Unlock()
		}
		return err
	})
}

// receiver is the subscribers' endpoint: it answers 204 and counts the
// webhooks by message and type.
func (r *lifecycleRun) receiver(w http.ResponseWriter, req *http.Request) {
	var body struct {
		Type string `json:"type"`
		Data struct {
			MessageID string `json:"messageId"`
			Status    string `json:"status"`
		} `json:"data"`
	}
	_ = json.NewDecoder(req.Body).Decode(&body)
	r.mu.Lock()
	if r.webhooks[body.Data.MessageID] == nil {
		r.webhooks[body.Data.MessageID] = map[string]int{}
	}
	r.webhooks[body.Data.MessageID][body.Type]++
	r.received++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// drained reports whether every message was delivered (its message.delivered
// webhook came) and every one of its webhooks was delivered (received, and
// its delivery recorded).
func (r *lifecycleRun) drained(messages []string) (delivered, webhooks int, done bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range messages {
		got := r.webhooks[id]
		if got[messagingapp.EventMessageDelivered] > 0 {
			delivered++
		}
		for _, typ := range []string{messagingapp.EventMessageQueued, messagingapp.EventMessageSent, messagingapp.EventMessageDelivered} {
			if got[typ] > 0 {
				webhooks++
			}
		}
	}
	return delivered, webhooks, delivered == len(messages) && webhooks == lcWebhooksPerMessage*len(messages) && len(r.delivers) >= webhooks
}

// attributeSandbox gives the requests of the sandbox's own unit of work, made
// inside the dispatch work, to the sandbox step (they touch only its send
// log: stream "sandbox-send-<key>", rows "sandbox-sends", its receipt item).
func attributeSandbox(q *capacity.Request) {
	if q.Op != stepDispatch {
		return
	}
	for _, u := range q.Units {
		if strings.Contains(u.PK, "#S#"+sandbox.SendStream("")) || strings.Contains(u.PK, "#R#"+sandbox.CollectionSends+"#") {
			q.Op = stepSandbox
			return
		}
	}
}

// lifecycleFigures are what the lifecycle's checks need.
type lifecycleFigures struct {
	messages                   int
	wcuPerMessage              float64
	platformWrite, tenantWrite capacity.Ceiling
}

// runLifecycleWorkload runs the message lifecycle workload on an app of its
// own (its own table, worker and recorder) and writes its report to out.
func runLifecycleWorkload(b *testing.B, out *strings.Builder) *lifecycleFigures {
	b.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamoEndpoint(b))
	const operatorKey = "sbo_lifecycle_capacity"
	run := &lifecycleRun{traces: map[string]string{}, channels: map[string]string{}, webhooks: map[string]map[string]int{}, delivers: map[string]bool{}}
	labels := &workLabels{}

	// The public URL must be known before Build: the server serves the app
	// once built. Provider webhooks are labelled as the receipt route's step
	// of the message whose trace they carry (the sandbox posts traceparent).
	front := &lateHandler{}
	srv := httptest.NewServer(front)
	defer srv.Close()
	receiver := httptest.NewServer(http.HandlerFunc(run.receiver))
	defer receiver.Close()

	env := map[string]string{
		"SWITCHBOARD_DATA_DIR":      b.TempDir(),
		"SWITCHBOARD_STORE":         "dynamodb",
		"SWITCHBOARD_OPERATOR_KEY":  operatorKey,
		"SWITCHBOARD_TABLE":         uniqueTable(),
		"SWITCHBOARD_WORKERS":       "16",
		"SWITCHBOARD_PUBLIC_URL":    srv.URL,
		"SWITCHBOARD_OUTBOX_SHARDS": strconv.Itoa(dynamostore.DefaultOutboxShards), // the deployed default, not local mode's
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	if cfg.OutboxShards != dynamostore.DefaultOutboxShards {
		b.Fatalf("outbox shards %d: the capacity report measures the production default (%d)", cfg.OutboxShards, dynamostore.DefaultOutboxShards)
	}
	rec := capacity.NewRecorder(capacity.StoreSchema())
	// What no context labels: a message's work that failed and is
	// rescheduled by the worker (its invocation carries the trace id), and
	// the setup's work.
	rec.Fallback = func(ctx context.Context) (string, string, string) {
		inv := invocation.From(ctx)
		if tenant, ok := run.message(inv.TraceID); ok {
			return stepRelay, tenant, inv.TraceID
		}
		if inv.Trigger != "" {
			return lcSetup, inv.TenantID(), ""
		}
		return "", "", ""
	}
	app, err := Build(context.Background(), cfg, Deps{DynamoDBOptions: []func(*dynamodb.Options){rec.Option()}})
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	var served http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/webhooks/"); ok {
			_, channelID, _ := strings.Cut(rest, "/")
			trace, _ := invocation.ParseTraceparent(r.Header.Get("traceparent"))
			op := stepRoute
			if _, ok := run.message(trace); !ok {
				op, trace = lcSetup, ""
			}
			run.mu.Lock()
			tenant := run.channels[channelID]
			run.mu.Unlock()
			r = r.WithContext(capacity.WithInstance(capacity.WithTenant(capacity.WithOp(r.Context(), op), tenant), trace))
		}
		app.Server.ServeHTTP(w, r)
	})
	front.h.Store(&served)
	app.Worker.Handler = run.counting(labels.wrap(app.Worker.Handler, run.label, true))
	app.Worker.Start()
	defer app.Worker.Stop(context.Background())
	h := app.Server
	start := time.Now()

	// Setup: tenants (provisioned), a channel and a subscription each.
	type tenant struct{ id, key, root, channel string }
	tenants := make([]tenant, lcTenants)
	setup := func() context.Context { return capacity.WithOp(context.Background(), lcSetup) }
	t0 := time.Now()
	parallel(b, lcTenants, func(i int) error {
		st, body := apiCall(setup(), h, "/commands/onboard-tenant", operatorKey, fmt.Sprintf(`{"name":"Lifecycle %d","tier":"pooled"}`, i))
		if st != 200 {
			return fmt.Errorf("onboard-tenant %d: %d %v", i, st, body)
		}
		tn := tenant{id: str(body["tenantId"]), key: str(body["apiKey"]), root: str(body["rootScopeId"])}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, body := apiCall(setup(), h, "/queries/get-tenant", tn.key, `{}`); body["status"] == "active" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("tenant %s not active after 30 s", tn.id)
			}
		}
		st, body = apiCall(setup(), h, "/commands/create-channel", tn.key, `{"scopeId":"`+tn.root+
			`","name":"sms","type":"sms","provider":"sandbox","from":"+15550000000","config":{},"credentials":{}}`)
		if st != 200 {
			return fmt.Errorf("create-channel %d: %d %v", i, st, body)
		}
		tn.channel = str(body["channelId"])
		st, body = apiCall(setup(), h, "/commands/create-subscription", tn.key, `{"scopeId":"`+tn.root+`","url":"`+receiver.URL+`/hooks","eventTypes":["*"]}`)
		if st != 200 {
			return fmt.Errorf("create-subscription %d: %d %v", i, st, body)
		}
		run.mu.Lock()
		run.channels[tn.channel] = tn.id
		run.mu.Unlock()
		tenants[i] = tn
		return nil
	})
	phase("lifecycle setup", t0, lcTenants)

	// Sends: tenants interleaved (a fixed shuffle), each with an
	// Idempotency-Key and a trace of its own.
	var order []int
	for i := range tenants {
		n := lcMessages
		if i == 0 {
			n = lcBusyMessages
		}
		for range n {
			order = append(order, i)
		}
	}
	rnd := mathrand.New(mathrand.NewPCG(7, 7))
	rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	messages := make([]string, len(order))
	text := `{"text":"Your appointment at Acme Health is confirmed for Tue 4 Nov, 14:30. Reply STOP to opt out."}`
	t0 = time.Now()
	parallel(b, len(order), func(i int) error {
		tn := tenants[order[i]]
		trace := invocation.NewTraceID()
		run.mu.Lock()
		run.traces[trace] = tn.id
		run.mu.Unlock()
		ctx := capacity.WithInstance(capacity.WithTenant(capacity.WithOp(context.Background(), stepSend), tn.id), trace)
		to := fmt.Sprintf("+1555020%04d", 1000+i%9000) // ordinary recipients: delivered
		st, body := apiCallWith(ctx, h, "/commands/send-message", tn.key,
			`{"channelId":"`+tn.channel+`","to":"`+to+`","content":`+text+`,"metadata":{"campaign":"capacity"}}`,
			"Idempotency-Key", fmt.Sprintf("capacity-%06d", i), "traceparent", "00-"+trace+"-"+trace[:16]+"-01")
		if st != 202 || body["status"] != "queued" {
			return fmt.Errorf("send-message %d: %d %v", i, st, body)
		}
		messages[i] = str(body["messageId"])
		return nil
	})
	phase("send-message", t0, len(order))

	// Drain: every message delivered, every webhook delivered. A sweep
	// (as the scheduled one) runs when nothing moved for 2 s. The deadline
	// leaves room for a machine that other work keeps busy.
	deadline := time.Now().Add(5 * time.Minute)
	sweeps := 0
	for last, idle := int64(-1), 0; ; {
		delivered, hooks, done := run.drained(messages)
		if done {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("lifecycle: %d of %d messages delivered, %d of %d webhooks after 5 minutes", delivered, len(messages), hooks, lcWebhooksPerMessage*len(messages))
		}
		time.Sleep(100 * time.Millisecond)
		if n := run.progress.Load(); n == last {
			if idle++; idle == 20 {
				idle = 0
				sweeps++
				if _, err := app.Relay.Sweep(capacity.WithOp(context.Background(), stepRelay)); err != nil {
					b.Fatalf("sweep: %v", err)
				}
			}
		} else {
			last, idle = n, 0
		}
	}
	// The work they caused (subscription health, the last deliveries'
	// commits) finishes, then the worker acknowledges what it ran.
	for quiet := 0; quiet < 5; time.Sleep(50 * time.Millisecond) {
		if run.running.Load() == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	app.Worker.Stop(context.Background())
	phase("lifecycle drain", t0, len(messages))
	elapsed := time.Since(start)

	pending, err := app.Store.PendingOutbox(capacity.WithOp(context.Background(), lcCheck), time.Now().Add(time.Hour), 100)
	if err != nil {
		b.Fatalf("pending outbox: %v", err)
	}

	reqs := rec.Requests()
	acked := labels.relabel(reqs, stepRelay)
	for i := range reqs {
		attributeSandbox(&reqs[i])
	}
	return writeLifecycleReport(b, out, lifecycleInput{
		reqs: reqs, messages: messages, busy: tenants[0].id, shards: cfg.OutboxShards, acked: acked, labels: labels, sweeps: sweeps,
		pending: len(pending), elapsed: elapsed, run: run,
	})
}

// apiCallWith is apiCall with headers (name, value pairs).
func apiCallWith(ctx context.Context, h http.Handler, path, token, body string, headers ...string) (int, map[string]any) {
	req := httptest.NewRequestWithContext(ctx, "POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var m map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &m)
	return w.Code, m
}

func phase(name string, started time.Time, n int) {
	fmt.Fprintf(os.Stderr, "capacity: %-15s %6d in %5.1fs\n", name, n, time.Since(started).Seconds())
}

// lifecycleInput is what the lifecycle report is computed from.
type lifecycleInput struct {
	reqs     []capacity.Request
	messages []string
	busy     string // the tenant that sent the most
	shards   int    // outbox index shards
	acked    int    // acknowledgements labelled after their item's run
	labels   *workLabels
	sweeps   int
	pending  int // outbox entries pending after the drain
	elapsed  time.Duration
	run      *lifecycleRun
}

// stepFigures are the sums of one step (or of all).
type stepFigures struct {
	requests, transactions int
	tableItems, indexItems int
	tableWCU, indexWCU     float64
	tableRCU, indexRCU     float64
}

func (a *stepFigures) add(q capacity.Request) {
	a.requests++
	if q.Operation == "TransactWriteItems" {
		a.transactions++
	}
	for _, w := range q.Writes {
		if w.Index == "" {
			a.tableItems++
			a.tableWCU += w.Units
		} else {
			a.indexItems++
			a.indexWCU += w.Units
		}
	}
	for _, u := range q.Units {
		if u.Index == "" {
			a.tableRCU += u.Read
		} else {
			a.indexRCU += u.Read
		}
	}
}

// itemFigures are the items of one kind and their write units (doubling:
// the part of them that a transaction's doubling adds).
type itemFigures struct {
	items         int
	bytes         int // the sizes the units were computed from, summed
	wcu, doubling float64
}

// outboxRoles tells, for each outbox entry a request wrote, what the write
// was: "enqueue" (put), "ack" (delete) or "reschedule" (update); its index
// entries (gsi1) take the same role.
func outboxRoles(q capacity.Request) map[string]string {
	roles := map[string]string{}
	for _, w := range q.Writes {
		if w.Index == "" && w.ItemSK == "W" {
			roles[w.ItemPK] = map[capacity.WriteKind]string{capacity.WritePut: "enqueue", capacity.WriteDelete: "ack", capacity.WriteUpdate: "reschedule"}[w.Kind]
		}
	}
	return roles
}

// itemKind names what one written item is, from its keys (dynamostore's
// layout: streams T#<t>#S#<stream> with HEAD and E#<version>, rows
// T#<t>#R#<collection>#<key> and G#R#..., outbox entries T#<t>#W#<id>,
// idempotency records T#<t>#I#<key>; indexes gsi1 (outbox) and list1..6).
func itemKind(w capacity.ItemWrite, roles map[string]string) string {
	switch {
	case w.Index == dynamostore.IndexOutbox:
		return "outbox index entry (gsi1), " + roles[w.ItemPK]
	case w.Index != "":
		_, rest, _ := strings.Cut(w.PK, "#L#")
		name, _, _ := strings.Cut(rest, "#")
		return "list index entry: " + name
	case w.ItemSK == "W":
		return "outbox entry, " + roles[w.ItemPK]
	case w.ItemSK == "I":
		_, key, _ := strings.Cut(w.ItemPK, "#I#")
		switch {
		case strings.HasPrefix(key, "work:"):
			return "dedupe record: work item ran (work:<id>)"
		case strings.HasPrefix(key, "webhook:"):
			return "dedupe record: provider webhook id"
		}
		return "idempotency record: Idempotency-Key"
	case w.ItemSK == "HEAD" || strings.HasPrefix(w.ItemSK, "E#"):
		_, stream, _ := strings.Cut(w.ItemPK, "#S#")
		kind := stream
		for _, p := range []struct{ prefix, name string }{{"message-", "message"}, {sandbox.SendStream(""), "sandbox send log"},
			{"delivery-", "webhook delivery"}, {"subscription-", "subscription"}, {"channel-", "channel"}} {
			if strings.HasPrefix(stream, p.prefix) {
				kind = p.name
				break
			}
		}
		if w.ItemSK == "HEAD" {
			return "stream head: " + kind
		}
		return "event: " + kind
	case strings.HasPrefix(w.ItemPK, "G#R#"):
		coll, _, _ := strings.Cut(strings.TrimPrefix(w.ItemPK, "G#R#"), "#")
		return "global row: " + coll
	case strings.Contains(w.ItemPK, "#R#"):
		_, rest, _ := strings.Cut(w.ItemPK, "#R#")
		coll, _, _ := strings.Cut(rest, "#")
		return "row: " + coll
	}
	return "other: " + w.ItemPK
}

// hashedFamilies is the capacity.Families of the table: the outbox index
// shards (outboxShards of them) and the partitions of the write-sharded
// lists of listShards.
func hashedFamilies(outboxShards int) capacity.Families {
	return func(key string) (string, int, bool) { return shardFamily(key, outboxShards) }
}

// shardFamily is a sharded key with its shard replaced by "*"
// ("gsi1:OUTBOX#*", "list4:T#t#L#messages-by-status#queued#*") and the
// number of shards of its family, or ok false for an unsharded key.
func shardFamily(key string, outboxShards int) (family string, shards int, ok bool) {
	i := strings.LastIndexByte(key, '#')
	if i < 0 {
		return "", 0, false
	}
	if _, err := strconv.Atoi(key[i+1:]); err != nil {
		return "", 0, false
	}
	family = key[:i+1] + "*"
	if strings.HasPrefix(key, dynamostore.IndexOutbox+":") {
		return family, outboxShards, true
	}
	_, rest, found := strings.Cut(key, "#L#")
	if !found {
		return "", 0, false
	}
	name, _, _ := strings.Cut(rest, "#")
	n, known := listShards[name]
	return family, n, known
}

// listShards are the write shards of the lists the capacity workloads
// write, by name: the benchmark's own and those of a message's lifecycle.
var listShards = func() map[string]int {
	m := map[string]int{}
	for _, l := range []eventstore.List{benchMessages, msgadapters.MessagesList, msgadapters.MessagesByScopeList, msgadapters.MessagesByChannelList,
		msgadapters.MessagesByStatusList, msgadapters.MessagesByScopeStatusList, msgadapters.MessagesByChannelStatusList,
		msgadapters.ChannelsList, msgadapters.ChannelsByScopeList, whadapters.DeliveriesList, whadapters.SubscriptionsList,
		whadapters.SubscriptionsByScopeList, whadapters.EnabledSubscriptionsList,
		auditadapters.ListAll, auditadapters.ListByPrincipal, auditadapters.ListByOutcome} {
		m[l.Name] = max(l.Shards, 1)
	}
	return m
}()

// keyLoad is one key's units over a set of messages, and how many of them touched it.
type keyLoad struct {
	key         string
	write, read float64
	messages    map[string]bool
}

// loads sums the units of reqs per key (keys of tenant only, when tenant
// is set: a key's tenant is its prefix's, else the request's).
func loads(reqs []capacity.Request, tenant string) map[string]*keyLoad {
	m := map[string]*keyLoad{}
	for _, q := range reqs {
		for _, u := range q.Units {
			t := capacity.KeyTenant(u.PK)
			if t == "" {
				t = q.Tenant
			}
			if tenant != "" && t != tenant {
				continue
			}
			k := m[u.Key()]
			if k == nil {
				k = &keyLoad{key: u.Key(), messages: map[string]bool{}}
				m[u.Key()] = k
			}
			k.write += u.Write
			k.read += u.Read
			if q.Instance != "" {
				k.messages[q.Instance] = true
			}
		}
	}
	return m
}

// writeLifecycleReport writes the lifecycle's part of the report and
// returns its figures.
func writeLifecycleReport(b *testing.B, out *strings.Builder, in lifecycleInput) *lifecycleFigures {
	n := float64(len(in.messages))
	isStep := map[string]bool{}
	for _, s := range lifecycleSteps {
		isStep[s] = true
	}
	steps := map[string]*stepFigures{}
	var all stepFigures
	kinds := map[string]*itemFigures{}     // item kind -> figures
	byStep := map[[2]string]*itemFigures{} // (step, item kind) -> figures
	notCounted := map[string]int{}
	var lifecycle []capacity.Request
	var (
		txWCU, gsiWCU, listWCU, idemWCU, streamWCU, rowWCU float64
		outbox                                             = map[string]float64{} // role -> WCU (table and index)
		outboxEntries                                      int
		unitsCheck, sandboxWCU                             float64
	)
	for _, q := range in.reqs {
		if !isStep[q.Op] {
			notCounted[q.Op]++
			continue
		}
		lifecycle = append(lifecycle, q)
		if run, _ := in.labels.ackedRun(q); q.Op == stepSandbox || (q.Op == stepRelay && run.op == stepSandbox) {
			for _, w := range q.Writes {
				sandboxWCU += w.Units
			}
		}
		if steps[q.Op] == nil {
			steps[q.Op] = &stepFigures{}
		}
		steps[q.Op].add(q)
		all.add(q)
		for _, u := range q.Units {
			unitsCheck += u.Write
		}
		roles := outboxRoles(q)
		for _, w := range q.Writes {
			k := itemKind(w, roles)
			if kinds[k] == nil {
				kinds[k] = &itemFigures{}
			}
			kinds[k].items++
			kinds[k].bytes += w.Size
			kinds[k].wcu += w.Units
			sk := [2]string{q.Op, k}
			if byStep[sk] == nil {
				byStep[sk] = &itemFigures{}
			}
			byStep[sk].items++
			byStep[sk].bytes += w.Size
			byStep[sk].wcu += w.Units
			if w.Index == "" && w.Transactional {
				kinds[k].doubling += w.Units / 2
				byStep[sk].doubling += w.Units / 2
			}
			switch {
			case w.Index == dynamostore.IndexOutbox:
				gsiWCU += w.Units
				outbox[roles[w.ItemPK]] += w.Units
			case w.Index != "":
				listWCU += w.Units
			case w.ItemSK == "W":
				outbox[roles[w.ItemPK]] += w.Units
				if w.Kind == capacity.WritePut {
					outboxEntries++
				}
			case w.ItemSK == "I":
				idemWCU += w.Units
			case w.ItemSK == "HEAD" || strings.HasPrefix(w.ItemSK, "E#"):
				streamWCU += w.Units
			default:
				rowWCU += w.Units
			}
			if w.Index == "" && w.Transactional {
				txWCU += w.Units
			}
		}
	}
	wcu := all.tableWCU + all.indexWCU
	if math.Abs(unitsCheck-wcu) > 1e-6 {
		b.Errorf("lifecycle: item writes sum to %.1f WCU, the requests' units to %.1f", wcu, unitsCheck)
	}
	per := func(v float64) float64 { return v / n }
	pct := func(v float64) float64 { return 100 * v / math.Max(wcu, 1e-9) }

	in.run.mu.Lock()
	received, delivers := in.run.received, len(in.run.delivers)
	in.run.mu.Unlock()
	fmt.Fprintf(out, "\n--- message lifecycle (queued -> delivered, with its receipt, projections and webhooks) ---\n")
	fmt.Fprintf(out, "Workload: %d tenants, each with an sms sandbox channel at its root scope and one subscription ([\"*\"]) to a receiver answering 204; %d messages to ordinary recipients (tenant 0: %d, the others %d each; a 93-character text and one metadata entry), each sent with an Idempotency-Key, tenants interleaved, %d concurrent clients; drained until every message was delivered and each of its %d webhooks (message.queued, .sent, .delivered) delivered: %d messages delivered, %d items recording deliveries done (publications with their first attempts, retries), %d webhooks received; outbox entries pending after the drain: %d. %d DynamoDB requests in %.0fs against DynamoDB Local (outbox index: %d shards).\n",
		lcTenants, len(in.messages), lcBusyMessages, lcMessages, capClients, lcWebhooksPerMessage, len(in.messages), delivers, received, in.pending,
		len(in.reqs), in.elapsed.Seconds(), in.shards)
	var other []string
	for _, op := range slices.Sorted(maps.Keys(notCounted)) {
		other = append(other, fmt.Sprintf("%s %d", op, notCounted[op]))
	}
	fmt.Fprintf(out, "Attribution: every request to its message by the trace id all of a message's work carries (the send sets it with traceparent; work items continue it; the sandbox posts its receipt with it) and to a step by its context (the send request; a work item by its type; the receipt route by its path); the sandbox's own unit inside the dispatch by its keys; the worker's batched acknowledgements (%d) by the item they acknowledge; sweeps (%d, run when nothing moved for 2 s, as the scheduled sweep would) to the relay. Not counted (requests): %s.\n",
		in.acked, in.sweeps, strings.Join(other, ", "))
	fmt.Fprintf(out, "API keys: the app's in-process key cache is on (10 s), as in production: a tenant's key is read about once per instance and 10 s.\n\n")

	fmt.Fprintf(out, "Per delivered message, by step (mean over %d messages; WCU computed from item sizes by AWS rules, transactional table writes doubled; RCU as DynamoDB Local reports them)\n", len(in.messages))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\trequests\ttransactions\titems written (table+index)\tWCU table\tWCU index\tWCU total\tshare\tRCU\t")
	row := func(name string, a *stepFigures) {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f (%.2f+%.2f)\t%.2f\t%.2f\t%.2f\t%.1f%%\t%.2f\t\n", name, per(float64(a.requests)), per(float64(a.transactions)),
			per(float64(a.tableItems+a.indexItems)), per(float64(a.tableItems)), per(float64(a.indexItems)),
			per(a.tableWCU), per(a.indexWCU), per(a.tableWCU+a.indexWCU), pct(a.tableWCU+a.indexWCU), per(a.tableRCU+a.indexRCU))
	}
	for _, s := range lifecycleSteps {
		if a := steps[s]; a != nil {
			row(s, a)
		} else {
			row(s, &stepFigures{})
		}
	}
	row("total", &all)
	_ = tw.Flush()

	fmt.Fprintf(out, "\nWhat each step writes (per delivered message; \"of which tx\": the units a transaction's doubling adds)\n")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\titem written\titems\tmean bytes\tWCU\tof which tx\t")
	for _, st := range lifecycleSteps {
		var ks []string
		for sk := range byStep {
			if sk[0] == st {
				ks = append(ks, sk[1])
			}
		}
		slices.Sort(ks)
		slices.SortStableFunc(ks, func(a, b string) int { return cmpDesc(byStep[[2]string{st, a}].wcu, byStep[[2]string{st, b}].wcu) })
		for i, k := range ks {
			f := byStep[[2]string{st, k}]
			name := ""
			if i == 0 {
				name = st
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%d\t%.2f\t%.2f\t\n", name, k, per(float64(f.items)), f.bytes/max(f.items, 1), per(f.wcu), per(f.doubling))
		}
	}
	_ = tw.Flush()

	fmt.Fprintf(out, "\nWhat the write units are made of (per delivered message, all steps)\n")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "item written\titems\tmean bytes\tWCU\tof which tx\tshare\t")
	names := slices.Sorted(maps.Keys(kinds))
	slices.SortStableFunc(names, func(a, b string) int { return cmpDesc(kinds[a].wcu, kinds[b].wcu) })
	for _, k := range names {
		fmt.Fprintf(tw, "%s\t%.2f\t%d\t%.2f\t%.2f\t%.1f%%\t\n", k, per(float64(kinds[k].items)), kinds[k].bytes/max(kinds[k].items, 1), per(kinds[k].wcu), per(kinds[k].doubling), pct(kinds[k].wcu))
	}
	_ = tw.Flush()

	fmt.Fprintf(out, "\nShares of the %.2f WCU per delivered message\n", per(wcu))
	fmt.Fprintf(out, "  transactions: %.2f WCU are table writes inside TransactWriteItems (%.1f%%); the doubling alone is %.2f WCU (%.1f%%); %.2f transactions per message\n",
		per(txWCU), pct(txWCU), per(txWCU/2), pct(txWCU/2), per(float64(all.transactions)))
	fmt.Fprintf(out, "  index writes: %.2f WCU (%.1f%%): outbox index gsi1 %.2f (%.1f%%), list indexes %.2f (%.1f%%)\n",
		per(gsiWCU+listWCU), pct(gsiWCU+listWCU), per(gsiWCU), pct(gsiWCU), per(listWCU), pct(listWCU))
	outboxAll := outbox["enqueue"] + outbox["ack"] + outbox["reschedule"]
	fmt.Fprintf(out, "  outbox: %.2f entries per message; %.2f WCU (%.1f%%) with their gsi1 entries: enqueue %.2f, acknowledgement %.2f, reschedule %.2f\n",
		per(float64(outboxEntries)), per(outboxAll), pct(outboxAll), per(outbox["enqueue"]), per(outbox["ack"]), per(outbox["reschedule"]))
	fmt.Fprintf(out, "  idempotency and dedupe records: %.2f WCU (%.1f%%)\n", per(idemWCU), pct(idemWCU))
	fmt.Fprintf(out, "  event streams (heads and events): %.2f WCU (%.1f%%); read-model rows (without their list entries): %.2f WCU (%.1f%%)\n",
		per(streamWCU), pct(streamWCU), per(rowWCU), pct(rowWCU))
	fmt.Fprintf(out, "  the sandbox provider's own items (its send log, its receipt work item and that item's acknowledgement: a real provider keeps its side itself): %.2f WCU (%.1f%%); without them %.2f WCU per delivered message\n",
		per(sandboxWCU), pct(sandboxWCU), per(wcu-sandboxWCU))
	wcuPer := per(wcu)
	verdict := "met"
	if wcuPer > targetWCUPerMessage {
		verdict = "NOT MET"
	}
	fmt.Fprintf(out, "\ntarget <= %d WCU/message: %s (%.1f)\n", targetWCUPerMessage, verdict, wcuPer)
	fmt.Fprintf(out, "  measured %.2f WCU and %.2f RCU per delivered message; gap to the target: %+.2f WCU (%.2fx the target)\n",
		wcuPer, per(all.tableRCU+all.indexRCU), wcuPer-targetWCUPerMessage, wcuPer/targetWCUPerMessage)

	// Ceilings: every step of a message is one operation (its trace id).
	msgReqs := make([]capacity.Request, len(lifecycle))
	var busyReqs []capacity.Request
	for i, q := range lifecycle {
		q.Op = lcMessageOp
		msgReqs[i] = q
		if q.Tenant == in.busy {
			busyReqs = append(busyReqs, q)
		}
	}
	families := hashedFamilies(in.shards)
	platformRep := capacity.NewReportWith(msgReqs, capacity.DefaultLimits, families)
	busyRep := capacity.NewReportWith(busyReqs, capacity.DefaultLimits, families)
	ps, _ := platformRep.Op(lcMessageOp)
	ts, _ := busyRep.Op(lcMessageOp)
	fig := &lifecycleFigures{messages: len(in.messages), wcuPerMessage: wcuPer, platformWrite: ps.PlatformWrite, tenantWrite: ts.TenantWrite}
	if ps.Count != len(in.messages) {
		b.Errorf("lifecycle: requests of %d messages (trace ids), want %d: some work lost its message's trace", ps.Count, len(in.messages))
	}

	fmt.Fprintf(out, "\nCeilings: delivered messages/s before a partition key reaches %s WCU/s (platform: over the keys shared by 2+ tenants, %d messages; one tenant: over the keys that 2+ of tenant 0's %d messages touched). A key whose shard is a hash of the item written (outbox index shards, write-sharded list partitions) counts with its family: the family's measured units per message spread over its shards, up to the rate at which a shard's mean plus %dσ of its units in 1 s reach the limit (Poisson arrivals; an item's writes, such as an entry's put and delete, land on its shard together: variance = cluster x mean); every other key by its measured units per message.\n",
		thousandsOf(capacity.DefaultLimits.WritePerPartition), ps.Count, ts.Count, capacity.SpreadSigmas)
	for _, c := range []struct {
		what string
		got  capacity.Ceiling
		want float64
	}{
		{"delivered messages, platform", ps.PlatformWrite, wantMessagesPlatform},
		{"delivered messages, one tenant (tenant 0)", ts.TenantWrite, wantMessagesTenant},
	} {
		v := "ok"
		if c.got.PerSecond < c.want {
			v = "FAILS"
		}
		fmt.Fprintf(out, "  %-42s >= %7s/s  %-5s  %s\n", c.what, fmtInt(c.want), v, c.got)
	}
	fmt.Fprintf(out, "  by the sample's busiest key (ADR 0007's first method; not the check: this sample puts a few writes on each shard of a hashed family):\n")
	fmt.Fprintf(out, "    platform %s%s\n", ps.SamplePlatformWrite, sampleImbalance(ps.SamplePlatformWrite, ps.HashedPlatform, families))
	fmt.Fprintf(out, "    one tenant %s%s\n", ts.SampleTenantWrite, sampleImbalance(ts.SampleTenantWrite, ts.HashedTenant, families))
	fmt.Fprintf(out, "  hashed families, lowest ceilings first: platform (shared by 2+ tenants)\n")
	for _, c := range ps.HashedPlatform[:min(3, len(ps.HashedPlatform))] {
		fmt.Fprintf(out, "    %s\n", c)
	}
	fmt.Fprintf(out, "  one tenant (tenant 0's families that 2+ of its messages wrote)\n")
	for _, c := range ts.HashedTenant {
		fmt.Fprintf(out, "    %s\n", c)
	}
	var tenantKeys []*keyLoad
	for _, k := range loads(busyReqs, in.busy) {
		if len(k.messages) >= 2 {
			tenantKeys = append(tenantKeys, k)
		}
	}
	fmt.Fprintf(out, "  reads (not a requirement; %s RCU/s per partition): platform %s; one tenant %s\n",
		thousandsOf(capacity.DefaultLimits.ReadPerPartition), ps.PlatformRead, ts.TenantRead)

	fmt.Fprintf(out, "\nRecurring keys of tenant 0 (touched by 2+ of its messages), busiest writes first (units per message of tenant 0; ceilings of each key alone, as this sample loads it: a shard of a hashed family counts with its family above)\n")
	slices.SortFunc(tenantKeys, func(a, b *keyLoad) int {
		if c := cmpDesc(a.write, b.write); c != 0 {
			return c
		}
		if c := cmpDesc(a.read, b.read); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "key\tmessages\tWCU/message\tRCU/message\tceiling (writes)\tceiling (reads)\t")
	shown := 0
	for _, k := range tenantKeys {
		if shown == 8 {
			break
		}
		if k.write == 0 {
			continue
		}
		shown++
		fmt.Fprintf(tw, "%s\t%d\t%.4f\t%.4f\t%s/s\t%s\t\n", k.key, len(k.messages), k.write/float64(ts.Count), k.read/float64(ts.Count),
			thousandsOf(1000/(k.write/float64(ts.Count))), readCeiling(k.read/float64(ts.Count)))
	}
	slices.SortFunc(tenantKeys, func(a, b *keyLoad) int { return cmpDesc(a.read, b.read) })
	for _, k := range tenantKeys[:min(5, len(tenantKeys))] {
		if k.read == 0 {
			break
		}
		fmt.Fprintf(tw, "%s\t%d\t%.4f\t%.4f\t%s\t%s\t\n", k.key, len(k.messages), k.write/float64(ts.Count), k.read/float64(ts.Count),
			writeCeiling(k.write/float64(ts.Count)), readCeiling(k.read/float64(ts.Count)))
	}
	_ = tw.Flush()
	return fig
}

// sampleImbalance says how much more than its family's mean shard the
// sample's busiest key carries, when that key is a shard of a hashed family.
func sampleImbalance(sample capacity.Ceiling, fams []capacity.Ceiling, families capacity.Families) string {
	f, _, ok := families(sample.Key)
	if !ok {
		return ""
	}
	for _, c := range fams {
		if c.Key == f && (sample.Tenant == "" || c.Tenant == sample.Tenant) && c.UnitsPerOp > 0 {
			return fmt.Sprintf("; a shard of %s carrying %.2fx its family's mean shard", f, sample.UnitsPerOp/(c.UnitsPerOp/float64(c.Shards)))
		}
	}
	return ""
}

func readCeiling(perMessage float64) string {
	if perMessage <= 0 {
		return "-"
	}
	return thousandsOf(capacity.DefaultLimits.ReadPerPartition/perMessage) + "/s"
}

func writeCeiling(perMessage float64) string {
	if perMessage <= 0 {
		return "-"
	}
	return thousandsOf(capacity.DefaultLimits.WritePerPartition/perMessage) + "/s"
}

func thousandsOf(v float64) string {
	if math.IsInf(v, 1) {
		return "unbounded"
	}
	return fmtInt(v)
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
