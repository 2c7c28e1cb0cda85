package rpc_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// ---- Chain ----

func TestChainOrder(t *testing.T) {
	var got []string
	mw := func(name string) rpc.Middleware {
		return func(next rpc.Handler) rpc.Handler {
			return func(ctx context.Context, c *rpc.Call) (rpc.Result, error) {
				got = append(got, name+">")
				r, err := next(ctx, c)
				got = append(got, "<"+name)
				return r, err
			}
		}
	}
	h := rpc.Chain(func(context.Context, *rpc.Call) (rpc.Result, error) { got = append(got, "h"); return rpc.Result{}, nil }, mw("a"), mw("b"))
	_, _ = h(context.Background(), &rpc.Call{})
	if strings.Join(got, " ") != "a> b> h <b <a" {
		t.Fatalf("order %v", got)
	}
}

func TestRecoverMiddleware(t *testing.T) {
	h := rpc.Chain(func(context.Context, *rpc.Call) (rpc.Result, error) { panic("boom") }, rpc.Recover(slog.New(slog.DiscardHandler)))
	_, err := h(context.Background(), &rpc.Call{Endpoint: &rpc.Endpoint{Name: "x"}})
	if errs.KindOf(err) != errs.KindInternal || errs.As(err).Code != errs.CodeInternal {
		t.Fatalf("err = %v", err)
	}
}

// ---- Authenticate and CheckAccess ----

func TestAuthenticateMiddleware(t *testing.T) {
	var seen invocation.Principal
	h := rpc.Chain(func(ctx context.Context, _ *rpc.Call) (rpc.Result, error) {
		seen = invocation.From(ctx).Principal
		return rpc.Result{Status: 200}, nil
	}, rpc.Authenticate(testTokens, false), rpc.CheckAccess())
	ep := &rpc.Endpoint{Name: "x", Action: "t:x"}
	for _, c := range []struct {
		cred string
		kind errs.Kind
	}{{"", errs.KindUnauthenticated}, {"nope", errs.KindUnauthenticated}, {"operator", errs.KindForbidden}} {
		ctx := invocation.With(context.Background(), &invocation.Context{})
		if _, err := h(ctx, &rpc.Call{Endpoint: ep, Credential: c.cred}); errs.KindOf(err) != c.kind {
			t.Fatalf("credential %q: err = %v, want kind %v", c.cred, err, c.kind)
		}
	}
	ctx := invocation.With(context.Background(), &invocation.Context{})
	if _, err := h(ctx, &rpc.Call{Endpoint: ep, Credential: "admin"}); err != nil || seen.ID != testTokens["admin"].ID {
		t.Fatalf("admin: %v, principal %+v", err, seen)
	}
	// A principal already set (a batch item) is kept without a credential.
	if _, err := h(ctx, &rpc.Call{Endpoint: ep}); err != nil {
		t.Fatalf("batch item: %v", err)
	}
}

// ---- Authorize: decisions on the loaded resource, once, failing closed ----

type countingAuthorizer struct {
	mu    sync.Mutex
	calls []string
	deny  string // a resource id to deny
}

func (a *countingAuthorizer) Authorize(_ context.Context, p invocation.Principal, action string, res authz.Resource) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, action+" "+res.String())
	if res.ID == a.deny {
		return errs.New(errs.KindForbidden, errs.CodeForbidden)
	}
	return nil
}

type auditLog struct {
	mu      sync.Mutex
	entries []rpc.AuditEntry
}

func (a *auditLog) Audit(_ context.Context, e rpc.AuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
}

func (a *auditLog) last(t *testing.T) rpc.AuditEntry {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.entries) == 0 {
		t.Fatal("no audit entry")
	}
	return a.entries[len(a.entries)-1]
}

type authzFixture struct {
	*fixture
	authorizer *countingAuthorizer
	audit      *auditLog
	runs       int
}

