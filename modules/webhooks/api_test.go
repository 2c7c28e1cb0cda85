package webhooks_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/webhooks/adapters"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

func TestEndpoints(t *testing.T) {
	e := newEnv(t, options{})
	want := map[string]struct {
		kind   rpc.Kind
		action string
	}{
		"create-subscription": {rpc.KindCommand, "webhooks:create-subscription"},
		"list-subscriptions":  {rpc.KindQuery, "webhooks:list-subscriptions"},
		"list-deliveries":     {rpc.KindQuery, "webhooks:list-deliveries"},
	}
	eps := e.mod.Endpoints()
	if len(eps) != len(want) {
		t.Fatalf("%d endpoints", len(eps))
	}
	for _, ep := range eps {
		w, ok := want[ep.Name]
		if !ok || ep.Kind != w.kind || ep.Action != w.action || ep.Access != rpc.AccessTenant || ep.Status != 200 {
			t.Errorf("endpoint %+v", ep)
		}
	}
	if got := strings.Join(e.work.Types(), " "); got != "integration-event tenancy.provision-tenant webhooks.deliver webhooks.fan-out webhooks.subscription-health" {
		t.Fatalf("work types = %s", got)
	}
}

// wantProblem checks a problem+json answer and its one field error.
func wantProblem(t *testing.T, status int, body map[string]any, raw string, wantStatus int, field, code string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %s", status, wantStatus, raw)
	}
	if field == "" {
		if body["code"] != code {
			t.Fatalf("code %v, want %s: %s", body["code"], code, raw)
		}
		return
	}
	errsList, _ := body["errors"].([]any)
	for _, fe := range errsList {
		m := fe.(map[string]any)
		if m["field"] == field && m["code"] == code {
			return
		}
	}
	t.Fatalf("no field error %s %s in %s", field, code, raw)
}

