package webhooks_test

import (
	"strings"
	"testing"
)

// Whatever a caller sends, the webhooks endpoints answer 2xx or 4xx, never a
// 5xx (go test runs the seeds; go test -fuzz explores).
func FuzzEndpointsNeverFail(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"scopeId":"SCOPE","url":"https://x.example/","eventTypes":["*"]}`,
		`{"scopeId":"SCOPE","url":"http://[fe80::1%25%30]/","eventTypes":["message.sent"]}`,
		`{"scopeId":"SCOPE","url":"http://[::ffff:7f00:1]:0/","eventTypes":["*","*"]}`,
		`{"scopeId":"SCOPE","url":"https://x.example:65536/","eventTypes":[""]}`,
		`{"scopeId":"SCOPE","url":"https://\u0000/","eventTypes":null}`,
		`{"scopeId":"SCOPE","url":"http://a..b/","eventTypes":["message.sent","message.queued","message.failed"]}`,
		`{"scopeId":"scp_01JQ0000000000000000000000","url":"https://x/","eventTypes":["*"]}`,
		`{"subscriptionId":"sub_01JQ0000000000000000000000","limit":100,"cursor":"AAAA"}`,
		`{"scopeId":"SCOPE","limit":1,"cursor":"` + strings.Repeat("_", 1000) + `"}`,
		`{"limit":1e400}`, `{"limit":-0}`, `[1,2]`, `"x"`, `{"url":{}}`,
	} {
		f.Add(s)
	}
	e := newEnv(f, options{allowPrivate: false, resolver: newFakeResolver(map[string][]string{"x.example": {"93.184.216.34"}})})
	tn := e.onboard("Acme")
	f.Fuzz(func(t *testing.T, body string) {
		e := e.on(t)
		body = strings.ReplaceAll(body, "SCOPE", tn.Root)
		for _, ep := range []struct{ kind, name string }{
			{"commands", "create-subscription"}, {"queries", "list-subscriptions"}, {"queries", "list-deliveries"},
		} {
			status, _, raw := e.call(ep.kind, ep.name, tn.Token, body)
			if status >= 500 {
				t.Fatalf("%s %s: %d %s", ep.name, body, status, raw)
			}
		}
	})
}
