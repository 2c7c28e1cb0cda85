package domain

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

var now = time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)

func at(d time.Duration) *time.Time { t := now.Add(d); return &t }

// fieldCodes renders the field errors of err as "field=code" in order.
func fieldCodes(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	e := errs.As(err)
	if e.Kind != errs.KindInvalid || e.Code != errs.CodeValidation {
		t.Fatalf("err = %v (kind %d), want errs.Invalid", err, e.Kind)
	}
	out := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		out = append(out, f.Field+"="+f.Code)
	}
	return out
}

func TestCheckOutbound(t *testing.T) {
	meta := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[strings.Repeat("k", 1)+string(rune('a'+i))] = "v"
		}
		return m
	}
	cases := []struct {
		name     string
		typ      ChannelType
		to       string
		content  Content
		sendAt   *time.Time
		metadata map[string]string
		want     []string // "field=code"; nil = valid
	}{
		{"sms minimal", ChannelSMS, "+15551230000", Content{Text: "hi"}, nil, nil, nil},
		{"sms shortest number", ChannelSMS, "+12", Content{Text: "x"}, nil, nil, nil},
		{"sms 15 digits", ChannelSMS, "+123456789012345", Content{Text: "x"}, nil, nil, nil},
		{"sms 16 digits", ChannelSMS, "+1234567890123456", Content{Text: "x"}, nil, nil, []string{"to=errors.validation.e164"}},
		{"sms one digit", ChannelSMS, "+1", Content{Text: "x"}, nil, nil, []string{"to=errors.validation.e164"}},
		{"sms leading zero", ChannelSMS, "+0555123", Content{Text: "x"}, nil, nil, []string{"to=errors.validation.e164"}},
		{"sms no plus", ChannelSMS, "15551230000", Content{Text: "x"}, nil, nil, []string{"to=errors.validation.e164"}},
		{"sms spaces", ChannelSMS, "+1 555 123", Content{Text: "x"}, nil, nil, []string{"to=errors.validation.e164"}},
		{"sms trailing newline", ChannelSMS, "+15551230000\n", Content{Text: "x"}, nil, nil, []string{"to=errors.validation.e164"}},
		{"sms missing to", ChannelSMS, "", Content{Text: "x"}, nil, nil, []string{"to=errors.validation.required"}},
		{"sms text 1600", ChannelSMS, "+15551230000", Content{Text: strings.Repeat("a", 1600)}, nil, nil, nil},
		{"sms text 1600 runes of 4 bytes", ChannelSMS, "+15551230000", Content{Text: strings.Repeat("😀", 1600)}, nil, nil, nil},
		{"sms text 1601", ChannelSMS, "+15551230000", Content{Text: strings.Repeat("a", 1601)}, nil, nil, []string{"content.text=errors.validation.too_long"}},
		{"sms text 1601 runes", ChannelSMS, "+15551230000", Content{Text: strings.Repeat("é", 1601)}, nil, nil, []string{"content.text=errors.validation.too_long"}},
		{"sms no text", ChannelSMS, "+15551230000", Content{}, nil, nil, []string{"content.text=errors.validation.required"}},
		{"sms subject and html", ChannelSMS, "+15551230000", Content{Text: "x", Subject: "s", HTML: "<p>"}, nil, nil,
			[]string{"content.subject=errors.validation.invalid", "content.html=errors.validation.invalid"}},
		{"email minimal text", ChannelEmail, "a@example.com", Content{Subject: "s", Text: "t"}, nil, nil, nil},
		{"email html only", ChannelEmail, "a.b+c@mail.example.com", Content{Subject: "s", HTML: "<p>t</p>"}, nil, nil, nil},
		{"email display name", ChannelEmail, "Ann <a@example.com>", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email angle brackets", ChannelEmail, "<a@example.com>", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email two", ChannelEmail, "a@example.com, b@example.com", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email no at", ChannelEmail, "example.com", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email domains a provider delivers to", ChannelEmail, "a@mail.example.co.uk", Content{Subject: "s", Text: "t"}, nil, nil, nil},
		{"email internationalized domain", ChannelEmail, "a@bücher.de", Content{Subject: "s", Text: "t"}, nil, nil, nil},
		{"email punycode domain", ChannelEmail, "a@xn--bcher-kva.de", Content{Subject: "s", Text: "t"}, nil, nil, nil},
		{"email local part of 64", ChannelEmail, strings.Repeat("a", 64) + "@example.com", Content{Subject: "s", Text: "t"}, nil, nil, nil},
		{"email local part of 65", ChannelEmail, strings.Repeat("a", 65) + "@example.com", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email without a top-level domain", ChannelEmail, "a@b", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email address literal", ChannelEmail, "a@[127.0.0.1]", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email numeric top-level domain", ChannelEmail, "a@10.0.0.1", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email hyphen first", ChannelEmail, "a@-x.com", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email hyphen last", ChannelEmail, "a@x-.com", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email underscore", ChannelEmail, "a@x_y.com", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email empty label", ChannelEmail, "a@x..com", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email trailing dot", ChannelEmail, "a@example.com.", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email padded", ChannelEmail, " a@example.com", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email phone", ChannelEmail, "+15551230000", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email too long", ChannelEmail, strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", Content{Subject: "s", Text: "t"}, nil, nil, []string{"to=errors.validation.email"}},
		{"email subject 998", ChannelEmail, "a@example.com", Content{Subject: strings.Repeat("s", 998), Text: "t"}, nil, nil, nil},
		{"email subject 999", ChannelEmail, "a@example.com", Content{Subject: strings.Repeat("s", 999), Text: "t"}, nil, nil, []string{"content.subject=errors.validation.too_long"}},
		{"email subject 998 runes", ChannelEmail, "a@example.com", Content{Subject: strings.Repeat("ü", 998), Text: "t"}, nil, nil, nil},
		{"email subject two lines", ChannelEmail, "a@example.com", Content{Subject: "a\r\nBcc: x@example.com", Text: "t"}, nil, nil, []string{"content.subject=errors.validation.invalid"}},
		{"email nothing", ChannelEmail, "", Content{}, nil, nil,
			[]string{"to=errors.validation.required", "content.subject=errors.validation.required", "content=errors.validation.required"}},
		{"email content exactly 64 KiB", ChannelEmail, "a@example.com", Content{Subject: "s", Text: strings.Repeat("t", 32*1024), HTML: strings.Repeat("h", 32*1024-1)}, nil, nil, nil},
		{"email content 64 KiB + 1", ChannelEmail, "a@example.com", Content{Subject: "s", Text: strings.Repeat("t", 32*1024), HTML: strings.Repeat("h", 32*1024)}, nil, nil, []string{"content=errors.validation.too_long"}},
		{"sendAt in a second", ChannelSMS, "+15551230000", Content{Text: "x"}, at(time.Second), nil, nil},
		{"sendAt in 1ns", ChannelSMS, "+15551230000", Content{Text: "x"}, at(time.Nanosecond), nil, nil},
		{"sendAt exactly 30 days", ChannelSMS, "+15551230000", Content{Text: "x"}, at(30 * 24 * time.Hour), nil, nil},
		{"sendAt 30 days + 1ms", ChannelSMS, "+15551230000", Content{Text: "x"}, at(30*24*time.Hour + time.Millisecond), nil, []string{"sendAt=errors.validation.range"}},
		{"sendAt now", ChannelSMS, "+15551230000", Content{Text: "x"}, at(0), nil, []string{"sendAt=errors.validation.range"}},
		{"sendAt past", ChannelSMS, "+15551230000", Content{Text: "x"}, at(-time.Hour), nil, []string{"sendAt=errors.validation.range"}},
		{"metadata 20 keys", ChannelSMS, "+15551230000", Content{Text: "x"}, nil, meta(20), nil},
		{"metadata 21 keys", ChannelSMS, "+15551230000", Content{Text: "x"}, nil, meta(21), []string{"metadata=errors.validation.too_long"}},
		{"metadata limits", ChannelSMS, "+15551230000", Content{Text: "x"}, nil, map[string]string{
			strings.Repeat("k", 40): strings.Repeat("v", 500),
			strings.Repeat("ß", 40): strings.Repeat("€", 500),
			"":                      "v",
			strings.Repeat("k", 41): "v",
			"long":                  strings.Repeat("v", 501),
		}, []string{
			"metadata.=errors.validation.too_short",
			"metadata." + strings.Repeat("k", 40) + "…=errors.validation.too_long",
			"metadata.long=errors.validation.too_long",
		}},
		{"everything wrong at once", ChannelSMS, "nope", Content{Text: strings.Repeat("a", 1601), HTML: "<p>"}, at(-time.Second),
			map[string]string{"k": strings.Repeat("v", 501)}, []string{
				"to=errors.validation.e164", "content.text=errors.validation.too_long", "content.html=errors.validation.invalid",
				"sendAt=errors.validation.range", "metadata.k=errors.validation.too_long",
			}},
		{"tab, CR and LF are text", ChannelEmail, "a@example.com", Content{Subject: "s\tt", Text: "a\r\nb\tc", HTML: "<p>\n</p>"}, nil,
			map[string]string{"k": "a\nb"}, nil},
		{"control characters", ChannelEmail, "a@example.com", Content{Subject: "s\x1b[31m", Text: "a\x00", HTML: "\x07"}, nil,
			map[string]string{"k": "v\x01", "k\x02": "v"}, []string{
				"content.text=errors.validation.invalid", "content.subject=errors.validation.invalid", "content.html=errors.validation.invalid",
				"metadata.k=errors.validation.invalid", "metadata.k\x02=errors.validation.invalid",
			}},
		{"DEL and C1 controls (review finding)", ChannelEmail, "a@example.com", Content{Subject: "a\u007fb", Text: "x\u009b[2J", HTML: "\u0080"}, nil,
			map[string]string{"k": "v\u0085"}, []string{
				"content.text=errors.validation.invalid", "content.subject=errors.validation.invalid", "content.html=errors.validation.invalid",
				"metadata.k=errors.validation.invalid",
			}},
		{"a subject is one line, whatever ends it", ChannelEmail, "a@example.com", Content{Subject: "a\u2028b", Text: "x\u2028y\u2029z"}, nil, nil,
			[]string{"content.subject=errors.validation.invalid"}},
		{"letters beyond C1 are text", ChannelSMS, "+15551230000", Content{Text: "\u00a0é\u00ffŀ€😀"}, nil, map[string]string{"k": "\u00c2\u00a0"}, nil},
		{"unknown channel type", ChannelType("fax"), "+15551230000", Content{Text: "x"}, nil, nil, []string{"channelId=errors.validation.invalid"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckOutbound(tc.typ, tc.to, tc.content, tc.sendAt, tc.metadata, now)
			if got := fieldCodes(t, err); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("fields = %q\nwant     %q", got, tc.want)
			}
		})
	}
}

