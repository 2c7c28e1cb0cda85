package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
)

// Hostile inputs against every messaging and webhooks command and query and
// the provider webhook route, through the production wiring: wrong JSON types
// for every field, nulls, huge strings, deep nesting, invalid UTF-8, NUL
// bytes, unicode trickery, numbers as strings, bad limits, forged cursors,
// ids of the wrong prefix or case or of another tenant, injection-looking
// strings, extra and duplicate fields, bodies that are not objects, content
// type, method, header and credential games. The invariants: never a 5xx,
// every 4xx is problem+json with its status and a code, no panic is logged,
// an answer to tenant A never names a resource of tenant B, and B's ids
// answer A with 404. The corpus runs on the embedded store; a reduced set on
// DynamoDB; FuzzMessagingCommands is seeded from it (its seeds run in every
// `go test`).

// ---- fixture: two tenants with real resources ----

type hostileFixture struct {
	h       http.Handler
	logs    *rslLogs
	keyA    string
	keyB    string
	opKey   string
	vars    map[string]string // placeholder name -> value
	bIDs    map[string]bool   // every id of tenant B
	secretA string            // inbound secret of A's hook channel (sandbox)
	secretB string
}

const hostileOperatorKey = "sbo_hostile"

// hostileApp builds the production wiring on store with a log recorder.
func hostileApp(tb testing.TB, store string) (*App, *rslLogs) {
	tb.Helper()
	env := map[string]string{"SWITCHBOARD_STORE": store, "SWITCHBOARD_DATA_DIR": tb.TempDir(),
		"SWITCHBOARD_OPERATOR_KEY": hostileOperatorKey, "SWITCHBOARD_PUBLIC_URL": "https://sb.example.com"}
	if store == "dynamodb" {
		e, err := dynamotest.Endpoint()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Setenv("AWS_ENDPOINT_URL_DYNAMODB", e)
		tb.Setenv("AWS_ACCESS_KEY_ID", dynamotest.AccessKey)
		tb.Setenv("AWS_SECRET_ACCESS_KEY", dynamotest.SecretKey)
		tb.Setenv("AWS_REGION", dynamotest.Region)
		env["SWITCHBOARD_TABLE"] = uniqueTable()
	}
	cfg, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		tb.Fatal(err)
	}
	logs := newRslLogs()
	app, err := Build(context.Background(), cfg, Deps{Logger: slog.New(logs)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { app.Close() })
	return app, logs
}

func newHostileFixture(tb testing.TB, store string) *hostileFixture {
	tb.Helper()
	app, logs := hostileApp(tb, store)
	f := &hostileFixture{h: app.Server, logs: logs, opKey: hostileOperatorKey, vars: map[string]string{}, bIDs: map[string]bool{}}
	c := &client{t: tb, h: app.Server}
	type tenantRes struct{ key, secret string }
	setup := func(sfx string) tenantRes {
		on := c.must(200, "/commands/onboard-tenant", hostileOperatorKey, `{"name":"Hostile `+sfx+`","tier":"pooled"}`)
		key, root := str(on.Body["apiKey"]), str(on.Body["rootScopeId"])
		eu := str(c.must(200, "/commands/create-scope", key, `{"parentScopeId":"`+root+`","name":"eu"}`).Body["scopeId"])
		ch := c.must(200, "/commands/create-channel", key, `{"scopeId":"`+eu+`","name":"hook","type":"sms","provider":"sandbox","from":"+15550001111"}`)
		chn := str(ch.Body["channelId"])
		chn2 := str(c.must(200, "/commands/create-channel", key, `{"scopeId":"`+eu+`","name":"mail","type":"email","provider":"sandbox","from":"noreply@example.com"}`).Body["channelId"])
		var msgs []string
		for i := range 3 {
			msgs = append(msgs, str(c.must(202, "/commands/send-message", key, `{"channelId":"`+chn+`","to":"+1555123000`+strconv.Itoa(5+i)+`","content":{"text":"x"}}`).Body["messageId"]))
		}
		var subs []string
		for range 2 {
			subs = append(subs, str(c.must(200, "/commands/create-subscription", key, `{"scopeId":"`+root+`","url":"http://127.0.0.1:9/hook","eventTypes":["*"]}`).Body["subscriptionId"]))
		}
		cursor := func(path, body string) string {
			var cur string
			eventually(tb, 10*time.Second, "a cursor of "+path, func() bool {
				cur = str(c.must(200, path, key, body).Body["nextCursor"])
				return cur != ""
			})
			return cur
		}
		f.vars["tnt"+sfx] = str(on.Body["tenantId"])
		f.vars["scp"+sfx] = root
		f.vars["eu"+sfx] = eu
		f.vars["chn"+sfx] = chn
		f.vars["chnMail"+sfx] = chn2
		f.vars["msg"+sfx] = msgs[0]
		f.vars["sub"+sfx] = subs[0]
		f.vars["sva"+sfx] = str(on.Body["serviceAccountId"])
		f.vars["cur"+sfx] = cursor("/queries/list-messages", `{"limit":1}`)
		f.vars["curChn"+sfx] = cursor("/queries/list-channels", `{"limit":1}`)
		f.vars["curSub"+sfx] = cursor("/queries/list-subscriptions", `{"limit":1}`)
		f.vars["curFilter"+sfx] = cursor("/queries/list-messages", `{"channelId":"`+chn+`","limit":1}`)
		if sfx == "B" {
			for _, id := range append(append([]string{f.vars["tntB"], root, eu, chn, chn2, f.vars["svaB"]}, msgs...), subs...) {
				f.bIDs[id] = true
			}
		}
		return tenantRes{key, str(ch.Body["inboundSecret"])}
	}
	a, b := setup("A"), setup("B")
	f.keyA, f.secretA, f.keyB, f.secretB = a.key, a.secret, b.key, b.secret
	return f
}

var placeholder = regexp.MustCompile(`\{\{(?:(\w+):)?(\w+)\}\}`)

