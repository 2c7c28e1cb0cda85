package strictjson_test

import (
	"reflect"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/strictjson"
)

type body struct {
	ChannelID string `json:"channelId"`
	Content   struct {
		Text string `json:"text"`
	} `json:"content"`
	N int `json:"n"`
}

func TestUnmarshal(t *testing.T) {
	for _, c := range []struct {
		in, code, field string
	}{
		{`{"channelId":"c","content":{"text":"x"},"n":1}`, "", ""},
		{`{"CHANNELID":"c"}`, errs.CodeUnknownField, "CHANNELID"},
		{`{"content":{"Text":"x"}}`, errs.CodeUnknownField, "content.Text"},
		{`{"channelId":"a","channelId":"b"}`, errs.CodeDuplicateField, "channelId"},
		{`{"n":"1"}`, "errors.validation.type", "n"},
		{`{"n":1} {}`, errs.CodeMalformedJSON, ""},
		{`{"n":`, errs.CodeMalformedJSON, ""},
	} {
		var b body
		err := strictjson.Unmarshal([]byte(c.in), &b)
		if c.code == "" {
			if err != nil || b.ChannelID != "c" || b.Content.Text != "x" || b.N != 1 {
				t.Errorf("%s: %+v, %v", c.in, b, err)
			}
			continue
		}
		e := errs.As(err)
		if e == nil || e.Kind != errs.KindInvalid {
			t.Errorf("%s: %v, want a 400", c.in, err)
			continue
		}
		code := e.Code
		if len(e.Fields) > 0 {
			code = e.Fields[0].Code
			if e.Fields[0].Field != c.field {
				t.Errorf("%s: field %q, want %q", c.in, e.Fields[0].Field, c.field)
			}
		}
		if code != c.code {
			t.Errorf("%s: code %q, want %q", c.in, code, c.code)
		}
	}
}

// An integer field says so: 1.5, 100.0 and 2^63 are numbers too, and the
// message "expected number" misled (acceptance finding).
func TestIntegerFieldsExpectAnInteger(t *testing.T) {
	for _, in := range []string{`{"n":1.5}`, `{"n":100.0}`, `{"n":9223372036854775808}`, `{"n":"1"}`, `{"n":true}`} {
		var b body
		e := errs.As(strictjson.Unmarshal([]byte(in), &b))
		if e == nil || len(e.Fields) != 1 || e.Fields[0].Field != "n" || e.Fields[0].Params["expected"] != "integer" {
			t.Errorf("%s: %+v, want a type error on n expecting an integer", in, e)
		}
	}
}

// A map of strings takes strings only: a null value was stored as "" (review
// finding), and other types are refused as before, naming the member.
func TestStringMapsTakeStringsOnly(t *testing.T) {
	type withMap struct {
		M map[string]string `json:"m"`
	}
	for _, c := range []struct{ in, field string }{
		{`{"m":{"k":null}}`, "m.k"},
		{`{"m":{"a":"x","k":1}}`, "m.k"},
		{`{"m":{"k":{}}}`, "m.k"},
		{`{"m":{"k":[]}}`, "m.k"},
		{`{"m":[]}`, "m"},
		{`{"m":"x"}`, "m"},
	} {
		var b withMap
		e := errs.As(strictjson.Unmarshal([]byte(c.in), &b))
		if e == nil || len(e.Fields) != 1 || e.Fields[0].Field != c.field || e.Fields[0].Code != "errors.validation.type" {
			t.Errorf("%s: %+v, want a type error on %s", c.in, e, c.field)
		}
	}
	for _, c := range []struct {
		in   string
		want map[string]string
	}{
		{`{"m":{"a":"x","b":""}}`, map[string]string{"a": "x", "b": ""}},
		{`{"m":{}}`, map[string]string{}},
		{`{"m":null}`, nil},
		{`{}`, nil},
	} {
		var b withMap
		if err := strictjson.Unmarshal([]byte(c.in), &b); err != nil || !reflect.DeepEqual(b.M, c.want) {
			t.Errorf("%s: %#v, %v; want %#v", c.in, b.M, err, c.want)
		}
	}
	var b withMap
	if e := errs.As(strictjson.Unmarshal([]byte(`{"m":{"a":"x","a":"y"}}`), &b)); e == nil || e.Code != errs.CodeDuplicateField {
		t.Errorf("duplicate member: %+v", e)
	}
	if e := errs.As(strictjson.Unmarshal([]byte(`{"m":{"a":"x"`), &b)); e == nil || e.Code != errs.CodeMalformedJSON {
		t.Errorf("truncated: %+v", e)
	}
}
