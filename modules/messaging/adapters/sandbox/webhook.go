package sandbox

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/strictjson"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// Standard Webhooks headers.
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// Tolerance is how far a webhook's timestamp may be from now, either way.
const Tolerance = 5 * time.Minute

// Bounds of parsed webhooks.
const (
	maxWebhookID = 255      // webhook-id: printable ASCII, 1..255
	maxIDField   = 255      // providerMessageId, reason, from, to
	maxText      = 64 << 10 // inbound text
)

// secretPrefix starts a Standard Webhooks secret: whsec_<base64 key>.
const secretPrefix = "whsec_"

// signingKey returns the HMAC key of an inbound secret: the decoded base64
// of a "whsec_..." secret (the form create-channel shows), or the bytes as
// they are for a raw key.
func signingKey(secret []byte) ([]byte, error) {
	s := strings.TrimSpace(string(secret))
	if rest, ok := strings.CutPrefix(s, secretPrefix); ok {
		k, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(k) == 0 {
			return nil, errors.New("secret: not whsec_<base64>")
		}
		return k, nil
	}
	if len(secret) == 0 {
		return nil, errors.New("secret: empty")
	}
	return secret, nil
}

// Sign returns the webhook-signature header value ("v1,<base64>") of a body
// under an inbound secret ("whsec_..." or a raw key), per Standard Webhooks:
// HMAC-SHA256 of "id.timestamp.body".
func Sign(secret []byte, webhookID string, ts time.Time, body []byte) (string, error) {
	key, err := signingKey(secret)
	if err != nil {
		return "", err
	}
	wh, err := standardwebhooks.NewWebhookRaw(key)
	if err != nil {
		return "", err
	}
	return wh.Sign(webhookID, ts, body)
}

// VerifyWebhook implements app.Provider: the Standard Webhooks signature of
// the body under the channel's inbound secret (any of the space-separated
// signatures may match), and a webhook-timestamp at most Tolerance from now,
// either way. It returns the webhook-id. Every failure is
// app.ErrBadSignature (401), with the cause wrapped for the log.
func (p *Provider) VerifyWebhook(secret []byte, h http.Header, body []byte, now time.Time) (string, error) {
	id, err := verify(secret, h, body, now)
	if err != nil {
		return "", app.ErrBadSignature.Wrap(err)
	}
	return id, nil
}

func verify(secret []byte, h http.Header, body []byte, now time.Time) (string, error) {
	id, ts, sig := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sig == "" {
		return "", errors.New("missing webhook headers")
	}
	if !validWebhookID(id) {
		return "", errors.New("webhook-id: not 1..255 printable ASCII characters")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("webhook-timestamp %q: not unix seconds", ts)
	}
	// Compared in whole seconds, as the timestamp is: the window is
	// inclusive at both ends, whatever the fraction of now's second.
	if d := now.Unix() - sec; d > int64(Tolerance/time.Second) || d < -int64(Tolerance/time.Second) {
		return "", fmt.Errorf("webhook-timestamp %d: %d s off, more than %s", sec, d, Tolerance)
	}
	key, err := signingKey(secret)
	if err != nil {
		return "", err
	}
	wh, err := standardwebhooks.NewWebhookRaw(key)
	if err != nil {
		return "", err
	}
	if err := wh.VerifyIgnoringTimestamp(body, h); err != nil {
		return "", err
	}
	return id, nil
}

