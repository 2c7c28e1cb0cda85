package trigger_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// seenRequest is what the HTTP handler saw.
type seenRequest struct {
	Method, Path, RawQuery, Host, RemoteAddr, RequestURI string
	Query                                                url.Values
	Header                                               http.Header
	Body                                                 []byte
	ContentLength                                        int64
}

// binaryBody is not valid UTF-8: it must travel base64-encoded.
var binaryBody = []byte{0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe, 0x00, 0x80, 'o', 'k'}

// echoHandler records the request and answers with a fixed response: JSON
// with a repeated header and two cookies, or binary bytes for /webhooks/.
func echoHandler(seen *seenRequest) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			panic(err)
		}
		*seen = seenRequest{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, RemoteAddr: r.RemoteAddr,
			RequestURI: r.RequestURI, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body,
			ContentLength: r.ContentLength,
		}
		if strings.HasPrefix(r.URL.Path, "/webhooks/") {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write(binaryBody)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Add("Vary", "Accept")
		h.Add("Vary", "Accept-Language")
		h.Add("Set-Cookie", "a=1; Path=/")
		h.Add("Set-Cookie", "b=2; Path=/; HttpOnly")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true,"message":"grüße"}`)
	})
}

func TestAPIGatewayRequests(t *testing.T) {
	for _, tc := range []struct {
		sample     string
		v2         bool
		method     string
		path       string
		query      url.Values
		headers    map[string][]string // subset, canonical keys
		body       string
		remoteAddr string
		requestID  string
		host       string
	}{
		{
			sample: "apigw-v2-healthz.json", v2: true, method: "GET", path: "/healthz",
			query:      url.Values{"verbose": {"1"}, "probe": {"lb", "uptime"}},
			headers:    map[string][]string{"Accept": {"application/json"}, "X-Forwarded-Proto": {"https"}},
			remoteAddr: "198.51.100.23", requestID: "Kx3pQhDeFiAEJ8w=",
			host: "k7x2m9q4ab.execute-api.eu-central-1.amazonaws.com",
		},
		{
			sample: "apigw-v2-command.json", v2: true, method: "POST", path: "/commands/onboard-tenant",
			query: url.Values{},
			headers: map[string][]string{
				"Authorization":   {"Bearer sbop_sample-operator-key-not-a-secret"},
				"Content-Type":    {"application/json"},
				"Idempotency-Key": {"01K94G2D7W3Q8N5V1C6T0B9XJR"},
				"X-Action-Id":     {"01K94G2D7W3Q8N5V1C6T0B9XJS"},
				"Traceparent":     {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
				"Accept-Language": {"de-CH, de;q=0.9, en;q=0.8"},
				"Cookie":          {"sb_locale=de; sb_session=none"},
			},
			body:       `{"name":"Acme Health","tier":"pooled"}`,
			remoteAddr: "203.0.113.7", requestID: "Kx3qAjVmliAEMtQ=",
			host: "k7x2m9q4ab.execute-api.eu-central-1.amazonaws.com",
		},
		{
			sample: "apigw-v2-base64.json", v2: true, method: "POST",
			path:  "/webhooks/sandbox/chn_01K94FZ4H0QX7M2C8V5T3N6B1A",
			query: url.Values{},
			headers: map[string][]string{
				"Webhook-Id":        {"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
				"Webhook-Timestamp": {"1762161300"},
				"Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="},
			},
			body:       `{"type":"receipt","providerMessageId":"sbx_5f1c2a9e7d","status":"delivered"}`,
			remoteAddr: "192.0.2.44", requestID: "Kx3qBkQsFiAEJaA=",
			host: "k7x2m9q4ab.execute-api.eu-central-1.amazonaws.com",
		},
		{
			sample: "apigw-v1-healthz.json", method: "GET", path: "/healthz",
			query:      url.Values{"verbose": {"1"}, "probe": {"lb", "uptime"}},
			headers:    map[string][]string{"Accept": {"application/json"}, "User-Agent": {"curl/8.5.0"}},
			remoteAddr: "198.51.100.23", requestID: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
			host: "r3st4p1id9.execute-api.eu-central-1.amazonaws.com",
		},
		{
			sample: "apigw-v1-command.json", method: "POST", path: "/commands/onboard-tenant",
			query: url.Values{},
			headers: map[string][]string{
				"Accept":          {"application/json", "application/problem+json"},
				"Authorization":   {"Bearer sbop_sample-operator-key-not-a-secret"},
				"Idempotency-Key": {"01K94G2D7W3Q8N5V1C6T0B9XJT"},
				"Traceparent":     {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
				"X-Forwarded-For": {"203.0.113.7, 130.176.98.21"},
			},
			body:       `{"name":"Acme Health","tier":"pooled"}`,
			remoteAddr: "203.0.113.7", requestID: "5b1d3c2a-9e8f-4a7b-8c6d-0e1f2a3b4c5d",
			host: "r3st4p1id9.execute-api.eu-central-1.amazonaws.com",
		},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			var seen seenRequest
			r, _ := newRouter(t)
			r.HTTP = echoHandler(&seen)
			out, err := r.Invoke(context.Background(), sample(t, tc.sample))
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}

			// What the handler saw.
			if seen.Method != tc.method || seen.Path != tc.path {
				t.Errorf("request = %s %s, want %s %s", seen.Method, seen.Path, tc.method, tc.path)
			}
			if !reflect.DeepEqual(seen.Query, tc.query) {
				t.Errorf("query = %v, want %v", seen.Query, tc.query)
			}
			if !strings.HasPrefix(seen.RequestURI, tc.path) {
				t.Errorf("RequestURI = %q, want it to start with %q", seen.RequestURI, tc.path)
			}
			for k, want := range tc.headers {
				if got := seen.Header.Values(k); !reflect.DeepEqual(got, want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if got := seen.Header.Get("X-Amzn-Request-Id"); got != tc.requestID {
				t.Errorf("X-Amzn-Request-Id = %q, want %q", got, tc.requestID)
			}
			if string(seen.Body) != tc.body || seen.ContentLength != int64(len(tc.body)) {
				t.Errorf("body = %q (length %d), want %q", seen.Body, seen.ContentLength, tc.body)
			}
			if seen.RemoteAddr != tc.remoteAddr || seen.Host != tc.host {
				t.Errorf("remote %q host %q, want %q %q", seen.RemoteAddr, seen.Host, tc.remoteAddr, tc.host)
			}

			// What API Gateway gets back.
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(out, &raw); err != nil {
				t.Fatalf("response %s: %v", out, err)
			}
			keys := make([]string, 0, len(raw))
			for k := range raw {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var resp struct {
				StatusCode        int                 `json:"statusCode"`
				Headers           map[string]string   `json:"headers"`
				MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
				Cookies           []string            `json:"cookies"`
				Body              string              `json:"body"`
				IsBase64Encoded   bool                `json:"isBase64Encoded"`
			}
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(tc.path, "/webhooks/") {
				if resp.StatusCode != http.StatusAccepted || !resp.IsBase64Encoded {
					t.Fatalf("response %s: want 202 base64", out)
				}
				got, err := base64.StdEncoding.DecodeString(resp.Body)
				if err != nil || string(got) != string(binaryBody) {
					t.Errorf("body decodes to %q (%v), want %q", got, err, binaryBody)
				}
				if resp.Headers["Content-Type"] != "application/octet-stream" {
					t.Errorf("headers = %v", resp.Headers)
				}
				return
			}
			if resp.StatusCode != http.StatusCreated || resp.IsBase64Encoded || resp.Body != `{"ok":true,"message":"grüße"}` {
				t.Errorf("response %s: want 201 with the JSON body as text", out)
			}
			if tc.v2 {
				if want := []string{"body", "cookies", "headers", "isBase64Encoded", "statusCode"}; !reflect.DeepEqual(keys, want) {
					t.Errorf("v2 response keys = %v, want %v", keys, want)
				}
				wantHeaders := map[string]string{"Content-Type": "application/json", "Vary": "Accept,Accept-Language"}
				if !reflect.DeepEqual(resp.Headers, wantHeaders) {
					t.Errorf("headers = %v, want %v", resp.Headers, wantHeaders)
				}
				if want := []string{"a=1; Path=/", "b=2; Path=/; HttpOnly"}; !reflect.DeepEqual(resp.Cookies, want) {
					t.Errorf("cookies = %q, want %q", resp.Cookies, want)
				}
				return
			}
			if want := []string{"body", "headers", "isBase64Encoded", "multiValueHeaders", "statusCode"}; !reflect.DeepEqual(keys, want) {
				t.Errorf("v1 response keys = %v, want %v", keys, want)
			}
			wantMulti := map[string][]string{
				"Content-Type": {"application/json"},
				"Vary":         {"Accept", "Accept-Language"},
				"Set-Cookie":   {"a=1; Path=/", "b=2; Path=/; HttpOnly"},
			}
			if !reflect.DeepEqual(resp.MultiValueHeaders, wantMulti) {
				t.Errorf("multiValueHeaders = %v, want %v", resp.MultiValueHeaders, wantMulti)
			}
			if want := map[string]string{"Content-Type": "application/json"}; !reflect.DeepEqual(resp.Headers, want) {
				t.Errorf("headers = %v, want %v", resp.Headers, want)
			}
		})
	}
}

func TestAPIGatewayEdgeCases(t *testing.T) {
	t.Run("request id header kept when sent", func(t *testing.T) {
		var seen seenRequest
		r, _ := newRouter(t)
		r.HTTP = echoHandler(&seen)
		payload := `{"version":"2.0","routeKey":"$default","rawPath":"/a%2Fb/c","rawQueryString":"q=a%20b",
			"headers":{"x-amzn-request-id":"from-client"},
			"requestContext":{"requestId":"gw-id","domainName":"d.example","http":{"method":"GET","path":"/a/b/c","sourceIp":"192.0.2.1"}}}`
		if _, err := r.Invoke(context.Background(), []byte(payload)); err != nil {
			t.Fatal(err)
		}
		if got := seen.Header.Get("X-Amzn-Request-Id"); got != "from-client" {
			t.Errorf("X-Amzn-Request-Id = %q", got)
		}
		if seen.Path != "/a/b/c" || seen.RequestURI != "/a%2Fb/c?q=a%20b" || seen.Query.Get("q") != "a b" {
			t.Errorf("path %q uri %q query %v", seen.Path, seen.RequestURI, seen.Query)
		}
		if seen.Host != "d.example" {
			t.Errorf("host = %q, want the domain name", seen.Host)
		}
	})
	t.Run("v1 body base64 and stage prefix ignored", func(t *testing.T) {
		var seen seenRequest
		r, _ := newRouter(t)
		r.HTTP = echoHandler(&seen)
		body := base64.StdEncoding.EncodeToString(binaryBody)
		payload := `{"resource":"/{proxy+}","path":"/webhooks/sandbox/chn_1","httpMethod":"POST","headers":{"Content-Type":"application/octet-stream"},
			"multiValueHeaders":null,"queryStringParameters":{"a":"1"},"multiValueQueryStringParameters":null,
			"requestContext":{"path":"/prod/webhooks/sandbox/chn_1","stage":"prod","requestId":"r1","identity":{"sourceIp":"192.0.2.9"}},
			"body":"` + body + `","isBase64Encoded":true}`
		out, err := r.Invoke(context.Background(), []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		if seen.Path != "/webhooks/sandbox/chn_1" || string(seen.Body) != string(binaryBody) || seen.Query.Get("a") != "1" {
			t.Errorf("seen %s %q query %v", seen.Path, seen.Body, seen.Query)
		}
		if !strings.Contains(string(out), `"isBase64Encoded":true`) {
			t.Errorf("response %s: want base64", out)
		}
	})
	t.Run("v2 named stage prefix removed", func(t *testing.T) {
		for _, c := range []struct{ stage, rawPath, want string }{
			{"prod", "/prod/healthz", "/healthz"},
			{"prod", "/prod", "/"},
			{"prod", "/production/x", "/production/x"}, // not the stage's segment
			{"$default", "/prod/healthz", "/prod/healthz"},
			{"", "/prod/healthz", "/prod/healthz"},
		} {
			var seen seenRequest
			r, _ := newRouter(t)
			r.HTTP = echoHandler(&seen)
			payload := `{"version":"2.0","routeKey":"ANY /{proxy+}","rawPath":"` + c.rawPath + `","rawQueryString":"",
				"requestContext":{"stage":"` + c.stage + `","http":{"method":"GET","path":"` + c.rawPath + `","sourceIp":"192.0.2.1"}}}`
			if _, err := r.Invoke(context.Background(), []byte(payload)); err != nil {
				t.Fatal(err)
			}
			if seen.Path != c.want {
				t.Errorf("stage %q rawPath %q: path %q, want %q", c.stage, c.rawPath, seen.Path, c.want)
			}
		}
	})
	t.Run("bad base64 body fails the invocation", func(t *testing.T) {
		r, _ := newRouter(t)
		r.HTTP = http.NotFoundHandler()
		payload := `{"version":"2.0","routeKey":"$default","rawPath":"/x","body":"%%%","isBase64Encoded":true,
			"requestContext":{"http":{"method":"POST","path":"/x"}}}`
		if _, err := r.Invoke(context.Background(), []byte(payload)); err == nil || !strings.Contains(err.Error(), "base64") {
			t.Errorf("err = %v, want a base64 error", err)
		}
	})
	t.Run("empty response", func(t *testing.T) {
		r, _ := newRouter(t)
		r.HTTP = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
		out, err := r.Invoke(context.Background(), sample(t, "apigw-v2-healthz.json"))
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != `{"statusCode":204,"body":"","isBase64Encoded":false}` {
			t.Errorf("response = %s", out)
		}
	})
}

func TestAPIGatewayHandlerPanic(t *testing.T) {
	for _, name := range []string{"apigw-v2-command.json", "apigw-v1-command.json"} {
		t.Run(name, func(t *testing.T) {
			r, logs := newRouter(t)
			r.HTTP = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("X-Invocation-Id", "inv_01K94G2D7Y5B8C1D4E7F0G3H6J")
				w.Header().Set("X-Secret-Debug", "must not leak")
				_, _ = io.WriteString(w, "partial")
				panic("boom")
			})
			out, err := r.Invoke(context.Background(), sample(t, name))
			if err != nil {
				t.Fatalf("a handler panic must not fail the invocation: %v", err)
			}
			var resp struct {
				StatusCode int               `json:"statusCode"`
				Headers    map[string]string `json:"headers"`
				Body       string            `json:"body"`
			}
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 500 || resp.Headers["Content-Type"] != "application/problem+json" {
				t.Fatalf("response = %s", out)
			}
			if _, leaked := resp.Headers["X-Secret-Debug"]; leaked || strings.Contains(resp.Body, "partial") {
				t.Errorf("the partial response leaked: %s", out)
			}
			var p map[string]any
			if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
				t.Fatalf("problem body %q: %v", resp.Body, err)
			}
			if p["status"] != float64(500) || p["code"] != "errors.internal" || p["invocationId"] != "inv_01K94G2D7Y5B8C1D4E7F0G3H6J" {
				t.Errorf("problem = %v", p)
			}
			if strings.Contains(resp.Body, "boom") {
				t.Errorf("the panic value leaked to the client: %s", resp.Body)
			}
			if !strings.Contains(logs.String(), `"panic":"boom"`) {
				t.Errorf("the panic was not logged: %s", logs)
			}
		})
	}
	t.Run("no invocation id yet", func(t *testing.T) {
		r, _ := newRouter(t)
		r.HTTP = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
		out, err := r.Invoke(context.Background(), sample(t, "apigw-v2-healthz.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), `"statusCode":500`) || !strings.Contains(string(out), `"X-Invocation-Id":"inv_`) {
			t.Errorf("response = %s, want a 500 with a new invocation id", out)
		}
	})
}
