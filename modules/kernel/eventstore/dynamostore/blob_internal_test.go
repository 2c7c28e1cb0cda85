package dynamostore

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// testIDs makes ULID-like ids ("msg_01JQ..." of 26 Crockford base32
// characters): a shared time prefix and random rest, as real ids compress.
type testIDs struct{ r *rand.Rand }

func newTestIDs(seed uint64) testIDs { return testIDs{rand.New(rand.NewPCG(seed, seed+1))} }

func (g testIDs) id(prefix string) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	b := []byte("01JQ")
	for range 22 {
		b = append(b, alphabet[g.r.IntN(len(alphabet))])
	}
	return prefix + "_" + string(b)
}

// A publication outbox payload is a work.IntegrationEvent whose detail is
// messaging's MessageEventDetail with its MessageView: built here as maps,
// so that this package imports no bounded context (encoding/json writes map
// keys sorted, which changes nothing for the sizes measured).

// smsText is the text of an appointment reminder (publicationPayload with
// it is ~1.3 KB).
const smsText = "Hallo Maria, Ihr Termin am Donnerstag, 6. März um 14:30 Uhr in der Praxis Dr. Weber " +
	"(Friedrichstraße 123, 10117 Berlin) ist bestätigt. Bitte bringen Sie Ihre Versichertenkarte mit. " +
	"Absagen bitte bis 24 Stunden vorher unter 030 1234567."

// publicationPayload is a realistic ~1.3 KB outbox payload of a
// "messaging.message-delivered" publication of an SMS (ids differ by seed).
func publicationPayload(seed uint64) []byte { return publication(seed, false) }

// publication is publicationPayload, or with compact a smaller one (~0.9 KB:
// a short SMS in a root scope, without metadata), whose whole outbox item is
// the ~1.3 KB of ADR 0008's capacity report.
func publication(seed uint64, compact bool) []byte {
	g := newTestIDs(seed)
	tenant := g.id("tnt")
	now := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)
	scope := g.id("scp")
	inv := invocation.Meta{InvocationID: g.id("inv"), ActionID: g.id("act"), TraceID: "0af7651916cd43dd8448eb211c80319d", Principal: g.id("sva")}
	path, text := []string{g.id("scp"), g.id("scp"), scope}, smsText
	meta := map[string]string{"appointmentId": "apt-2025-03-06-1430-weber", "campaign": "reminder-24h", "patientRef": "P-000123987"}
	if compact {
		inv.ActionID, path, text, meta = "", []string{scope}, "Ihr Termin am 6. März um 14:30 Uhr ist bestätigt.", nil
	}
	var metadata any = meta
	if meta == nil {
		metadata = map[string]string{}
	}
	detail, err := json.Marshal(map[string]any{
		"tenantId":   tenant,
		"invocation": inv,
		"scopePath":  path,
		"data": map[string]any{
			"messageId": g.id("msg"), "channelId": g.id("chn"), "scopeId": scope, "direction": "outbound",
			"to": "+4915112345678", "from": "+4930123456789",
			"content": map[string]string{"text": text},
			"status":  "delivered", "statusReason": nil, "attempts": 1,
			"metadata": metadata, "sendAt": nil,
			"createdAt": now.Format(time.RFC3339Nano), "updatedAt": now.Add(3 * time.Second).Format(time.RFC3339Nano),
		},
	})
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(map[string]any{"id": g.id("evt"), "source": "switchboard.messaging", "type": "messaging.message-delivered",
		"tenantId": tenant, "time": now, "detail": json.RawMessage(detail)})
	if err != nil {
		panic(err)
	}
	return b
}