// expand replaces {{name}} and {{modifier:name}} by the fixture's values,
// then {{fill}} by the spaces that make the body exactly 256 KiB (the
// limit), {{fill+1}} by one more.
func (f *hostileFixture) expand(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	s = placeholder.ReplaceAllStringFunc(s, f.value)
	for _, fill := range []struct {
		mark  string
		extra int
	}{{"{{fill}}", 0}, {"{{fill+1}}", 1}} {
		if strings.Count(s, fill.mark) == 1 {
			n := 256<<10 - (len(s) - len(fill.mark)) + fill.extra
			s = strings.Replace(s, fill.mark, strings.Repeat(" ", max(n, 0)), 1)
		}
	}
	return s
}

// value is the value of one placeholder.
func (f *hostileFixture) value(m string) string {
	sub := placeholder.FindStringSubmatch(m)
	v, ok := f.vars[sub[2]]
	if !ok {
		return m
	}
	switch sub[1] {
	case "":
		return v
	case "lower":
		return strings.ToLower(v)
	case "upper":
		return strings.ToUpper(v)
	case "trunc":
		return v[:len(v)-1]
	case "pad":
		return " " + v + " "
	case "zw": // a zero-width space after the prefix
		i := strings.IndexByte(v, '_') + 1
		return v[:i] + "\u200b" + v[i:]
	case "rtl": // a right-to-left override in front
		return "\u202e" + v
	case "cyr": // a Cyrillic homoglyph for the first letter
		return "\u0441" + v[1:]
	case "nul":
		return v + `\u0000`
	case "b64": // the value base64url-encoded (a cursor made of an id)
		return base64.RawURLEncoding.EncodeToString([]byte(v))
	}
	return m
}

// ---- the corpus ----

// hostileTarget is one route of the corpus, with a valid body as a tree of
// fields (each field a mutation site).
type hostileTarget struct {
	name string // the command or query; "webhook" for the provider webhook route
	path string
	base []jfield
}

// jfield is a JSON object member: raw JSON, or an object of kids.
type jfield struct {
	k    string
	raw  string
	kids []jfield
}

func jobj(fs ...jfield) jfield { return jfield{kids: fs} }

// render renders an object, its member at path replaced by raw ("" keeps it;
// a path ending in "+" adds a member).
func render(fs []jfield, path, raw string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(f.k))
		b.WriteByte(':')
		switch {
		case path == f.k:
			b.WriteString(raw)
		case f.kids != nil:
			sub := ""
			if p, ok := strings.CutPrefix(path, f.k+"."); ok {
				sub = p
			}
			b.WriteString(render(f.kids, sub, raw))
		default:
			b.WriteString(f.raw)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// sites lists the mutation sites of fs (members and nested members).
func sites(fs []jfield, prefix string) []string {
	var out []string
	for _, f := range fs {
		out = append(out, prefix+f.k)
		if f.kids != nil {
			out = append(out, sites(f.kids, prefix+f.k+".")...)
		}
	}
	return out
}

func q(s string) string { return `"` + s + `"` }

var hostileTargets = []hostileTarget{
	{"create-channel", "/commands/create-channel", []jfield{{k: "scopeId", raw: q("{{euA}}")}, {k: "name", raw: q("n")}, {k: "type", raw: q("sms")},
		{k: "provider", raw: q("sandbox")}, {k: "from", raw: q("+15550001111")},
		{k: "config", kids: []jfield{{k: "region", raw: q("eu")}}}, {k: "credentials", kids: []jfield{{k: "token", raw: q("t")}}}}},
	{"get-channel", "/queries/get-channel", []jfield{{k: "channelId", raw: q("{{chnA}}")}}},
	{"list-channels", "/queries/list-channels", []jfield{{k: "scopeId", raw: q("{{euA}}")}, {k: "limit", raw: "1"}, {k: "cursor", raw: q("{{curChnA}}")}}},
	{"send-message", "/commands/send-message", []jfield{{k: "channelId", raw: q("{{chnA}}")}, {k: "to", raw: q("+15551230000")},
		{k: "content", kids: []jfield{{k: "text", raw: q("x")}}}, {k: "sendAt", raw: "null"},
		{k: "metadata", kids: []jfield{{k: "k", raw: q("v")}}}}},
	{"cancel-message", "/commands/cancel-message", []jfield{{k: "messageId", raw: q("{{msgA}}")}}},
	{"get-message", "/queries/get-message", []jfield{{k: "messageId", raw: q("{{msgA}}")}}},
	{"list-messages", "/queries/list-messages", []jfield{{k: "scopeId", raw: q("{{euA}}")}, {k: "channelId", raw: q("{{chnA}}")},
		{k: "status", raw: q("queued")}, {k: "limit", raw: "1"}, {k: "cursor", raw: q("{{curFilterA}}")}}},
	{"get-message-history", "/queries/get-message-history", []jfield{{k: "messageId", raw: q("{{msgA}}")}}},
	{"rebuild-read-models", "/commands/rebuild-read-models", []jfield{{k: "channelIds", raw: `["{{chnA}}"]`}, {k: "messageIds", raw: `["{{msgA}}"]`}}},
	{"create-subscription", "/commands/create-subscription", []jfield{{k: "scopeId", raw: q("{{scpA}}")}, {k: "url", raw: q("http://127.0.0.1:9/h")},
		{k: "eventTypes", raw: `["message.delivered","message.failed"]`}}},
	{"list-subscriptions", "/queries/list-subscriptions", []jfield{{k: "scopeId", raw: q("{{scpA}}")}, {k: "limit", raw: "1"}, {k: "cursor", raw: q("{{curSubA}}")}}},
	{"list-deliveries", "/queries/list-deliveries", []jfield{{k: "subscriptionId", raw: q("{{subA}}")}, {k: "limit", raw: "1"}, {k: "cursor", raw: q("AAAA")}}},
	{"webhook", "/webhooks/sandbox/{{chnA}}", []jfield{{k: "type", raw: q("receipt")}, {k: "providerMessageId", raw: q("sbx_01JQ0000000000000000000000")},
		{k: "status", raw: q("delivered")}, {k: "reason", raw: q("r")}}},
}

// hostileValues are raw JSON values put in every mutation site.
func hostileValues(full bool) []string {
	vals := []string{
		// wrong types and nulls
		`null`, `0`, `-1`, `1.5`, `1e309`, `-0`, `true`, `false`, `[]`, `{}`, `[null]`, `["x"]`, `[1,2]`, `{"a":1}`, `{"$gt":""}`, `{"$ne":null}`,
		// numbers as strings, bad limits
		`"10"`, `"-1"`, `"1e3"`, `"0x10"`, `101`, `1000000000`, `9223372036854775807`, `9223372036854775808`, `-9223372036854775809`, `1e2`, `50.0`,
		// strings
		`""`, `" "`, `"\t\n"`, `"a\u0000b"`, `"\u0000"`, `"\ud800"`, `"\udfff\ud800"`, `"\u202egnp.exe"`, `"a\u200bb"`, `"\ufeff"`,
		"\"\xff\xfe\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", // invalid UTF-8 (overlong, surrogate)
		`"' OR '1'='1"`, `"1; DROP TABLE messages; --"`, `"\" OR \"\"=\""`, `"{\"$gt\":\"\"}"`, `"T#tnt_x#S#message-x"`, `"../../../etc/passwd"`,
		`"%00%2e%2e"`, `"${jndi:ldap://x/a}"`, `"<script>alert(1)</script>"`, `"*"`, `"#"`, `"\\"`,
		q(strings.Repeat("a", 1025)), q(strings.Repeat("é", 5000)), q("msg_" + strings.Repeat("A", 1000)),
		// forged cursors
		`"!!!!"`, `"AAAA"`, `"_w"`, `"__79"`, `"QQ=="`, `"AA"`, q(strings.Repeat("A", 1024)), q(base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("z", 768)))),
		q(base64.RawURLEncoding.EncodeToString([]byte("zzzz\x00T#tnt_x#R#messages\x00msg"))),
		// ids: another resource type, another tenant, case, homoglyphs, padding
		q("{{msgA}}"), q("{{chnA}}"), q("{{scpA}}"), q("{{subA}}"), q("{{tntA}}"), q("{{svaA}}"), q("{{euA}}"),
		q("{{msgB}}"), q("{{chnB}}"), q("{{scpB}}"), q("{{subB}}"), q("{{euB}}"), q("{{chnMailB}}"),
		q("{{curA}}"), q("{{curB}}"), q("{{curChnA}}"), q("{{curSubA}}"), q("{{curFilterB}}"), q("{{b64:msgA}}"),
	}
	vals = append(vals, longInvalidCursors...)
	if full {
		for _, m := range []string{"lower", "upper", "trunc", "pad", "zw", "rtl", "cyr", "nul"} {
			for _, n := range []string{"msgA", "chnA", "scpA", "subA", "curA"} {
				vals = append(vals, q("{{"+m+":"+n+"}}"))
			}
		}
		vals = append(vals,
			q(strings.Repeat("a", 1<<20)), // 1 MB: 413
			q(strings.Repeat("x", 200<<10)),
			strings.Repeat("[", 100)+strings.Repeat("]", 100),
			strings.Repeat(`{"a":`, 200)+"1"+strings.Repeat("}", 200),
		)
	}
	return vals
}

