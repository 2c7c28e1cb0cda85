package domain

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
)

// Limits of send-message (contract section 6). Character limits count
// Unicode code points (runes), byte limits UTF-8 bytes.
const (
	MaxSMSText          = 1600      // content.text of an sms, characters
	MaxEmailSubject     = 998       // content.subject of an email, characters (RFC 5322 line length)
	MaxContentBytes     = 64 * 1024 // text + subject + html, bytes
	MaxScheduleAhead    = 30 * 24 * time.Hour
	MaxMetadataKeys     = 20
	MaxMetadataKey      = 40  // characters
	MaxMetadataValue    = 500 // characters
	MaxEmailAddress     = 254 // bytes (RFC 5321 path limit)
	MaxAlphanumericFrom = 11  // characters of an alphanumeric sms sender id
)

// Limits of create-channel.
const (
	MaxChannelMapKeys  = 20   // config and credentials, each
	MaxChannelMapKey   = 64   // characters
	MaxChannelMapValue = 4096 // characters
)

// Field error codes used by the rules (stable i18n keys of the catalog).
const (
	CodeRequired = "errors.validation.required"
	CodeTooShort = "errors.validation.too_short"
	CodeTooLong  = "errors.validation.too_long"
	CodeE164     = "errors.validation.e164"
	// CodeSender: an sms sender is neither E.164 nor an alphanumeric sender id.
	CodeSender     = "errors.validation.sender"
	CodeEmail      = "errors.validation.email"
	CodeRange      = "errors.validation.range"
	CodeOneOf      = "errors.validation.one_of"
	CodeNotAllowed = "errors.validation.invalid"
)

// e164 is an E.164 number: "+", a country code not starting with 0, at most
// 15 digits in all.
var e164 = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)

// alphanumericSender is an sms sender id as carriers deliver it, such as
// "Acme" or a short code: letters, digits and spaces.
var alphanumericSender = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)

