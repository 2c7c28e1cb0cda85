package domain

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// A sendAt finer than a millisecond is kept rounded up, never down: its
// release never comes before the time asked, and a sendAt that was in the
// future when accepted stays after that moment (review finding: it was
// rounded down).
func TestSendAtIsRoundedUpToTheMillisecond(t *testing.T) {
	ch := ChannelRef{ID: "chn_1", ScopeID: "scp_2", ScopePath: []string{"scp_1", "scp_2"}, Type: ChannelSMS, Provider: "sandbox", From: "+15550001111"}
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	now := base.Add(400 * time.Microsecond)
	for _, asked := range []time.Time{base.Add(600 * time.Microsecond), base.Add(time.Second), base.Add(time.Second + time.Nanosecond)} {
		ev, err := Accept("msg_1", ch, OutboundMessage{To: "+15551230000", Content: Content{Text: "hi"}, SendAt: &asked}, now)
		if err != nil {
			t.Fatal(err)
		}
		if ev.SendAt.Before(asked) || !ev.SendAt.After(now) || ev.SendAt.Sub(asked) >= time.Millisecond || ev.SendAt.Nanosecond()%int(time.Millisecond) != 0 {
			t.Errorf("asked %s at %s: kept %s", asked.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), ev.SendAt.Format(time.RFC3339Nano))
		}
	}
}

// Timestamps read null and absent as nothing and any RFC 3339 time (events
// stored before them), and write three fraction digits in UTC.
func TestTimestampJSON(t *testing.T) {
	for _, in := range []string{`{"messageId":"m"}`, `{"messageId":"m","sendAt":null}`} {
		var e MessageAccepted
		if err := json.Unmarshal([]byte(in), &e); err != nil || e.SendAt != nil {
			t.Errorf("%s: %v %v", in, e.SendAt, err)
		}
	}
	var e MessageAccepted
	if err := json.Unmarshal([]byte(`{"sendAt":"2025-11-04T12:00:00.123456789+01:00"}`), &e); err != nil || e.SendAt == nil || e.SendAt.Nanosecond() != 123456789 {
		t.Fatalf("stored before: %v %v", e.SendAt, err)
	}
	if b, _ := json.Marshal(e.SendAt); string(b) != `"2025-11-04T11:00:00.123Z"` {
		t.Fatalf("written as %s", b)
	}
	var f SendAttemptFailed
	if err := json.Unmarshal([]byte(`{"retryAt":null}`), &f); err != nil || !f.RetryAt.IsZero() {
		t.Fatalf("null retryAt: %v %v", f.RetryAt, err)
	}
}

// A sendAt out of range names its bounds in the contract's time format, to
// the millisecond (acceptance finding: they were cut to the second, so the
// lower bound shown could be before the refused value).
func TestSendAtRangeNamesItsBoundsInMilliseconds(t *testing.T) {
	now := time.Date(2026, 11, 22, 22, 2, 28, 456789000, time.UTC)
	past := now.Add(-time.Millisecond)
	err := CheckOutbound(ChannelSMS, "+15551230000", Content{Text: "x"}, &past, nil, now)
	e := errs.As(err)
	if len(e.Fields) != 1 || e.Fields[0].Params["min"] != "2026-11-22T22:02:28.456Z" || e.Fields[0].Params["max"] != "2026-12-22T22:02:28.456Z" {
		t.Fatalf("fields %+v", e.Fields)
	}
}