func TestCreateSubscriptionValidation(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	tn := e.onboard("Acme")
	ok := map[string]any{"scopeId": tn.Root, "url": "https://hooks.example.com/x", "eventTypes": []string{"*"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range ok {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name        string
		body        any
		field, code string
	}{
		{"ftp url", with("url", "ftp://hooks.example.com/"), "url", domain.CodeInvalidURL},
		{"relative url", with("url", "/hooks"), "url", domain.CodeInvalidURL},
		{"userinfo", with("url", "https://u:p@hooks.example.com/"), "url", domain.CodeInvalidURL},
		{"fragment", with("url", "https://hooks.example.com/#x"), "url", domain.CodeInvalidURL},
		{"numeric host", with("url", "http://2130706433/"), "url", domain.CodeInvalidURL},
		{"too long", with("url", "https://hooks.example.com/"+strings.Repeat("a", 2030)), "url", "errors.validation.too_long"},
		{"no url", with("url", nil), "url", "errors.validation.required"},
		{"url not a string", with("url", 42), "url", "errors.validation.type"},
		{"no event types", with("eventTypes", nil), "eventTypes", "errors.validation.required"},
		{"empty event types", with("eventTypes", []string{}), "eventTypes", "errors.validation.out_of_range"},
		{"eight event types", with("eventTypes", append(domain.EventTypes(), "*")), "eventTypes", "errors.validation.out_of_range"},
		{"unknown event type", with("eventTypes", []string{"message.sent", "message.bounced"}), "eventTypes[1]", domain.CodeInvalidEventTypes},
		{"repeated event type", with("eventTypes", []string{"message.sent", "message.sent"}), "eventTypes[1]", domain.CodeInvalidEventTypes},
		{"wildcard with others", with("eventTypes", []string{"*", "message.sent"}), "eventTypes[0]", domain.CodeInvalidEventTypes},
		{"no scope", with("scopeId", nil), "scopeId", "errors.validation.required"},
		{"unknown field", with("secret", "whsec_x"), "secret", "errors.request.unknown_field"},
	}
	for _, c := range cases {
		status, body, raw := e.call("commands", "create-subscription", tn.Token, c.body)
		t.Run(c.name, func(t *testing.T) { wantProblem(t, status, body, raw, 400, c.field, c.code) })
	}
	for _, raw := range []string{`[]`, `{"url":`, `not json`, `{"eventTypes":"*"}`} {
		status, _, out := e.call("commands", "create-subscription", tn.Token, raw)
		if status != 400 {
			t.Fatalf("%s: %d %s", raw, status, out)
		}
	}
	// A scope that does not exist: 404.
	status, body, raw := e.call("commands", "create-subscription", tn.Token, with("scopeId", e.ids.New(ids.Scope)))
	wantProblem(t, status, body, raw, 404, "", "errors.resource.not_found")
	// Nothing was written by any of it.
	if subs := e.subscriptions(tn, ""); len(subs) != 0 {
		t.Fatalf("subscriptions = %v", subs)
	}
	status, body, raw = e.call("commands", "create-subscription", tn.Token, ok)
	if status != 200 || !ids.Valid(ids.Subscription, fmt.Sprint(body["subscriptionId"])) {
		t.Fatalf("valid create: %d %s", status, raw)
	}
}

// The target guard in Lambda mode: URLs whose host is or resolves to an
// internal address are refused at creation (400 on url,
// errors.webhook.target_forbidden); public ones are accepted.
func TestTargetGuardAtCreation(t *testing.T) {
	res := newFakeResolver(map[string][]string{
		"public.example":   {"93.184.216.34"},
		"public6.example":  {"2606:2800:220:1:248:1893:25c8:1946"},
		"internal.example": {"10.0.0.5"},
		"mixed.example":    {"93.184.216.34,127.0.0.1"},
		"loop6.example":    {"::1"},
		"mapped.example":   {"::ffff:169.254.169.254"},
		"cgnat.example":    {"100.64.1.2"},
		"ula.example":      {"fd00:ec2::254"},
		"nat64.example":    {"64:ff9b::a00:1"},
	})
	e := newEnv(t, options{allowPrivate: false, resolver: res})
	tn := e.onboard("Acme")
	create := func(u string) (int, map[string]any, string) {
		return e.call("commands", "create-subscription", tn.Token, map[string]any{"scopeId": tn.Root, "url": u, "eventTypes": []string{"*"}})
	}
	forbidden := []string{
		"http://127.0.0.1/", "http://127.0.0.1:8080/x", "http://10.1.2.3/", "http://172.16.5.4/", "http://192.168.0.1/",
		"http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://0.0.0.0/", "http://224.0.0.1/",
		"http://[::1]/", "http://[::]/", "http://[fc00::1]/", "http://[fe80::1%25eth0]/", "http://[ff02::1]/",
		"http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/", "http://[64:ff9b::7f00:1]/",
		"http://metadata.google.internal/computeMetadata/v1/", "http://METADATA.GOOGLE.INTERNAL./", "http://localhost:9000/",
		"http://api.localhost/", "http://internal.example/", "http://mixed.example/", "http://loop6.example/",
		"http://mapped.example/", "http://cgnat.example/", "http://ula.example/", "https://nat64.example/",
	}
	for _, u := range forbidden {
		status, body, raw := create(u)
		wantProblem(t, status, body, raw, 400, "url", domain.CodeTargetForbidden)
	}
	allowed := []string{"https://public.example/hooks", "https://public6.example/", "http://93.184.216.34:8443/x",
		"https://[2606:4700:4700::1111]/", "https://[::ffff:93.184.216.34]/", "https://unresolvable.example/"}
	for _, u := range allowed {
		if status, _, raw := create(u); status != 200 {
			t.Fatalf("%s refused: %d %s", u, status, raw)
		}
	}
}

// DNS rebinding: a name that resolved to a public address at creation and
// to 127.0.0.1 at delivery is refused at dial time; the receiver is never
// called and the attempt records why. In local mode the same setup delivers.
func TestTargetGuardAtDeliveryCatchesRebinding(t *testing.T) {
	rcv := newReceiver(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rcv.URL, "http://"))
	for _, mode := range []struct {
		name         string
		allowPrivate bool
	}{{"lambda", false}, {"local", true}} {
		t.Run(mode.name, func(t *testing.T) {
			rcv.reset()
			// Lambda mode resolves at creation (public) and at delivery
			// (loopback); local mode resolves only at delivery.
			names := map[string][]string{
				"rebind.example": {"93.184.216.34", "127.0.0.1"},
				"mapped.example": {"93.184.216.34", "::ffff:127.0.0.1"},
			}
			if mode.allowPrivate {
				names = map[string][]string{"rebind.example": {"127.0.0.1"}, "mapped.example": {"::ffff:127.0.0.1"}}
			}
			res := newFakeResolver(names)
			e := newEnv(t, options{allowPrivate: mode.allowPrivate, resolver: res})
			tn := e.onboard("Acme")
			var subs []app.CreateSubscriptionOutput
			for _, host := range []string{"rebind.example", "mapped.example"} {
				sub := e.subscribe(tn, tn.Root, "http://"+host+":"+port+"/hook", "*")
				subs = append(subs, sub)
			}
			e.publish(e.event(tn, "message.sent", []string{tn.Root}, "msg_1"))
			e.drain()
			for _, sub := range subs {
				dl := e.deliveries(tn, sub.SubscriptionID)
				if len(dl) != 1 {
					t.Fatalf("deliveries = %v", dl)
				}
				if mode.allowPrivate {
					if dl[0]["status"] != "succeeded" {
						t.Fatalf("local mode: %v", dl[0])
					}
					continue
				}
				if dl[0]["status"] != "pending" || dl[0]["lastStatusCode"] != nil || dl[0]["lastError"] != "target address forbidden" {
					t.Fatalf("rebinding: %v", dl[0])
				}
			}
			if n := len(rcv.requests()); mode.allowPrivate != (n == 2) || (!mode.allowPrivate && n != 0) {
				t.Fatalf("%s mode: receiver got %d requests", mode.name, n)
			}
		})
	}
}

func TestCrossTenantIsNotFound(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	a := e.onboard("A")
	b := e.onboard("B")
	subA := e.subscribe(a, a.Root, "https://a.example/h", "*")

	status, body, raw := e.call("queries", "list-deliveries", b.Token, map[string]any{"subscriptionId": subA.SubscriptionID})
	wantProblem(t, status, body, raw, 404, "", "errors.resource.not_found")
	status, body, raw = e.call("queries", "list-deliveries", a.Token, map[string]any{"subscriptionId": e.ids.New(ids.Subscription)})
	wantProblem(t, status, body, raw, 404, "", "errors.resource.not_found")
	status, body, raw = e.call("commands", "create-subscription", b.Token, map[string]any{"scopeId": a.Root, "url": "https://b.example/h", "eventTypes": []string{"*"}})
	wantProblem(t, status, body, raw, 404, "", "errors.resource.not_found")
	status, body, raw = e.call("queries", "list-subscriptions", b.Token, map[string]any{"scopeId": a.Root})
	wantProblem(t, status, body, raw, 404, "", "errors.resource.not_found")
	if subs := e.subscriptions(b, ""); len(subs) != 0 {
		t.Fatalf("tenant B sees %v", subs)
	}
	// Tenant A's events never reach tenant B's subscriptions, even with the
	// same scope path given.
	rcv := newReceiver(t)
	subB := e.subscribe(b, b.Root, rcv.URL, "*")
	e.publish(e.event(a, "message.sent", []string{a.Root}, "msg_1"))
	e.drain()
	if n := len(e.deliveries(b, subB.SubscriptionID)); n != 0 || len(rcv.requests()) != 0 {
		t.Fatal("another tenant's event was delivered")
	}
	// A malformed id names no resource: 404, like an unknown or another
	// tenant's id (as Stripe answers), so a one-character mutation of a real
	// id tells nothing.
	for _, id := range []string{"sub_nope", "tnt_" + a.Root[4:], subB.SubscriptionID[:len(subB.SubscriptionID)-1] + "U"} {
		status, _, raw = e.call("queries", "list-deliveries", a.Token, map[string]any{"subscriptionId": id})
		if status != 404 {
			t.Errorf("list-deliveries of %q: %d %s, want 404", id, status, raw)
		}
	}
	for _, id := range []string{"scp_nope", "tnt_" + a.Root[4:]} {
		status, _, raw = e.call("commands", "create-subscription", a.Token, map[string]any{"scopeId": id, "url": rcv.URL, "eventTypes": []string{"*"}})
		if status != 404 {
			t.Errorf("create-subscription at scope %q: %d %s, want 404", id, status, raw)
		}
		status, _, raw = e.call("queries", "list-subscriptions", a.Token, map[string]any{"scopeId": id})
		if status != 404 {
			t.Errorf("list-subscriptions of scope %q: %d %s, want 404", id, status, raw)
		}
	}
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	tn := e.onboard("Acme")
	eu := e.scope(tn, tn.Root, "EU")
	us := e.scope(tn, tn.Root, "US")
	body := func(scope string) map[string]any {
		return map[string]any{"scopeId": scope, "url": "https://hooks.example.com/", "eventTypes": []string{"*"}}
	}
	euAdmin := e.grant(tn, "admin", eu)
	viewer := e.grant(tn, "viewer", tn.Root)
	sender := e.grant(tn, "sender", tn.Root)

	if status, _, raw := e.call("commands", "create-subscription", euAdmin, body(eu)); status != 200 {
		t.Fatalf("admin of EU at EU: %d %s", status, raw)
	}
	for _, c := range []struct{ token, scope string }{{euAdmin, us}, {euAdmin, tn.Root}, {viewer, tn.Root}, {sender, eu}} {
		status, b, raw := e.call("commands", "create-subscription", c.token, body(c.scope))
		wantProblem(t, status, b, raw, 403, "", "errors.auth.forbidden")
	}
	subs := e.subscriptions(tn, "")
	if len(subs) != 1 {
		t.Fatalf("subscriptions = %v", subs)
	}
	// Reads: a viewer reads; an admin of EU reads EU's, not the tenant's
	// whole list nor US's; a sender reads none.
	if status, _, raw := e.call("queries", "list-deliveries", viewer, map[string]any{"subscriptionId": subs[0]["subscriptionId"]}); status != 200 {
		t.Fatalf("viewer list-deliveries: %d %s", status, raw)
	}
	if status, _, raw := e.call("queries", "list-subscriptions", euAdmin, map[string]any{"scopeId": eu}); status != 200 {
		t.Fatalf("EU admin list at EU: %d %s", status, raw)
	}
	if status, _, raw := e.call("queries", "list-deliveries", euAdmin, map[string]any{"subscriptionId": subs[0]["subscriptionId"]}); status != 200 {
		t.Fatalf("EU admin list-deliveries of EU's: %d %s", status, raw)
	}
	status, b, raw := e.call("queries", "list-subscriptions", euAdmin, map[string]any{"scopeId": us})
	wantProblem(t, status, b, raw, 403, "", "errors.auth.forbidden")
	// Without a scope, a caller bound below the root lists the
	// subscriptions it may see (EU's), one that may list none an empty page.
	for _, c := range []struct {
		token string
		want  int
	}{{euAdmin, 1}, {sender, 0}} {
		status, b, raw := e.call("queries", "list-subscriptions", c.token, map[string]any{})
		items, _ := b["items"].([]any)
		if status != 200 || len(items) != c.want {
			t.Errorf("list-subscriptions without a scope: %d %s, want 200 with %d items", status, raw, c.want)
		}
	}
	status, b, raw = e.call("queries", "list-deliveries", sender, map[string]any{"subscriptionId": subs[0]["subscriptionId"]})
	wantProblem(t, status, b, raw, 403, "", "errors.auth.forbidden")
}

func TestListPaging(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	tn := e.onboard("Acme")
	eu := e.scope(tn, tn.Root, "EU")
	var created []string
	for i := 0; i < 5; i++ {
		out := e.subscribe(tn, tn.Root, fmt.Sprintf("https://hooks.example.com/%d", i), "message.sent", "message.delivered")
		created = append(created, out.SubscriptionID)
	}
	inEU := e.subscribe(tn, eu, "https://eu.example.com/", "*")

	// The whole tenant, newest first, in pages of 2.
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		in := map[string]any{"limit": 2}
		if cursor != "" {
			in["cursor"] = cursor
		}
		status, body, raw := e.call("queries", "list-subscriptions", tn.Token, in)
		if status != 200 {
			t.Fatalf("page %d: %d %s", page, status, raw)
		}
		if strings.Contains(raw, "whsec_") || strings.Contains(raw, "ecret") {
			t.Fatalf("a list shows a secret: %s", raw)
		}
		items := body["items"].([]any)
		for _, it := range items {
			m := it.(map[string]any)
			got = append(got, m["subscriptionId"].(string))
			if len(m) != 7 || m["status"] != "enabled" || m["createdAt"] == nil || m["updatedAt"] == nil {
				t.Fatalf("item = %v", m)
			}
		}
		if body["nextCursor"] == nil {
			if len(items) == 0 && page > 0 {
				t.Fatal("an empty last page")
			}
			break
		}
		cursor = body["nextCursor"].(string)
	}
	want := append([]string{inEU.SubscriptionID}, reverse(created)...)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("listed %v\nwant   %v", got, want)
	}
	first := e.subscriptions(tn, "")[1]
	if first["url"] != "https://hooks.example.com/4" || fmt.Sprint(first["eventTypes"]) != "[message.sent message.delivered]" || first["scopeId"] != tn.Root {
		t.Fatalf("item = %v", first)
	}
	// One scope's.
	if subs := e.subscriptions(tn, eu); len(subs) != 1 || subs[0]["subscriptionId"] != inEU.SubscriptionID {
		t.Fatalf("EU's = %v", subs)
	}
	if subs := e.subscriptions(tn, tn.Root); len(subs) != 5 {
		t.Fatalf("root's = %d", len(subs))
	}
	// Bad limits and cursors are 400.
	for _, in := range []map[string]any{{"limit": 101}, {"limit": -1}, {"cursor": "%%%"}, {"cursor": strings.Repeat("a", 1025)}} {
		status, body, raw := e.call("queries", "list-subscriptions", tn.Token, in)
		if status != 400 {
			t.Fatalf("%v: %d %s", in, status, raw)
		}
		_ = body
	}

	// Deliveries of one subscription, newest first, in pages.
	rcv := newReceiver(t)
	sub := e.subscribe(tn, tn.Root, rcv.URL, "*")
	var events []string
	for i := 0; i < 5; i++ {
		ev := e.event(tn, "message.sent", []string{tn.Root}, fmt.Sprintf("msg_%d", i))
		events = append(events, ev.ID)
		e.publish(ev)
	}
	e.drain()
	got = nil
	cursor = ""
	pages := 0
	for {
		in := map[string]any{"subscriptionId": sub.SubscriptionID, "limit": 2}
		if cursor != "" {
			in["cursor"] = cursor
		}
		status, body, raw := e.call("queries", "list-deliveries", tn.Token, in)
		if status != 200 {
			t.Fatalf("%d %s", status, raw)
		}
		pages++
		for _, it := range body["items"].([]any) {
			got = append(got, it.(map[string]any)["eventId"].(string))
		}
		if body["nextCursor"] == nil {
			break
		}
		cursor = body["nextCursor"].(string)
	}
	if strings.Join(got, " ") != strings.Join(reverse(events), " ") || pages != 3 {
		t.Fatalf("deliveries %v in %d pages, want %v", got, pages, reverse(events))
	}
	status, body, raw := e.call("queries", "list-deliveries", tn.Token, map[string]any{"subscriptionId": sub.SubscriptionID, "cursor": "!!"})
	wantProblem(t, status, body, raw, 400, "cursor", app.CodeInvalidCursor)
	status, body, raw = e.call("queries", "list-deliveries", tn.Token, map[string]any{"subscriptionId": sub.SubscriptionID})
	if status != 200 || len(body["items"].([]any)) != 5 {
		t.Fatalf("default limit: %d %s", status, raw)
	}
	// The contract's limits are 1..100: 0 is refused, not read as the default.
	status, body, raw = e.call("queries", "list-deliveries", tn.Token, map[string]any{"subscriptionId": sub.SubscriptionID, "limit": 0})
	wantProblem(t, status, body, raw, 400, "limit", "errors.validation.out_of_range")
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// The secret is shown once: stored only sealed (for the tenant and purpose),
// never in events or rows in the clear.
func TestSecretIsSealedAtRest(t *testing.T) {
	e := newEnv(t, options{allowPrivate: true})
	tn := e.onboard("Acme")
	sub := e.subscribe(tn, tn.Root, "https://hooks.example.com/", "*")
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sub.Secret, "whsec_"))
	if err != nil || len(key) != app.SecretBytes {
		t.Fatalf("secret %q: %d bytes, %v", sub.Secret, len(key), err)
	}
	other := e.subscribe(tn, tn.Root, "https://hooks.example.com/", "*")
	if other.Secret == sub.Secret {
		t.Fatal("two subscriptions share a secret")
	}
	evs := e.stream(tn.ID, adapters.SubscriptionStream(sub.SubscriptionID))
	rec, err := e.store.GetRecord(context.Background(), tn.ID, adapters.CollectionSubscriptions, sub.SubscriptionID)
	if err != nil {
		t.Fatal(err)
	}
	for _, blob := range [][]byte{evs[0].Data, rec.Data} {
		if bytes.Contains(blob, key) || bytes.Contains(blob, []byte(sub.Secret[6:])) {
			t.Fatal("the secret is stored in the clear")
		}
	}
	s, err := e.mod.App().Queries.ListDeliveries.Repo.Subscription(context.Background(), tn.ID, sub.SubscriptionID)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := e.sealer.Open(context.Background(), tn.ID, app.PurposeSubscriptionSecret, s.SealedSecret)
	if err != nil || !bytes.Equal(opened, key) {
		t.Fatalf("opened %v", err)
	}
	if _, err := e.sealer.Open(context.Background(), tn.ID, "messaging.channel-credentials", s.SealedSecret); err == nil {
		t.Fatal("the sealed secret opens for another purpose")
	}
	// The row is derived from the events: replaying the stream gives it.
	replayed, err := adapters.NewRepository(e.store, e.ids, e.clock).ReplaySubscription(context.Background(), tn.ID, sub.SubscriptionID)
	if err != nil || replayed.URL != s.URL || !bytes.Equal(replayed.SealedSecret, s.SealedSecret) || replayed.Version != s.Version {
		t.Fatalf("replayed %+v, %v", replayed, err)
	}
	u, _ := url.Parse(s.URL)
	if u.Host != "hooks.example.com" {
		t.Fatal(u)
	}
}
