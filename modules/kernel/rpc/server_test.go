package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// tokens is a test authenticator: bearer token -> principal.
type tokens map[string]invocation.Principal

func (t tokens) Authenticate(_ context.Context, cred string) (invocation.Principal, error) {
	if p, ok := t[cred]; ok {
		return p, nil
	}
	return invocation.Principal{}, auth.ErrUnauthenticated
}

const (
	tenantA   = "tnt_01JD00000000000000000000AA"
	rootScope = "scp_01JD00000000000000000000RT" // tenantA's root scope, where the test principals' roles are bound
)

var testTokens = tokens{
	"admin":    {Kind: invocation.KindServiceAccount, ID: "sva_01JD00000000000000000000AD", TenantID: tenantA, Roles: []invocation.RoleBinding{{Role: "admin", ScopeID: "scp_01JD00000000000000000000RT"}}},
	"viewer":   {Kind: invocation.KindServiceAccount, ID: "sva_01JD00000000000000000000VW", TenantID: tenantA, Roles: []invocation.RoleBinding{{Role: "viewer", ScopeID: "scp_01JD00000000000000000000RT"}}},
	"operator": {Kind: invocation.KindOperator, ID: "operator"},
}

type noteIn struct {
	Title string            `json:"title" validate:"required,min=1,max=20"`
	Tags  []string          `json:"tags" validate:"max=3"`
	Meta  map[string]string `json:"meta"`
	Panic bool              `json:"panic"`
}

type noteOut struct {
	NoteID  string `json:"noteId"`
	Version int64  `json:"version"`
}

// notes is a tiny module: every create-note appends to one shared stream
// "notes" at the version it read, so concurrent calls conflict and retry.
type notes struct {
	store eventstore.Store
	ids   ids.Generator
}

func (n *notes) create(ctx context.Context, in noteIn) (noteOut, error) {
	if in.Panic {
		panic("boom")
	}
	tenant := invocation.From(ctx).TenantID()
	if err := authz.Require(ctx, authz.Tenant(tenant, rootScope)); err != nil {
		return noteOut{}, err
	}
	evs, err := n.store.ReadStream(ctx, tenant, "notes", 1, 0)
	if err != nil {
		return noteOut{}, err
	}
	v := int64(len(evs))
	data, _ := json.Marshal(in)
	id := n.ids.New("note")
	err = eventstore.Write(ctx, n.store, &eventstore.Commit{TenantID: tenant, Appends: []eventstore.StreamAppend{{
		StreamID: "notes", ExpectedVersion: v,
		Events: []eventstore.Event{{ID: n.ids.New(ids.Event), Type: "test.note-created", SchemaVersion: 1, Invocation: invocation.From(ctx).Meta(), Data: data}},
	}}})
	return noteOut{NoteID: id, Version: v + 1}, err
}

func (n *notes) count(ctx context.Context, _ struct{}) (map[string]int, error) {
	if err := authz.Require(ctx, authz.Tenant(invocation.From(ctx).TenantID(), rootScope)); err != nil {
		return nil, err
	}
	evs, err := n.store.ReadStream(ctx, invocation.From(ctx).TenantID(), "notes", 1, 0)
	return map[string]int{"count": len(evs)}, err
}

func (n *notes) onboard(ctx context.Context, in struct {
	Name string `json:"name" validate:"required"`
}) (map[string]string, error) {
	tenant := n.ids.New(ids.Tenant)
	err := eventstore.Write(ctx, n.store, &eventstore.Commit{TenantID: tenant, Appends: []eventstore.StreamAppend{{
		StreamID: "tenant", Events: []eventstore.Event{{ID: n.ids.New(ids.Event), Type: "test.onboarded", SchemaVersion: 1, Data: json.RawMessage(`{}`)}},
	}}})
	return map[string]string{"tenantId": tenant}, err
}

func (n *notes) missing(context.Context, struct{}) (struct{}, error) {
	return struct{}{}, errs.NotFound("note")
}

