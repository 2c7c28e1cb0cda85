package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/capacity"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
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
)

// BenchmarkCapacity runs a scripted multi-tenant workload against DynamoDB
// Local through the production wiring, records every DynamoDB request
// (capacity.Recorder) and prints the capacity report: units per operation,
// the busiest shared partition keys, and the ceilings that follow. It fails
// when a ceiling is below the design's requirement. The workload runs once,
// whatever b.N; ns/op is meaningless.
func BenchmarkCapacity(b *testing.B) {
	capacityOnce.Do(func() { capacityResult, capacityOnboard = runCapacityWorkload(b) })
	rep := capacityResult
	if rep == nil || capacityOnboard == nil {
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
	}
	for _, c := range checks {
		if !c.got.Unbounded() {
			b.ReportMetric(c.got.PerSecond, c.op+"/s")
		}
	}
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

// runCapacityWorkload runs the workload and prints the report; it returns
// the report and the report with onboarding's provisioning work counted as
// part of onboarding.
func runCapacityWorkload(b *testing.B) (*capacity.Report, *capacity.Report) {
	b.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamoEndpoint(b))
	const operatorKey = "sbo_capacity"
	env := map[string]string{
		"SWITCHBOARD_DATA_DIR":     b.TempDir(),
		"SWITCHBOARD_STORE":        "dynamodb",
		"SWITCHBOARD_OPERATOR_KEY": operatorKey,
		"SWITCHBOARD_TABLE":        uniqueTable(),
		"SWITCHBOARD_WORKERS":      "16",
		// Read only if the configuration has it; 512 is the store's default.
		"SWITCHBOARD_OUTBOX_SHARDS": "512",
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
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
	app.Worker.Start()
	defer func() { app.Worker.Stop(context.Background()); app.Close() }()
	h := app.Server
	start := time.Now()
	phase := func(name string, started time.Time, n int) {
		fmt.Fprintf(os.Stderr, "capacity: %-15s %6d in %5.1fs\n", name, n, time.Since(started).Seconds())
	}

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
	rep := capacity.NewReport(reqs, capacity.DefaultLimits)
	combined := make([]capacity.Request, len(reqs))
	for i, q := range reqs {
		if q.Op == provisionOp {
			q.Op, q.Instance = "onboard-tenant", "" // units of the onboarding that queued it
		}
		combined[i] = q
	}
	onboard := capacity.NewReport(combined, capacity.DefaultLimits)
	var out strings.Builder
	fmt.Fprintf(&out, "=== capacity report ===\n")
	fmt.Fprintf(&out, "Workload: %d tenants onboarded by %d concurrent clients, %d create-scope, %d get-tenant (tenants interleaved), %d list writes of one tenant (list %s, slot %d, %d shards), %d work items of %d tenants; %d DynamoDB requests in %.0fs against DynamoDB Local.\n",
		capTenants, capClients, capTenants*capScopesPerTenant, capTenants*capQueriesPerTenant, capListWrites,
		benchMessages.Name, benchMessages.Slot, benchMessages.Shards, capWorkItems, capWorkTenants, len(reqs), time.Since(start).Seconds())
	fmt.Fprintf(&out, "API key lookups: %s\n", apiKeyCacheNote(reqs, rep))
	fmt.Fprintf(&out, "Work items are committed alone and run by a no-op handler: their row is the outbox's own cost (put, index put, run, acknowledgement); onboarding's provisioning work is its own row.\n\n")
	_, _ = rep.WriteTo(&out)
	if s, ok := onboard.Op("onboard-tenant"); ok {
		fmt.Fprintf(&out, "\nonboard-tenant with its provisioning work: %.2f WCU (%.2f table, %.2f index), %.2f RCU per onboarding; platform %s / %s; one tenant %s / %s\n",
			s.TableWCU+s.IndexWCU, s.TableWCU, s.IndexWCU, s.TableRCU+s.IndexRCU, s.PlatformWrite, s.PlatformRead, s.TenantWrite, s.TenantRead)
	}
	fmt.Fprintf(&out, "\nRequirements (ceilings computed from the measured per-key shares above):\n")
	for _, c := range []struct {
		what string
		got  capacity.Ceiling
		want float64
	}{
		{"authenticated request (get-tenant), platform", platform(rep, "get-tenant"), wantAuthPlatform},
		{"onboard-tenant with its provisioning work, platform", platform(onboard, "onboard-tenant"), wantOnboardPlatform},
		{"work item through the outbox, platform", platform(rep, "work-item"), wantWorkPlatform},
		{"list write, one tenant", tenantCeiling(rep, "list-write"), wantListTenant},
	} {
		verdict := "ok"
		if c.got.PerSecond < c.want {
			verdict = "FAILS"
		}
		fmt.Fprintf(&out, "  %-52s >= %7s/s  %-5s  %s\n", c.what, fmtInt(c.want), verdict, c.got)
	}
	fmt.Fprintf(&out, "=== end capacity report ===\n")
	fmt.Print(out.String())
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
