package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/tenancy"
	"github.com/switchboard-dev/switchboard/modules/tenancy/adapters"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// countingResolver counts lookups and answers from a Static, or fails.
type countingResolver struct {
	*tenantres.Static
	mu      sync.Mutex
	lookups int
	fail    error
}

func (r *countingResolver) Resources(ctx context.Context, tenantID string) (tenantres.Resources, error) {
	r.mu.Lock()
	r.lookups++
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return tenantres.Resources{}, fail
	}
	return r.Static.Resources(ctx, tenantID)
}

// newResourcesEnv is newEnv with a resolver of tenant resources (nil: local mode).
func newResourcesEnv(t *testing.T, res tenantres.Resolver) *env {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{store: store, clock: clock.NewFixed(t0), ids: ids.NewSequence(t0), work: work.NewRegistry()}
	e.mod = tenancy.New(tenancy.Deps{Store: store, IDs: e.ids, Clock: e.clock, Resources: res})
	e.app = e.mod.App()
	e.mod.RegisterWork(e.work)
	return e
}

func (e *env) onboardTier(t *testing.T, tier string) app.OnboardTenantOutput {
	t.Helper()
	out, err := e.app.Commands.OnboardTenant.Handle(operatorCtx(), app.OnboardTenantInput{Name: "Acme " + tier, Tier: tier})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) status(t *testing.T, out app.OnboardTenantOutput) string {
	t.Helper()
	got, err := e.app.Queries.GetTenant.Handle(tenantCtx(out), app.GetTenantInput{})
	if err != nil {
		t.Fatal(err)
	}
	return got.Status
}