// emailPayload is the JSON of an email message view of about size bytes,
// nearly all of it newsletter HTML (not HTML-escaped, as
// eventstore.MarshalJSON writes it).
func emailPayload(seed uint64, size int) []byte {
	g := newTestIDs(seed)
	var h strings.Builder
	h.WriteString(`<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{font-family:Arial,sans-serif;color:#333}td{padding:8px}</style></head>` +
		`<body><table width="100%" cellpadding="0" cellspacing="0" role="presentation">`)
	for i := 0; h.Len() < size-600; i++ {
		n := g.r.IntN(900000) + 100000
		fmt.Fprintf(&h, `<tr><td style="padding:12px 24px;font-size:14px;line-height:20px;color:#333333">`+
			`<a href="https://shop.example.com/p/%d?utm_source=newsletter&utm_medium=email&utm_campaign=spring-%d" style="color:#0066cc;text-decoration:none">`+
			`Artikel %d – jetzt %d,%02d € statt %d,99 €</a><br>Nur solange der Vorrat reicht. Lieferung in 2–3 Werktagen.</td></tr>`,
			n, g.r.IntN(4), n%1000, 10+g.r.IntN(90), g.r.IntN(100), 20+g.r.IntN(90))
	}
	h.WriteString(`</table><p style="font-size:11px;color:#999">Sie erhalten diese E-Mail, weil Sie unseren Newsletter abonniert haben.</p></body></html>`)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(map[string]any{
		"messageId": g.id("msg"), "channelId": g.id("chn"), "scopeId": g.id("scp"), "direction": "outbound",
		"to": "anna.beispiel@example.org", "from": "news@shop.example.com",
		"content": map[string]string{"subject": "Frühlingsangebote", "html": h.String()}, "status": "queued",
		"statusReason": nil, "attempts": 0, "metadata": map[string]string{}, "sendAt": nil,
		"createdAt": "2025-03-04T05:06:07.123456789Z", "updatedAt": "2025-03-04T05:06:07.123456789Z",
	})
	if err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// randomBase64JSON is a JSON object around n bytes of random base64: it
// looks incompressible, but base64 uses 64 of 256 byte values, which
// DEFLATE's Huffman stage codes in ~6 bits each (about 25% smaller).
func randomBase64JSON(seed uint64, n int) []byte {
	raw := randomBytes(seed, n*3/4)
	return []byte(`{"blob":"` + base64.StdEncoding.EncodeToString(raw) + `"}`)
}

// randomBytes is n bytes that no compression makes smaller.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestPutBlobForms(t *testing.T) {
	pub := publicationPayload(1)
	if len(pub) < 1200 || len(pub) > 1400 {
		t.Fatalf("publication payload of %d bytes, want ~1.3 KB", len(pub))
	}
	compressible := bytes.Repeat([]byte(`{"k":"v"},`), 100)
	for _, c := range []struct {
		name  string
		v     []byte
		wantZ bool
	}{
		{"empty", nil, false},
		{"small", []byte(`{"a":1}`), false},
		{"just below the threshold", compressible[:blobCompressMin-1], false},
		{"at the threshold", compressible[:blobCompressMin], true},
		{"publication", pub, true},
		{"email", emailPayload(2, 20<<10), true},
		{"random bytes", randomBytes(3, 4096), false},
		{"random base64 in JSON (Huffman saves ~25%)", randomBase64JSON(4, 4096), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := map[string]types.AttributeValue{}
			putBlob(m, attrData, attrDataZ, c.v)
			_, plain := m[attrData]
			_, z := m[attrDataZ]
			switch {
			case len(c.v) == 0 && len(m) != 0:
				t.Fatalf("empty value stored: %v", m)
			case len(c.v) > 0 && plain == z:
				t.Fatalf("plain %v, compressed %v: want exactly one", plain, z)
			case len(c.v) > 0 && z != c.wantZ:
				t.Fatalf("compressed = %v, want %v", z, c.wantZ)
			}
			if z {
				zl := len(m[attrDataZ].(*types.AttributeValueMemberB).Value)
				if (len(attrDataZ)+zl)*100 > (len(attrData)+len(c.v))*(100-blobMinSavingPct) {
					t.Fatalf("compressed %d of %d bytes: saves less than %d%%", zl, len(c.v), blobMinSavingPct)
				}
			}
			got, err := getBlob(m, attrData, attrDataZ)
			if err != nil || !bytes.Equal(got, c.v) {
				t.Fatalf("getBlob = %d bytes, %v; want the %d bytes put", len(got), err, len(c.v))
			}
		})
	}
}

func TestGetBlobPlainForms(t *testing.T) {
	big := emailPayload(5, 8<<10)
	for name, m := range map[string]map[string]types.AttributeValue{
		"binary": {attrData: &types.AttributeValueMemberB{Value: big}},
		"string": {attrData: &types.AttributeValueMemberS{Value: string(big)}},
	} {
		if got, err := getBlob(m, attrData, attrDataZ); err != nil || !bytes.Equal(got, big) {
			t.Errorf("%s: %d bytes, %v", name, len(got), err)
		}
	}
	if got, err := getBlob(map[string]types.AttributeValue{}, attrData, attrDataZ); got != nil || err != nil {
		t.Errorf("absent: %q, %v", got, err)
	}
}

