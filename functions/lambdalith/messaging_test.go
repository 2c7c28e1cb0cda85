package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// messagingTenant is a tenant of the messaging walkthroughs: an sms channel
// in scope eu and an email channel in scope us, both sandbox.
type messagingTenant struct {
	key, tenantID, root, eu, us string
	sms, email                  string
}

func setupMessagingTenant(t *testing.T, c *client, operatorKey, name string) messagingTenant {
	t.Helper()
	on := c.must(200, "/commands/onboard-tenant", operatorKey, `{"name":"`+name+`","tier":"pooled"}`)
	mt := messagingTenant{key: str(on.Body["apiKey"]), tenantID: str(on.Body["tenantId"]), root: str(on.Body["rootScopeId"])}
	mt.eu = str(c.must(200, "/commands/create-scope", mt.key, `{"parentScopeId":"`+mt.root+`","name":"eu"}`).Body["scopeId"])
	mt.us = str(c.must(200, "/commands/create-scope", mt.key, `{"parentScopeId":"`+mt.root+`","name":"us"}`).Body["scopeId"])
	mt.sms = str(c.must(200, "/commands/create-channel", mt.key,
		`{"scopeId":"`+mt.eu+`","name":"SMS","type":"sms","provider":"sandbox","from":"+15550001111"}`).Body["channelId"])
	mt.email = str(c.must(200, "/commands/create-channel", mt.key,
		`{"scopeId":"`+mt.us+`","name":"Mail","type":"email","provider":"sandbox","from":"noreply@example.com","config":{"replyTo":"help@example.com"}}`).Body["channelId"])
	return mt
}

// ids of a list page's items, and its next cursor ("" for null).
func pageIDs(t *testing.T, r reply, idField string) ([]string, string) {
	t.Helper()
	items, ok := r.Body["items"].([]any)
	if !ok {
		t.Fatalf("no items: %s", r.Raw)
	}
	var out []string
	for _, it := range items {
		out = append(out, str(it.(map[string]any)[idField]))
	}
	return out, str(r.Body["nextCursor"])
}

// problemFields renders a problem's errors as "field=code", in order.
func problemFields(r reply) []string {
	list, _ := r.Body["errors"].([]any)
	var out []string
	for _, e := range list {
		m := e.(map[string]any)
		out = append(out, str(m["field"])+"="+str(m["code"]))
	}
	return out
}

// TestMessaging runs the messaging contract (section 6) against the
// production wiring on both stores: channels, sends, cancels, reads, lists
// with every filter and paging, history, tenant isolation, every validation
// rule, and batches. Work is not started: messages keep the status the
// commands gave them.
func TestMessaging(t *testing.T) {
	for _, store := range []string{"embedded", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			const operatorKey = "sbo_messaging"
			app := buildOn(t, store, map[string]string{"SWITCHBOARD_OPERATOR_KEY": operatorKey, "SWITCHBOARD_PUBLIC_URL": "https://sb.example.com"})
			c := &client{t: t, h: app.Server}
			mt := setupMessagingTenant(t, c, operatorKey, "Acme")
			messagingWalkthrough(t, c, operatorKey, mt)
		})
	}
}

