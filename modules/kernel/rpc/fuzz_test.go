package rpc_test

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzBadInputNever5xx: whatever the body, content type, idempotency key or
// action id, the edge answers below 500 (bad input is a 4xx problem, never a
// 5xx or a panic). `make test` runs the seeds; `go test -fuzz FuzzBadInputNever5xx
// ./modules/kernel/rpc` explores.
func FuzzBadInputNever5xx(f *testing.F) {
	seeds := []struct{ body, ctype, key, action string }{
		{`{"title":"a"}`, "application/json", "", ""},
		{``, "", "", ""},
		{`null`, "application/json", "k", ""},
		{`{"title":"a","tags":[1,2]}`, "application/json; charset=utf-8", "", ""},
		{`{"title":"\ud800"}`, "application/json", "", ""},
		{"{\"title\":\"\xff\"}", "application/json", "", ""},
		{`{"meta":{"a":{"b":[]}}}`, "application/json", "", "01JD0000000000000000000000"},
		{strings.Repeat("[", 20000), "application/json", "", ""},
		{`{"title":"a"}`, "text/plain", "", ""},
		{`{"title":"a"}`, "application/json; charset=latin1", "", ""},
		{`{"title":1e999}`, "application/json", "\x00", "nope"},
		{`{"title":"a"}{"title":"b"}`, "application/json", strings.Repeat("k", 300), ""},
	}
	for _, s := range seeds {
		f.Add(s.body, s.ctype, s.key, s.action)
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body, ctype, key, action string) {
		for _, path := range []string{"/commands/create-note", "/queries/count-notes", "/commands"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer admin")
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			if key != "" {
				req.Header["Idempotency-Key"] = []string{key}
			}
			if action != "" {
				req.Header["X-Action-Id"] = []string{action}
			}
			w := httptest.NewRecorder()
			fx.srv.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s %q (type %q, key %q, action %q): %d %s", path, body, ctype, key, action, w.Code, w.Body)
			}
		}
	})
}