func validWebhookID(id string) bool {
	if len(id) == 0 || len(id) > maxWebhookID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// Bodies of the sandbox's webhooks (contract section 8).
type (
	webhookType struct {
		Type *string `json:"type"`
	}
	receiptWebhook struct {
		Type              string  `json:"type"`
		ProviderMessageID *string `json:"providerMessageId"`
		Status            *string `json:"status"`
		Reason            *string `json:"reason"`
	}
	inboundWebhook struct {
		Type              string  `json:"type"`
		ProviderMessageID *string `json:"providerMessageId"`
		From              *string `json:"from"`
		To                *string `json:"to"`
		Text              *string `json:"text"`
	}
)

// ParseWebhook implements app.Provider: a receipt
// {"type":"receipt","providerMessageId","status":"delivered"|"undelivered","reason"?}
// or an inbound message {"type":"inbound","providerMessageId","from","to","text"}.
// Anything else (not a JSON object, unknown fields or type, wrong types,
// missing fields, a bad status) is errs.Invalid (400).
func (p *Provider) ParseWebhook(body []byte) (app.ProviderEvent, error) {
	body = bytes.TrimSpace(body)
	if !utf8.Valid(body) || len(body) == 0 || body[0] != '{' {
		return app.ProviderEvent{}, errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", "the body must be a JSON object")
	}
	var t webhookType // the type first (other keys are checked with it)
	if err := jsonv2.Unmarshal(body, &t); err != nil {
		return app.ProviderEvent{}, strictjson.Error(body, err)
	}
	if t.Type == nil {
		return app.ProviderEvent{}, errs.Invalid(errs.FieldError{Field: "type", Code: "errors.validation.required"})
	}
	switch *t.Type {
	case app.EventReceipt:
		var b receiptWebhook
		if err := strictjson.Unmarshal(body, &b); err != nil {
			return app.ProviderEvent{}, err
		}
		ev := app.ProviderEvent{Kind: app.EventReceipt}
		var fields []errs.FieldError
		ev.ProviderMessageID, fields = required(fields, "providerMessageId", b.ProviderMessageID, maxIDField)
		var status string
		status, fields = required(fields, "status", b.Status, maxIDField)
		switch s := domain.Status(status); s {
		case domain.StatusDelivered, domain.StatusUndelivered:
			ev.Status = s
		case "":
		default:
			fields = append(fields, errs.FieldError{Field: "status", Code: "errors.validation.one_of",
				Params: map[string]any{"allowed": "delivered, undelivered"}})
		}
		if b.Reason != nil {
			ev.Reason, fields = optional(fields, "reason", *b.Reason, maxIDField)
		}
		if len(fields) > 0 {
			return app.ProviderEvent{}, errs.Invalid(fields...)
		}
		return ev, nil
	case app.EventInbound:
		var b inboundWebhook
		if err := strictjson.Unmarshal(body, &b); err != nil {
			return app.ProviderEvent{}, err
		}
		ev := app.ProviderEvent{Kind: app.EventInbound}
		var fields []errs.FieldError
		ev.ProviderMessageID, fields = required(fields, "providerMessageId", b.ProviderMessageID, maxIDField)
		ev.From, fields = required(fields, "from", b.From, maxIDField)
		ev.To, fields = required(fields, "to", b.To, maxIDField)
		ev.Text, fields = required(fields, "text", b.Text, maxText)
		if len(fields) > 0 {
			return app.ProviderEvent{}, errs.Invalid(fields...)
		}
		return ev, nil
	default:
		return app.ProviderEvent{}, errs.Invalid(errs.FieldError{Field: "type", Code: "errors.validation.one_of",
			Params: map[string]any{"allowed": "receipt, inbound"}})
	}
}

// required checks a required string field: present, not blank, at most max bytes.
func required(fields []errs.FieldError, name string, v *string, max int) (string, []errs.FieldError) {
	if v == nil || strings.TrimSpace(*v) == "" {
		return "", append(fields, errs.FieldError{Field: name, Code: "errors.validation.required"})
	}
	return optional(fields, name, *v, max)
}

// optional checks an optional string field: at most max bytes, valid UTF-8,
// and no control characters but tab, CR and LF (as send-message's content
// rules: what a provider sends us is input like any other, and an escaped
// control character would cost six bytes of the stored message).
func optional(fields []errs.FieldError, name, v string, max int) (string, []errs.FieldError) {
	if len(v) > max {
		return "", append(fields, errs.FieldError{Field: name, Code: "errors.validation.too_long", Params: map[string]any{"max": max}})
	}
	if !utf8.ValidString(v) || domain.HasControl(v) {
		return "", append(fields, errs.FieldError{Field: name, Code: "errors.validation.invalid",
			Params: map[string]any{"reason": "control characters other than tab, CR and LF"}})
	}
	return v, fields
}