type fixture struct {
	srv   *rpc.Server
	store *boltstore.Store
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := rpc.NewServer(rpc.Config{Auth: testTokens, Store: store})
	n := &notes{store: store, ids: ids.NewULIDs()}
	srv.Register(
		rpc.Command("create-note", "notes:create-note", n.create, rpc.WithStatus(http.StatusAccepted)),
		rpc.Query("count-notes", "notes:count-notes", n.count),
		rpc.Query("get-note", "notes:get-note", n.missing),
		rpc.Command("onboard", "notes:onboard", n.onboard, rpc.OperatorOnly()),
	)
	return &fixture{srv: srv, store: store}
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(t testing.TB, method, path, token, body string, hdr ...string) resp {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	r := resp{status: w.Code, header: w.Header(), raw: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &r.body)
	return r
}

func wantProblem(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status || r.body["code"] != code {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q", ct)
	}
	if r.body["invocationId"] != r.header.Get("X-Invocation-Id") || r.body["title"] == "" || r.body["detail"] == "" {
		t.Fatalf("problem lacks invocationId/title/detail: %s", r.raw)
	}
}

func TestHealthzAndCorrelationHeaders(t *testing.T) {
	f := newFixture(t)
	r := f.do(t, "GET", "/healthz", "", "")
	if r.status != 200 || r.body["status"] != "ok" {
		t.Fatalf("healthz: %d %s", r.status, r.raw)
	}
	if !ids.Valid(ids.Invocation, r.header.Get("X-Invocation-Id")) || len(r.header.Get("X-Trace-Id")) != 32 {
		t.Fatalf("correlation headers: %v", r.header)
	}
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r = f.do(t, "GET", "/healthz", "", "", "traceparent", tp)
	if r.header.Get("X-Trace-Id") != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trace id not taken from traceparent: %q", r.header.Get("X-Trace-Id"))
	}
}