func newAuthzFixture(t *testing.T) *authzFixture {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &authzFixture{authorizer: &countingAuthorizer{deny: "doc_denied"}, audit: &auditLog{}}
	srv := rpc.NewServer(rpc.Config{Auth: testTokens, Store: store, Authorizer: f.authorizer, Auditor: f.audit})
	gen := ids.NewULIDs()
	type in struct {
		DocID string `json:"docId" validate:"required"`
	}
	write := func(ctx context.Context, stream string) error {
		return eventstore.Write(ctx, store, &eventstore.Commit{TenantID: invocation.From(ctx).TenantID(), Appends: []eventstore.StreamAppend{{
			StreamID: stream, Events: []eventstore.Event{{ID: gen.New(ids.Event), Type: "test.x", SchemaVersion: 1, Data: json.RawMessage(`{}`)}}}}})
	}
	srv.Register(
		// edit-doc "loads" the document, then decides on it (and again, as a re-run would).
		rpc.Command("edit-doc", "docs:edit-doc", func(ctx context.Context, in in) (map[string]string, error) {
			f.runs++
			res := authz.Resource{Type: "doc", ID: in.DocID, ScopePath: []string{"scp_root"}}
			if err := authz.Require(ctx, res); err != nil {
				return nil, err
			}
			if err := authz.Require(ctx, res); err != nil {
				return nil, err
			}
			return map[string]string{"ok": "yes"}, write(ctx, "doc-"+in.DocID)
		}),
		// forgetful writes without deciding: it must fail closed and commit nothing.
		rpc.Command("forgetful", "docs:forgetful", func(ctx context.Context, in in) (map[string]string, error) {
			return map[string]string{"ok": "yes"}, write(ctx, "forgot-"+in.DocID)
		}),
	)
	f.fixture = &fixture{srv: srv, store: store}
	return f
}

func TestAuthorizationDecidesOnTheLoadedResourceOnce(t *testing.T) {
	f := newAuthzFixture(t)
	if r := f.do(t, "POST", "/commands/edit-doc", "admin", `{"docId":"doc_1"}`); r.status != 200 {
		t.Fatalf("allowed: %d %s", r.status, r.raw)
	}
	if got := strings.Join(f.authorizer.calls, "|"); got != "docs:edit-doc doc:doc_1" {
		t.Fatalf("authorizer calls %q, want one decision on the loaded resource", got)
	}
	e := f.audit.last(t)
	if e.Outcome != rpc.OutcomeAllowed || e.Principal != testTokens["admin"].String() || e.TenantID != tenantA ||
		e.Action != "docs:edit-doc" || len(e.Resources) != 1 || e.Resources[0] != "doc:doc_1" || e.Status != 200 || e.InvocationID == "" {
		t.Fatalf("audit entry %+v", e)
	}
	wantProblem(t, f.do(t, "POST", "/commands/edit-doc", "admin", `{"docId":"doc_denied"}`), 403, errs.CodeForbidden)
	if e := f.audit.last(t); e.Outcome != rpc.OutcomeDenied || e.Status != 403 {
		t.Fatalf("denied audit entry %+v", e)
	}
	if evs, _ := f.store.ReadStream(context.Background(), tenantA, "doc-doc_denied", 1, 0); len(evs) != 0 {
		t.Fatal("a denied call committed")
	}
}

func TestEndpointThatNeverDecidesFailsClosed(t *testing.T) {
	f := newAuthzFixture(t)
	wantProblem(t, f.do(t, "POST", "/commands/forgetful", "admin", `{"docId":"doc_1"}`), 403, errs.CodeForbidden)
	if evs, _ := f.store.ReadStream(context.Background(), tenantA, "forgot-doc_1", 1, 0); len(evs) != 0 {
		t.Fatal("an undecided call committed")
	}
	if e := f.audit.last(t); e.Outcome != rpc.OutcomeDenied {
		t.Fatalf("audit %+v", e)
	}
}

func TestAuditSeesUnauthenticatedAndFailedCalls(t *testing.T) {
	f := newAuthzFixture(t)
	f.do(t, "POST", "/commands/edit-doc", "", `{"docId":"doc_1"}`, "User-Agent", "probe/1")
	if e := f.audit.last(t); e.Outcome != rpc.OutcomeUnauthenticated || e.Status != 401 || e.Principal != "" || e.Source.UserAgent != "probe/1" || e.Source.IP == "" {
		t.Fatalf("unauthenticated audit %+v", e)
	}
	f.do(t, "POST", "/commands/edit-doc", "admin", `{}`)
	if e := f.audit.last(t); e.Outcome != rpc.OutcomeFailed || e.Status != 400 || e.Code != errs.CodeValidation {
		t.Fatalf("invalid input audit %+v", e)
	}
	// Batch items are audited one by one.
	before := len(f.audit.entries)
	f.do(t, "POST", "/commands", "admin", `{"commands":[{"name":"edit-doc","input":{"docId":"doc_2"}},{"name":"edit-doc","input":{"docId":"doc_denied"}}]}`)
	if n := len(f.audit.entries) - before; n != 2 {
		t.Fatalf("batch of 2 wrote %d audit entries", n)
	}
}

