// Package strictjson decodes JSON as the API takes it, with
// go-json-experiment/json (the prototype of encoding/json/v2): an object
// member matches a field only by its exact name (no case folding), a member
// naming no field is an error, and so are a name twice in one object, data
// after the value and invalid UTF-8 (also in an escape). Every error is a 400
// of the kernel's vocabulary (errs.KindInvalid) that names the offending
// field by its path ("content.text").
package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

var options = jsonv2.JoinOptions(jsonv2.RejectUnknownMembers(true), jsonv2.WithUnmarshalers(stringMaps))

// stringMaps decodes an object of strings (metadata, config, credentials)
// and refuses any other value in it, null included: the default decoding
// would store a null as "" (review finding). A map that is not an object
// (null: no map) decodes as by default.
var stringMaps = jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, m *map[string]string) error {
	if dec.PeekKind() != '{' {
		return errors.ErrUnsupported // the default: null is no map, else a type error
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	out := *m
	if out == nil {
		out = map[string]string{}
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		name := tok.String() // a token is valid until the next call
		if k := dec.PeekKind(); k != '"' {
			return &jsonv2.SemanticError{JSONKind: k, GoType: reflect.TypeFor[string]()}
		}
		v, err := dec.ReadToken()
		if err != nil {
			return err
		}
		out[name] = v.String()
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	*m = out
	return nil
})

// Unmarshal decodes body (one JSON value) into v strictly; an error is an
// *errs.Error (KindInvalid) from Error.
func Unmarshal(body []byte, v any) error {
	if err := jsonv2.Unmarshal(body, v, options); err != nil {
		return Error(body, err)
	}
	return nil
}

// Error maps an error of go-json-experiment/json decoding body to a 400
// problem that names the offending field by its path ("content.text").
func Error(body []byte, err error) error {
	var sem *jsonv2.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &syn):
		name := fieldPath(syn.JSONPointer)
		e := errs.New(errs.KindInvalid, errs.CodeDuplicateField).With("field", name)
		e.Fields = []errs.FieldError{{Field: name, Code: errs.CodeDuplicateField}}
		return e
	case errors.As(err, &sem) && sem.Err == jsonv2.ErrUnknownName:
		name := fieldPath(sem.JSONPointer)
		e := errs.New(errs.KindInvalid, errs.CodeUnknownField).With("field", name)
		e.Fields = []errs.FieldError{{Field: name, Code: errs.CodeUnknownField}}
		return e
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", "unexpected end of JSON")
	case errors.As(err, &syn):
		if jsontext.NewDecoder(bytes.NewReader(body)).SkipValue() == nil {
			// The object itself is well-formed: what follows it is the fault.
			return errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", "unexpected data after the JSON object")
		}
		return errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", fmt.Sprintf("syntax error at byte %d", syn.ByteOffset))
	case errors.As(err, &sem) && sem.GoType != nil:
		return errs.Invalid(errs.FieldError{Field: fieldPath(sem.JSONPointer), Code: "errors.validation.type",
			Params: map[string]any{"expected": jsonType(sem.GoType)}})
	default:
		return errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", "invalid JSON value")
	}
}

// fieldPath is a JSON pointer ("/content/text") as a field path
// ("content.text"); the empty pointer is "(body)".
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "(body)"
	}
	return b.String()
}

func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer" // 1.5, 100.0 and 2^63 are numbers, and refused too
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "object"
	}
}
