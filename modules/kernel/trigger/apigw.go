package trigger

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/problem"
)

// v2Response is the HTTP API payload format 2.0 response.
type v2Response struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers,omitempty"`
	Cookies         []string          `json:"cookies,omitempty"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// v1Response is the REST API (payload format 1.0) proxy response.
type v1Response struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

func (r *Router) serveV2(ctx context.Context, p *probe) ([]byte, error) {
	if r.HTTP == nil {
		return nil, fmt.Errorf("%w: API Gateway %s %s received but no HTTP handler is configured", ErrNotConfigured,
			p.RequestContext.HTTP.Method, p.RawPath)
	}
	req, err := requestV2(ctx, p)
	if err != nil {
		return nil, err
	}
	rec := r.serveHTTP(req)
	resp := v2Response{StatusCode: rec.status}
	body, b64 := encodeBody(rec.header, rec.body.Bytes())
	resp.Body, resp.IsBase64Encoded = body, b64
	for k, vs := range rec.header {
		if k == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		if resp.Headers == nil {
			resp.Headers = make(map[string]string, len(rec.header))
		}
		// Format 2.0 has no multi-value headers: combine them (RFC 9110 5.3).
		resp.Headers[k] = strings.Join(vs, ",")
	}
	return marshalResponse(resp)
}

func (r *Router) serveV1(ctx context.Context, p *probe) ([]byte, error) {
	if r.HTTP == nil {
		return nil, fmt.Errorf("%w: API Gateway %s %s received but no HTTP handler is configured", ErrNotConfigured,
			p.HTTPMethod, p.Path)
	}
	req, err := requestV1(ctx, p)
	if err != nil {
		return nil, err
	}
	rec := r.serveHTTP(req)
	resp := v1Response{StatusCode: rec.status}
	resp.Body, resp.IsBase64Encoded = encodeBody(rec.header, rec.body.Bytes())
	for k, vs := range rec.header {
		if len(vs) == 0 {
			continue
		}
		if resp.MultiValueHeaders == nil {
			resp.MultiValueHeaders = make(map[string][]string, len(rec.header))
			resp.Headers = make(map[string]string, len(rec.header))
		}
		// API Gateway merges both maps; a pair present in both appears once.
		resp.MultiValueHeaders[k] = vs
		if len(vs) == 1 {
			resp.Headers[k] = vs[0]
		}
	}
	return marshalResponse(resp)
}

func marshalResponse(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("trigger: encode API Gateway response: %w", err)
	}
	return b, nil
}

// requestV2 converts an HTTP API payload format 2.0 event. The path is the
// route path: a named stage's prefix ("/prod/healthz" on stage "prod") is
// removed; the $default stage has none.
func requestV2(ctx context.Context, p *probe) (*http.Request, error) {
	rc := p.RequestContext
	path := p.RawPath
	if path == "" {
		path = rc.HTTP.Path
	}
	if st := rc.Stage; st != "" && st != "$default" {
		if rest, ok := strings.CutPrefix(path, "/"+st); ok && (rest == "" || rest[0] == '/') {
			path = cmp.Or(rest, "/")
		}
	}
	h := make(http.Header, len(p.Headers)+2)
	for k, v := range p.Headers {
		h.Add(k, v) // format 2.0 already joined repeated headers with commas
	}
	if len(p.Cookies) > 0 {
		h.Set("Cookie", strings.Join(p.Cookies, "; "))
	}
	proto := rc.HTTP.Protocol
	return buildRequest(ctx, rc.HTTP.Method, path, p.RawQueryString, h, p, proto, rc.HTTP.SourceIP)
}

// requestV1 converts a REST API (payload format 1.0) proxy event. The path is
// the resource path without the stage prefix ("path", not requestContext.path).
func requestV1(ctx context.Context, p *probe) (*http.Request, error) {
	h := make(http.Header, len(p.MultiValueHeaders)+len(p.Headers)+1)
	for k, vs := range p.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range p.Headers {
		if _, ok := h[http.CanonicalHeaderKey(k)]; !ok {
			h.Set(k, v)
		}
	}
	q := url.Values{}
	for k, vs := range p.MultiValueQuery {
		q[k] = append([]string(nil), vs...)
	}
	for k, v := range p.QueryString {
		if _, ok := q[k]; !ok {
			q.Set(k, v)
		}
	}
	var proto, sourceIP string
	if p.RequestContext != nil {
		proto, sourceIP = p.RequestContext.Protocol, p.RequestContext.Identity.SourceIP
	}
	return buildRequest(ctx, p.HTTPMethod, p.Path, q.Encode(), h, p, proto, sourceIP)
}

func buildRequest(ctx context.Context, method, path, rawQuery string, h http.Header, p *probe, proto, sourceIP string) (*http.Request, error) {
	var body []byte
	if p.Body != nil {
		if p.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(*p.Body)
			if err != nil {
				return nil, fmt.Errorf("trigger: decode base64 body of %s %s: %w", method, path, err)
			}
			body = b
		} else {
			body = []byte(*p.Body)
		}
	}
	if path == "" {
		path = "/"
	}
	u := &url.URL{Path: path, RawQuery: rawQuery}
	// Keep an encoded path as sent ("/a%2Fb"), decoded in Path.
	if strings.Contains(path, "%") {
		if dec, err := url.PathUnescape(path); err == nil {
			u.Path, u.RawPath = dec, path
		}
	}
	// NewRequest sets Body, ContentLength and GetBody; the URL is ours, as
	// parsing would read a path "//x" as a host.
	req, err := http.NewRequestWithContext(ctx, method, "/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("trigger: build request %s %s: %w", method, path, err)
	}
	req.URL = u
	req.RequestURI = u.RequestURI()
	req.Header = h
	req.Host = h.Get("Host")
	if req.Host == "" && p.RequestContext != nil {
		req.Host = p.RequestContext.DomainName
	}
	if major, minor, ok := http.ParseHTTPVersion(proto); ok {
		req.Proto, req.ProtoMajor, req.ProtoMinor = proto, major, minor
	}
	// API Gateway gives the caller's address without a port.
	req.RemoteAddr = sourceIP
	if p.RequestContext != nil && p.RequestContext.RequestID != "" && h.Get(RequestIDHeader) == "" {
		h.Set(RequestIDHeader, p.RequestContext.RequestID)
	}
	return req, nil
}

// serveHTTP runs the HTTP handler in memory. A panic that escapes the handler
// becomes a 500 problem+json response; it is logged, not a failed invocation.
func (r *Router) serveHTTP(req *http.Request) (rec *recorder) {
	rec = newRecorder()
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		invID := rec.header.Get("X-Invocation-Id")
		if invID == "" {
			invID = r.ids().New(ids.Invocation)
		}
		r.logger().ErrorContext(req.Context(), "trigger: http handler panic",
			slog.Any("panic", v), slog.String("method", req.Method), slog.String("path", req.URL.Path),
			slog.String("requestId", req.Header.Get(RequestIDHeader)), slog.String("invocationId", invID),
			slog.String("stack", string(debug.Stack())))
		fresh := newRecorder()
		fresh.header.Set("X-Invocation-Id", invID)
		if t := rec.header.Get("X-Trace-Id"); t != "" {
			fresh.header.Set("X-Trace-Id", t)
		}
		e := errs.New(errs.KindInternal, errs.CodeInternal).Wrap(fmt.Errorf("panic: %v", v))
		lang := problem.Negotiate(req.Header.Get("Accept-Language"))
		problem.Render(fresh, problem.From(e, lang, invID), e)
		rec = fresh
	}()
	r.HTTP.ServeHTTP(rec, req)
	rec.finish()
	return rec
}

// recorder is an in-memory http.ResponseWriter.
type recorder struct {
	header      http.Header
	body        bytes.Buffer
	status      int
	wroteHeader bool
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, status: http.StatusOK} }

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.wroteHeader || code < 200 { // 1xx informational responses are not forwarded
		return
	}
	w.wroteHeader, w.status = true, code
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(b)
}

// Flush implements http.Flusher; the response is sent as a whole anyway.
func (w *recorder) Flush() {}

// finish sets what net/http would: a sniffed Content-Type for a body without one.
func (w *recorder) finish() {
	if w.body.Len() > 0 && w.header.Get("Content-Type") == "" && w.header.Get("Content-Encoding") == "" {
		if _, set := w.header["Content-Type"]; !set { // an explicit nil/empty value suppresses sniffing
			w.header.Set("Content-Type", http.DetectContentType(w.body.Bytes()))
		}
	}
}

// encodeBody returns the response body for API Gateway: as is for text,
// base64 for binary content (not valid UTF-8, encoded, or a binary media type).
func encodeBody(h http.Header, body []byte) (string, bool) {
	if len(body) == 0 {
		return "", false
	}
	if isBinary(h, body) {
		return base64.StdEncoding.EncodeToString(body), true
	}
	return string(body), false
}

func isBinary(h http.Header, body []byte) bool {
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return true
	}
	if !utf8.Valid(body) {
		return true
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "image/") && mt != "image/svg+xml",
		strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"), strings.HasPrefix(mt, "font/"),
		mt == "application/octet-stream", mt == "application/pdf", mt == "application/zip",
		mt == "application/gzip", mt == "application/protobuf", mt == "application/x-protobuf":
		return true
	}
	return false
}
