package adapters

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// MaxResponseBytes is how much of a receiver's response body is read (the
// rest is dropped with the connection).
const MaxResponseBytes = 4 << 10

// UserAgent of every attempt.
const UserAgent = "Switchboard-Webhooks/1"

// HTTPSender implements app.Sender: a POST signed with Standard Webhooks.
type HTTPSender struct {
	Client *http.Client // the guarded client (NewHTTPClient) in production
	// Timeout bounds one attempt (default AttemptTimeout), whatever the client's.
	Timeout time.Duration
}

var _ app.Sender = (*HTTPSender)(nil)

// Sign returns the webhook-signature of a body: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body keyed by secret>", by the Standard Webhooks library.
func Sign(secret []byte, webhookID string, ts time.Time, body []byte) (string, error) {
	wh, err := standardwebhooks.NewWebhookRaw(secret)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return wh.Sign(webhookID, ts, body)
}

// Send implements app.Sender. Headers: Content-Type application/json,
// webhook-id, webhook-timestamp (unix seconds of a.Timestamp),
// webhook-signature, and the correlation of the causing invocation
// (traceparent, X-Trace-Id, X-Invocation-Id).
func (s *HTTPSender) Send(ctx context.Context, a app.Attempt) domain.AttemptResult {
	start := time.Now()
	res := domain.AttemptResult{At: a.Timestamp}
	fail := func(msg string) domain.AttemptResult {
		res.Error, res.Duration = msg, time.Since(start)
		return res
	}
	sig, err := Sign(a.Secret, a.WebhookID, a.Timestamp, a.Body)
	if err != nil {
		return fail("signing failed")
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = AttemptTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(a.Body))
	if err != nil {
		return fail("invalid url")
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	h.Set(standardwebhooks.HeaderWebhookID, a.WebhookID)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(a.Timestamp.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
	if invocation.ValidTraceID(a.TraceID) {
		h.Set("traceparent", "00-"+a.TraceID+"-"+spanID()+"-01")
		h.Set("X-Trace-Id", a.TraceID)
	}
	if a.InvocationID != "" {
		h.Set("X-Invocation-Id", a.InvocationID)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		if isForbidden(err) {
			// The tenant sees that the target was refused, not the
			// address: it may be one only the deployment's network knows
			// (a name that resolves to it at delivery time).
			res.Detail = trimErr(err)
			return fail(ErrForbiddenAddress.Error())
		}
		// The endpoint's timeout, or the invocation's end (a Lambda
		// deadline, a shutdown) cutting the call short.
		res.Interrupted = parent.Err() != nil
		res.TimedOut = timedOut(err) && !res.Interrupted
		return fail(describe(err, timeout))
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	res.StatusCode, res.Duration = resp.StatusCode, time.Since(start)
	if !res.Succeeded() {
		res.Error = "status " + strconv.Itoa(resp.StatusCode)
		if line := firstLine(excerpt); line != "" {
			res.Error += ": " + line
		}
	}
	return res
}

// timedOut reports whether a client error is the attempt's timeout (or a
// network timeout under it).
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// describe turns a client error into a short message without the URL (which
// may carry a token) and without internals (a refused target is the
// caller's: its address goes to Detail only).
func describe(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var dnsErr *net.DNSError
	switch {
	case timedOut(err):
		return "timeout after " + timeout.String()
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "dns: no such host"
		}
		return "dns: lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without a response"
	}
	return trimErr(err)
}

// trimErr keeps the innermost, readable part of a network error.
func trimErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ErrForbiddenAddress.Error()); i >= 0 {
		return msg[i:]
	}
	return domain.TruncateError(msg)
}

// firstLine is the start of a response body as recorded: one line, at most
// 100 bytes, printable.
func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = domain.TruncateError(s)
	if len(s) <= 100 {
		return s
	}
	n := 100
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// spanID is a random W3C span id for the outbound call.
func spanID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
