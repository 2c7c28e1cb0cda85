package sandbox_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// The Standard Webhooks specification's test vector (the library's own
// tests carry it).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

var vectorTime = time.Unix(vectorTimestamp, 0)

func vectorHeader() http.Header {
	h := http.Header{}
	h.Set("webhook-id", vectorID)
	h.Set("webhook-timestamp", strconv.Itoa(vectorTimestamp))
	h.Set("webhook-signature", vectorSignature)
	return h
}

func TestSignMatchesSpecVector(t *testing.T) {
	sig, err := sandbox.Sign([]byte(vectorSecret), vectorID, vectorTime, []byte(vectorPayload))
	if err != nil || sig != vectorSignature {
		t.Fatalf("Sign = %q, %v; want %q", sig, err, vectorSignature)
	}
	// The library agrees (and so does a raw key).
	wh, _ := standardwebhooks.NewWebhook(vectorSecret)
	if lib, _ := wh.Sign(vectorID, vectorTime, []byte(vectorPayload)); lib != sig {
		t.Fatalf("library signs %q", lib)
	}
	if _, err := sandbox.Sign([]byte("whsec_!!!"), vectorID, vectorTime, nil); err == nil {
		t.Fatal("a malformed secret signed")
	}
}

func TestVerifySpecVector(t *testing.T) {
	p := newEnv(t).provider
	id, err := p.VerifyWebhook([]byte(vectorSecret), vectorHeader(), []byte(vectorPayload), vectorTime)
	if err != nil || id != vectorID {
		t.Fatalf("VerifyWebhook = %q, %v", id, err)
	}
}

func TestVerifyTolerance(t *testing.T) {
	p := newEnv(t).provider
	for _, c := range []struct {
		name string
		skew time.Duration // now - timestamp
		ok   bool
	}{
		{"now", 0, true},
		{"5 min old", 5 * time.Minute, true},
		{"5 min ahead", -5 * time.Minute, true},
		{"5 min 1 s old", 5*time.Minute + time.Second, false},
		{"5 min 1 s ahead", -5*time.Minute - time.Second, false},
		// The timestamp is whole seconds: it is compared with now's second,
		// so "5 min old" holds through that second's last fraction
		// (acceptance finding: it never held past the fraction 0).
		{"5 min 0.999 s old", 5*time.Minute + 999*time.Millisecond, true},
		{"5 min ahead of now's second", -5*time.Minute + 999*time.Millisecond, true},
		{"5 min 0.001 s ahead (301 s ahead of now's second)", -5*time.Minute - time.Millisecond, false},
		{"a day old", 24 * time.Hour, false},
		{"a day ahead", -24 * time.Hour, false},
	} {
		_, err := p.VerifyWebhook([]byte(vectorSecret), vectorHeader(), []byte(vectorPayload), vectorTime.Add(c.skew))
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !isBadSignature(err) {
			t.Errorf("%s: err = %v, want ErrBadSignature", c.name, err)
		}
	}
}

func isBadSignature(err error) bool {
	return errors.Is(err, app.ErrBadSignature) && errs.KindOf(err) == errs.KindUnauthenticated
}

func TestVerifyRefuses(t *testing.T) {
	p := newEnv(t).provider
	body := []byte(vectorPayload)
	resign := func(h http.Header, id string, ts int64, b []byte) {
		sig, _ := sandbox.Sign([]byte(vectorSecret), id, time.Unix(ts, 0), b)
		h.Set("webhook-signature", sig)
	}
	cases := map[string]struct {
		secret string
		header func(h http.Header)
		body   string
	}{
		"tampered body":          {body: `{"test": 2432232315}`},
		"tampered id":            {header: func(h http.Header) { h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJeK") }},
		"tampered timestamp":     {header: func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(vectorTimestamp+1)) }},
		"wrong secret":           {secret: "whsec_" + strings.Repeat("A", 32)},
		"empty secret":           {secret: " "},
		"malformed secret":       {secret: "whsec_%%%"},
		"missing id":             {header: func(h http.Header) { h.Del("webhook-id") }},
		"missing timestamp":      {header: func(h http.Header) { h.Del("webhook-timestamp") }},
		"missing signature":      {header: func(h http.Header) { h.Del("webhook-signature") }},
		"no headers":             {header: func(h http.Header) { h.Del("webhook-id"); h.Del("webhook-timestamp"); h.Del("webhook-signature") }},
		"timestamp not a number": {header: func(h http.Header) { h.Set("webhook-timestamp", "1614265330.5") }},
		"unknown version":        {header: func(h http.Header) { h.Set("webhook-signature", "v2,"+strings.TrimPrefix(vectorSignature, "v1,")) }},
		"signature without version": {header: func(h http.Header) {
			h.Set("webhook-signature", strings.TrimPrefix(vectorSignature, "v1,"))
		}},
		"id with a space": {header: func(h http.Header) { h.Set("webhook-id", "a b"); resign(h, "a b", vectorTimestamp, body) }},
		"id too long": {header: func(h http.Header) {
			long := strings.Repeat("x", 256)
			h.Set("webhook-id", long)
			resign(h, long, vectorTimestamp, body)
		}},
	}
	for name, c := range cases {
		h := vectorHeader()
		if c.header != nil {
			c.header(h)
		}
		sec, b := vectorSecret, vectorPayload
		if c.secret != "" {
			sec = c.secret
		}
		if c.body != "" {
			b = c.body
		}
		id, err := p.VerifyWebhook([]byte(sec), h, []byte(b), vectorTime)
		if err == nil || id != "" || !isBadSignature(err) {
			t.Errorf("%s: VerifyWebhook = %q, %v; want ErrBadSignature", name, id, err)
		}
	}
}

