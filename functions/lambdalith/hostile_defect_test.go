//go:build defect

package main

// Defects found by the hostile corpus, kept out of the committed suite. Run:
//
//	SWITCHBOARD_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:27117 go test -tags defect -run TestDefect ./functions/lambdalith/

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestDefectDynamoForgedCursorIs500: on DynamoDB, a forged list cursor whose
// decoded bytes are not UTF-8 answers 500. dynamostore.listRecords decodes
// the cursor (base64url) and sends the bytes as the string :after of the
// Query; the SDK replaces each invalid byte by U+FFFD (3 bytes), so 342
// bytes of 0xff (a 456-character cursor, within the inputs' max=1024) become
// a 1026-byte range key and DynamoDB answers ValidationException "Aggregated
// size of all range keys has exceeded the size limit of 1024 bytes", mapped
// to 500 errors.internal. The contract: bad input never causes a 5xx.
// Expected: 400 errors.validation.cursor (eventstore.ErrInvalid for a cursor
// that is not UTF-8 or whose key is too long). Every list on DynamoDB has it
// (list-scopes of tenancy too); the embedded store answers 200.
func TestDefectDynamoForgedCursorIs500(t *testing.T) {
	f := newHostileFixture(t, "dynamodb")
	c := &client{t: t, h: f.h}
	cursor := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 342)))
	for _, q := range []struct{ path, body string }{
		{"/queries/list-messages", `{"cursor":"` + cursor + `"}`},
		{"/queries/list-messages", `{"channelId":"` + f.vars["chnA"] + `","cursor":"` + cursor + `"}`},
		{"/queries/list-channels", `{"cursor":"` + cursor + `"}`},
		{"/queries/list-subscriptions", `{"cursor":"` + cursor + `"}`},
		{"/queries/list-deliveries", `{"subscriptionId":"` + f.vars["subA"] + `","cursor":"` + cursor + `"}`},
		{"/queries/list-scopes", `{"cursor":"` + cursor + `"}`}, // tenancy's lists too
	} {
		if r := c.call(q.path, f.keyA, q.body); r.Status != 400 {
			t.Errorf("%s with a forged cursor of 342 bytes 0xff: %d %s, want 400", q.path, r.Status, r.Raw)
		}
	}
}

// TestDefectFieldNamesMatchCaseInsensitively: the edge decodes bodies with
// encoding/json, which matches object keys to fields case-insensitively, so
// "CHANNELID", "To" and "Text" are taken for channelId, to and text although
// the contract says unknown fields are rejected (400), and a body naming a
// field twice in two spellings silently takes the last one. The idempotency
// fingerprint, computed from the raw keys, tells the spellings apart: the
// same send with the same Idempotency-Key spelled differently is 422. The
// sandbox webhook parser has the same leniency. Expected: 400
// errors.request.unknown_field for a key that is not exactly a field's name.
func TestDefectFieldNamesMatchCaseInsensitively(t *testing.T) {
	f := newHostileFixture(t, "embedded")
	c := &client{t: t, h: f.h}
	chn, other := f.vars["chnA"], f.vars["chnMailA"]
	for _, body := range []string{
		`{"CHANNELID":"` + chn + `","To":"+15551230000","content":{"Text":"x"}}`,
		`{"channelId":"` + other + `","ChannelId":"` + chn + `","to":"+15551230000","content":{"text":"x"}}`, // which channel?
	} {
		if r := c.call("/commands/send-message", f.keyA, body); r.Status != 400 || r.Body["code"] != "errors.request.unknown_field" {
			t.Errorf("send-message %s: %d %s, want 400 errors.request.unknown_field", body, r.Status, r.Raw)
		}
	}
	if r := c.call("/queries/get-message", f.keyA, `{"MessageID":"`+f.vars["msgA"]+`"}`); r.Status != 400 {
		t.Errorf("get-message with MessageID: %d %s, want 400", r.Status, r.Raw)
	}
}

// TestDefectForgedCursorIsTakenAsAPosition: app.ReadModel documents "A cursor
// it did not issue is ErrInvalidCursor" (400 errors.validation.cursor), but
// the stores take any base64url as a position in the list: a cursor made up
// by the caller, or issued by another list (list-channels' for
// list-messages) or another tenant, answers 200 with a page. Nothing leaks
// (the position is within the caller's list), but the answer is wrong
// (paging from an arbitrary point) and contradicts the port's contract.
// Expected: 400 for a cursor the list did not issue (e.g. an authenticated
// cursor, or one that names its list and filter).
func TestDefectForgedCursorIsTakenAsAPosition(t *testing.T) {
	f := newHostileFixture(t, "embedded")
	c := &client{t: t, h: f.h}
	for _, cur := range []string{"_w", "AAAA", f.vars["curChnA"], f.vars["curB"], f.vars["curSubA"]} {
		if r := c.call("/queries/list-messages", f.keyA, `{"cursor":"`+cur+`"}`); r.Status != 400 {
			t.Errorf("list-messages with cursor %q it did not issue: %d, want 400", cur, r.Status)
		}
	}
}
