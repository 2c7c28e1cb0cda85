package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/tenancy"
	tenancyapp "github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
)

// tenancy's module is the Scopes of the webhooks module in production.
var _ webhooks.Scopes = (*tenancy.Module)(nil)

// t0 is on a whole second, so webhook-timestamps (unix seconds) show the
// schedule exactly.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// options tune one environment.
type options struct {
	now          time.Time // the fixed clock's start (default t0)
	allowPrivate bool
	resolver     webhooks.Resolver
	retryScale   float64
	noJitter     bool
	// transport, when set, makes the attempts (instead of the guarded client).
	transport http.RoundTripper
	// wrapSealer, when set, wraps the sealer the webhooks module uses.
	wrapSealer func(secrets.Sealer) secrets.Sealer
	// gate, when set, bounds each subscription's attempts in flight.
	gate *app.EndpointGate
}

// env is one store with the tenancy and webhooks modules, the work path as
// production wires it (executor, unit of work, publish handler), and the rpc
// edge with a token authenticator.
type env struct {
	t       testing.TB
	store   eventstore.Store
	clock   *clock.Fixed
	ids     *ids.Sequence
	sealer  secrets.Sealer
	tenancy *tenancy.Module
	mod     *webhooks.Module
	work    *work.Registry
	events  *work.Subscriptions
	exec    *work.Executor
	srv     *rpc.Server
	tokens  tokens
}

type tokens map[string]invocation.Principal

func (tk tokens) Authenticate(_ context.Context, cred string) (invocation.Principal, error) {
	if p, ok := tk[cred]; ok {
		return p, nil
	}
	return invocation.Principal{}, auth.ErrUnauthenticated
}

func newEnv(t testing.TB, o options) *env {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	return newEnvOn(t, store, o)
}

func newEnvOn(t testing.TB, store eventstore.Store, o options) *env {
	t.Helper()
	if o.now.IsZero() {
		o.now = t0
	}
	keyring, err := secrets.NewLocalKeyring([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, clock: clock.NewFixed(o.now), ids: ids.NewSequence(o.now),
		sealer: secrets.NewEnvelope(keyring), work: work.NewRegistry(), tokens: tokens{}}
	e.tenancy = tenancy.New(tenancy.Deps{Store: store, IDs: e.ids, Clock: e.clock})
	e.tenancy.RegisterWork(e.work)
	d := webhooks.Deps{
		Store: store, Sealer: e.sealer, Scopes: e.tenancy, IDs: e.ids, Clock: e.clock,
		AllowPrivateTargets: o.allowPrivate, RetryScale: o.retryScale, Resolver: o.resolver,
	}
	if o.noJitter {
		d.Rand = func() float64 { return 0.5 }
	}
	if o.transport != nil {
		d.HTTPClient = &http.Client{Transport: o.transport, Timeout: 15 * time.Second}
	}
	d.Gate = o.gate
	if o.wrapSealer != nil {
		d.Sealer = o.wrapSealer(e.sealer)
	}
	e.mod = webhooks.New(d)
	e.mod.RegisterWork(e.work)
	e.events = work.NewSubscriptions()
	e.mod.Subscribe(e.events)
	// As the production wiring without an event bus: idempotent by state,
	// no dedupe record (ADR 0017).
	e.work.RegisterIdempotent(work.PublishType, e.events.PublishHandler())
	runner := &uow.Runner{Store: store}
	e.exec = &work.Executor{Handlers: e.work, Runner: runner, Clock: e.clock}
	e.srv = rpc.NewServer(rpc.Config{Auth: e.tokens, Store: store, Sealer: e.sealer, Runner: runner, IDs: e.ids, Clock: e.clock})
	e.srv.Register(e.mod.Endpoints()...)
	return e
}

// on returns e reporting to t (a subtest or fuzz iteration).
func (e *env) on(t testing.TB) *env { c := *e; c.t = t; return &c }

// tenant is an onboarded tenant, with the bearer token of its admin.
type tenant struct {
	ID, Root, Token string
}

func (e *env) onboard(name string) tenant {
	e.t.Helper()
	ctx := invocation.With(context.Background(), &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000001", TraceID: traceID,
		Principal: invocation.Principal{Kind: invocation.KindOperator, ID: "operator"},
	})
	out, err := e.tenancy.App().Commands.OnboardTenant.Handle(ctx, tenancyapp.OnboardTenantInput{Name: name, Tier: "pooled"})
	if err != nil {
		e.t.Fatal(err)
	}
	tn := tenant{ID: out.TenantID, Root: out.RootScopeID, Token: "admin-" + out.TenantID}
	e.tokens[tn.Token] = e.principal(tn, "admin", out.RootScopeID)
	return tn
}