// channelSender is an alphanumeric sender id a channel may send as: 1 to 11
// letters, digits and spaces, starting and ending with a letter or digit
// (what Twilio takes; a short code is digits alone).
var channelSender = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9 ]{0,9}[A-Za-z0-9])?$`)

// ValidE164 reports whether s is a phone number in E.164 form.
func ValidE164(s string) bool { return e164.MatchString(s) }

// ValidEmailAddress reports whether s is a bare email address ("a@example.com")
// that a provider can deliver to: what net/mail parses as an address,
// without a display name, angle brackets, comments or surrounding spaces,
// at most 254 bytes, a local part of at most 64 bytes (RFC 5321), and a
// domain that is a host name (ValidMailDomain).
func ValidEmailAddress(s string) bool {
	if s == "" || len(s) > MaxEmailAddress {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at <= maxEmailLocalPart && ValidMailDomain(s[at+1:])
}

// maxEmailLocalPart is RFC 5321's limit of a local part, in bytes.
const maxEmailLocalPart = 64

// ValidMailDomain reports whether d is a host name mail can be sent to: two
// or more dot-separated labels of 1..63 bytes, each of letters (any script),
// digits and hyphens, not starting or ending with a hyphen, the last not all
// digits. So "example" (no top-level domain), "[127.0.0.1]" (an address
// literal), "-x.com" and "x_y.com" are not.
func ValidMailDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	return strings.TrimFunc(tld, unicode.IsDigit) != ""
}

// CheckInbound checks the addresses of an inbound message (a provider's
// webhook) against its channel's type t, and returns nil or one
// errs.Invalid naming "from" and "to" (in that order):
//
//   - sms: to is E.164 (a number of the tenant's); from is E.164 or an
//     alphanumeric sender id (1 to 11 letters, digits and spaces, which takes
//     short codes in), as carriers deliver them.
//   - email: both are bare addresses (ValidEmailAddress).
//
// Whether to is the channel's own From is not checked: a provider may post
// a number's or a domain's messages to one channel. The text's rules are the
// provider adapter's.
func CheckInbound(t ChannelType, from, to string) error {
	var fields []errs.FieldError
	switch t {
	case ChannelSMS:
		if !ValidE164(from) && !alphanumericSender.MatchString(from) {
			fields = append(fields, errs.FieldError{Field: "from", Code: CodeSender})
		}
		if !ValidE164(to) {
			fields = append(fields, errs.FieldError{Field: "to", Code: CodeE164})
		}
	case ChannelEmail:
		if !ValidEmailAddress(from) {
			fields = append(fields, errs.FieldError{Field: "from", Code: CodeEmail})
		}
		if !ValidEmailAddress(to) {
			fields = append(fields, errs.FieldError{Field: "to", Code: CodeEmail})
		}
	}
	if len(fields) > 0 {
		return errs.Invalid(fields...)
	}
	return nil
}

// CheckOutbound checks a new outbound message against every rule of
// send-message for a channel of type t, at now, and returns nil or one
// errs.Invalid holding every failed field (JSON paths: "to", "content.text",
// "content.subject", "content.html", "content", "sendAt", "metadata",
// "metadata.<key>"), in that order, metadata keys sorted.
//
//   - sms: to is E.164; content.text 1..1600 characters; no subject, no html.
//   - email: to is a bare address; content.subject 1..998 characters on one
//     line; content.text or content.html (or both).
//   - content at most 64 KiB (UTF-8 bytes of text, subject and html together).
//   - sendAt, when set, after now and at most 30 days after it (exactly 30
//     days is allowed).
//   - metadata at most 20 keys; keys 1..40 characters, values at most 500.
//   - no C0 control characters but tab, CR and LF in content and metadata.
func CheckOutbound(t ChannelType, to string, c Content, sendAt *time.Time, metadata map[string]string, now time.Time) error {
	var fields []errs.FieldError
	add := func(field, code string, params map[string]any) {
		fields = append(fields, errs.FieldError{Field: field, Code: code, Params: params})
	}
	switch t {
	case ChannelSMS:
		switch {
		case to == "":
			add("to", CodeRequired, nil)
		case !ValidE164(to):
			add("to", CodeE164, nil)
		}
		switch n := utf8.RuneCountInString(c.Text); {
		case n == 0:
			add("content.text", CodeRequired, nil)
		case n > MaxSMSText:
			add("content.text", CodeTooLong, map[string]any{"max": MaxSMSText})
		}
		if c.Subject != "" {
			add("content.subject", CodeNotAllowed, map[string]any{"reason": "an sms has no subject"})
		}
		if c.HTML != "" {
			add("content.html", CodeNotAllowed, map[string]any{"reason": "an sms has no html"})
		}
	case ChannelEmail:
		switch {
		case to == "":
			add("to", CodeRequired, nil)
		case !ValidEmailAddress(to):
			add("to", CodeEmail, nil)
		}
		switch n := utf8.RuneCountInString(c.Subject); {
		case n == 0:
			add("content.subject", CodeRequired, nil)
		case n > MaxEmailSubject:
			add("content.subject", CodeTooLong, map[string]any{"max": MaxEmailSubject})
		case strings.ContainsAny(c.Subject, lineBreaks):
			add("content.subject", CodeNotAllowed, map[string]any{"reason": "a subject is one line"})
		}
		if c.Text == "" && c.HTML == "" {
			add("content", CodeRequired, map[string]any{"oneOf": "text, html"})
		}
	default:
		add("channelId", CodeNotAllowed, map[string]any{"reason": fmt.Sprintf("unknown channel type %q", t)})
	}
	for _, f := range []struct{ field, value string }{{"content.text", c.Text}, {"content.subject", c.Subject}, {"content.html", c.HTML}} {
		if HasControl(f.value) {
			add(f.field, CodeNotAllowed, map[string]any{"reason": "control characters other than tab, CR and LF"})
		}
	}
	if n := len(c.Text) + len(c.Subject) + len(c.HTML); n > MaxContentBytes {
		add("content", CodeTooLong, map[string]any{"max": MaxContentBytes})
	}
	if sendAt != nil {
		latest := now.Add(MaxScheduleAhead)
		if !sendAt.After(now) || sendAt.After(latest) {
			add("sendAt", CodeRange, map[string]any{
				"min": now.UTC().Format(TimestampLayout), "max": latest.UTC().Format(TimestampLayout),
			})
		}
	}
	fields = append(fields, checkStringMap("metadata", metadata, MaxMetadataKeys, MaxMetadataKey, MaxMetadataValue)...)
	if len(fields) > 0 {
		return errs.Invalid(fields...)
	}
	return nil
}

// checkStringMap checks a map of string keys and values: at most maxKeys
// keys, keys 1..maxKey characters, values at most maxValue characters. Field
// paths are "<name>" and "<name>.<key>", keys sorted; a key longer than
// maxKey shows cut to maxKey characters and "…" (the path of a field error
// never echoes more than that). Values are never echoed.
func checkStringMap(name string, m map[string]string, maxKeys, maxKey, maxValue int) []errs.FieldError {
	var fields []errs.FieldError
	if len(m) > maxKeys {
		fields = append(fields, errs.FieldError{Field: name, Code: CodeTooLong, Params: map[string]any{"max": maxKeys}})
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		n := utf8.RuneCountInString(k)
		switch {
		case n == 0:
			fields = append(fields, errs.FieldError{Field: name + ".", Code: CodeTooShort, Params: map[string]any{"min": 1}})
			continue
		case n > maxKey:
			fields = append(fields, errs.FieldError{Field: name + "." + string([]rune(k)[:maxKey]) + "…", Code: CodeTooLong, Params: map[string]any{"max": maxKey}})
			continue
		}
		switch {
		case utf8.RuneCountInString(m[k]) > maxValue:
			fields = append(fields, errs.FieldError{Field: name + "." + k, Code: CodeTooLong, Params: map[string]any{"max": maxValue}})
		case HasControl(k) || HasControl(m[k]):
			fields = append(fields, errs.FieldError{Field: name + "." + k, Code: CodeNotAllowed,
				Params: map[string]any{"reason": "control characters other than tab, CR and LF"}})
		}
	}
	return fields
}

// HasControl reports whether s holds a control character other than tab,
// CR and LF: C0 (U+0000..U+001F), DEL (U+007F) or C1 (U+0080..U+009F, a
// terminal's escape sequences among them). They have no place in a message,
// and JSON stores each C0 character in six bytes: refusing them bounds a
// message's stored size at about twice its content (see MaxContentBytes).
func HasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r', c == 0x7f:
			return true
		case c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f: // U+0080..U+009F in UTF-8
			return true
		}
	}
	return false
}

// lineBreaks are the characters that end a line: CR, LF, NEL (a C1
// control, refused anyway), LINE SEPARATOR and PARAGRAPH SEPARATOR.
const lineBreaks = "\r\n\u0085\u2028\u2029"

// NewChannel is a channel as create-channel asks for it.
type NewChannel struct {
	ChannelID   string
	ScopeID     string
	ScopePath   []string // root..ScopeID
	Name        string
	Type        ChannelType
	Provider    string
	From        string
	Config      map[string]string
	Credentials map[string]string // in clear: checked here, sealed by the caller
}

// CheckChannel checks a new channel against every rule of create-channel
// that does not depend on the provider and returns the normalized name
// (trimmed), or one errs.Invalid with every failed field:
//
//   - name: 1..200 characters after trimming;
//   - type: "sms" or "email";
//   - from: required; sms: E.164 or an alphanumeric sender id of 1..11
//     letters, digits and spaces, neither starting nor ending with a space;
//     email: a bare address;
//   - config and credentials: at most 20 keys each, keys 1..64 characters,
//     values at most 4096 characters, no control characters but tab, CR
//     and LF (field paths "config.<key>", "credentials.<key>"; credential
//     values are never echoed).
func CheckChannel(c NewChannel) (string, error) {
	var fields []errs.FieldError
	name, err := CheckChannelName(c.Name)
	if err != nil {
		fields = append(fields, errs.As(err).Fields...)
	}
	switch {
	case !ValidChannelType(c.Type):
		fields = append(fields, errs.FieldError{Field: "type", Code: CodeOneOf, Params: map[string]any{"allowed": "sms, email"}})
	case c.From == "":
		fields = append(fields, errs.FieldError{Field: "from", Code: CodeRequired})
	case c.Type == ChannelSMS && !ValidE164(c.From) && !channelSender.MatchString(c.From):
		fields = append(fields, errs.FieldError{Field: "from", Code: CodeSender})
	case c.Type == ChannelEmail && !ValidEmailAddress(c.From):
		fields = append(fields, errs.FieldError{Field: "from", Code: CodeEmail})
	}
	fields = append(fields, checkStringMap("config", c.Config, MaxChannelMapKeys, MaxChannelMapKey, MaxChannelMapValue)...)
	fields = append(fields, checkStringMap("credentials", c.Credentials, MaxChannelMapKeys, MaxChannelMapKey, MaxChannelMapValue)...)
	if len(fields) > 0 {
		return "", errs.Invalid(fields...)
	}
	return name, nil
}

// CreateChannel returns the event of a new channel whose fields passed
// CheckChannel; sealedCredentials and sealedInboundSecret are the sealed
// blobs (nil when there is none).
func CreateChannel(c NewChannel, name string, sealedCredentials, sealedInboundSecret []byte) ChannelCreated {
	var cfg map[string]string
	if len(c.Config) > 0 {
		cfg = c.Config
	}
	return ChannelCreated{
		ChannelID: c.ChannelID, ScopeID: c.ScopeID, ScopePath: slices.Clone(c.ScopePath), Name: name,
		Type: c.Type, Provider: c.Provider, From: c.From, Config: cfg,
		SealedCredentials: sealedCredentials, SealedInboundSecret: sealedInboundSecret,
	}
}

// ChannelRef is what accepting a message needs to know of its channel.
type ChannelRef struct {
	ID        string
	ScopeID   string
	ScopePath []string
	Type      ChannelType
	Provider  string
	From      string
}

// OutboundMessage is a new outbound message as send-message asks for it.
type OutboundMessage struct {
	To       string
	Content  Content
	SendAt   *time.Time
	Metadata map[string]string
}

// Accept checks a new outbound message (CheckOutbound) and returns its
// event: queued, or scheduled when it has a sendAt (kept in UTC).
func Accept(messageID string, ch ChannelRef, o OutboundMessage, now time.Time) (MessageAccepted, error) {
	if err := CheckOutbound(ch.Type, o.To, o.Content, o.SendAt, o.Metadata, now); err != nil {
		return MessageAccepted{}, err
	}
	ev := MessageAccepted{
		MessageID: messageID, ChannelID: ch.ID, ScopeID: ch.ScopeID, ScopePath: slices.Clone(ch.ScopePath),
		ChannelType: ch.Type, Provider: ch.Provider, To: o.To, From: ch.From, Content: o.Content,
		Status: StatusQueued,
	}
	if len(o.Metadata) > 0 {
		ev.Metadata = o.Metadata
	}
	if o.SendAt != nil {
		at := AtOrAfter(*o.SendAt)
		ev.SendAt, ev.Status = &at, StatusScheduled
	}
	return ev, nil
}