// longInvalidCursors decode to more than 341 bytes that are not UTF-8. On
// DynamoDB they answered 500 once (see TestDynamoForgedCursorIs400); both
// sets have them.
var longInvalidCursors = []string{
	q(strings.Repeat("_", 1024)),
	q(strings.Repeat("-", 1024)),
	q(base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 342)))),
}

// hostileBodies are whole bodies that are not the object a route expects.
func hostileBodies(t hostileTarget, full bool) []string {
	valid := render(t.base, "", "")
	bodies := []string{
		``, ` `, `null`, `[]`, `[{}]`, `"str"`, `123`, `true`, `{`, `}`, `{}{}`, `{} []`, `{"a":}`, `{,}`, `{"a" 1}`,
		`{'a':1}`, `{"a":1,}`, `{"a":NaN}`, `{"a":Infinity}`, `/* c */{}`, "\ufeff{}", "{\x00}", "\x00", "{\"a\":\"\x00\"}",
		"\xff\xfe{}", `{"a":"\x"}`, `{"a":"\u12"}`, `{"":1}`, `{"__proto__":{}}`, `{"constructor":{"prototype":{}}}`,
		`{}`, valid, "[" + valid + "]", valid + valid, valid + " x",
		// extra and duplicate fields
		strings.TrimSuffix(valid, "}") + `,"extra":1}`,
		strings.TrimSuffix(valid, "}") + `,"tenantId":"{{tntB}}"}`,
		strings.TrimSuffix(valid, "}") + `,"` + t.firstKey() + `":"{{` + t.otherTenantVar() + `}}"}`, // duplicate key: the last one wins
		`{"` + t.firstKey() + `":"{{` + t.otherTenantVar() + `}}",` + strings.TrimPrefix(valid, "{"),
		strings.ToUpper(valid[:3]) + valid[3:],
		strings.ReplaceAll(valid, `":`, `" :`),
	}
	if full {
		bodies = append(bodies,
			strings.Repeat(`{"a":`, 20000)+"1"+strings.Repeat("}", 20000),
			strings.Repeat("[", 100000)+strings.Repeat("]", 100000),
			`{"a":"`+strings.Repeat("b", 256<<10)+`"}`,
			`{"a":`+strings.Repeat("9", 100000)+`}`,
		)
	}
	return bodies
}

func (t hostileTarget) firstKey() string { return t.base[0].k }

func (t hostileTarget) otherTenantVar() string {
	switch k := t.base[0].k; {
	case strings.HasPrefix(k, "channel"):
		return "chnB"
	case strings.HasPrefix(k, "message"):
		return "msgB"
	case strings.HasPrefix(k, "subscription"):
		return "subB"
	case strings.HasPrefix(k, "scope"):
		return "scpB"
	}
	return "tntB"
}

// hostileCase is one request of the corpus.
type hostileCase struct {
	name   string
	target string // hostileTarget.name
	path   string
	method string   // default POST
	body   string   // template
	hdr    []string // header pairs; "Content-Type" "" drops it
	token  string   // "A" (default), "B", "op", "none", or "raw:<value>"
	sign   string   // webhook: "A" signs with A's channel secret (default), "B", "none"
	want   int      // 0: any status below 500
	not    int      // a status it must not be
}