func (e *env) principal(tn tenant, role, scopeID string) invocation.Principal {
	return invocation.Principal{Kind: invocation.KindServiceAccount, ID: e.ids.New(ids.ServiceAccount), TenantID: tn.ID,
		Roles: []invocation.RoleBinding{{Role: role, ScopeID: scopeID}}}
}

// grant makes a token of a principal holding role at scopeID.
func (e *env) grant(tn tenant, role, scopeID string) string {
	tok := fmt.Sprintf("%s-%s-%s", role, tn.ID, scopeID)
	e.tokens[tok] = e.principal(tn, role, scopeID)
	return tok
}

// ctx is a call of the tenant's admin with the guard the edge installs.
func (e *env) ctx(tn tenant) context.Context {
	ctx := invocation.With(context.Background(), &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000002", TraceID: traceID, Trigger: "http", Principal: e.tokens[tn.Token],
	})
	return authz.WithGuard(ctx, authz.NewGuard(authz.Roles{}, invocation.From(ctx).Principal, "webhooks:test"))
}

func (e *env) scope(tn tenant, parent, name string) string {
	e.t.Helper()
	out, err := e.tenancy.App().Commands.CreateScope.Handle(e.ctx(tn), tenancyapp.CreateScopeInput{ParentScopeID: parent, Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.ScopeID
}

func (e *env) subscribe(tn tenant, scopeID, url string, types ...string) app.CreateSubscriptionOutput {
	e.t.Helper()
	out, err := e.mod.App().Commands.CreateSubscription.Handle(e.ctx(tn), app.CreateSubscriptionInput{ScopeID: scopeID, URL: url, EventTypes: types})
	if err != nil {
		e.t.Fatalf("create subscription %s: %v", url, err)
	}
	return out
}

// event is a message integration event as messaging publishes it.
// oneSubscriber is an env with the tenant "Acme" and a receiver subscribed
// to every event type at its root scope (the receiver verifies with its
// secret).
func oneSubscriber(t *testing.T, o options) (*env, tenant, *receiver, app.CreateSubscriptionOutput) {
	e := newEnv(t, o)
	tn := e.onboard("Acme")
	rcv := newReceiver(t)
	sub := e.subscribe(tn, tn.Root, rcv.URL, "*")
	rcv.setSecret(sub.Secret)
	return e, tn, rcv, sub
}

func (e *env) event(tn tenant, eventType string, scopePath []string, messageID string) work.IntegrationEvent {
	detail, _ := json.Marshal(map[string]any{
		"tenantId":   tn.ID,
		"invocation": invocation.Meta{InvocationID: "inv_01JQ00000000000000000000MS", ActionID: "01JQ00000000000000000000AC", TraceID: traceID, Principal: "service_account:sva_x"},
		"scopePath":  scopePath,
		"data": map[string]any{
			"messageId": messageID, "channelId": "chn_01JQ0000000000000000000000", "scopeId": scopePath[len(scopePath)-1],
			"direction": "outbound", "to": "+15555550100", "from": "+15555550199", "content": map[string]string{"text": "hi <b>&"},
			"status": strings.TrimPrefix(eventType, "message."), "statusReason": nil, "attempts": 1, "metadata": map[string]string{},
			"sendAt": nil, "createdAt": "2026-03-04T05:06:07.000Z", "updatedAt": "2026-03-04T05:06:07.000Z",
		},
	})
	return work.IntegrationEvent{ID: e.ids.New(ids.Event), Source: "switchboard.messaging", Type: eventType, TenantID: tn.ID,
		Time: e.clock.Now(), Detail: detail}
}

// publish commits ev's publication into the outbox, as messaging does.
func (e *env) publish(ev work.IntegrationEvent) eventstore.OutboxEntry {
	e.t.Helper()
	entry, err := work.Publication(e.ids.New(ids.Work), ev, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	entry.Invocation = invocation.Meta{InvocationID: "inv_01JQ00000000000000000000MS", TraceID: traceID, Principal: "system"}
	if err := e.store.Commit(context.Background(), &eventstore.Commit{TenantID: ev.TenantID, Outbox: []eventstore.OutboxEntry{entry}}); err != nil {
		e.t.Fatal(err)
	}
	return entry
}

// drain runs every work item due now (and what they queue, due now), as the
// local worker does: through the executor, acknowledging each.
func (e *env) drain() {
	e.t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		if i > 1000 {
			e.t.Fatal("drain: work does not settle")
		}
		items, err := e.store.PendingOutbox(ctx, e.clock.Now(), 100)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(items) == 0 {
			return
		}
		for _, it := range items {
			if err := e.exec.Handle(ctx, it); err != nil {
				e.t.Fatalf("work %s %s: %v", it.Type, it.ID, err)
			}
			if err := e.store.AckOutbox(ctx, []eventstore.OutboxEntry{it}); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// nextDue is the due time of the earliest pending item, if any.
func (e *env) nextDue() (time.Time, bool) {
	items, err := e.store.PendingOutbox(context.Background(), t0.Add(10*365*24*time.Hour), 100)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(items) == 0 {
		return time.Time{}, false
	}
	min := items[0].DueAt
	for _, it := range items {
		if it.DueAt.Before(min) {
			min = it.DueAt
		}
	}
	return min, true
}

// runUntilIdle drains, moves the clock to the next due item, and again,
// until no work is left (or the clock would pass until).
func (e *env) runUntilIdle(until time.Time) {
	e.t.Helper()
	for {
		e.drain()
		due, ok := e.nextDue()
		if !ok || due.After(until) {
			return
		}
		if due.After(e.clock.Now()) {
			e.clock.Set(due)
		}
	}
}

// pending lists the pending outbox entries of a type.
func (e *env) pending(workType string) []eventstore.OutboxEntry {
	e.t.Helper()
	items, err := e.store.PendingOutbox(context.Background(), t0.Add(10*365*24*time.Hour), 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []eventstore.OutboxEntry
	for _, it := range items {
		if it.Type == workType {
			out = append(out, it)
		}
	}
	return out
}

func (e *env) stream(tenantID, stream string) []eventstore.Event {
	e.t.Helper()
	evs, err := e.store.ReadStream(context.Background(), tenantID, stream, 1, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// call runs a command or query through the rpc edge.
func (e *env) call(kind, name, token string, body any) (int, map[string]any, string) {
	e.t.Helper()
	var raw string
	switch b := body.(type) {
	case string:
		raw = b
	default:
		buf, _ := json.Marshal(b)
		raw = string(buf)
	}
	req := httptest.NewRequest(http.MethodPost, "/"+kind+"/"+name, strings.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out, w.Body.String()
}

// deliveries lists a subscription's deliveries through the edge (one page).
func (e *env) deliveries(tn tenant, subID string) []map[string]any {
	e.t.Helper()
	status, body, raw := e.call("queries", "list-deliveries", tn.Token, map[string]any{"subscriptionId": subID, "limit": 100})
	if status != 200 {
		e.t.Fatalf("list-deliveries: %d %s", status, raw)
	}
	var out []map[string]any
	for _, it := range body["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// request is one request a receiver got.
type request struct {
	Header    http.Header
	Body      []byte
	Path      string
	VerifyErr error // of the signature, ignoring the timestamp
}

// receiver is an httptest endpoint of a tenant app that verifies every
// request's signature with the subscription's secret.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	secret   string
	reqs     []request
	respond  func(n int) int // status of the n-th request (1-based); default 204
	strictTS bool            // verify the timestamp too (real clock)
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		rq := request{Header: req.Header.Clone(), Body: body, Path: req.URL.Path}
		if wh, err := standardwebhooks.NewWebhook(r.secret); err != nil {
			rq.VerifyErr = err
		} else if r.strictTS {
			rq.VerifyErr = wh.Verify(body, req.Header)
		} else {
			rq.VerifyErr = wh.VerifyIgnoringTimestamp(body, req.Header)
		}
		r.reqs = append(r.reqs, rq)
		n := len(r.reqs)
		respond := r.respond
		r.mu.Unlock()
		status := http.StatusNoContent
		if respond != nil {
			status = respond(n)
		}
		w.WriteHeader(status)
		if status >= 300 {
			_, _ = io.WriteString(w, http.StatusText(status)+"\nmore details")
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setSecret(s string) { r.mu.Lock(); r.secret = s; r.mu.Unlock() }

func (r *receiver) reset() { r.mu.Lock(); r.reqs = nil; r.mu.Unlock() }

// verify checks a request's signature with a secret, ignoring the timestamp.
func verify(secret string, rq request) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.VerifyIgnoringTimestamp(rq.Body, rq.Header)
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// fakeResolver answers names from a table; a name with several answers
// gives them in turn (the last one then on), for DNS rebinding.
type fakeResolver struct {
	mu    sync.Mutex
	names map[string][][]netip.Addr
	calls map[string]int
}

func newFakeResolver(names map[string][]string) *fakeResolver {
	f := &fakeResolver{names: map[string][][]netip.Addr{}, calls: map[string]int{}}
	for name, answers := range names {
		for _, a := range answers {
			var addrs []netip.Addr
			for _, s := range strings.Split(a, ",") {
				addrs = append(addrs, netip.MustParseAddr(s))
			}
			f.names[name] = append(f.names[name], addrs)
		}
	}
	return f
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	answers, ok := f.names[strings.ToLower(host)]
	if !ok {
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	n := f.calls[host]
	f.calls[host]++
	return answers[min(n, len(answers)-1)], nil
}
