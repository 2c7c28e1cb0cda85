package adapters_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/webhooks/adapters"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// The Standard Webhooks specification's test vector.
func TestSignMatchesTheSpecVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1614265330, 0)
	payload := []byte(`{"test": 2432232314}`)
	sig, err := adapters.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, payload)
	if err != nil || sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("Sign = %q, %v", sig, err)
	}
	wh, _ := standardwebhooks.NewWebhook(secret)
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", sig)
	if err := wh.VerifyIgnoringTimestamp(payload, h); err != nil {
		t.Fatal(err)
	}
}

func TestGuardControl(t *testing.T) {
	g := &adapters.Guard{}
	for _, a := range []string{"127.0.0.1:80", "[::1]:443", "[::ffff:127.0.0.1]:80", "169.254.169.254:80", "[fe80::1%eth0]:80",
		"10.0.0.1:8080", "100.64.0.1:80", "0.0.0.0:80", "[::]:80", "[fd00:ec2::254]:80", "[64:ff9b::a9fe:a9fe]:80", "garbage"} {
		if err := g.Control("tcp", a, nil); !errors.Is(err, adapters.ErrForbiddenAddress) {
			t.Errorf("Control(%s) = %v, want forbidden", a, err)
		}
	}
	for _, a := range []string{"93.184.216.34:443", "[2606:4700:4700::1111]:443", "[::ffff:93.184.216.34]:80"} {
		if err := g.Control("tcp", a, nil); err != nil {
			t.Errorf("Control(%s) = %v", a, err)
		}
	}
	if err := (&adapters.Guard{AllowPrivate: true}).Control("tcp", "127.0.0.1:80", nil); err != nil {
		t.Fatalf("local mode: %v", err)
	}
}

type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestGuardDialsOnlyAllowedAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	res := resolver{"loop.example": {netip.MustParseAddr("127.0.0.1")}, "mapped.example": {netip.MustParseAddr("::ffff:127.0.0.1")}}
	strict := &adapters.Guard{Resolver: res}
	for _, host := range []string{"127.0.0.1", "loop.example", "mapped.example", "localhost", "metadata.google.internal"} {
		c, err := strict.DialContext(context.Background(), "tcp", net.JoinHostPort(host, port))
		if !errors.Is(err, adapters.ErrForbiddenAddress) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("dial %s: %v, want forbidden", host, err)
		}
	}
	local := &adapters.Guard{Resolver: res, AllowPrivate: true}
	for _, host := range []string{"127.0.0.1", "loop.example", "mapped.example"} {
		c, err := local.DialContext(context.Background(), "tcp", net.JoinHostPort(host, port))
		if err != nil {
			t.Fatalf("local dial %s: %v", host, err)
		}
		c.Close()
	}
	if _, err := strict.DialContext(context.Background(), "tcp", "nowhere.example:80"); err == nil {
		t.Fatal("an unknown host dialed")
	}
	// Creation-time check.
	for raw, want := range map[string]bool{"http://loop.example/": true, "http://nowhere.example/": false, "http://[::ffff:10.0.0.1]/": true} {
		u, _ := url.Parse(raw)
		err := strict.Check(context.Background(), u)
		e := errs.As(err)
		if got := len(e.Fields) == 1 && e.Fields[0].Code == domain.CodeTargetForbidden; got != want || (err != nil && !want) {
			t.Fatalf("Check(%s) = %v", raw, err)
		}
	}
}

func send(t *testing.T, s *adapters.HTTPSender, u string) domain.AttemptResult {
	t.Helper()
	return s.Send(context.Background(), app.Attempt{
		URL: u, WebhookID: "evt_1", Timestamp: time.Now(), Body: []byte(`{"type":"message.sent"}`), Secret: []byte("0123456789abcdef0123456789abcdef"),
	})
}