// TestVerifyMultipleSignatures: the header may carry several signatures
// (secret rotation); one match is enough, none is refused.
func TestVerifyMultipleSignatures(t *testing.T) {
	p := newEnv(t).provider
	other, _ := sandbox.Sign([]byte("whsec_"+strings.Repeat("B", 32)), vectorID, vectorTime, []byte(vectorPayload))
	for header, ok := range map[string]bool{
		other + " " + vectorSignature:                              true,
		vectorSignature + " " + other:                              true,
		"v2,abc " + other + " " + vectorSignature:                  true,
		"v1a,xyz " + vectorSignature:                               true,
		other + " v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=": false,
		other: false,
	} {
		h := vectorHeader()
		h.Set("webhook-signature", header)
		_, err := p.VerifyWebhook([]byte(vectorSecret), h, []byte(vectorPayload), vectorTime)
		if (err == nil) != ok {
			t.Errorf("%q: err = %v, want ok=%v", header, err, ok)
		}
	}
}

// TestVerifyRawKey: a secret kept as raw key bytes verifies as its whsec_ form.
func TestVerifyRawKey(t *testing.T) {
	p := newEnv(t).provider
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(vectorSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.VerifyWebhook(raw, vectorHeader(), []byte(vectorPayload), vectorTime); err != nil {
		t.Fatalf("raw key: %v", err)
	}
}

func TestParseWebhook(t *testing.T) {
	p := newEnv(t).provider
	ok := map[string]app.ProviderEvent{
		`{"type":"receipt","providerMessageId":"sbx_1","status":"delivered"}`: {Kind: app.EventReceipt, ProviderMessageID: "sbx_1", Status: domain.StatusDelivered},
		`{"type":"receipt","providerMessageId":"sbx_1","status":"undelivered","reason":"sandbox.carrier_rejected"}`: {
			Kind: app.EventReceipt, ProviderMessageID: "sbx_1", Status: domain.StatusUndelivered, Reason: "sandbox.carrier_rejected"},
		` {"status":"delivered","providerMessageId":"sbx_2","type":"receipt"} `: {Kind: app.EventReceipt, ProviderMessageID: "sbx_2", Status: domain.StatusDelivered},
		`{"type":"inbound","providerMessageId":"sbx_3","from":"+15550100005","to":"+15550000000","text":"hello"}`: {
			Kind: app.EventInbound, ProviderMessageID: "sbx_3", From: "+15550100005", To: "+15550000000", Text: "hello"},
	}
	for body, want := range ok {
		got, err := p.ParseWebhook([]byte(body))
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", body, got, err, want)
		}
	}
	bad := map[string]string{
		``:                    "",
		`null`:                "",
		`[]`:                  "",
		`"receipt"`:           "",
		`{`:                   "",
		`{}`:                  "type",
		`{"type":null}`:       "type",
		`{"type":1}`:          "type",
		`{"type":"delivery"}`: "type",
		`{"type":"RECEIPT","providerMessageId":"x","status":"delivered"}`: "type",
		`{"type":"receipt"}`:                                                                                   "providerMessageId",
		`{"type":"receipt","providerMessageId":"sbx_1"}`:                                                       "status",
		`{"type":"receipt","providerMessageId":"","status":"delivered"}`:                                       "providerMessageId",
		`{"type":"receipt","providerMessageId":7,"status":"delivered"}`:                                        "providerMessageId",
		`{"type":"receipt","providerMessageId":"sbx_1","status":"sent"}`:                                       "status",
		`{"type":"receipt","providerMessageId":"sbx_1","status":"failed"}`:                                     "status",
		`{"type":"receipt","providerMessageId":"sbx_1","status":true}`:                                         "status",
		`{"type":"receipt","providerMessageId":"sbx_1","status":"delivered","reason":5}`:                       "reason",
		`{"type":"receipt","providerMessageId":"sbx_1","status":"delivered","extra":1}`:                        "extra",
		`{"type":"receipt","providerMessageId":"sbx_1","status":"delivered","text":"x"}`:                       "text",
		`{"type":"receipt","providerMessageId":"sbx_1","status":"delivered"} {}`:                               "",
		`{"type":"receipt","providerMessageId":"` + strings.Repeat("x", 256) + `","status":"delivered"}`:       "providerMessageId",
		`{"type":"inbound","providerMessageId":"sbx_3","from":"a","to":"b"}`:                                   "text",
		`{"type":"inbound","providerMessageId":"sbx_3","from":"a","to":"b","text":""}`:                         "text",
		`{"type":"inbound","providerMessageId":"sbx_3","to":"b","text":"x"}`:                                   "from",
		`{"type":"inbound","providerMessageId":"sbx_3","from":"a","to":["b"],"text":"x"}`:                      "to",
		`{"type":"inbound","providerMessageId":"sbx_3","from":"a","to":"b","text":"x","status":"delivered"}`:   "status",
		"{\"type\":\"inbound\",\"providerMessageId\":\"sbx_3\",\"from\":\"a\",\"to\":\"b\",\"text\":\"\xff\"}": "",
		// Keys match fields exactly (no case folding) and only once.
		`{"TYPE":"receipt","providerMessageId":"sbx_1","status":"delivered"}`:                        "type",
		`{"type":"receipt","providerMessageId":"sbx_1","STATUS":"delivered"}`:                        "STATUS",
		`{"type":"receipt","providerMessageId":"sbx_1","status":"undelivered","Status":"delivered"}`: "Status",
		`{"type":"receipt","providerMessageId":"sbx_1","status":"undelivered","status":"delivered"}`: "status",
		`{"type":"inbound","type":"receipt","providerMessageId":"sbx_1","status":"delivered"}`:       "type",
		`{"type":"inbound","providerMessageId":"sbx_3","from":"a","to":"b","Text":"x","text":"y"}`:   "Text",
	}
	for body, field := range bad {
		_, err := p.ParseWebhook([]byte(body))
		e := errs.As(err)
		if err == nil || e.Kind != errs.KindInvalid {
			t.Errorf("%s: err = %v, want errs.Invalid", body, err)
			continue
		}
		if field != "" && (len(e.Fields) == 0 || e.Fields[0].Field != field) {
			t.Errorf("%s: fields %+v, want %s first", body, e.Fields, field)
		}
	}
}

