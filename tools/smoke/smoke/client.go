package smoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ProblemContentType is the media type of every error answer (contract
// section 5).
const ProblemContentType = "application/problem+json"

// FieldError is one entry of a problem's "errors".
type FieldError struct {
	Field string `json:"field"`
	Code  string `json:"code"`
}

// APIError is a call that did not answer 2xx: a transport failure (Status
// 0), a problem+json answer, or an answer of something else (a proxy, a
// gateway, a wrong BASE_URL).
type APIError struct {
	Call         string // "POST /commands/onboard-tenant"
	Status       int    // 0: no answer
	Code         string // the problem's code
	Title        string
	Detail       string
	InvocationID string // the problem's invocationId, else X-Invocation-Id
	Fields       []FieldError
	ContentType  string // of a non-problem answer
	Excerpt      string // the start of a non-problem answer
	Hint         string // what to do
	Err          error  // the transport error when Status is 0
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Call)
	switch {
	case e.Status == 0:
		fmt.Fprintf(&b, ": no answer: %v", e.Err)
	case e.Code != "":
		fmt.Fprintf(&b, ": %d %s", e.Status, e.Code)
		if d := firstNonEmpty(e.Detail, e.Title); d != "" {
			fmt.Fprintf(&b, ": %s", d)
		}
		for _, f := range e.Fields {
			fmt.Fprintf(&b, " [%s: %s]", f.Field, f.Code)
		}
	default:
		fmt.Fprintf(&b, ": %d %s, answered with %q, not %s", e.Status, http.StatusText(e.Status), e.ContentType, ProblemContentType)
		if e.Excerpt != "" {
			fmt.Fprintf(&b, ": %s", e.Excerpt)
		}
	}
	if e.InvocationID != "" {
		fmt.Fprintf(&b, " (invocation %s)", e.InvocationID)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "\n  what to do: %s", e.Hint)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// reply is a 2xx answer.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// client calls the public API: commands and queries are POSTs of JSON with
// `Authorization: Bearer <credential>` (contract section 3); commands carry
// an Idempotency-Key (section 4), so that a call retried after a transport
// error or a 429 cannot act twice.
type client struct {
	http *http.Client
	base string
	log  func(format string, args ...any) // progress lines of retries
}

// maxRetries is how often a call is repeated after a transport error or a
// 429 (with the same Idempotency-Key).
const maxRetries = 2

// retryWait is the pause before such a repeat (a 429's Retry-After, up to
// 10 s, wins).
var retryWait = time.Second

// call posts body to path (/commands/... or /queries/...) with the
// credential and, when idem is set, the Idempotency-Key; it decodes a 2xx
// answer into out (when not nil). Anything else is an *APIError.
func (c *client) call(ctx context.Context, path, credential, idem string, body, out any) (*reply, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("POST %s: encode body: %w", path, err)
	}
	var r *reply
	for attempt := 0; ; attempt++ {
		r, err = c.post(ctx, path, credential, idem, raw)
		var ae *APIError
		if err == nil || attempt == maxRetries || !errors.As(err, &ae) || ctx.Err() != nil ||
			(ae.Status != 0 && ae.Status != http.StatusTooManyRequests) {
			break
		}
		wait := retryWait
		if ae.Status == http.StatusTooManyRequests {
			if s, perr := strconv.Atoi(r.retryAfter()); perr == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, 10*time.Second)
			}
		}
		if c.log != nil {
			why := "no answer"
			if ae.Status != 0 {
				why = "429 " + ae.Code
			}
			c.log("      (POST %s: %s; retrying in %s with the same Idempotency-Key)", path, why, wait)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
	if err != nil {
		return r, err
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return r, &APIError{Call: "POST " + path, Status: r.Status, ContentType: r.Header.Get("Content-Type"),
				Excerpt: excerpt(r.Body), Err: err, Hint: "the answer is not the JSON the contract describes: is BASE_URL a Switchboard API?"}
		}
	}
	return r, nil
}

func (r *reply) retryAfter() string {
	if r == nil {
		return ""
	}
	return r.Header.Get("Retry-After")
}

// post makes one POST. A non-2xx answer is returned as an *APIError along
// with the reply (for its headers).
func (c *client) post(ctx context.Context, path, credential, idem string, raw []byte) (*reply, error) {
	call := "POST " + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(raw))
	if err != nil {
		return nil, &APIError{Call: call, Err: err, Hint: "check BASE_URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Language", "en")
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &APIError{Call: call, Err: err, Hint: "is BASE_URL (" + c.base + ") right and the deployment up?"}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	r := &reply{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if err != nil {
		return r, &APIError{Call: call, Status: resp.StatusCode, Err: err, Hint: "the connection broke while reading the answer"}
	}
	if resp.StatusCode/100 == 2 {
		return r, nil
	}
	return r, problemError(call, path, r)
}

// problemError turns a non-2xx answer into an *APIError: the problem+json
// fields when it is one, else its content type and first bytes.
func problemError(call, path string, r *reply) *APIError {
	e := &APIError{Call: call, Status: r.Status, InvocationID: r.Header.Get("X-Invocation-Id")}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	var p struct {
		Status       int          `json:"status"`
		Code         string       `json:"code"`
		Title        string       `json:"title"`
		Detail       string       `json:"detail"`
		InvocationID string       `json:"invocationId"`
		Errors       []FieldError `json:"errors"`
	}
	if mt == ProblemContentType && json.Unmarshal(r.Body, &p) == nil && p.Code != "" {
		e.Code, e.Title, e.Detail, e.Fields = p.Code, p.Title, p.Detail, p.Errors
		if p.InvocationID != "" {
			e.InvocationID = p.InvocationID
		}
	} else {
		e.ContentType = firstNonEmpty(ct, "no content type")
		e.Excerpt = excerpt(r.Body)
	}
	e.Hint = hint(path, e)
	return e
}

// hint says what to do about a failed call.
func hint(path string, e *APIError) string {
	switch {
	case path == "/commands/onboard-tenant" && e.Status == http.StatusUnauthorized:
		return "OPERATOR_KEY is not this deployment's operator key (local mode: the key it printed at start, kept in " +
			"its data dir's operator.key; AWS: the key whose SHA-256 was deployed as operatorKeySha256)"
	case path == "/commands/onboard-tenant" && e.Status == http.StatusServiceUnavailable:
		return "the deployment has no operator key configured (SWITCHBOARD_OPERATOR_KEY or SWITCHBOARD_OPERATOR_KEY_SHA256)"
	case path == "/commands/create-subscription" && e.Code == "errors.webhook.target_forbidden":
		return "the deployment refuses loopback and private receiver URLs (Lambda mode): expose a receiver and pass " +
			"RECEIVER=url=https://<public host>/, or RECEIVER=none"
	case e.Code == "" && (e.Status == http.StatusNotFound || e.Status == http.StatusForbidden):
		return "the answer is not Switchboard's: check BASE_URL (a REST API stage needs its path, e.g. .../prod)"
	case e.Status == http.StatusTooManyRequests:
		return "the deployment is rate limiting: run the smoke test again in a minute"
	case e.Status >= 500:
		return "a server-side failure: look the invocation id up in the deployment's logs"
	}
	return ""
}

// excerpt is the start of a body, on one line.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