// hostileCorpus is the whole corpus (full) or the reduced set.
func hostileCorpus(full bool) []hostileCase {
	var cs []hostileCase
	vals := hostileValues(full)
	for _, t := range hostileTargets {
		for _, b := range hostileBodies(t, full) {
			cs = append(cs, hostileCase{name: t.name + " body " + clip(b), target: t.name, path: t.path, body: b})
		}
		ss := sites(t.base, "")
		for i, site := range ss {
			for j, v := range vals {
				if !full && (i+j)%5 != 0 && site != "cursor" && site != "limit" { // the reduced set: every fifth value per site, varied; all for paging
					continue
				}
				cs = append(cs, hostileCase{name: t.name + " " + site + "=" + clip(v), target: t.name, path: t.path, body: render(t.base, site, v)})
			}
			if !strings.Contains(site, ".") {
				cs = append(cs, hostileCase{name: t.name + " without " + site, target: t.name, path: t.path, body: render(without(t.base, site), "", "")})
			}
		}
		if full {
			// The size limit: 256 KiB of body is taken, one byte more is 413.
			valid := render(t.base, "", "")
			cs = append(cs,
				hostileCase{name: t.name + " body of 256 KiB", target: t.name, path: t.path, body: valid + "{{fill}}", not: 413},
				hostileCase{name: t.name + " body of 256 KiB + 1", target: t.name, path: t.path, body: valid + "{{fill+1}}", want: 413})
		}
		cs = append(cs, hostileCase{name: t.name + " extra member", target: t.name, path: t.path, body: render(append(append([]jfield(nil), t.base...), jfield{k: "x\u0000y", raw: "1"}), "", "")})
		cs = append(cs, headerCases(t, full)...)
	}
	cs = append(cs, otherTenantCases()...)
	cs = append(cs, webhookHeaderCases(full)...)
	return cs
}

func without(fs []jfield, k string) []jfield {
	var out []jfield
	for _, f := range fs {
		if f.k != k {
			out = append(out, f)
		}
	}
	return out
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return strconv.QuoteToASCII(s)
}