func messagingWalkthrough(t *testing.T, c *client, operatorKey string, mt messagingTenant) {
	key := mt.key

	// Channels: a sandbox channel's answer carried the secret once; queries never show secrets.
	ch := c.must(200, "/commands/create-channel", key, `{"scopeId":"`+mt.eu+`","name":"Spare","type":"sms","provider":"sandbox","from":"Acme","credentials":{"token":"tok-123"}}`)
	if !strings.HasPrefix(str(ch.Body["inboundSecret"]), "whsec_") || str(ch.Body["inboundWebhookUrl"]) != "https://sb.example.com/webhooks/sandbox/"+str(ch.Body["channelId"]) {
		t.Fatalf("create-channel: %s", ch.Raw)
	}
	spare := str(ch.Body["channelId"])
	got := c.must(200, "/queries/get-channel", key, `{"channelId":"`+spare+`"}`)
	if got.Body["scopeId"] != mt.eu || got.Body["from"] != "Acme" || got.Body["type"] != "sms" || strings.Contains(got.Raw, "tok-123") ||
		strings.Contains(got.Raw, "redential") || strings.Contains(got.Raw, "ecret") || got.Body["inboundWebhookUrl"] != ch.Body["inboundWebhookUrl"] {
		t.Fatalf("get-channel: %s", got.Raw)
	}
	eventually(t, 10*time.Second, "channels listed", func() bool {
		all, _ := pageIDs(t, c.must(200, "/queries/list-channels", key, `{}`), "channelId")
		eu, _ := pageIDs(t, c.must(200, "/queries/list-channels", key, `{"scopeId":"`+mt.eu+`"}`), "channelId")
		return reflect.DeepEqual(all, []string{spare, mt.email, mt.sms}) && reflect.DeepEqual(eu, []string{spare, mt.sms})
	})

	// Five messages: sms in eu, email in us; one scheduled; one canceled.
	send := func(body string) (string, string, string) {
		t.Helper()
		r := c.must(202, "/commands/send-message", key, body)
		return str(r.Body["messageId"]), str(r.Body["status"]), r.Header.Get("X-Invocation-Id")
	}
	m1, s1, _ := send(`{"channelId":"` + mt.sms + `","to":"+15551230000","content":{"text":"one"},"metadata":{"orderId":"42"}}`)
	m2, s2, _ := send(`{"channelId":"` + mt.email + `","to":"ann@example.com","content":{"subject":"Two","text":"two"}}`)
	m3, s3, sendInv := send(`{"channelId":"` + mt.sms + `","to":"+15551230000","content":{"text":"three"}}`)
	sendAt := time.Now().Add(48 * time.Hour).UTC()
	m4, s4, _ := send(`{"channelId":"` + mt.email + `","to":"bob@example.com","content":{"subject":"Four","html":"<p>four</p>"},"sendAt":"` + sendAt.Format(time.RFC3339Nano) + `"}`)
	m5, s5, _ := send(`{"channelId":"` + mt.sms + `","to":"+15551230000","content":{"text":"five"}}`)
	if s1 != "queued" || s2 != "queued" || s3 != "queued" || s4 != "scheduled" || s5 != "queued" {
		t.Fatalf("statuses %s %s %s %s %s", s1, s2, s3, s4, s5)
	}
	cancel := c.must(200, "/commands/cancel-message", key, `{"messageId":"`+m3+`"}`)
	if cancel.Raw != `{"messageId":"`+m3+`","status":"canceled"}` {
		t.Fatalf("cancel: %s", cancel.Raw)
	}
	cancelInv := cancel.Header.Get("X-Invocation-Id")
	again := c.must(409, "/commands/cancel-message", key, `{"messageId":"`+m3+`"}`)
	if again.Body["code"] != "errors.message.not_cancelable" {
		t.Fatalf("second cancel: %s", again.Raw)
	}

	// get-message: the contract's message.
	g := c.must(200, "/queries/get-message", key, `{"messageId":"`+m1+`"}`)
	var msg map[string]any
	_ = json.Unmarshal([]byte(g.Raw), &msg)
	keys := make([]string, 0, len(msg))
	for k := range msg {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"attempts", "channelId", "content", "createdAt", "direction", "from", "messageId", "metadata", "scopeId", "sendAt", "status", "statusReason", "to", "updatedAt"}
	if !reflect.DeepEqual(keys, wantKeys) || msg["channelId"] != mt.sms || msg["scopeId"] != mt.eu || msg["direction"] != "outbound" ||
		msg["from"] != "+15550001111" || msg["status"] != "queued" || msg["statusReason"] != nil || msg["sendAt"] != nil ||
		msg["attempts"] != 0.0 || !reflect.DeepEqual(msg["metadata"], map[string]any{"orderId": "42"}) ||
		!reflect.DeepEqual(msg["content"], map[string]any{"text": "one"}) {
		t.Fatalf("get-message: %s", g.Raw)
	}
	if ts, err := time.Parse("2006-01-02T15:04:05.000Z", str(msg["createdAt"])); err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("createdAt %q: %v", msg["createdAt"], err)
	}
	g4 := c.must(200, "/queries/get-message", key, `{"messageId":"`+m4+`"}`)
	// sendAt is kept rounded up to the millisecond (never released early).
	wantSendAt := sendAt.UTC().Truncate(time.Millisecond)
	if wantSendAt.Before(sendAt) {
		wantSendAt = wantSendAt.Add(time.Millisecond)
	}
	if g4.Body["sendAt"] != wantSendAt.Format("2006-01-02T15:04:05.000Z") || g4.Body["status"] != "scheduled" {
		t.Fatalf("scheduled message: %s", g4.Raw)
	}

	// Paging: limit 2 over the five, newest first, no duplicate, no gap.
	var paged []string
	cursor := ""
	eventually(t, 10*time.Second, "five messages listed", func() bool {
		ids, _ := pageIDs(t, c.must(200, "/queries/list-messages", key, `{"limit":100}`), "messageId")
		return len(ids) == 5
	})
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more than 3 pages of 2 for 5 messages")
		}
		body := `{"limit":2}`
		if cursor != "" {
			body = `{"limit":2,"cursor":"` + cursor + `"}`
		}
		ids, next := pageIDs(t, c.must(200, "/queries/list-messages", key, body), "messageId")
		if len(ids) > 2 {
			t.Fatalf("page of %d", len(ids))
		}
		paged = append(paged, ids...)
		if next == "" {
			break
		}
		cursor = next
	}
	if want := []string{m5, m4, m3, m2, m1}; !reflect.DeepEqual(paged, want) {
		t.Fatalf("paged = %v\nwant    %v", paged, want)
	}

	// Every filter answers from its own list.
	filters := []struct {
		body string
		want []string
	}{
		{`{"scopeId":"` + mt.eu + `"}`, []string{m5, m3, m1}},
		{`{"scopeId":"` + mt.us + `"}`, []string{m4, m2}},
		{`{"scopeId":"` + mt.root + `"}`, nil}, // the scope itself: no channel is in the root
		{`{"channelId":"` + mt.sms + `"}`, []string{m5, m3, m1}},
		{`{"channelId":"` + mt.email + `"}`, []string{m4, m2}},
		{`{"status":"queued"}`, []string{m5, m2, m1}},
		{`{"status":"scheduled"}`, []string{m4}},
		{`{"status":"canceled"}`, []string{m3}},
		{`{"status":"sent"}`, nil},
		{`{"scopeId":"` + mt.eu + `","status":"queued"}`, []string{m5, m1}},
		{`{"channelId":"` + mt.sms + `","status":"canceled"}`, []string{m3}},
		{`{"scopeId":"` + mt.eu + `","channelId":"` + mt.sms + `"}`, []string{m5, m3, m1}},
		{`{"scopeId":"` + mt.us + `","channelId":"` + mt.sms + `"}`, nil},
		{`{"channelId":"` + spare + `"}`, nil},
	}
	for _, f := range filters {
		var last []string
		eventually(t, 10*time.Second, "list-messages "+f.body, func() bool {
			last, _ = pageIDs(t, c.must(200, "/queries/list-messages", key, f.body), "messageId")
			return reflect.DeepEqual(last, f.want)
		})
	}
	// Paging within a filter.
	p1 := c.must(200, "/queries/list-messages", key, `{"channelId":"`+mt.sms+`","limit":2}`)
	ids1, next := pageIDs(t, p1, "messageId")
	ids2, last := pageIDs(t, c.must(200, "/queries/list-messages", key, `{"channelId":"`+mt.sms+`","limit":2,"cursor":"`+next+`"}`), "messageId")
	if !reflect.DeepEqual(append(ids1, ids2...), []string{m5, m3, m1}) || next == "" || last != "" {
		t.Fatalf("sms pages %v %v (next %q, last %q)", ids1, ids2, next, last)
	}

	// History: the whole stream, oldest first, with the invocations.
	h := c.must(200, "/queries/get-message-history", key, `{"messageId":"`+m3+`"}`)
	evs, _ := h.Body["events"].([]any)
	if len(evs) != 2 {
		t.Fatalf("history: %s", h.Raw)
	}
	for i, want := range []struct{ typ, inv string }{{"messaging.message-accepted", sendInv}, {"messaging.message-canceled", cancelInv}} {
		ev := evs[i].(map[string]any)
		if ev["type"] != want.typ || ev["invocationId"] != want.inv || ev["version"] != float64(i+1) ||
			!strings.HasPrefix(str(ev["eventId"]), "evt_") || !strings.HasPrefix(str(ev["principal"]), "service_account:sva_") ||
			ev["data"].(map[string]any)["messageId"] != m3 || len(str(ev["occurredAt"])) != len("2006-01-02T15:04:05.000Z") {
			t.Fatalf("history event %d: %v (want %s by %s)", i, ev, want.typ, want.inv)
		}
	}

	// Another tenant: every id of this one is a 404, and its lists are empty.
	other := setupMessagingTenant(t, c, operatorKey, "Globex")
	for _, q := range []struct{ path, body string }{
		{"/queries/get-message", `{"messageId":"` + m1 + `"}`},
		{"/queries/get-message-history", `{"messageId":"` + m1 + `"}`},
		{"/commands/cancel-message", `{"messageId":"` + m1 + `"}`},
		{"/queries/get-channel", `{"channelId":"` + mt.sms + `"}`},
		{"/commands/send-message", `{"channelId":"` + mt.sms + `","to":"+15551230000","content":{"text":"x"}}`},
		{"/queries/list-messages", `{"channelId":"` + mt.sms + `"}`},
		{"/queries/list-messages", `{"scopeId":"` + mt.eu + `"}`},
		{"/queries/list-channels", `{"scopeId":"` + mt.eu + `"}`},
		{"/commands/create-channel", `{"scopeId":"` + mt.eu + `","name":"x","type":"sms","provider":"sandbox","from":"+15550001111"}`},
	} {
		r := c.must(404, q.path, other.key, q.body)
		if r.Body["code"] != "errors.resource.not_found" {
			t.Fatalf("%s: %s", q.path, r.Raw)
		}
	}
	if ids, _ := pageIDs(t, c.must(200, "/queries/list-messages", other.key, `{}`), "messageId"); len(ids) != 0 {
		t.Fatalf("other tenant lists %v", ids)
	}
	// Malformed ids are ids of nothing.
	for _, q := range []struct{ path, body string }{
		{"/queries/get-message", `{"messageId":"msg_nope"}`},
		{"/queries/get-channel", `{"channelId":"` + m1 + `"}`},
		{"/commands/send-message", `{"channelId":"chn_nope","to":"+15551230000","content":{"text":"x"}}`},
	} {
		c.must(404, q.path, key, q.body)
	}

	messagingValidation(t, c, mt)
	messagingBatch(t, c, mt)
}