// deflateAt compresses v at level with fresh state (for corrupt inputs and
// the level comparison).
func deflateAt(tb testing.TB, level int, v []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, level)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(v); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestGetBlobCorrupt(t *testing.T) {
	want := publicationPayload(6)
	good := deflateBlob(want)
	// 400 KB of zeros deflate to a few hundred bytes: a bomb's shape.
	bomb := deflateAt(t, flate.BestCompression, make([]byte, blobMaxInflate+1))
	atLimit := deflateAt(t, flate.BestCompression, make([]byte, blobMaxInflate))
	if got, err := inflateBlob(atLimit); err != nil || len(got) != blobMaxInflate {
		t.Fatalf("inflating exactly the limit: %d bytes, %v", len(got), err)
	}
	for name, v := range map[string]types.AttributeValue{
		"garbage":                      &types.AttributeValueMemberB{Value: []byte("definitely not deflate \xff\xfe\xfd")},
		"empty":                        &types.AttributeValueMemberB{Value: nil},
		"truncated":                    &types.AttributeValueMemberB{Value: good[:len(good)/2]},
		"reserved block type":          &types.AttributeValueMemberB{Value: []byte{0x07, 0x00}},
		"trailing bytes":               &types.AttributeValueMemberB{Value: append(bytes.Clone(good), 1, 2, 3)},
		"inflates past the item limit": &types.AttributeValueMemberB{Value: bomb},
		"not binary":                   &types.AttributeValueMemberS{Value: string(good)},
	} {
		t.Run(name, func(t *testing.T) {
			// The plain attribute beside it is no fallback: the item is corrupt.
			m := map[string]types.AttributeValue{attrDataZ: v, attrData: &types.AttributeValueMemberB{Value: []byte(`{}`)}}
			got, err := getBlob(m, attrData, attrDataZ)
			if err == nil {
				t.Fatalf("no error, %d bytes", len(got))
			}
			if !strings.Contains(err.Error(), "attribute "+attrDataZ) {
				t.Fatalf("error %q does not name the attribute", err)
			}
		})
	}
	// Raw DEFLATE carries no checksum: flipped bits may inflate to other
	// bytes (DynamoDB guards what it stores); they must not panic.
	for i := range good {
		flipped := bytes.Clone(good)
		flipped[i] ^= 0x5a
		_, _ = inflateBlob(flipped)
	}
	// The pooled reader still works after the failures.
	if got, err := inflateBlob(good); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("inflate after failures: %v", err)
	}
}

// FuzzInflateBlob: no input panics or inflates past the bound.
func FuzzInflateBlob(f *testing.F) {
	f.Add(deflateBlob(publicationPayload(7)))
	f.Add(deflateBlob(emailPayload(8, 4<<10)))
	f.Add([]byte{})
	f.Add([]byte{0x01, 0x00, 0x00, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, z []byte) {
		v, err := inflateBlob(z)
		if err == nil && len(v) > blobMaxInflate {
			t.Fatalf("inflated to %d bytes", len(v))
		}
	})
}

// TestItemSizeCountsCompressedForm: the size that commits check and the
// capacity recorder bills is that of the item as written: the compressed
// attribute's name and bytes, not the plain value's.
func TestItemSizeCountsCompressedForm(t *testing.T) {
	for _, c := range []struct {
		name                  string
		payload               []byte
		unitsPlain, unitsKept int // write units of the item outside a transaction
	}{
		// ADR 0008's publication entry: 1.3 KB in all, 2 write units (4 in
		// the transaction); compressed 1.
		{"publication item of 1.3 KB", publication(9, true), 2, 1},
		// A 1.3 KB payload makes a 1.7 KB item: smaller, still 2 units.
		{"publication payload of 1.3 KB", publicationPayload(9), 2, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &eventstore.OutboxEntry{
				ID: "wrk_01JQ0000000000000000000001", TenantID: "tnt_01JQ0000000000000000000002", Type: "work.publish",
				Payload: c.payload, DueAt: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
				Invocation: invocation.Meta{InvocationID: "inv_01JQ0000000000000000000003", TraceID: "0af7651916cd43dd8448eb211c80319d", Principal: "sva_01JQ0000000000000000000004"},
			}
			item := encodeOutbox(e, DefaultOutboxShards)
			z, ok := item[attrPayloadZ].(*types.AttributeValueMemberB)
			if !ok || item[attrPayload] != nil {
				t.Fatalf("item without %s or with %s: %v", attrPayloadZ, attrPayload, item)
			}
			size := ItemSize(item)
			delete(item, attrPayloadZ)
			rest := ItemSize(item)
			if size != rest+len("payloadz")+len(z.Value) {
				t.Fatalf("ItemSize %d, want %d + %d + %d", size, rest, len("payloadz"), len(z.Value))
			}
			plain := rest + len("payload") + len(e.Payload)
			units := func(n int) int { return (n + 1023) / 1024 }
			t.Logf("item %d bytes plain (payload %d), %d stored (payloadz %d): %d write units, was %d", plain, len(e.Payload), size, len(z.Value), units(size), units(plain))
			if units(plain) != c.unitsPlain || units(size) != c.unitsKept {
				t.Fatalf("write units %d plain, %d stored; want %d, %d", units(plain), units(size), c.unitsPlain, c.unitsKept)
			}
		})
	}
	// The commit's size check sees the compressed item too.
	s := New(nil, "t")
	big := bytes.Repeat([]byte(`{"html":"<p>same paragraph</p>"},`), eventstore.MaxItemBytes/33)
	p, err := s.plan(&eventstore.Commit{TenantID: "tnt_1", Records: []eventstore.Record{{Collection: "c", Key: "k", Data: big}}})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if sz, z := ItemSize(p.items[0].Put.Item), p.items[0].Put.Item[attrDataZ]; z == nil || sz >= len(big)/10 {
		t.Fatalf("record item of %d bytes for %d bytes of data", sz, len(big))
	}
}

