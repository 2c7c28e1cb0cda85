package events_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/events"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

const samplesDir = "contracts/samples"

// sampleSchemas names the schema of every sample of contracts/samples
// ("" for the signed deliveries, checked by TestSignedSamples).
var sampleSchemas = map[string]string{
	"integration.message.queued.json":           "message.queued",
	"integration.message.sent.json":             "message.sent",
	"integration.message.delivered.json":        "message.delivered",
	"integration.message.undelivered.json":      "message.undelivered",
	"integration.message.failed.json":           "message.failed",
	"integration.message.canceled.json":         "message.canceled",
	"integration.message.received.json":         "message.received",
	"webhook.message.queued.json":               "webhook",
	"webhook.message.sent.json":                 "webhook",
	"webhook.message.delivered.json":            "webhook",
	"webhook.message.undelivered.json":          "webhook",
	"webhook.message.failed.json":               "webhook",
	"webhook.message.canceled.json":             "webhook",
	"webhook.message.received.json":             "webhook",
	"sandbox.receipt-delivered.json":            "sandbox-receipt",
	"sandbox.receipt-undelivered.json":          "sandbox-receipt",
	"sandbox.inbound.json":                      "sandbox-inbound",
	"history.delivered-after-retries.json":      "message-history",
	"history.scheduled-released-delivered.json": "message-history",
	"history.failed.json":                       "message-history",
	"history.undelivered.json":                  "message-history",
	"history.canceled.json":                     "message-history",
	"history.received.json":                     "message-history",
	"message.json":                              "message",
	"channel-created.json":                      "channels.channel-created",
	"webhook-delivery.signed.json":              "",
	"sandbox-delivery.signed.json":              "",
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEverySampleHasASchema(t *testing.T) {
	entries, err := os.ReadDir(samplesDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Name()] = true
		if _, ok := sampleSchemas[e.Name()]; !ok {
			t.Errorf("sample %s has no schema in this test", e.Name())
		}
	}
	for name := range sampleSchemas {
		if !seen[name] {
			t.Errorf("sample %s is missing", name)
		}
	}
}

func TestSamplesValidate(t *testing.T) {
	for name, schema := range sampleSchemas {
		if schema == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if err := events.Validate(schema, sample(t, name)); err != nil {
				t.Error(err)
			}
		})
	}
}