// messagingValidation: every rule of send-message and create-channel answers
// 400 with the field codes; the boundaries are accepted.
func messagingValidation(t *testing.T, c *client, mt messagingTenant) {
	sms := func(rest string) string { return `{"channelId":"` + mt.sms + `",` + rest + `}` }
	email := func(rest string) string { return `{"channelId":"` + mt.email + `",` + rest + `}` }
	at := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339Nano) }
	meta := func(n int) string {
		var kv []string
		for i := range n {
			kv = append(kv, fmt.Sprintf(`"k%02d":"v"`, i))
		}
		return "{" + strings.Join(kv, ",") + "}"
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name string
		body string
		want []string // nil: accepted (202)
	}{
		{"sms to not E.164", sms(`"to":"5551230000","content":{"text":"x"}`), []string{"to=errors.validation.e164"}},
		{"sms to with leading zero", sms(`"to":"+0551230000","content":{"text":"x"}`), []string{"to=errors.validation.e164"}},
		{"sms to 16 digits", sms(`"to":"+1234567890123456","content":{"text":"x"}`), []string{"to=errors.validation.e164"}},
		{"sms to missing", sms(`"content":{"text":"x"}`), []string{"to=errors.validation.required"}},
		{"sms text missing", sms(`"to":"+15551230000","content":{}`), []string{"content.text=errors.validation.required"}},
		{"sms text 1601", sms(`"to":"+15551230000","content":{"text":"` + long(1601) + `"}`), []string{"content.text=errors.validation.too_long"}},
		{"sms text 1600", sms(`"to":"+15551230000","content":{"text":"` + strings.Repeat("é", 1600) + `"}`), nil},
		{"sms control character", sms(`"to":"+15551230000","content":{"text":"a\u0007b"}`), []string{"content.text=errors.validation.invalid"}},
		{"sms subject and html", sms(`"to":"+15551230000","content":{"text":"x","subject":"s","html":"<p>"}`),
			[]string{"content.subject=errors.validation.invalid", "content.html=errors.validation.invalid"}},
		{"email display name", email(`"to":"Ann <ann@example.com>","content":{"subject":"s","text":"x"}`), []string{"to=errors.validation.email"}},
		{"email not an address", email(`"to":"ann","content":{"subject":"s","text":"x"}`), []string{"to=errors.validation.email"}},
		{"email subject missing", email(`"to":"ann@example.com","content":{"text":"x"}`), []string{"content.subject=errors.validation.required"}},
		{"email subject 999", email(`"to":"ann@example.com","content":{"subject":"` + long(999) + `","text":"x"}`), []string{"content.subject=errors.validation.too_long"}},
		{"email subject 998", email(`"to":"ann@example.com","content":{"subject":"` + long(998) + `","text":"x"}`), nil},
		{"email without text or html", email(`"to":"ann@example.com","content":{"subject":"s"}`), []string{"content=errors.validation.required"}},
		{"email content 64 KiB + 1", email(`"to":"ann@example.com","content":{"subject":"s","text":"` + long(64*1024-1) + `","html":"xx"}`), []string{"content=errors.validation.too_long"}},
		{"email html 64 KiB of markup", email(`"to":"ann@example.com","content":{"subject":"s","html":"` + strings.Repeat("<&>", 64*1024/3) + `"}`), nil},
		{"email content 64 KiB", email(`"to":"ann@example.com","content":{"subject":"s","text":"` + long(64*1024-2) + `","html":"x"}`), nil},
		{"sendAt past", sms(`"to":"+15551230000","content":{"text":"x"},"sendAt":"` + at(-time.Minute) + `"`), []string{"sendAt=errors.validation.range"}},
		{"sendAt beyond 30 days", sms(`"to":"+15551230000","content":{"text":"x"},"sendAt":"` + at(30*24*time.Hour+time.Minute) + `"`), []string{"sendAt=errors.validation.range"}},
		{"sendAt within 30 days", sms(`"to":"+15551230000","content":{"text":"x"},"sendAt":"` + at(30*24*time.Hour-time.Minute) + `"`), nil},
		{"sendAt malformed", sms(`"to":"+15551230000","content":{"text":"x"},"sendAt":"tomorrow"`), []string{"sendAt=errors.validation.datetime"}},
		{"sendAt with a comma fraction (ISO 8601, not RFC 3339)", sms(`"to":"+15551230000","content":{"text":"x"},"sendAt":"2099-01-01T00:00:00,5Z"`), []string{"sendAt=errors.validation.datetime"}},
		{"metadata 21 keys", sms(`"to":"+15551230000","content":{"text":"x"},"metadata":` + meta(21)), []string{"metadata=errors.validation.too_long"}},
		{"metadata 20 keys", sms(`"to":"+15551230000","content":{"text":"x"},"metadata":` + meta(20)), nil},
		{"metadata key 41", sms(`"to":"+15551230000","content":{"text":"x"},"metadata":{"` + long(41) + `":"v"}`), []string{"metadata." + long(40) + "…=errors.validation.too_long"}},
		{"metadata empty key", sms(`"to":"+15551230000","content":{"text":"x"},"metadata":{"":"v"}`), []string{"metadata.=errors.validation.too_short"}},
		{"metadata value 501", sms(`"to":"+15551230000","content":{"text":"x"},"metadata":{"k":"` + long(501) + `"}`), []string{"metadata.k=errors.validation.too_long"}},
		{"metadata limits", sms(`"to":"+15551230000","content":{"text":"x"},"metadata":{"` + long(40) + `":"` + long(500) + `"}`), nil},
		{"all at once", email(`"to":"x","content":{"subject":"` + long(999) + `"},"sendAt":"` + at(-time.Hour) + `","metadata":{"k":"` + long(501) + `"}`),
			[]string{"to=errors.validation.email", "content.subject=errors.validation.too_long", "content=errors.validation.required",
				"sendAt=errors.validation.range", "metadata.k=errors.validation.too_long"}},
		{"unknown field", sms(`"to":"+15551230000","content":{"text":"x"},"priority":1`), []string{"priority=errors.request.unknown_field"}},
		{"wrong type", sms(`"to":"+15551230000","content":{"text":1}`), []string{"content.text=errors.validation.type"}},
		{"no channel", `{"to":"+15551230000","content":{"text":"x"}}`, []string{"channelId=errors.validation.required"}},
	}
	for _, tc := range cases {
		if tc.want == nil {
			c.must(202, "/commands/send-message", mt.key, tc.body)
			continue
		}
		r := c.must(400, "/commands/send-message", mt.key, tc.body)
		if got := problemFields(r); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: fields %v, want %v (%s)", tc.name, got, tc.want, r.Raw)
		}
	}

	channelCases := []struct {
		name string
		body string
		want []string
	}{
		{"all at once", `{"scopeId":"` + mt.eu + `","name":"","type":"fax","provider":"nope"}`,
			[]string{"name=errors.validation.required", "type=errors.validation.one_of", "provider=errors.validation.one_of"}},
		{"sms from", `{"scopeId":"` + mt.eu + `","name":"n","type":"sms","provider":"sandbox","from":"Acme-Corp-Ltd"}`, []string{"from=errors.validation.sender"}},
		{"email from", `{"scopeId":"` + mt.eu + `","name":"n","type":"email","provider":"sandbox","from":"+15550001111"}`, []string{"from=errors.validation.email"}},
		{"name 201", `{"scopeId":"` + mt.eu + `","name":"` + long(201) + `","type":"sms","provider":"sandbox","from":"+15550001111"}`, []string{"name=errors.validation.too_long"}},
		{"config limits", `{"scopeId":"` + mt.eu + `","name":"n","type":"sms","provider":"sandbox","from":"+15550001111","config":{"` + long(65) + `":"v","k":"` + long(4097) + `"}}`,
			[]string{"config." + long(64) + "…=errors.validation.too_long", "config.k=errors.validation.too_long"}},
		{"credentials keys", `{"scopeId":"` + mt.eu + `","name":"n","type":"sms","provider":"sandbox","from":"+15550001111","credentials":` + meta(21) + `}`,
			[]string{"credentials=errors.validation.too_long"}},
		{"no scope", `{"name":"n","type":"sms","provider":"sandbox","from":"+15550001111"}`, []string{"scopeId=errors.validation.required"}},
	}
	for _, tc := range channelCases {
		r := c.must(400, "/commands/create-channel", mt.key, tc.body)
		if got := problemFields(r); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("create-channel %s: fields %v, want %v (%s)", tc.name, got, tc.want, r.Raw)
		}
	}
	// An sms sender's message names both forms it may take (acceptance
	// finding: it named E.164 alone).
	if r := c.must(400, "/commands/create-channel", mt.key, channelCases[1].body); !strings.Contains(r.Raw, "E.164 form or an alphanumeric sender id (1 to 11 letters, digits and spaces)") {
		t.Errorf("create-channel sms from: the message does not name the alphanumeric sender id: %s", r.Raw)
	}
	for _, body := range []string{`{"status":"bogus"}`, `{"limit":101}`, `{"limit":0}`, `{"limit":0.5}`, `{"cursor":"%%%"}`} {
		c.must(400, "/queries/list-messages", mt.key, body)
	}
	c.must(400, "/queries/list-channels", mt.key, `{"limit":101}`)
	c.must(400, "/commands/rebuild-read-models", mt.key, `{}`)
}

