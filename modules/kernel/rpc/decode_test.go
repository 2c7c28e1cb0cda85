package rpc

import (
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// TestDecodeStrict: a key is a field only by its exact name, a name twice is
// rejected, and every problem names the offending field by its path.
func TestDecodeStrict(t *testing.T) {
	cases := []struct {
		name, body    string
		code, field   string // field: the problem's "field" param or its first field error
		reason, param string
	}{
		{"exact names", `{"channelId":"c","to":"t","content":{"text":"x"},"metadata":{"a":"b","A":"c"}}`, "", "", "", ""},
		{"empty body", ``, "", "", "", ""},
		{"key in another case", `{"CHANNELID":"c"}`, errs.CodeUnknownField, "CHANNELID", "", ""},
		{"key in another case nested", `{"content":{"Text":"x"}}`, errs.CodeUnknownField, "content.Text", "", ""},
		{"two spellings of one field", `{"channelId":"a","ChannelId":"b"}`, errs.CodeUnknownField, "ChannelId", "", ""},
		{"unknown field", `{"channelId":"a","priority":1}`, errs.CodeUnknownField, "priority", "", ""},
		{"duplicate key", `{"channelId":"a","channelId":"b"}`, errs.CodeDuplicateField, "channelId", "", ""},
		{"duplicate key nested", `{"content":{"text":"a","text":"b"}}`, errs.CodeDuplicateField, "content.text", "", ""},
		{"duplicate map key", `{"metadata":{"k":"a","k":"b"}}`, errs.CodeDuplicateField, "metadata.k", "", ""},
		{"wrong type", `{"to":5}`, errs.CodeValidation, "to", "", "string"},
		{"wrong type nested", `{"content":{"text":1}}`, errs.CodeValidation, "content.text", "", "string"},
		{"wrong type pointer", `{"sendAt":true}`, errs.CodeValidation, "sendAt", "", "string"},
		{"wrong type map value", `{"metadata":{"k":1}}`, errs.CodeValidation, "metadata.k", "", "string"},
		{"object for a string", `{"to":{}}`, errs.CodeValidation, "to", "", "string"},
		{"trailing data", `{"to":"a"} {}`, errs.CodeMalformedJSON, "", "unexpected data after the JSON object", ""},
		{"trailing garbage", `{"to":"a"}x`, errs.CodeMalformedJSON, "", "unexpected data after the JSON object", ""},
		{"truncated", `{"to":`, errs.CodeMalformedJSON, "", "unexpected end of JSON", ""},
		{"syntax error", `{"to" "a"}`, errs.CodeMalformedJSON, "", "syntax error at byte 6", ""},
		{"lone surrogate", `{"to":"\ud800"}`, errs.CodeMalformedJSON, "", "syntax error at byte 7", ""},
		{"not an object", `["a"]`, errs.CodeMalformedJSON, "", "the body must be a JSON object", ""},
		{"not UTF-8", "{\"to\":\"\xff\"}", errs.CodeMalformedJSON, "", "the body is not UTF-8", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in benchSendInput
			err := decodeStrict([]byte(c.body), &in)
			if c.code == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			e := errs.As(err)
			if e.Kind != errs.KindInvalid || e.Code != c.code {
				t.Fatalf("err = %v (%s), want %s", err, e.Code, c.code)
			}
			if c.reason != "" && e.Params["reason"] != c.reason {
				t.Fatalf("reason = %v, want %q", e.Params["reason"], c.reason)
			}
			if c.field != "" {
				if len(e.Fields) != 1 || e.Fields[0].Field != c.field {
					t.Fatalf("fields = %+v, want %s", e.Fields, c.field)
				}
				if c.code != errs.CodeValidation && e.Params["field"] != c.field {
					t.Fatalf("field param = %v, want %s", e.Params["field"], c.field)
				}
			}
			if c.param != "" && e.Fields[0].Params["expected"] != c.param {
				t.Fatalf("expected = %v, want %s", e.Fields[0].Params["expected"], c.param)
			}
		})
	}
}