// headerCases: content types, methods, credentials, correlation and
// idempotency headers.
func headerCases(t hostileTarget, full bool) []hostileCase {
	valid := render(t.base, "", "")
	var cs []hostileCase
	add := func(name string, c hostileCase) {
		c.name, c.target, c.path = t.name+" "+name, t.name, t.path
		if c.body == "" {
			c.body = valid
		}
		cs = append(cs, c)
	}
	cts := []string{"", "text/plain", "application/json; charset=latin1", "application/json; charset=UTF-16", "application/json;charset=UTF-8",
		"APPLICATION/JSON", "application/json;;", "application/", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
		"application/json, text/plain", "application/problem+json", "application/json; charset=\"utf-8\"; x=\u0000", "application/xml",
		strings.Repeat("a", 10000)}
	if !full {
		cts = cts[:5]
	}
	for _, ct := range cts {
		add("content-type "+clip(ct), hostileCase{hdr: []string{"Content-Type", ct}})
	}
	methods := []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND"}
	if !full {
		methods = methods[:2]
	}
	for _, m := range methods {
		add("method "+m, hostileCase{method: m})
	}
	if t.name == "webhook" {
		return cs
	}
	for _, tok := range []struct{ name, tok string }{
		{"no credential", "none"}, {"operator key", "op"}, {"empty bearer", "raw:"}, {"garbage key", "raw:sbk_x_y"},
		{"forged key", "raw:sbk_key_01JQ0000000000000000000000_" + strings.Repeat("a", 43)}, {"huge bearer", "raw:" + strings.Repeat("x", 64<<10)},
		{"nul bearer", "raw:\x00"}, {"jwt none", "raw:eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
	} {
		add("credential "+tok.name, hostileCase{token: tok.tok})
	}
	hdrs := [][]string{
		{"Idempotency-Key", strings.Repeat("k", 256)}, {"Idempotency-Key", "ключ"}, {"Idempotency-Key", ""}, {"Idempotency-Key", "a b"},
		{"X-Action-Id", "not-a-ulid"}, {"X-Action-Id", "01jq0000000000000000000000"}, {"traceparent", "00-zzzz-zzzz-01"},
		{"traceparent", strings.Repeat("f", 5000)}, {"Accept-Language", "xx;q=abc, *;q=-1, " + strings.Repeat("de,", 1000)},
		{"X-Log-Level", "debug"}, {"X-Log-Level", "\u0000"}, {"Content-Length", "5"},
	}
	if !full {
		hdrs = hdrs[:5]
	}
	for _, h := range hdrs {
		add("header "+h[0]+"="+clip(h[1]), hostileCase{hdr: h})
	}
	return cs
}

// otherTenantCases: tenant A naming tenant B's resources gets 404, as for
// resources that do not exist.
func otherTenantCases() []hostileCase {
	var cs []hostileCase
	for _, c := range []struct{ path, body string }{
		{"/queries/get-channel", `{"channelId":"{{chnB}}"}`},
		{"/queries/get-channel", `{"channelId":"{{chnMailB}}"}`},
		{"/queries/list-channels", `{"scopeId":"{{euB}}"}`},
		{"/queries/list-channels", `{"scopeId":"{{scpB}}"}`},
		{"/commands/create-channel", `{"scopeId":"{{euB}}","name":"n","type":"sms","provider":"sandbox","from":"+15550001111"}`},
		{"/commands/send-message", `{"channelId":"{{chnB}}","to":"+15551230000","content":{"text":"x"}}`},
		{"/commands/cancel-message", `{"messageId":"{{msgB}}"}`},
		{"/queries/get-message", `{"messageId":"{{msgB}}"}`},
		{"/queries/get-message-history", `{"messageId":"{{msgB}}"}`},
		{"/queries/list-messages", `{"channelId":"{{chnB}}"}`},
		{"/queries/list-messages", `{"scopeId":"{{euB}}"}`},
		{"/queries/list-messages", `{"scopeId":"{{euB}}","channelId":"{{chnB}}","status":"queued"}`},
		{"/commands/create-subscription", `{"scopeId":"{{scpB}}","url":"http://127.0.0.1:9/h","eventTypes":["*"]}`},
		{"/queries/list-subscriptions", `{"scopeId":"{{scpB}}"}`},
		{"/queries/list-deliveries", `{"subscriptionId":"{{subB}}"}`},
	} {
		name := strings.TrimPrefix(strings.TrimPrefix(c.path, "/commands/"), "/queries/")
		cs = append(cs, hostileCase{name: name + " another tenant's " + c.body, target: name, path: c.path, body: c.body, want: 404})
	}
	// Unknown and malformed ids of the right prefix answer the same.
	for _, c := range []struct{ path, body string }{
		{"/queries/get-channel", `{"channelId":"chn_01JQ0000000000000000000000"}`},
		{"/queries/get-message", `{"messageId":"msg_01JQ0000000000000000000000"}`},
		{"/queries/get-message", `{"messageId":"{{lower:msgA}}"}`},
		{"/queries/get-message-history", `{"messageId":"{{trunc:msgA}}"}`},
		{"/commands/cancel-message", `{"messageId":"msg_01JQ0000000000000000000000"}`},
		{"/queries/list-deliveries", `{"subscriptionId":"sub_01JQ0000000000000000000000"}`},
	} {
		name := strings.TrimPrefix(strings.TrimPrefix(c.path, "/commands/"), "/queries/")
		cs = append(cs, hostileCase{name: name + " unknown " + c.body, target: name, path: c.path, body: c.body, want: 404})
	}
	// B's ids to rebuild are skipped like unknown ones.
	cs = append(cs, hostileCase{name: "rebuild-read-models another tenant's ids", target: "rebuild-read-models", path: "/commands/rebuild-read-models",
		body: `{"channelIds":["{{chnB}}","{{chnMailB}}"],"messageIds":["{{msgB}}"]}`, want: 200})
	// B's channel, signed with A's secret: 401; unknown or foreign routes: 404.
	receipt := `{"type":"receipt","providerMessageId":"sbx_x","status":"delivered"}`
	cs = append(cs,
		hostileCase{name: "webhook B's channel signed by A", target: "webhook", path: "/webhooks/sandbox/{{chnB}}", body: receipt, want: 401},
		hostileCase{name: "webhook B's channel signed by B", target: "webhook", path: "/webhooks/sandbox/{{chnB}}", body: receipt, sign: "B", want: 204},
		hostileCase{name: "webhook unsigned", target: "webhook", path: "/webhooks/sandbox/{{chnA}}", body: receipt, sign: "none", want: 401},
		hostileCase{name: "webhook lowercased channel", target: "webhook", path: "/webhooks/sandbox/{{lower:chnA}}", body: receipt, want: 404},
		hostileCase{name: "webhook message id as channel", target: "webhook", path: "/webhooks/sandbox/{{msgA}}", body: receipt, want: 404},
		hostileCase{name: "webhook unknown provider", target: "webhook", path: "/webhooks/twilio/{{chnA}}", body: receipt, want: 404},
		hostileCase{name: "webhook unknown channel", target: "webhook", path: "/webhooks/sandbox/chn_01JQ0000000000000000000000", body: receipt, want: 404},
		hostileCase{name: "webhook encoded slash", target: "webhook", path: "/webhooks/sandbox/{{chnA}}%2F..", body: receipt},
		hostileCase{name: "webhook trailing path", target: "webhook", path: "/webhooks/sandbox/{{chnA}}/x", body: receipt},
		hostileCase{name: "webhook dot segments", target: "webhook", path: "/webhooks/sandbox/../../commands/send-message", body: receipt},
	)
	return cs
}

// webhookHeaderCases: the Standard Webhooks headers, forged and broken.
func webhookHeaderCases(full bool) []hostileCase {
	receipt := `{"type":"receipt","providerMessageId":"sbx_x","status":"delivered"}`
	now := time.Now().Unix()
	hdrs := [][]string{
		{"webhook-id", ""}, {"webhook-id", strings.Repeat("i", 256)}, {"webhook-id", "a b"}, {"webhook-id", "ид"}, {"webhook-id", "\x7f"},
		{"webhook-timestamp", ""}, {"webhook-timestamp", "abc"}, {"webhook-timestamp", "-1"}, {"webhook-timestamp", "99999999999999999999"},
		{"webhook-timestamp", strconv.FormatInt(now-3600, 10)}, {"webhook-timestamp", strconv.FormatInt(now+3600, 10)},
		{"webhook-timestamp", strconv.FormatInt(now, 10) + ".5"}, {"webhook-timestamp", "1e9"},
		{"webhook-signature", ""}, {"webhook-signature", "v1,"}, {"webhook-signature", "v1,!!!!"}, {"webhook-signature", "v2,AAAA"},
		{"webhook-signature", "v1a,AAAA v1,"}, {"webhook-signature", strings.Repeat("v1,AAAA ", 5000)}, {"webhook-signature", ","},
	}
	if !full {
		hdrs = hdrs[:8]
	}
	var cs []hostileCase
	for _, h := range hdrs {
		cs = append(cs, hostileCase{name: "webhook header " + h[0] + "=" + clip(h[1]), target: "webhook", path: "/webhooks/sandbox/{{chnA}}", body: receipt, hdr: h, want: 401})
	}
	return cs
}

// ---- running a case ----

type hostileReply struct {
	status int
	header http.Header
	raw    []byte
}

func (f *hostileFixture) do(c hostileCase) hostileReply {
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	body := f.expand(c.body)
	path := f.expand(c.path)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Method = method
	if u, err := req.URL.Parse(path); err == nil {
		req.URL, req.RequestURI = u, path
	}
	req.Header.Set("Content-Type", "application/json")
	if c.target == "webhook" {
		secret := f.secretA
		switch c.sign {
		case "B":
			secret = f.secretB
		case "none":
			secret = ""
		}
		if secret != "" {
			wh, _ := standardwebhooks.NewWebhook(secret)
			ts := time.Now()
			id := "wh_" + strconv.FormatInt(ts.UnixNano(), 36)
			sig, _ := wh.Sign(id, ts, []byte(body))
			req.Header.Set("webhook-id", id)
			req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
			req.Header.Set("webhook-signature", sig)
		}
	} else {
		switch tok := c.token; {
		case tok == "" || tok == "A":
			req.Header.Set("Authorization", "Bearer "+f.keyA)
		case tok == "B":
			req.Header.Set("Authorization", "Bearer "+f.keyB)
		case tok == "op":
			req.Header.Set("Authorization", "Bearer "+f.opKey)
		case strings.HasPrefix(tok, "raw:"):
			req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(tok, "raw:"))
		}
	}
	for i := 0; i+1 < len(c.hdr); i += 2 {
		if c.hdr[i] == "Content-Type" && c.hdr[i+1] == "" {
			req.Header.Del("Content-Type")
			continue
		}
		req.Header[http.CanonicalHeaderKey(c.hdr[i])] = []string{c.hdr[i+1]}
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	raw, _ := io.ReadAll(w.Result().Body)
	return hostileReply{status: w.Code, header: w.Header(), raw: raw}
}

// check returns what is wrong with the answer to c ("" when nothing).
func (f *hostileFixture) check(c hostileCase, r hostileReply) string {
	if r.status >= 500 {
		return fmt.Sprintf("status %d (a 5xx): %s", r.status, clipBytes(r.raw))
	}
	if (c.want != 0 && r.status != c.want) || (c.not != 0 && r.status == c.not) {
		return fmt.Sprintf("status %d, want %d (not %d): %s", r.status, c.want, c.not, clipBytes(r.raw))
	}
	if r.status >= 400 && (c.method == "" || c.method != http.MethodHead) {
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			return fmt.Sprintf("status %d with Content-Type %q, want application/problem+json: %s", r.status, ct, clipBytes(r.raw))
		}
		var p struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
			Title  string `json:"title"`
		}
		if err := json.Unmarshal(r.raw, &p); err != nil || p.Status != r.status || p.Code == "" || p.Title == "" {
			return fmt.Sprintf("status %d with a problem that is not one (%v): %s", r.status, err, clipBytes(r.raw))
		}
		if r.status == 404 && c.want == 404 && strings.Contains(string(r.raw), "{{") {
			return "unexpanded placeholder"
		}
	}
	if r.status >= 200 && r.status < 300 && len(r.raw) > 0 {
		var v any
		if err := json.Unmarshal(r.raw, &v); err != nil {
			return fmt.Sprintf("status %d with a body that is not JSON: %s", r.status, clipBytes(r.raw))
		}
		if c.token == "" || c.token == "A" {
			if leak := f.leak(v, ""); leak != "" {
				return "tenant B's " + leak + " in an answer to tenant A: " + clipBytes(r.raw)
			}
		}
	}
	return ""
}