// Every integration event type and every webhook type has a sample, and
// each webhook sample is the body of its integration event's message.
func TestSamplesCoverEveryPublicType(t *testing.T) {
	for _, typ := range []string{"queued", "sent", "delivered", "undelivered", "failed", "canceled", "received"} {
		var ie struct {
			ID, Type, TenantID string
			Time               string
			Detail             struct {
				TenantID  string
				ScopePath []string
				Data      json.RawMessage
			}
		}
		if err := json.Unmarshal(sample(t, "integration.message."+typ+".json"), &ie); err != nil {
			t.Fatal(err)
		}
		var wh struct {
			Type      string
			Timestamp string
			Data      json.RawMessage
		}
		if err := json.Unmarshal(sample(t, "webhook.message."+typ+".json"), &wh); err != nil {
			t.Fatal(err)
		}
		if ie.Type != "message."+typ || wh.Type != ie.Type {
			t.Errorf("%s: types %q and %q", typ, ie.Type, wh.Type)
		}
		if ie.Detail.TenantID != ie.TenantID {
			t.Errorf("%s: detail.tenantId %s != tenantId %s", typ, ie.Detail.TenantID, ie.TenantID)
		}
		if !jsonEqual(t, ie.Detail.Data, wh.Data) {
			t.Errorf("%s: the webhook's data is not the integration event's message", typ)
		}
		var msg struct{ ScopeID string }
		_ = json.Unmarshal(ie.Detail.Data, &msg)
		if n := len(ie.Detail.ScopePath); n == 0 || ie.Detail.ScopePath[n-1] != msg.ScopeID {
			t.Errorf("%s: scopePath %v does not end in the message's scope %s", typ, ie.Detail.ScopePath, msg.ScopeID)
		}
		if !strings.HasPrefix(wh.Timestamp, strings.TrimSuffix(ie.Time, "Z")) {
			t.Errorf("%s: webhook timestamp %s is not the event time %s", typ, wh.Timestamp, ie.Time)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// Histories are whole streams: versions 1..n, one message.
func TestHistorySamplesAreStreams(t *testing.T) {
	types := map[string]bool{}
	for name, schema := range sampleSchemas {
		if schema != "message-history" {
			continue
		}
		var h struct {
			Events []struct {
				Type    string
				Version int
				Data    struct{ MessageID string }
			}
		}
		if err := json.Unmarshal(sample(t, name), &h); err != nil {
			t.Fatal(err)
		}
		for i, e := range h.Events {
			types[e.Type] = true
			if e.Version != i+1 || e.Data.MessageID != h.Events[0].Data.MessageID {
				t.Errorf("%s: event %d: version %d, message %s", name, i, e.Version, e.Data.MessageID)
			}
		}
	}
	for _, typ := range []string{"messaging.message-accepted", "messaging.message-released", "messaging.message-canceled",
		"messaging.send-attempt-started", "messaging.send-attempt-failed", "messaging.message-sent", "messaging.message-failed", "messaging.message-delivered",
		"messaging.message-undelivered", "messaging.message-received"} {
		if !types[typ] {
			t.Errorf("no history sample has a %s event", typ)
		}
	}
}

// The signed samples verify as a receiver verifies them (Standard Webhooks),
// and their bodies match their schemas.
func TestSignedSamples(t *testing.T) {
	for name, schema := range map[string]string{"webhook-delivery.signed.json": "webhook", "sandbox-delivery.signed.json": "sandbox-receipt"} {
		t.Run(name, func(t *testing.T) {
			var s struct {
				Secret  string
				Headers map[string]string
				Body    string
			}
			if err := json.Unmarshal(sample(t, name), &s); err != nil {
				t.Fatal(err)
			}
			if err := events.Validate(schema, []byte(s.Body)); err != nil {
				t.Error(err)
			}
			key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.Secret, "whsec_"))
			if err != nil || !strings.HasPrefix(s.Secret, "whsec_") {
				t.Fatalf("secret %q: %v", s.Secret, err)
			}
			if _, err := strconv.ParseInt(s.Headers["webhook-timestamp"], 10, 64); err != nil {
				t.Errorf("webhook-timestamp: %v", err)
			}
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(s.Headers["webhook-id"] + "." + s.Headers["webhook-timestamp"] + "." + s.Body))
			want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if s.Headers["webhook-signature"] != want {
				t.Errorf("webhook-signature %s, want %s", s.Headers["webhook-signature"], want)
			}
		})
	}
}

// Every Switchboard id in the samples is a valid id of its type (they are
// fixtures of other tests too).
func TestSampleIDsAreValid(t *testing.T) {
	re := regexp.MustCompile(`\b(wrk|tnt|inv|scp|sva|key|chn|msg|sub|evt|dlv)_[0-9A-Za-z]{26}\b`)
	entries, err := os.ReadDir(samplesDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		for _, m := range re.FindAllStringSubmatch(string(sample(t, e.Name())), -1) {
			n++
			if !ids.Valid(m[1], m[0]) {
				t.Errorf("%s: %s is not a valid id", e.Name(), m[0])
			}
		}
	}
	if n == 0 {
		t.Error("no ids found in the samples")
	}
}

func TestNamesAndSchemas(t *testing.T) {
	names, err := events.Names()
	if err != nil {
		t.Fatal(err)
	}
	if !sort.StringsAreSorted(names) || len(names) < 20 {
		t.Fatalf("names: %v", names)
	}
	for _, n := range names {
		b, err := events.Schema(n)
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Schema string `json:"$schema"`
			ID     string `json:"$id"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if s.Schema != "https://json-schema.org/draft/2020-12/schema" || s.ID != events.BaseURL+n+".schema.json" {
			t.Errorf("%s: $schema %q, $id %q", n, s.Schema, s.ID)
		}
	}
	if _, err := events.Schema("nope"); !errors.Is(err, events.ErrUnknownSchema) {
		t.Errorf("Schema(nope): %v", err)
	}
}

func TestValidateErrors(t *testing.T) {
	if err := events.Validate("no-such-schema", []byte(`{}`)); !errors.Is(err, events.ErrUnknownSchema) {
		t.Errorf("unknown schema: %v", err)
	}
	for _, doc := range []string{``, `{`, `{"type":"receipt"} {}`, `nope`} {
		if err := events.Validate("sandbox-receipt", []byte(doc)); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("%q: %v", doc, err)
		}
	}
}