func TestRejections(t *testing.T) {
	f := newFixture(t)
	big := `{"title":"` + strings.Repeat("x", 300<<10) + `"}`
	cases := []struct {
		name, path, token, body string
		hdr                     []string
		status                  int
		code                    string
	}{
		{"unknown command", "/commands/nope", "admin", `{}`, nil, 404, errs.CodeUnknownCommand},
		{"unknown query", "/queries/nope", "admin", `{}`, nil, 404, errs.CodeUnknownQuery},
		{"unknown route", "/nope", "admin", ``, nil, 404, errs.CodeRouteNotFound},
		{"no credential", "/commands/create-note", "", `{"title":"a"}`, nil, 401, errs.CodeUnauthenticated},
		{"bad credential", "/commands/create-note", "nope", `{"title":"a"}`, nil, 401, errs.CodeUnauthenticated},
		{"operator on tenant command", "/commands/create-note", "operator", `{"title":"a"}`, nil, 403, errs.CodeForbidden},
		{"tenant on operator command", "/commands/onboard", "admin", `{"name":"a"}`, nil, 403, errs.CodeForbidden},
		{"viewer may not command", "/commands/create-note", "viewer", `{"title":"a"}`, nil, 403, errs.CodeForbidden},
		{"malformed json", "/commands/create-note", "admin", `{"title":`, nil, 400, errs.CodeMalformedJSON},
		{"not an object", "/commands/create-note", "admin", `["a"]`, nil, 400, errs.CodeMalformedJSON},
		{"trailing data", "/commands/create-note", "admin", `{"title":"a"} {}`, nil, 400, errs.CodeMalformedJSON},
		{"unknown field", "/commands/create-note", "admin", `{"title":"a","color":1}`, nil, 400, errs.CodeUnknownField},
		{"wrong type", "/commands/create-note", "admin", `{"title":5}`, nil, 400, errs.CodeValidation},
		{"too large", "/commands/create-note", "admin", big, nil, 413, errs.CodeTooLarge},
		{"bad action id", "/commands/create-note", "admin", `{"title":"a"}`, []string{"X-Action-Id", "nope"}, 400, "errors.header.invalid"},
		{"bad idempotency key", "/commands/create-note", "admin", `{"title":"a"}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, errs.CodeIdempotencyKey},
		{"not found from handler", "/queries/get-note", "admin", `{}`, nil, 404, errs.CodeNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, f.do(t, "POST", c.path, c.token, c.body, c.hdr...), c.status, c.code)
		})
	}
	t.Run("unsupported media type", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/commands/create-note", strings.NewReader(`title=a`))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer admin")
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, req)
		if w.Code != 415 {
			t.Fatalf("got %d %s", w.Code, w.Body)
		}
	})
	t.Run("method not allowed", func(t *testing.T) {
		r := f.do(t, "GET", "/commands/create-note", "admin", "")
		if r.status != 405 || r.header.Get("Allow") != "POST" {
			t.Fatalf("got %d %v", r.status, r.header)
		}
	})
	t.Run("method not allowed on a mounted route", func(t *testing.T) {
		f.srv.Handle("POST /hooks/{id}", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
		if r := f.do(t, "POST", "/hooks/a", "", ""); r.status != 204 {
			t.Fatalf("POST: %d %s", r.status, r.raw)
		}
		r := f.do(t, "GET", "/hooks/a", "", "")
		wantProblem(t, r, 405, errs.CodeMethodNotAllowed)
		if r.header.Get("Allow") != "POST" {
			t.Fatalf("Allow %q", r.header.Get("Allow"))
		}
		r = f.do(t, "POST", "/healthz", "", "")
		wantProblem(t, r, 405, errs.CodeMethodNotAllowed)
		if r.header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("Allow %q", r.header.Get("Allow"))
		}
		wantProblem(t, f.do(t, "GET", "/hooks/a/b", "", ""), 404, errs.CodeRouteNotFound)
		f.srv.Handle("PUT /hooks/{id}", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
		if r := f.do(t, "DELETE", "/hooks/a", "", ""); r.status != 405 || r.header.Get("Allow") != "POST, PUT" {
			t.Fatalf("DELETE: %d, Allow %q", r.status, r.header.Get("Allow"))
		}
	})
}

func TestValidationErrorsAreListedAndLocalized(t *testing.T) {
	f := newFixture(t)
	r := f.do(t, "POST", "/commands/create-note", "admin", ``, "Accept-Language", "de-CH, en;q=0.5")
	wantProblem(t, r, 400, errs.CodeValidation)
	if r.body["title"] != "Ungültige Anfrage" {
		t.Fatalf("not German: %s", r.raw)
	}
	list, _ := r.body["errors"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["field"] != "title" || list[0].(map[string]any)["code"] != "errors.validation.required" {
		t.Fatalf("errors: %s", r.raw)
	}
	r = f.do(t, "POST", "/commands/create-note", "admin", `{"title":"`+strings.Repeat("x", 21)+`","tags":["a","b","c","d"]}`)
	list, _ = r.body["errors"].([]any)
	if len(list) != 2 || r.body["title"] != "Invalid request" {
		t.Fatalf("want two field errors in English: %s", r.raw)
	}
}

func TestCommandCommitsWithInvocationMeta(t *testing.T) {
	f := newFixture(t)
	// A ULID in lower case is the same id, stored in its canonical upper
	// case (the event schemas' pattern; review finding).
	r := f.do(t, "POST", "/commands/create-note", "admin", `{"title":"a"}`, "X-Action-Id", "01jd0000000000000000000000")
	if r.status != 202 || r.body["version"] != 1.0 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	evs, err := f.store.ReadStream(context.Background(), tenantA, "notes", 1, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events: %v %v", evs, err)
	}
	m := evs[0].Invocation
	if m.InvocationID != r.header.Get("X-Invocation-Id") || m.TraceID != r.header.Get("X-Trace-Id") ||
		m.ActionID != "01JD0000000000000000000000" || m.Principal != "service_account:sva_01JD00000000000000000000AD" {
		t.Fatalf("invocation meta %+v vs headers %v", m, r.header)
	}
}

func TestIdempotency(t *testing.T) {
	f := newFixture(t)
	first := f.do(t, "POST", "/commands/create-note", "admin", `{"title":"a","tags":["x"]}`, "Idempotency-Key", "k1")
	// Same object, other key order and spacing: the same body.
	again := f.do(t, "POST", "/commands/create-note", "admin", `{ "tags": ["x"], "title": "a" }`, "Idempotency-Key", "k1")
	if first.status != 202 || again.status != 202 || first.raw != again.raw || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s / %d %s %v", first.status, first.raw, again.status, again.raw, again.header)
	}
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("first response marked replayed")
	}
	wantProblem(t, f.do(t, "POST", "/commands/create-note", "admin", `{"title":"b"}`, "Idempotency-Key", "k1"), 422, errs.CodeIdempotencyReused)
	// Another principal may use the same key independently.
	if r := f.do(t, "POST", "/commands/onboard", "operator", `{"name":"x"}`, "Idempotency-Key", "k1"); r.status != 200 {
		t.Fatalf("operator with same key: %d %s", r.status, r.raw)
	}
	if r := f.do(t, "POST", "/queries/count-notes", "admin", `{}`); r.body["count"] != 1.0 {
		t.Fatalf("side effects: %s", r.raw)
	}
	// The operator's replay finds its record although its commit wrote a new tenant.
	op1 := f.do(t, "POST", "/commands/onboard", "operator", `{"name":"y"}`, "Idempotency-Key", "k2")
	op2 := f.do(t, "POST", "/commands/onboard", "operator", `{"name":"y"}`, "Idempotency-Key", "k2")
	if op1.raw != op2.raw || op2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("operator replay: %s / %s", op1.raw, op2.raw)
	}
}

func TestConcurrentDuplicatesExecuteOnce(t *testing.T) {
	f := newFixture(t)
	const n = 8
	var wg sync.WaitGroup
	out := make([]resp, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out[i] = f.do(t, "POST", "/commands/create-note", "admin", `{"title":"same"}`, "Idempotency-Key", "concurrent")
		}(i)
	}
	wg.Wait()
	for i := range out {
		if out[i].status != 202 || out[i].raw != out[0].raw {
			t.Fatalf("response %d differs: %d %s vs %s", i, out[i].status, out[i].raw, out[0].raw)
		}
	}
	if r := f.do(t, "POST", "/queries/count-notes", "admin", `{}`); r.body["count"] != 1.0 {
		t.Fatalf("executed more than once: %s", r.raw)
	}
}

func TestConcurrencyConflictsAreRetried(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i] = f.do(t, "POST", "/commands/create-note", "admin", `{"title":"c"}`).status
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		if c == 202 {
			ok++
		} else if c != 409 {
			t.Fatalf("status %d", c)
		}
	}
	r := f.do(t, "POST", "/queries/count-notes", "admin", `{}`)
	if r.body["count"] != float64(ok) || ok == 0 {
		t.Fatalf("%d accepted, %s stored", ok, r.raw)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	f := newFixture(t)
	wantProblem(t, f.do(t, "POST", "/commands/create-note", "admin", `{"title":"a","panic":true}`), 500, errs.CodeInternal)
	if r := f.do(t, "POST", "/commands/create-note", "admin", `{"title":"a"}`); r.status != 202 {
		t.Fatalf("server broken after panic: %d", r.status)
	}
}

func TestBatch(t *testing.T) {
	f := newFixture(t)
	body := `{"commands":[
		{"name":"create-note","input":{"title":"a"},"idempotencyKey":"b1"},
		{"name":"create-note","input":{"title":"a"},"idempotencyKey":"b1"},
		{"name":"create-note","input":{}},
		{"name":"nope","input":{}},
		{"name":"onboard","input":{"name":"x"}},
		{"name":"create-note","input":{"title":"p","panic":true}},
		{"name":"create-note","input":null}
	]}`
	r := f.do(t, "POST", "/commands", "admin", body)
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	var got struct {
		Results []struct {
			Status int             `json:"status"`
			Body   json.RawMessage `json:"body"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.raw), &got); err != nil {
		t.Fatal(err)
	}
	want := []int{202, 202, 400, 404, 403, 500, 400}
	if len(got.Results) != len(want) {
		t.Fatalf("results: %s", r.raw)
	}
	for i, w := range want {
		if got.Results[i].Status != w {
			t.Fatalf("item %d: want %d, got %d %s", i, w, got.Results[i].Status, got.Results[i].Body)
		}
	}
	if !bytes.Equal(got.Results[0].Body, got.Results[1].Body) {
		t.Fatal("idempotent batch items differ")
	}
	wantProblem(t, f.do(t, "POST", "/commands", "admin", `{"commands":[]}`), 400, "errors.request.batch_size")
	// The bearer scheme is case-insensitive.
	if r := f.do(t, "POST", "/queries/count-notes", "", `{}`, "Authorization", "bearer admin"); r.status != 200 {
		t.Fatalf("lowercase bearer: %d %s", r.status, r.raw)
	}
	wantProblem(t, f.do(t, "POST", "/commands", "", `{"commands":[{"name":"create-note"}]}`), 401, errs.CodeUnauthenticated)
}