// provisionItems returns the pending provision-tenant items not in done,
// earliest first.
func (e *env) provisionItems(t *testing.T, done map[string]bool) []eventstore.OutboxEntry {
	t.Helper()
	entries, err := e.store.PendingOutbox(context.Background(), t0.Add(30*24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []eventstore.OutboxEntry
	for _, it := range entries {
		if it.Type == app.WorkProvisionTenant && !done[it.ID] {
			out = append(out, it)
		}
	}
	return out
}

// runNext runs the one provision item not run yet at its due time and
// returns it.
func (e *env) runNext(t *testing.T, done map[string]bool) eventstore.OutboxEntry {
	t.Helper()
	items := e.provisionItems(t, done)
	if len(items) != 1 {
		t.Fatalf("%d provision items pending, want 1: %+v", len(items), items)
	}
	it := items[0]
	e.clock.Set(it.DueAt)
	if err := e.work.Handle(context.Background(), it); err != nil {
		t.Fatalf("provision: %v", err)
	}
	done[it.ID] = true
	return it
}

var siloedResources = tenantres.Resources{Tier: tenantres.TierSiloed,
	WorkQueueURL: "https://sqs.eu-central-1.amazonaws.com/123456789012/switchboard-work-t",
	KMSKeyARN:    "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}

// A siloed tenant stays provisioning while its resources do not exist: each
// check succeeds and queues the next one (its attempts are never used), and
// the first check that finds them makes it active.
func TestProvisionSiloedTenantWaitsForItsResources(t *testing.T) {
	res := &countingResolver{Static: tenantres.NewStatic(nil)}
	e := newResourcesEnv(t, res)
	out := e.onboardTier(t, "siloed")
	done := map[string]bool{}

	first := e.runNext(t, done)
	if got := e.status(t, out); got != "provisioning" {
		t.Fatalf("status %q after a check without resources, want provisioning", got)
	}
	if evs := e.stream(t, out.TenantID, adapters.TenantStream); len(evs) != 1 {
		t.Fatalf("tenant stream %+v, want only the onboarding", evs)
	}
	second := e.provisionItems(t, done)
	if len(second) != 1 || !second[0].DueAt.Equal(first.DueAt.Add(app.MinRecheckDelay)) || second[0].Attempt != 0 ||
		second[0].TenantID != out.TenantID || second[0].Invocation.InvocationID != first.Invocation.InvocationID ||
		second[0].Invocation.TraceID != first.Invocation.TraceID || second[0].Invocation.Principal != "system" {
		t.Fatalf("next check %+v, want one item of the tenant due 30 s later with no attempt used, continuing the invocation as the system", second)
	}

	e.runNext(t, done) // still nothing
	res.Set(out.TenantID, siloedResources)
	e.runNext(t, done)
	if got := e.status(t, out); got != "active" {
		t.Fatalf("status %q once the resources exist, want active", got)
	}
	evs := e.stream(t, out.TenantID, adapters.TenantStream)
	if len(evs) != 2 || evs[1].Type != domain.TypeTenantProvisioned {
		t.Fatalf("tenant stream %+v, want onboarded + provisioned", evs)
	}
	if rest := e.provisionItems(t, done); len(rest) != 0 {
		t.Fatalf("checks after the tenant is active: %+v", rest)
	}
	if res.lookups != 3 {
		t.Fatalf("%d lookups, want 3", res.lookups)
	}
}

// Checks back off with the tenant's age, from 30 s to an hour.
func TestRecheckDelay(t *testing.T) {
	for _, c := range []struct{ age, want time.Duration }{
		{0, 30 * time.Second},
		{-time.Hour, 30 * time.Second}, // clock skew
		{2 * time.Minute, 30 * time.Second},
		{4 * time.Minute, time.Minute},
		{time.Hour, 15 * time.Minute},
		{4 * time.Hour, time.Hour},
		{6 * 24 * time.Hour, time.Hour},
	} {
		if got := app.RecheckDelay(c.age); got != c.want {
			t.Errorf("RecheckDelay(%s) = %s, want %s", c.age, got, c.want)
		}
	}
	// The next check of a tenant onboarded an hour ago is due in 15 minutes.
	e := newResourcesEnv(t, tenantres.NewStatic(nil))
	out := e.onboardTier(t, "siloed")
	done := map[string]bool{}
	it := e.provisionItems(t, done)[0]
	e.clock.Set(t0.Add(time.Hour))
	if err := e.work.Handle(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	done[it.ID] = true
	next := e.provisionItems(t, done)
	if len(next) != 1 || !next[0].DueAt.Equal(t0.Add(time.Hour+15*time.Minute)) {
		t.Fatalf("next check %+v, want due at onboarding + 1h15m", next)
	}
	if e.status(t, out) != "provisioning" {
		t.Fatal("tenant active without resources")
	}
}

// After ProvisionTimeout a check that finds nothing fails: the work path
// retries it and parks it after its attempts (replayable by an operator).
func TestProvisionSiloedTenantGivesUpAfterTheTimeout(t *testing.T) {
	e := newResourcesEnv(t, tenantres.NewStatic(nil))
	out := e.onboardTier(t, "siloed")
	done := map[string]bool{}
	it := e.provisionItems(t, done)[0]
	done[it.ID] = true
	e.clock.Set(t0.Add(app.ProvisionTimeout))
	err := e.work.Handle(context.Background(), it)
	if err == nil || !strings.Contains(err.Error(), out.TenantID) || !strings.Contains(err.Error(), "replay-parked-work") {
		t.Fatalf("err = %v, want one naming the tenant and the replay", err)
	}
	if next := e.provisionItems(t, done); len(next) != 0 {
		t.Fatalf("a next check was queued: %+v", next)
	}
	if e.status(t, out) != "provisioning" {
		t.Fatal("status changed")
	}
}

// A resolver that cannot tell fails the check (the work path retries it).
func TestProvisionSiloedTenantResolverError(t *testing.T) {
	res := &countingResolver{Static: tenantres.NewStatic(nil), fail: errors.New("ssm unavailable")}
	e := newResourcesEnv(t, res)
	out := e.onboardTier(t, "siloed")
	done := map[string]bool{}
	it := e.provisionItems(t, done)[0]
	done[it.ID] = true
	if err := e.work.Handle(context.Background(), it); err == nil || !strings.Contains(err.Error(), "ssm unavailable") {
		t.Fatalf("err = %v, want the resolver's", err)
	}
	if next := e.provisionItems(t, done); len(next) != 0 || e.status(t, out) != "provisioning" {
		t.Fatalf("after a resolver error: next checks %+v, status %s", next, e.status(t, out))
	}
}

// A parameter of tier pooled names no resources: a siloed tenant keeps waiting.
func TestProvisionSiloedTenantIgnoresAPooledParameter(t *testing.T) {
	res := tenantres.NewStatic(nil)
	e := newResourcesEnv(t, res)
	out := e.onboardTier(t, "siloed")
	res.Set(out.TenantID, tenantres.Resources{Tier: tenantres.TierPooled})
	done := map[string]bool{}
	e.runNext(t, done)
	if e.status(t, out) != "provisioning" || len(e.provisionItems(t, done)) != 1 {
		t.Fatal("a pooled parameter provisioned a siloed tenant")
	}
}

// Pooled tenants are active at once and never looked up.
func TestProvisionPooledTenantIsActiveAtOnce(t *testing.T) {
	res := &countingResolver{Static: tenantres.NewStatic(nil)}
	e := newResourcesEnv(t, res)
	out := e.onboardTier(t, "pooled")
	e.runNext(t, map[string]bool{})
	if e.status(t, out) != "active" || res.lookups != 0 {
		t.Fatalf("status %s, %d lookups; want active, 0", e.status(t, out), res.lookups)
	}
}

// Local mode (no resolver): no tenant has dedicated resources, so a siloed
// tenant is active at once, sharing the platform's.
func TestProvisionSiloedTenantWithoutResolverIsActiveAtOnce(t *testing.T) {
	e := newResourcesEnv(t, nil)
	out := e.onboardTier(t, "siloed")
	done := map[string]bool{}
	e.runNext(t, done)
	if e.status(t, out) != "active" || len(e.provisionItems(t, done)) != 0 {
		t.Fatalf("status %s, want active with no further check", e.status(t, out))
	}
}