func TestSenderOutcomes(t *testing.T) {
	client := adapters.NewHTTPClient(&adapters.Guard{AllowPrivate: true})
	var hit atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Add(1) }))
	defer target.Close()
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Clone())
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(201)
		case "/redirect":
			http.Redirect(w, r, target.URL, http.StatusFound)
		case "/big":
			w.WriteHeader(500)
			_, _ = io.WriteString(w, strings.Repeat("é", 10000))
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		}
	}))
	defer srv.Close()
	s := &adapters.HTTPSender{Client: client}

	res := send(t, s, srv.URL+"/ok")
	if !res.Succeeded() || res.StatusCode != 201 || res.Error != "" {
		t.Fatalf("ok = %+v", res)
	}
	h := got.Load().(http.Header)
	if h.Get("Content-Type") != "application/json" || h.Get("webhook-id") != "evt_1" || !strings.HasPrefix(h.Get("webhook-signature"), "v1,") ||
		h.Get("User-Agent") != adapters.UserAgent {
		t.Fatalf("headers = %v", h)
	}

	res = send(t, s, srv.URL+"/redirect")
	if res.Succeeded() || res.StatusCode != 302 || hit.Load() != 0 {
		t.Fatalf("redirect = %+v (target hit %d times): redirects must not be followed", res, hit.Load())
	}
	res = send(t, s, srv.URL+"/big")
	if res.StatusCode != 500 || !strings.HasPrefix(res.Error, "status 500: éé") || len(res.Error) > 120 {
		t.Fatalf("big = %q", res.Error)
	}
	res = (&adapters.HTTPSender{Client: client, Timeout: 50 * time.Millisecond}).Send(context.Background(), app.Attempt{
		URL: srv.URL + "/slow", WebhookID: "evt_1", Timestamp: time.Now(), Body: []byte(`{}`), Secret: []byte("k"),
	})
	if res.StatusCode != 0 || res.Error != "timeout after 50ms" || !res.TimedOut || res.Interrupted {
		t.Fatalf("slow = %+v", res)
	}
	// Cut short by the invocation's end, not the endpoint's timeout: not
	// a timeout of the endpoint (the pause rule's trigger).
	cut, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	res = (&adapters.HTTPSender{Client: client, Timeout: 5 * time.Second}).Send(cut, app.Attempt{
		URL: srv.URL + "/slow", WebhookID: "evt_1", Timestamp: time.Now(), Body: []byte(`{}`), Secret: []byte("k"),
	})
	if res.StatusCode != 0 || res.TimedOut || !res.Interrupted {
		t.Fatalf("cut short = %+v", res)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String() + "/?token=secret-token"
	ln.Close()
	res = send(t, s, closed)
	if res.StatusCode != 0 || res.Error != "connection refused" || res.TimedOut {
		t.Fatalf("refused = %+v", res)
	}
	strict := &adapters.HTTPSender{Client: adapters.NewHTTPClient(&adapters.Guard{})}
	res = send(t, strict, srv.URL+"/ok?token=secret-token")
	if res.StatusCode != 0 || res.Error != "target address forbidden" || res.Detail != "target address forbidden: 127.0.0.1" ||
		strings.Contains(res.Error, "secret-token") {
		t.Fatalf("forbidden = %+v", res)
	}
	noDNS := &adapters.HTTPSender{Client: adapters.NewHTTPClient(&adapters.Guard{AllowPrivate: true, Resolver: resolver{}})}
	res = send(t, noDNS, "http://nowhere.invalid/")
	if res.StatusCode != 0 || res.Error != "dns: no such host" {
		t.Fatalf("dns = %+v", res)
	}
}

// The delivery sample of the event contracts (events/contracts/samples:
// integration.message.delivered.json and webhook-delivery.signed.json, copied
// here): the body built from the integration event, and its signature, are
// byte for byte the sample's.
func TestContractSampleDelivery(t *testing.T) {
	const detail = `{"tenantId": "tnt_01K94G2D9E4H7J2K5M8N1P3Q6R", "invocation": {"invocationId": "inv_01K974YA1T3SR26Y6H31EWCB8Q", "traceId": "0af7651916cd43dd8448eb211c80319c", "principal": "system"}, "scopePath": ["scp_01K94G2DAC7D0E3F6G9H2J5K8M", "scp_01K94G8ME8SDRG1VF8EART858V"], "data": {"messageId": "msg_01K974Y8BVDTZ9VYGQF40SQYHG", "channelId": "chn_01K94GJR6B3FXNRCPH72699EB8", "scopeId": "scp_01K94G8ME8SDRG1VF8EART858V", "direction": "outbound", "to": "+4915112345678", "from": "+4930901820", "content": {"text": "Your appointment at Acme Health is confirmed for Tue 4 Nov, 14:30. Reply STOP to opt out."}, "status": "delivered", "statusReason": null, "attempts": 1, "metadata": {"patientRef": "p-88213", "campaign": "appointment-reminders"}, "sendAt": null, "createdAt": "2025-11-04T10:00:00.123Z", "updatedAt": "2025-11-04T10:00:01.871Z"}}`
	const wantBody = `{"type":"message.delivered","timestamp":"2025-11-04T10:00:01.871Z","data":{"messageId":"msg_01K974Y8BVDTZ9VYGQF40SQYHG","channelId":"chn_01K94GJR6B3FXNRCPH72699EB8","scopeId":"scp_01K94G8ME8SDRG1VF8EART858V","direction":"outbound","to":"+4915112345678","from":"+4930901820","content":{"text":"Your appointment at Acme Health is confirmed for Tue 4 Nov, 14:30. Reply STOP to opt out."},"status":"delivered","statusReason":null,"attempts":1,"metadata":{"patientRef":"p-88213","campaign":"appointment-reminders"},"sendAt":null,"createdAt":"2025-11-04T10:00:00.123Z","updatedAt":"2025-11-04T10:00:01.871Z"}}`
	const secret = "whsec_bxwqnkt9A4XB4vSmuNDi9KHD5fcJK01vigwuT2qLDRw="
	var d struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(detail), &d); err != nil {
		t.Fatal(err)
	}
	at, _ := time.Parse(time.RFC3339Nano, "2025-11-04T10:00:01.871Z")
	body, err := domain.BuildPayload("message.delivered", at, d.Data)
	if err != nil || string(body) != wantBody {
		t.Fatalf("body = %s, %v\nwant %s", body, err, wantBody)
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	sig, err := adapters.Sign(key, "evt_01K974YA2FPQPCKF7R7BE3VZK2", time.Unix(1762250402, 0), body)
	if err != nil || sig != "v1,Bj//OVSZhKW+2TcPAD0xZCt81NPOn205n9TeybVg3KI=" {
		t.Fatalf("signature = %s, %v", sig, err)
	}
}