// leak finds an id of tenant B in the resource fields of an answer (not in
// user content: names, metadata, config, content).
func (f *hostileFixture) leak(v any, key string) string {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch k {
			case "metadata", "config", "content", "name", "from", "to", "url":
				continue
			}
			if l := f.leak(e, k); l != "" {
				return l
			}
		}
	case []any:
		for _, e := range x {
			if l := f.leak(e, key); l != "" {
				return l
			}
		}
	case string:
		if f.bIDs[x] {
			return key + "=" + x
		}
	}
	return ""
}

func clipBytes(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// panics returns the panic records logged so far.
func (f *hostileFixture) panics() []rslLogRec {
	f.logs.mu.Lock()
	defer f.logs.mu.Unlock()
	var out []rslLogRec
	for _, r := range *f.logs.recs {
		if strings.Contains(strings.ToLower(r.msg), "panic") {
			out = append(out, r)
		}
	}
	return out
}

func (f *hostileFixture) run(t *testing.T, corpus []hostileCase) map[int]int {
	t.Helper()
	byStatus := map[int]int{}
	failures := 0
	for _, c := range corpus {
		r := f.do(c)
		byStatus[r.status]++
		if msg := f.check(c, r); msg != "" {
			failures++
			if failures <= 60 {
				t.Errorf("%s: %s", c.name, msg)
			}
		}
	}
	if failures > 60 {
		t.Errorf("... and %d more failures", failures-60)
	}
	if p := f.panics(); len(p) > 0 {
		t.Errorf("%d panics logged, the first: %s %v", len(p), p[0].msg, p[0].attrs)
	}
	return byStatus
}

// TestHostileInputs runs the corpus against every new command and query and
// the provider webhook route: the whole corpus on the embedded store, a
// reduced set on DynamoDB Local.
func TestHostileInputs(t *testing.T) {
	for _, tc := range []struct {
		store string
		full  bool
	}{{"embedded", true}, {"dynamodb", false}} {
		t.Run(tc.store, func(t *testing.T) {
			f := newHostileFixture(t, tc.store)
			corpus := hostileCorpus(tc.full)
			start := time.Now()
			byStatus := f.run(t, corpus)
			t.Logf("%d requests in %s; statuses %v", len(corpus), time.Since(start).Round(time.Millisecond), byStatus)
			// The fixture's own resources are intact: B's message is still queued, A's lists still page.
			c := &client{t: t, h: f.h}
			if st := c.must(200, "/queries/get-message", f.keyB, `{"messageId":"`+f.vars["msgB"]+`"}`).Body["status"]; st != "queued" {
				t.Errorf("B's message is %v after A's hostile calls", st)
			}
		})
	}
}

// TestHostileBatch sends the corpus's command bodies that are JSON values as
// items of POST /commands batches (100 items each, half of them with a
// hostile idempotencyKey), and hostile batch envelopes: the batch answers
// 200 or a 4xx problem, and every item a status below 500 with a problem
// body for its 4xx.
func TestHostileBatch(t *testing.T) {
	f := newHostileFixture(t, "embedded")
	var items []string
	keys := []string{`""`, `"k"`, q(strings.Repeat("k", 256)), `"a b"`, `"ключ"`, `null`, `"\u0000"`, `"{{msgA}}"`}
	for i, c := range hostileCorpus(true) {
		if c.target == "webhook" || c.method != "" || len(c.hdr) > 0 || c.token != "" || !strings.HasPrefix(c.path, "/commands/") {
			continue
		}
		body := f.expand(c.body)
		if !json.Valid([]byte(body)) || !utf8.ValidString(body) || len(body) > 2<<10 { // else the whole batch is a 400
			continue
		}
		item := `{"name":"` + strings.TrimPrefix(c.path, "/commands/") + `","input":` + body
		if i%2 == 0 {
			item += `,"idempotencyKey":` + f.expand(keys[i%len(keys)])
		}
		items = append(items, item+"}")
	}
	items = append(items, `{"name":"get-message","input":{"messageId":"{{msgA}}"}}`, `{"name":"onboard-tenant","input":{"name":"x","tier":"pooled"}}`,
		`{"name":"../queries/get-message","input":{}}`, `{"name":"","input":{}}`, `{"name":null}`, `{}`, `{"name":"send-message","input":"str"}`,
		`{"name":"send-message","input":[]}`, `{"name":"send-message","input":null}`)
	var cases []hostileCase
	for i := 0; i < len(items); i += 100 {
		batch := items[i:min(i+100, len(items))]
		cases = append(cases, hostileCase{name: fmt.Sprintf("batch %d", i/100), target: "batch", path: "/commands", body: `{"commands":[` + strings.Join(batch, ",") + `]}`})
	}
	for _, b := range []string{`{"commands":[]}`, `{"commands":null}`, `{"commands":[{"name":"send-message","extra":1}]}`,
		`{"commands":[{"name":"cancel-message","idempotencyKey":1}]}`, `{"commands":[{"name":1}]}`, `{"commands":[null]}`, `{"commands":[[]]}`, `{"commands":{}}`, `{"commands":"x"}`, `{}`, `[]`,
		`{"commands":[` + strings.Repeat(`{"name":"cancel-message","input":{"messageId":"{{msgA}}"}},`, 100) + `{"name":"x"}]}`} {
		cases = append(cases, hostileCase{name: "batch envelope " + clip(b), target: "batch", path: "/commands", body: b})
	}
	itemsSeen, byStatus := 0, map[int]int{}
	for _, c := range cases {
		r := f.do(c)
		if msg := f.check(c, r); msg != "" {
			t.Errorf("%s: %s", c.name, msg)
			continue
		}
		if r.status != 200 {
			continue
		}
		var out struct {
			Results []struct {
				Status int             `json:"status"`
				Body   json.RawMessage `json:"body"`
			} `json:"results"`
		}
		if err := json.Unmarshal(r.raw, &out); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for i, res := range out.Results {
			itemsSeen++
			byStatus[res.Status]++
			var p struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
			}
			switch {
			case res.Status >= 500:
				t.Errorf("%s item %d: status %d: %s", c.name, i, res.Status, res.Body)
			case res.Status >= 400 && (json.Unmarshal(res.Body, &p) != nil || p.Status != res.Status || p.Code == ""):
				t.Errorf("%s item %d: status %d with %s", c.name, i, res.Status, res.Body)
			}
		}
	}
	if p := f.panics(); len(p) > 0 {
		t.Errorf("panic logged: %s %v", p[0].msg, p[0].attrs)
	}
	t.Logf("%d batches, %d items; item statuses %v", len(cases), itemsSeen, byStatus)
}