// Calls refused before the chain (an unknown name, the method, the body's
// size, a header) are audited as their caller's failed calls; without a
// valid credential, as unauthenticated calls, still answered with the
// refusal (404 before 401: command names are public).
func TestAuditSeesCallsRefusedBeforeTheChain(t *testing.T) {
	f := newAuthzFixture(t)
	admin := testTokens["admin"].String()
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, endpoint           string
		itemStatus               int // a batch's item: its status (404 unless set)
	}{
		{"unknown command", "POST", "/commands/nope", `{}`, nil, 404, errs.CodeUnknownCommand, "nope", 0},
		{"unknown query", "POST", "/queries/nope", `{}`, nil, 404, errs.CodeUnknownQuery, "nope", 0},
		{"method", "GET", "/commands/edit-doc", ``, nil, 405, errs.CodeMethodNotAllowed, "edit-doc", 0},
		{"too large", "POST", "/commands/edit-doc", `{"docId":"` + strings.Repeat("x", int(rpc.DefaultMaxBody)) + `"}`, nil, 413, errs.CodeTooLarge, "edit-doc", 0},
		{"action id", "POST", "/commands/edit-doc", `{"docId":"doc_1"}`, []string{"X-Action-Id", "nope"}, 400, "errors.header.invalid", "edit-doc", 0},
		{"idempotency key", "POST", "/commands/edit-doc", `{"docId":"doc_1"}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, errs.CodeIdempotencyKey, "edit-doc", 0},
		{"batch size", "POST", "/commands", `{"commands":[]}`, nil, 400, "errors.request.batch_size", "commands", 0},
		{"batch item unknown", "POST", "/commands", `{"commands":[{"name":"nope","input":{}}]}`, nil, 200, errs.CodeUnknownCommand, "nope", 0},
		{"batch item without a name", "POST", "/commands", `{"commands":[{"input":{"docId":"doc_1"}}]}`, nil, 200, errs.CodeValidation, "", 400},
		{"batch item with an empty name", "POST", "/commands", `{"commands":[{"name":"","input":{"docId":"doc_1"}}]}`, nil, 200, errs.CodeValidation, "", 400},
		{"batch item with an empty key", "POST", "/commands", `{"commands":[{"name":"edit-doc","input":{"docId":"doc_1"},"idempotencyKey":""}]}`, nil, 200, errs.CodeIdempotencyKey, "edit-doc", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(f.audit.entries)
			if r := f.do(t, c.method, c.path, "admin", c.body, c.hdr...); r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.raw)
			}
			if n := len(f.audit.entries) - before; n != 1 {
				t.Fatalf("%d audit entries, want 1", n)
			}
			e := f.audit.last(t)
			wantStatus := c.status
			if c.status == 200 { // a batch answers 200; its item was refused
				wantStatus = cmp.Or(c.itemStatus, 404)
			}
			if e.Outcome != rpc.OutcomeFailed || e.Code != c.code || e.Principal != admin || e.TenantID != tenantA ||
				e.Endpoint != c.endpoint || e.InvocationID == "" || e.Status != wantStatus {
				t.Fatalf("audit entry %+v", e)
			}
		})
	}
	for _, token := range []string{"", "nope"} {
		t.Run("credential "+token, func(t *testing.T) {
			wantProblem(t, f.do(t, "POST", "/commands/nope", token, `{}`), 404, errs.CodeUnknownCommand)
			if e := f.audit.last(t); e.Outcome != rpc.OutcomeUnauthenticated || e.Endpoint != "nope" || e.Status != 404 ||
				e.Code != errs.CodeUnknownCommand || e.Principal != "" {
				t.Fatalf("audit entry %+v", e)
			}
		})
	}
	t.Run("a long unknown name is recorded cut", func(t *testing.T) {
		f.do(t, "POST", "/commands/"+strings.Repeat("n", 5000), "admin", `{}`)
		if e := f.audit.last(t); len(e.Endpoint) != rpc.MaxRecordedName {
			t.Fatalf("recorded name of %d bytes", len(e.Endpoint))
		}
	})
}

// ---- Idempotency: sealed at rest, replays a concurrent twin ----

// xorSealer is a stand-in for the encryption port that keeps its input out of
// the stored bytes and checks tenant and purpose.
type xorSealer struct{}

func (xorSealer) Seal(_ context.Context, tenant, purpose string, p []byte) ([]byte, error) {
	out := append([]byte(tenant+"|"+purpose+"|"), p...)
	for i := range out {
		out[i] ^= 0x5a
	}
	return out, nil
}

func (xorSealer) Open(_ context.Context, tenant, purpose string, s []byte) ([]byte, error) {
	out := bytes.Clone(s)
	for i := range out {
		out[i] ^= 0x5a
	}
	prefix := []byte(tenant + "|" + purpose + "|")
	if !bytes.HasPrefix(out, prefix) {
		return nil, errors.New("wrong tenant or purpose")
	}
	return out[len(prefix):], nil
}

type uniqueFixture struct {
	*fixture
	runs sync.Map
}

// newUniqueFixture registers create-thing, whose handler has a precondition
// (the name is free) like create-scope: a twin that runs after the first
// committed fails it, and must replay instead.
func newUniqueFixture(t *testing.T, sealer secrets.Sealer) *uniqueFixture {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := rpc.NewServer(rpc.Config{Auth: testTokens, Store: store, Sealer: sealer, Clock: clock.System{}})
	gen := ids.NewULIDs()
	type in struct {
		Name string `json:"name" validate:"required"`
	}
	srv.Register(rpc.Command("create-thing", "things:create-thing", func(ctx context.Context, in in) (map[string]string, error) {
		tenant := invocation.From(ctx).TenantID()
		if err := authz.Require(ctx, authz.Tenant(tenant, rootScope)); err != nil {
			return nil, err
		}
		if _, err := store.GetRecord(ctx, tenant, "thing-names", in.Name); err == nil {
			return nil, errs.Conflict("errors.things.name_taken")
		}
		id := gen.New("thg")
		return map[string]string{"thingId": id, "secret": "sk_live_" + id}, eventstore.Write(ctx, store, &eventstore.Commit{TenantID: tenant,
			Records: []eventstore.Record{{Collection: "thing-names", Key: in.Name, IfAbsent: true, Data: json.RawMessage(`{}`)}}})
	}))
	return &uniqueFixture{fixture: &fixture{srv: srv, store: store}}
}

func TestConcurrentDuplicatesWithAPreconditionAllReplay(t *testing.T) {
	f := newUniqueFixture(t, xorSealer{})
	const n = 20
	out := make([]resp, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = f.do(t, "POST", "/commands/create-thing", "admin", `{"name":"same"}`, "Idempotency-Key", "twins")
		}()
	}
	wg.Wait()
	for i := range out {
		if out[i].status != 200 || out[i].raw != out[0].raw {
			t.Fatalf("answer %d: %d %s, want the first 200 %s", i, out[i].status, out[i].raw, out[0].raw)
		}
	}
	// Another key with the same name hits the precondition for real.
	wantProblem(t, f.do(t, "POST", "/commands/create-thing", "admin", `{"name":"same"}`, "Idempotency-Key", "other"), 409, "errors.things.name_taken")
}

func TestIdempotencyRecordIsSealed(t *testing.T) {
	f := newUniqueFixture(t, xorSealer{})
	first := f.do(t, "POST", "/commands/create-thing", "admin", `{"name":"a"}`, "Idempotency-Key", "k")
	secret, _ := first.body["secret"].(string)
	if first.status != 200 || secret == "" {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	rec, err := f.store.GetIdempotency(context.Background(), tenantA, testTokens["admin"].String()+":k")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec.Body, []byte(secret)) || rec.Fingerprint != "" || rec.Status != 200 {
		t.Fatalf("stored record keeps the response or its fingerprint in clear: %+v", rec)
	}
	again := f.do(t, "POST", "/commands/create-thing", "admin", `{"name":"a"}`, "Idempotency-Key", "k")
	if again.raw != first.raw || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay %s, want %s", again.raw, first.raw)
	}
	wantProblem(t, f.do(t, "POST", "/commands/create-thing", "admin", `{"name":"b"}`, "Idempotency-Key", "k"), 422, errs.CodeIdempotencyReused)
}

// ---- UnitOfWork: commit failures map to the error vocabulary ----

type failingStore struct{ err error }

func (s failingStore) Commit(context.Context, *eventstore.Commit) error { return s.err }
func (failingStore) GetIdempotency(context.Context, string, string) (eventstore.Idempotency, error) {
	return eventstore.Idempotency{}, eventstore.ErrNotFound
}

func TestUnitOfWorkMapsCommitErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("x: %w", eventstore.ErrTooLarge), 413},
		{fmt.Errorf("x: %w", eventstore.ErrInvalid), 500},
		{fmt.Errorf("x: %w", eventstore.ErrConflict), 409},
		{errors.New("connection reset"), 503},
	} {
		h := rpc.Chain(func(ctx context.Context, _ *rpc.Call) (rpc.Result, error) {
			return rpc.Result{Status: 200}, eventstore.Write(ctx, nil, &eventstore.Commit{TenantID: tenantA, Records: []eventstore.Record{{Collection: "c", Key: "k"}}})
		}, rpc.UnitOfWork(&uow.Runner{Store: failingStore{c.err}}))
		ctx := invocation.With(context.Background(), &invocation.Context{Principal: testTokens["admin"]})
		_, err := h(ctx, &rpc.Call{Endpoint: &rpc.Endpoint{Kind: rpc.KindCommand, Name: "x"}})
		if got := errs.As(err); got == nil || statusOf(got.Kind) != c.status {
			t.Fatalf("commit error %v: got %v, want status %d", c.err, err, c.status)
		}
	}
}

func statusOf(k errs.Kind) int {
	return map[errs.Kind]int{errs.KindTooLarge: 413, errs.KindInternal: 500, errs.KindConflict: 409, errs.KindUnavailable: 503}[k]
}

// ---- Header checks only where the headers mean something ----

func TestHeaderChecksOnlyOnTheirRoutes(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("k", 300)
	if r := f.do(t, "GET", "/healthz", "", "", "Idempotency-Key", long, "X-Action-Id", "nope"); r.status != 200 {
		t.Fatalf("healthz with odd headers: %d", r.status)
	}
	if r := f.do(t, "POST", "/queries/count-notes", "admin", `{}`, "Idempotency-Key", long); r.status != 200 {
		t.Fatalf("query with a long Idempotency-Key: %d %s", r.status, r.raw)
	}
	if r := f.do(t, "POST", "/commands", "admin", `{"commands":[{"name":"create-note","input":{"title":"a"}}]}`, "Idempotency-Key", long); r.status != 200 {
		t.Fatalf("batch with a long Idempotency-Key header: %d %s", r.status, r.raw)
	}
	wantProblem(t, f.do(t, "POST", "/commands/create-note", "admin", `{"title":"a"}`, "Idempotency-Key", long), http.StatusBadRequest, errs.CodeIdempotencyKey)
}

func TestAPanicIsAudited(t *testing.T) {
	log := &auditLog{}
	h := rpc.Chain(func(context.Context, *rpc.Call) (rpc.Result, error) { panic("boom") },
		rpc.Audit(log, clock.System{}), rpc.Recover(slog.New(slog.DiscardHandler)))
	ctx := invocation.With(context.Background(), &invocation.Context{InvocationID: "inv_1"})
	if _, err := h(ctx, &rpc.Call{Endpoint: &rpc.Endpoint{Name: "x", Action: "t:x"}}); errs.KindOf(err) != errs.KindInternal {
		t.Fatalf("err = %v", err)
	}
	if e := log.last(t); e.Outcome != rpc.OutcomeFailed || e.Status != 500 || e.Code != errs.CodeInternal {
		t.Fatalf("audit %+v", e)
	}
}