func TestCheckOutboundParams(t *testing.T) {
	err := CheckOutbound(ChannelSMS, "+15551230000", Content{Text: strings.Repeat("a", 1601)}, at(-time.Second), nil, now)
	f := errs.As(err).Fields
	if len(f) != 2 || f[0].Params["max"] != MaxSMSText {
		t.Fatalf("fields = %+v", f)
	}
	if f[1].Params["min"] != "2025-05-06T07:08:09.000Z" || f[1].Params["max"] != "2025-06-05T07:08:09.000Z" {
		t.Fatalf("sendAt params = %v", f[1].Params)
	}
}

func TestCheckChannel(t *testing.T) {
	ok := NewChannel{Name: " Alerts ", Type: ChannelSMS, From: "+15550001111", Provider: "sandbox"}
	cases := []struct {
		name string
		edit func(*NewChannel)
		want []string
	}{
		{"valid", func(*NewChannel) {}, nil},
		{"alphanumeric sender", func(c *NewChannel) { c.From = "Acme 2" }, nil},
		{"alphanumeric sender 11", func(c *NewChannel) { c.From = "ABCDEFGHIJK" }, nil},
		{"alphanumeric sender 12", func(c *NewChannel) { c.From = "ABCDEFGHIJKL" }, []string{"from=errors.validation.sender"}},
		{"sender with dash", func(c *NewChannel) { c.From = "Ac-me" }, []string{"from=errors.validation.sender"}},
		{"blank sender", func(c *NewChannel) { c.From = "   " }, []string{"from=errors.validation.sender"}},
		{"sender with a leading space", func(c *NewChannel) { c.From = " Acme" }, []string{"from=errors.validation.sender"}},
		{"sender with a trailing space", func(c *NewChannel) { c.From = "Acme " }, []string{"from=errors.validation.sender"}},
		{"short code sender", func(c *NewChannel) { c.From = "12345" }, nil},
		{"email from", func(c *NewChannel) { c.Type, c.From = ChannelEmail, "noreply@example.com" }, nil},
		{"email from with name", func(c *NewChannel) { c.Type, c.From = ChannelEmail, "Acme <noreply@example.com>" }, []string{"from=errors.validation.email"}},
		{"email from phone", func(c *NewChannel) { c.Type = ChannelEmail }, []string{"from=errors.validation.email"}},
		{"no from", func(c *NewChannel) { c.From = "" }, []string{"from=errors.validation.required"}},
		{"bad type", func(c *NewChannel) { c.Type = "fax" }, []string{"type=errors.validation.one_of"}},
		{"blank name", func(c *NewChannel) { c.Name = "  " }, []string{"name=errors.validation.required"}},
		{"name 200", func(c *NewChannel) { c.Name = strings.Repeat("n", 200) }, nil},
		{"name 201", func(c *NewChannel) { c.Name = strings.Repeat("n", 201) }, []string{"name=errors.validation.too_long"}},
		{"maps at their limits", func(c *NewChannel) {
			c.Config = map[string]string{strings.Repeat("k", 64): strings.Repeat("v", 4096)}
			c.Credentials = map[string]string{"token": strings.Repeat("s", 4096)}
		}, nil},
		{"maps over their limits", func(c *NewChannel) {
			c.Config = map[string]string{strings.Repeat("k", 65): "v", "": "v"}
			c.Credentials = map[string]string{"token": strings.Repeat("s", 4097)}
			for i := range 20 {
				c.Credentials[string(rune('a'+i))] = "x"
			}
		}, []string{
			"config.=errors.validation.too_short",
			"config." + strings.Repeat("k", 64) + "…=errors.validation.too_long",
			"credentials=errors.validation.too_long",
			"credentials.token=errors.validation.too_long",
		}},
		{"all at once", func(c *NewChannel) { c.Name, c.Type, c.Config = "", "fax", map[string]string{"": ""} }, []string{
			"name=errors.validation.required", "type=errors.validation.one_of", "config.=errors.validation.too_short",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			name, err := CheckChannel(c)
			if got := fieldCodes(t, err); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("fields = %q\nwant     %q", got, tc.want)
			}
			if err == nil && name != strings.TrimSpace(c.Name) {
				t.Fatalf("name = %q", name)
			}
		})
	}
	// A credential value is never part of an error.
	_, err := CheckChannel(NewChannel{Name: "x", Type: ChannelSMS, From: "+15550001111", Credentials: map[string]string{"token": strings.Repeat("S", 5000)}})
	for _, f := range errs.As(err).Fields {
		if strings.Contains(f.Field, "SSS") || strings.Contains(err.Error(), "SSS") {
			t.Fatalf("credential echoed: %+v", f)
		}
	}
}

