package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/strictjson"
)

// Validator validates decoded inputs with go-playground/validator tags. Built
// once per process (it caches struct metadata).
type Validator struct{ v *validator.Validate }

// NewValidator returns the validator with Switchboard's custom tags:
//   - prefixed=<p>: an id of type p (ids.Valid), e.g. `validate:"required,prefixed=scp"`.
func NewValidator() *Validator {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		if name == "" {
			return f.Name
		}
		return name
	})
	_ = v.RegisterValidation("prefixed", func(fl validator.FieldLevel) bool {
		return ids.Valid(fl.Param(), fl.Field().String())
	})
	return &Validator{v: v}
}

// Validate returns nil or an errs.Invalid with one FieldError per failed field.
func (v *Validator) Validate(in any) error {
	err := v.v.Struct(in)
	if err == nil {
		return nil
	}
	var ve validator.ValidationErrors
	if !errors.As(err, &ve) {
		var inv *validator.InvalidValidationError
		if errors.As(err, &inv) { // a non-struct input: nothing to validate
			return nil
		}
		return fmt.Errorf("validate: %w", err)
	}
	fields := make([]errs.FieldError, 0, len(ve))
	for _, fe := range ve {
		fields = append(fields, fieldError(fe))
	}
	return errs.Invalid(fields...)
}

// fieldName is the JSON path of a field without the top-level struct name.
func fieldName(fe validator.FieldError) string {
	ns := fe.Namespace()
	if i := strings.IndexByte(ns, '.'); i >= 0 {
		return ns[i+1:]
	}
	return ns
}

func fieldError(fe validator.FieldError) errs.FieldError {
	f := errs.FieldError{Field: fieldName(fe)}
	isString := fe.Kind() == reflect.String
	switch fe.Tag() {
	case "required", "required_without", "required_with", "required_if":
		f.Code = "errors.validation.required"
	case "min", "gte":
		if isString {
			f.Code, f.Params = "errors.validation.too_short", map[string]any{"min": fe.Param()}
		} else {
			f.Code = "errors.validation.out_of_range"
		}
	case "max", "lte":
		if isString {
			f.Code, f.Params = "errors.validation.too_long", map[string]any{"max": fe.Param()}
		} else {
			f.Code = "errors.validation.out_of_range"
		}
	case "len", "gt", "lt":
		f.Code = "errors.validation.out_of_range"
	case "oneof":
		f.Code, f.Params = "errors.validation.one_of", map[string]any{"allowed": strings.ReplaceAll(fe.Param(), " ", ", ")}
	case "prefixed":
		f.Code, f.Params = "errors.validation.id", map[string]any{"prefix": fe.Param()}
	case "e164":
		f.Code = "errors.validation.e164"
	case "email":
		f.Code = "errors.validation.email"
	case "url", "http_url":
		f.Code = "errors.validation.url"
	default:
		f.Code = "errors.validation.invalid"
	}
	return f
}

// decodeStrict decodes a JSON object body into in, rejecting unknown fields
// (a key that is not exactly a field's name), duplicate keys, trailing data
// and invalid UTF-8. An empty body means {}.
func decodeStrict(body []byte, in any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !utf8.Valid(body) {
		return errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", "the body is not UTF-8")
	}
	if body[0] != '{' {
		return errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", "the body must be a JSON object")
	}
	return strictjson.Unmarshal(body, in)
}

// fingerprint identifies a command and its body for idempotency: the command
// name and the body in canonical JSON (keys sorted, insignificant whitespace
// dropped), so a retry that re-serializes the same object matches.
func fingerprint(name string, body []byte) string {
	canon := body
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if len(bytes.TrimSpace(body)) == 0 {
		canon = []byte("{}")
	} else if dec.Decode(&v) == nil {
		if b, err := json.Marshal(v); err == nil {
			canon = b
		}
	}
	return hashHex(name + "\n" + string(canon))
}