// BenchmarkBlob is the CPU cost per item of the compression: encoding and
// decoding an outbox entry (encodeOutbox, decodeOutbox) with a realistic
// 1.3 KB publication payload, and a record with a 20 KB email body. It
// reports the stored sizes (no DynamoDB calls; the package's TestMain still
// needs DynamoDB Local to start).
func BenchmarkBlob(b *testing.B) {
	pub := &eventstore.OutboxEntry{ID: "wrk_01JQ0000000000000000000001", TenantID: "tnt_01JQ0000000000000000000002", Type: "work.publish",
		Payload: publicationPayload(10), DueAt: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
	b.Run("outbox-publication-1.3KB", func(b *testing.B) {
		var item map[string]types.AttributeValue
		for b.Loop() {
			item = encodeOutbox(pub, DefaultOutboxShards)
			if e, err := decodeOutbox(item); err != nil || len(e.Payload) != len(pub.Payload) {
				b.Fatalf("decode: %v", err)
			}
		}
		reportSizes(b, item, attrPayloadZ, len(pub.Payload))
	})
	b.Run("outbox-publication-1.3KB/decode-only", func(b *testing.B) {
		item := encodeOutbox(pub, DefaultOutboxShards)
		for b.Loop() {
			if e, err := decodeOutbox(item); err != nil || len(e.Payload) != len(pub.Payload) {
				b.Fatalf("decode: %v", err)
			}
		}
	})
	row := &eventstore.Record{Collection: "messages", Key: "msg_01JQ0000000000000000000005", Data: emailPayload(11, 20<<10)}
	b.Run("record-email-20KB", func(b *testing.B) {
		var item map[string]types.AttributeValue
		for b.Loop() {
			item = encodeRecord("tnt_01JQ0000000000000000000002", row)
			if v, err := getBlob(item, attrData, attrDataZ); err != nil || len(v) != len(row.Data) {
				b.Fatalf("decode: %v", err)
			}
		}
		reportSizes(b, item, attrDataZ, len(row.Data))
	})
}

func reportSizes(b *testing.B, item map[string]types.AttributeValue, zname string, plain int) {
	b.Helper()
	z, ok := item[zname].(*types.AttributeValueMemberB)
	if !ok {
		b.Fatalf("item not compressed")
	}
	b.ReportMetric(float64(plain), "plain-bytes")
	b.ReportMetric(float64(len(z.Value)), "stored-bytes")
	b.ReportMetric(float64(ItemSize(item)), "item-bytes")
}

// BenchmarkBlobLevels compares DEFLATE levels on the two realistic values
// (state reused, as the pools do): compression alone, and the compressed
// size (the choice of blobLevel).
func BenchmarkBlobLevels(b *testing.B) {
	values := []struct {
		name string
		v    []byte
	}{
		{"publication-1.3KB", publicationPayload(12)},
		{"publication-item-1.3KB", publication(12, true)},
		{"email-20KB", emailPayload(13, 20<<10)},
	}
	for _, val := range values {
		for _, level := range []int{flate.BestSpeed, flate.DefaultCompression, flate.BestCompression} {
			b.Run(fmt.Sprintf("%s/level=%d", val.name, level), func(b *testing.B) {
				var buf bytes.Buffer
				w, err := flate.NewWriter(&buf, level)
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					buf.Reset()
					w.Reset(&buf)
					_, _ = w.Write(val.v)
					_ = w.Close()
				}
				b.ReportMetric(float64(len(val.v)), "plain-bytes")
				b.ReportMetric(float64(buf.Len()), "stored-bytes")
			})
		}
		// What the pools save: new DEFLATE state for every value.
		b.Run(val.name+"/fresh-state", func(b *testing.B) {
			for b.Loop() {
				deflateAt(b, blobLevel, val.v)
			}
		})
	}
}