// A key that is not exactly a field's name is an unknown field, a key twice
// a duplicate, like the bodies of the API.
func TestParseWebhookFieldNamesAreExact(t *testing.T) {
	p := sandbox.New(sandbox.Deps{})
	for body, code := range map[string]string{
		`{"type":"receipt","providerMessageId":"sbx_1","STATUS":"delivered"}`:                        errs.CodeUnknownField,
		`{"type":"receipt","providerMessageId":"sbx_1","status":"undelivered","Status":"delivered"}`: errs.CodeUnknownField,
		`{"type":"receipt","providerMessageId":"sbx_1","status":"undelivered","status":"delivered"}`: "errors.request.duplicate_field",
		`{"type":"inbound","type":"receipt","providerMessageId":"sbx_1","status":"delivered"}`:       "errors.request.duplicate_field",
	} {
		_, err := p.ParseWebhook([]byte(body))
		if e := errs.As(err); e.Kind != errs.KindInvalid || e.Code != code || e.Params["field"] == nil {
			t.Errorf("%s: err = %v (%s, field %v), want %s naming the field", body, err, e.Code, e.Params["field"], code)
		}
	}
}

// An inbound text with control characters is bad input (400), not a body
// that later fails to store (review P1: a 204 and a lost message, or a 503).
func TestParseWebhookRefusesControlCharacters(t *testing.T) {
	p := sandbox.New(sandbox.Deps{})
	for _, text := range []string{strings.Repeat("\x00", 34050), "a\x07b", "del\x7f"} {
		body, _ := json.Marshal(map[string]string{"type": "inbound", "providerMessageId": "p1", "from": "+15551230000", "to": "+15550001111", "text": text})
		_, err := p.ParseWebhook(body)
		if errs.KindOf(err) != errs.KindInvalid {
			t.Errorf("text %q...: err = %v, want 400", text[:min(len(text), 8)], err)
		}
	}
	ok, _ := json.Marshal(map[string]string{"type": "inbound", "providerMessageId": "p1", "from": "+15551230000", "to": "+15550001111", "text": "line\r\n\ttabbed <b>"})
	if _, err := p.ParseWebhook(ok); err != nil {
		t.Fatalf("tab, CR, LF and < are allowed: %v", err)
	}
}