// FuzzMessagingCommands sends fuzzed bodies to the messaging and webhooks
// commands and queries and the provider webhook route (target picks one;
// webhook bodies are signed so they reach the parser) of the production
// wiring on the embedded store. Placeholders ({{msgA}}, {{lower:chnA}}, ...)
// in a body are replaced by the fixture's real ids. Seeded from the hostile
// corpus; the invariants are TestHostileInputs'.
func FuzzMessagingCommands(f *testing.F) {
	for _, c := range hostileCorpus(true) {
		if c.method != "" || len(c.hdr) > 0 || c.token != "" || c.sign != "" || c.want != 0 || len(c.body) > 64<<10 {
			continue // the fuzz target varies bodies only
		}
		for i, t := range hostileTargets {
			if t.name == c.target {
				f.Add(uint8(i), c.body)
			}
		}
	}
	fx := newHostileFixture(f, "embedded")
	f.Fuzz(func(t *testing.T, target uint8, body string) {
		tg := hostileTargets[int(target)%len(hostileTargets)]
		c := hostileCase{name: tg.name, target: tg.name, path: tg.path, body: body}
		if msg := fx.check(c, fx.do(c)); msg != "" {
			t.Errorf("%s %q: %s", tg.name, clip(body), msg)
		}
		if p := fx.panics(); len(p) > 0 {
			t.Fatalf("panic logged: %s %v", p[0].msg, p[0].attrs)
		}
	})
}

// ---- defects the corpus found, fixed ----

// TestFieldNamesMatchExactly: a body's keys match an input's fields by their
// exact names (encoding/json matched them case-insensitively, so "CHANNELID"
// was taken for channelId and a field named twice in two spellings silently
// took the last): a key that is not exactly a field's name is 400
// errors.request.unknown_field naming it, a key twice is 400
// errors.request.duplicate_field naming it, and nothing is sent.
func TestFieldNamesMatchExactly(t *testing.T) {
	f := newHostileFixture(t, "embedded")
	c := &client{t: t, h: f.h}
	chn, other := f.vars["chnA"], f.vars["chnMailA"]
	for _, tc := range []struct{ body, code, field string }{
		{`{"CHANNELID":"` + chn + `","To":"+15551230000","content":{"Text":"x"}}`, "errors.request.unknown_field", "CHANNELID"},
		{`{"channelId":"` + other + `","ChannelId":"` + chn + `","to":"+15551230000","content":{"text":"x"}}`, "errors.request.unknown_field", "ChannelId"},
		{`{"channelId":"` + chn + `","to":"+15551230000","content":{"Text":"x"}}`, "errors.request.unknown_field", "content.Text"},
		{`{"channelId":"` + other + `","channelId":"` + chn + `","to":"+15551230000","content":{"text":"x"}}`, "errors.request.duplicate_field", "channelId"},
		{`{"channelId":"` + chn + `","to":"+15551230000","content":{"text":"x"},"metadata":{"k":"a","k":"b"}}`, "errors.request.duplicate_field", "metadata.k"},
	} {
		r := c.call("/commands/send-message", f.keyA, tc.body, "Idempotency-Key", "exact-names")
		if r.Status != 400 || r.Body["code"] != tc.code || !strings.Contains(str(r.Body["detail"]), tc.field) {
			t.Errorf("send-message %s: %d %s, want 400 %s naming %s", tc.body, r.Status, r.Raw, tc.code, tc.field)
		}
	}
	if r := c.call("/queries/get-message", f.keyA, `{"MessageID":"`+f.vars["msgA"]+`"}`); r.Status != 400 || r.Body["code"] != "errors.request.unknown_field" {
		t.Errorf("get-message with MessageID: %d %s, want 400 errors.request.unknown_field", r.Status, r.Raw)
	}
	// In German too (the catalog has both).
	r := c.call("/commands/send-message", f.keyA, `{"to":"+15551230000","to":"+15551230001"}`, "Accept-Language", "de")
	if r.Status != 400 || r.Body["title"] != "Doppeltes Feld" || !strings.Contains(str(r.Body["detail"]), "to") {
		t.Errorf("duplicate key in German: %d %s", r.Status, r.Raw)
	}
	// The exact spelling still works, and nothing was sent by the rejected bodies.
	c.must(202, "/commands/send-message", f.keyA, `{"channelId":"`+chn+`","to":"+15551230000","content":{"text":"x"}}`, "Idempotency-Key", "exact-names")
}