// messagingBatch: send-message items of POST /commands answer 202 each (and
// their own 400), with per-item idempotency keys.
func messagingBatch(t *testing.T, c *client, mt messagingTenant) {
	body := `{"commands":[` +
		`{"name":"send-message","input":{"channelId":"` + mt.sms + `","to":"+15551230000","content":{"text":"b1"}},"idempotencyKey":"batch-1"},` +
		`{"name":"send-message","input":{"channelId":"` + mt.email + `","to":"ann@example.com","content":{"subject":"b2","text":"b2"}},"idempotencyKey":"batch-2"},` +
		`{"name":"send-message","input":{"channelId":"` + mt.sms + `","to":"nope","content":{"text":"b3"}}},` +
		`{"name":"send-message","input":{"channelId":"` + mt.sms + `","to":"+15551230000","content":{"text":"b4"}}}]}`
	r := c.must(200, "/commands", mt.key, body)
	results, _ := r.Body["results"].([]any)
	if len(results) != 4 {
		t.Fatalf("batch: %s", r.Raw)
	}
	var sent []string
	for i, want := range []float64{202, 202, 400, 202} {
		res := results[i].(map[string]any)
		b, _ := res["body"].(map[string]any)
		if res["status"] != want {
			t.Fatalf("batch item %d: %v", i, res)
		}
		if want == 202 {
			if b["status"] != "queued" || !strings.HasPrefix(str(b["messageId"]), "msg_") {
				t.Fatalf("batch item %d: %v", i, res)
			}
			sent = append(sent, str(b["messageId"]))
		} else if b["code"] != "errors.validation.failed" {
			t.Fatalf("batch item %d: %v", i, res)
		}
	}
	if len(slices.Compact(slices.Clone(sent))) != 3 {
		t.Fatalf("batch message ids %v", sent)
	}
	for _, id := range sent {
		c.must(200, "/queries/get-message", mt.key, `{"messageId":"`+id+`"}`)
	}
	// The keyed items replay their first answers; the others send again.
	r = c.must(200, "/commands", mt.key, body)
	results, _ = r.Body["results"].([]any)
	for i := range 2 {
		if b := results[i].(map[string]any)["body"].(map[string]any); b["messageId"] != sent[i] {
			t.Fatalf("replayed item %d: %v, want %s", i, b, sent[i])
		}
	}
	if b := results[3].(map[string]any)["body"].(map[string]any); b["messageId"] == sent[2] {
		t.Fatal("an unkeyed item replayed")
	}
}
