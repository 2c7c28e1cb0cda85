// Package problem renders errors as RFC 9457 problem+json, the only place where
// the error vocabulary (package errs) meets HTTP. Titles and details are
// localized by Accept-Language (English and German); codes are stable keys.
package problem

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// ContentType of every error response.
const ContentType = "application/problem+json"

// FieldProblem is one entry of "errors".
type FieldProblem struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

// Problem is the response body.
type Problem struct {
	Type         string         `json:"type"`
	Status       int            `json:"status"`
	Code         string         `json:"code"`
	Title        string         `json:"title"`
	Detail       string         `json:"detail"`
	InvocationID string         `json:"invocationId,omitempty"`
	Errors       []FieldProblem `json:"errors,omitempty"`
	// Language is the language Title, Detail and the messages are in (the
	// Content-Language header, not a member of the body).
	Language string `json:"-"`
}

// Status maps an error kind to its HTTP status.
func Status(k errs.Kind) int {
	switch k {
	case errs.KindInvalid:
		return http.StatusBadRequest
	case errs.KindUnauthenticated:
		return http.StatusUnauthorized
	case errs.KindForbidden:
		return http.StatusForbidden
	case errs.KindNotFound:
		return http.StatusNotFound
	case errs.KindConflict:
		return http.StatusConflict
	case errs.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.KindUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case errs.KindIdempotency:
		return http.StatusUnprocessableEntity
	case errs.KindRateLimited:
		return http.StatusTooManyRequests
	case errs.KindUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// From builds the problem of err in language lang.
func From(err error, lang, invocationID string) Problem {
	e := errs.As(err)
	if e.Kind == errs.KindInternal && e.Code != errs.CodeInternal {
		// Internal codes stay in the logs; clients see the one internal code.
		e = &errs.Error{Kind: errs.KindInternal, Code: errs.CodeInternal, Err: e}
	}
	params := map[string]any{"invocationId": invocationID}
	for k, v := range e.Params {
		params[k] = v
	}
	title, detail := Message(lang, e.Code, params)
	p := Problem{
		Type:         "https://docs.switchboard.dev/errors#" + e.Code,
		Status:       Status(e.Kind),
		Code:         e.Code,
		Title:        title,
		Detail:       detail,
		InvocationID: invocationID,
		Language:     "en",
	}
	if _, ok := catalogs[lang]; ok {
		p.Language = lang
	}
	for _, f := range e.Fields {
		fp := f.Params
		if _, ok := fp["field"]; !ok {
			// {field} in a field's message is the field itself unless the
			// error names another (errors.validation.after).
			fp = make(map[string]any, len(f.Params)+1)
			for k, v := range f.Params {
				fp[k] = v
			}
			fp["field"] = f.Field
		}
		_, msg := Message(lang, f.Code, fp)
		p.Errors = append(p.Errors, FieldProblem{Field: f.Field, Code: f.Code, Message: msg})
	}
	return p
}

// Write writes err as problem+json. Retry-After is set for 429 and 503 when the
// error carries a "retryAfter" parameter (seconds).
func Write(w http.ResponseWriter, err error, lang, invocationID string) {
	p := From(err, lang, invocationID)
	Render(w, p, errs.As(err))
}

// Render writes a built problem.
func Render(w http.ResponseWriter, p Problem, e *errs.Error) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	if p.Language != "" {
		h.Set("Content-Language", p.Language)
	}
	if e != nil {
		if ra, ok := e.Params["retryAfter"]; ok {
			h.Set("Retry-After", fmt.Sprint(ra))
		}
	}
	body, _ := json.Marshal(p)
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// Message returns the localized title and detail of code with params filled in.
// A code whose params name alternatives ("oneOf") reads as its "/oneOf"
// variant when the catalogs have one ("needs one of: text, html").
func Message(lang, code string, params map[string]any) (title, detail string) {
	if _, ok := params["oneOf"]; ok {
		if _, ok := catalogs["en"][code+"/oneOf"]; ok {
			code += "/oneOf"
		}
	}
	m, ok := catalogs[lang][code]
	if !ok {
		m, ok = catalogs["en"][code]
	}
	if !ok {
		m = catalogs[lang]["errors.validation.invalid"]
		if m.detail == "" {
			m = catalogs["en"]["errors.validation.invalid"]
		}
		m.title = code
	}
	return fill(m.title, params), fill(m.detail, params)
}

// Known reports whether English has a message for code (tests use it to catch
// codes without messages).
func Known(code string) bool { _, ok := catalogs["en"][code]; return ok }

// Codes lists the codes of a language, sorted.
func Codes(lang string) []string {
	out := make([]string, 0, len(catalogs[lang]))
	for c := range catalogs[lang] {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func fill(s string, params map[string]any) string {
	if !strings.Contains(s, "{") {
		return s
	}
	for k, v := range params {
		s = strings.ReplaceAll(s, "{"+k+"}", fmt.Sprint(v))
	}
	return s
}

// Negotiate picks the best supported language from an Accept-Language header
// (RFC 9110 q-values; "de-CH" matches "de"); English when nothing matches.
func Negotiate(header string) string {
	if header == "" {
		return "en"
	}
	best, bestQ := "en", -1.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		for _, l := range Languages {
			if base == l && q > bestQ && q > 0 {
				best, bestQ = l, q
			}
		}
	}
	return best
}