// TestForgedCursorIsInvalid: a list takes back only the cursors it issued
// (app.ReadModel: "A cursor it did not issue is ErrInvalidCursor"). The
// stores took any base64url as a position, so a made-up cursor, or one of
// another list (list-channels' for list-messages), another filter or another
// tenant, answered 200 with a page from an arbitrary point. Now each is 400
// errors.validation.cursor on both stores, and the list's own cursors page.
func TestForgedCursorIsInvalid(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			f := newHostileFixture(t, store)
			c := &client{t: t, h: f.h}
			bad := func(path, body string) {
				t.Helper()
				r := c.call(path, f.keyA, body)
				errList, _ := r.Body["errors"].([]any)
				if r.Status != 400 || r.Body["code"] != "errors.validation.failed" || len(errList) != 1 ||
					errList[0].(map[string]any)["field"] != "cursor" || errList[0].(map[string]any)["code"] != "errors.validation.cursor" {
					t.Errorf("%s %s: %d %s, want 400 errors.validation.cursor", path, body, r.Status, r.Raw)
				}
			}
			for _, cur := range []string{"_w", "AAAA", f.vars["curChnA"], f.vars["curB"], f.vars["curSubA"], f.vars["curFilterA"]} {
				bad("/queries/list-messages", `{"cursor":"`+cur+`"}`)
			}
			// Another filter of the same list, another tenant's cursor of the same filter.
			bad("/queries/list-messages", `{"channelId":"`+f.vars["chnMailA"]+`","cursor":"`+f.vars["curFilterA"]+`"}`)
			bad("/queries/list-messages", `{"status":"queued","cursor":"`+f.vars["curA"]+`"}`)
			bad("/queries/list-messages", `{"scopeId":"`+f.vars["euA"]+`","cursor":"`+f.vars["curA"]+`"}`)
			bad("/queries/list-channels", `{"cursor":"`+f.vars["curA"]+`"}`)
			bad("/queries/list-channels", `{"cursor":"`+f.vars["curChnB"]+`"}`)
			bad("/queries/list-channels", `{"scopeId":"`+f.vars["euA"]+`","cursor":"`+f.vars["curChnA"]+`"}`)
			bad("/queries/list-subscriptions", `{"cursor":"`+f.vars["curChnA"]+`"}`)
			bad("/queries/list-subscriptions", `{"cursor":"`+f.vars["curSubB"]+`"}`)
			bad("/queries/list-deliveries", `{"subscriptionId":"`+f.vars["subA"]+`","cursor":"`+f.vars["curSubA"]+`"}`)
			bad("/queries/list-scopes", `{"cursor":"`+f.vars["curA"]+`"}`)
			// The lists' own cursors page on.
			for _, q := range []struct{ path, body string }{
				{"/queries/list-messages", `{"limit":1,"cursor":"` + f.vars["curA"] + `"}`},
				{"/queries/list-messages", `{"channelId":"` + f.vars["chnA"] + `","limit":1,"cursor":"` + f.vars["curFilterA"] + `"}`},
				{"/queries/list-channels", `{"limit":1,"cursor":"` + f.vars["curChnA"] + `"}`},
				{"/queries/list-subscriptions", `{"limit":1,"cursor":"` + f.vars["curSubA"] + `"}`},
			} {
				if items, _ := c.must(200, q.path, f.keyA, q.body).Body["items"].([]any); len(items) != 1 {
					t.Errorf("%s %s: %d items, want 1", q.path, q.body, len(items))
				}
			}
		})
	}
}

// TestDynamoForgedCursorIs400 (regression): on DynamoDB a forged list cursor
// whose bytes are not UTF-8 was a 500: the SDK replaced each invalid byte by
// U+FFFD (3 bytes), so 342 bytes of 0xff (a 456-character cursor, within the
// inputs' max=1024) became a range key beyond DynamoDB's 1,024 bytes and the
// query failed with a ValidationException. Bad input never causes a 5xx:
// every list on DynamoDB answers 400 errors.validation.cursor.
func TestDynamoForgedCursorIs400(t *testing.T) {
	f := newHostileFixture(t, "dynamodb")
	c := &client{t: t, h: f.h}
	cursor := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 342)))
	for _, q := range []struct{ path, body string }{
		{"/queries/list-messages", `{"cursor":"` + cursor + `"}`},
		{"/queries/list-messages", `{"channelId":"` + f.vars["chnA"] + `","cursor":"` + cursor + `"}`},
		{"/queries/list-channels", `{"cursor":"` + cursor + `"}`},
		{"/queries/list-subscriptions", `{"cursor":"` + cursor + `"}`},
		{"/queries/list-deliveries", `{"subscriptionId":"` + f.vars["subA"] + `","cursor":"` + cursor + `"}`},
		{"/queries/list-scopes", `{"cursor":"` + cursor + `"}`}, // tenancy's lists too
	} {
		if r := c.call(q.path, f.keyA, q.body); r.Status != 400 {
			t.Errorf("%s with a forged cursor of 342 bytes 0xff: %d %s, want 400", q.path, r.Status, r.Raw)
		}
	}
}