func TestAccept(t *testing.T) {
	ch := ChannelRef{ID: "chn_1", ScopeID: "scp_2", ScopePath: []string{"scp_1", "scp_2"}, Type: ChannelSMS, Provider: "sandbox", From: "+15550001111"}
	ev, err := Accept("msg_1", ch, OutboundMessage{To: "+15551230000", Content: Content{Text: "hi"}, Metadata: map[string]string{}}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := MessageAccepted{MessageID: "msg_1", ChannelID: "chn_1", ScopeID: "scp_2", ScopePath: []string{"scp_1", "scp_2"},
		ChannelType: ChannelSMS, Provider: "sandbox", To: "+15551230000", From: "+15550001111", Content: Content{Text: "hi"}, Status: StatusQueued}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("event = %+v\nwant    %+v", ev, want)
	}
	local := now.Add(time.Hour).In(time.FixedZone("CET", 3600))
	ev, err = Accept("msg_2", ch, OutboundMessage{To: "+15551230000", Content: Content{Text: "hi"}, SendAt: &local}, now)
	if err != nil || ev.Status != StatusScheduled || ev.SendAt == nil || ev.SendAt.Location() != time.UTC || !ev.SendAt.Equal(local) {
		t.Fatalf("scheduled = %+v, %v", ev, err)
	}
	if _, err := Accept("msg_3", ch, OutboundMessage{To: "x"}, now); errs.KindOf(err) != errs.KindInvalid {
		t.Fatalf("invalid accepted: %v", err)
	}
}
