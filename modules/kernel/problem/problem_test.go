package problem

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

func TestNegotiate(t *testing.T) {
	cases := map[string]string{
		"":                       "en",
		"de":                     "de",
		"de-CH, en;q=0.5":        "de",
		"fr, de;q=0.8, en;q=0.9": "en",
		"fr":                     "en",
		"en;q=0.1, DE-at;q=0.9":  "de",
		"de;q=0":                 "en",
		"garbage;;;q=x, ,":       "en",
	}
	for h, want := range cases {
		if got := Negotiate(h); got != want {
			t.Errorf("Negotiate(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestWriteRendersProblemJSON(t *testing.T) {
	w := httptest.NewRecorder()
	err := errs.Invalid(errs.FieldError{Field: "name", Code: "errors.validation.too_long", Params: map[string]any{"max": 200}})
	Write(w, err, "de", "inv_1")
	if w.Code != 400 || w.Header().Get("Content-Type") != ContentType {
		t.Fatalf("status %d, type %q", w.Code, w.Header().Get("Content-Type"))
	}
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Code != errs.CodeValidation || p.Title != "Ungültige Anfrage" || p.InvocationID != "inv_1" ||
		len(p.Errors) != 1 || p.Errors[0].Message != "ist zu lang (höchstens 200)" {
		t.Fatalf("problem: %+v", p)
	}
}

// A problem says the language it is written in (RFC 9110 Content-Language):
// the one negotiated, English when none was.
func TestContentLanguage(t *testing.T) {
	for lang, want := range map[string]string{"de": "de", "en": "en", "": "en", "xx": "en"} {
		w := httptest.NewRecorder()
		Write(w, errs.New(errs.KindNotFound, errs.CodeNotFound), lang, "inv_1")
		if got := w.Header().Get("Content-Language"); got != want {
			t.Errorf("lang %q: Content-Language %q, want %q", lang, got, want)
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, errs.New(errs.KindRateLimited, errs.CodeRateLimited).With("retryAfter", 7), "en", "inv_1")
	if w.Code != 429 || w.Header().Get("Retry-After") != "7" {
		t.Fatalf("got %d %v", w.Code, w.Header())
	}
}

func TestInternalErrorsHideTheirCause(t *testing.T) {
	p := From(os.ErrPermission, "en", "inv_9")
	if p.Status != 500 || strings.Contains(p.Detail, "permission") || !strings.Contains(p.Detail, "inv_9") {
		t.Fatalf("problem: %+v", p)
	}
}

func TestEveryLanguageHasEveryCode(t *testing.T) {
	en := Codes("en")
	for _, lang := range Languages {
		have := map[string]bool{}
		for _, c := range Codes(lang) {
			have[c] = true
		}
		for _, c := range en {
			if !have[c] {
				t.Errorf("%s lacks %s", lang, c)
			}
		}
	}
}

// TestEveryCodeInTheCodeBaseHasAMessage scans the Go sources for error codes
// ("errors.<area>.<reason>") and fails for any without an English message.
func TestEveryCodeInTheCodeBaseHasAMessage(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repo root not found from %s", root)
	}
	re := regexp.MustCompile(`"(errors\.[a-z_]+\.[a-z_]+)"`)
	seen := 0
	err = filepath.WalkDir(filepath.Join(root, "modules"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			seen++
			if !Known(m[1]) {
				t.Errorf("%s: code %s has no message in problem/catalog.go", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 20 {
		t.Fatalf("found only %d codes: the scan is broken", seen)
	}
}

// A field's message names the field where its text has {field} and the
// error gives no other value for it (acceptance finding: "does not accept:
// {field}." in errors[].message); a field error that names another field
// (errors.validation.after) keeps it.
func TestFieldMessagesFillTheFieldName(t *testing.T) {
	e := errs.Invalid(errs.FieldError{Field: "bogus", Code: errs.CodeUnknownField},
		errs.FieldError{Field: "to", Code: "errors.validation.after", Params: map[string]any{"field": "from"}})
	for lang, want := range map[string][]string{
		"en": {"The body has a field this operation does not accept: bogus.", "must be after from"},
		"de": {"Der Inhalt hat ein Feld, das diese Operation nicht annimmt: bogus."},
	} {
		p := From(e, lang, "inv_1")
		for i, w := range want {
			if p.Errors[i].Message != w {
				t.Errorf("%s: field %d message %q, want %q", lang, i, p.Errors[i].Message, w)
			}
		}
	}
}

// A required field that is one of several reads as such (acceptance
// finding: "content is required" when content was there without text or
// html).
func TestRequiredOneOfNamesTheAlternatives(t *testing.T) {
	e := errs.Invalid(errs.FieldError{Field: "content", Code: "errors.validation.required", Params: map[string]any{"oneOf": "text, html"}},
		errs.FieldError{Field: "to", Code: "errors.validation.required"})
	for lang, want := range map[string][]string{
		"en": {"needs one of: text, html", "is required"},
		"de": {"braucht eines von: text, html", "ist erforderlich"},
	} {
		p := From(e, lang, "inv_1")
		for i, w := range want {
			if p.Errors[i].Message != w || p.Errors[i].Code != "errors.validation.required" {
				t.Errorf("%s: field %d: %s %q, want errors.validation.required %q", lang, i, p.Errors[i].Code, p.Errors[i].Message, w)
			}
		}
	}
}
