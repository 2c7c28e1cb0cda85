package rpc

import "testing"

// benchSendInput has the shape of send-message's input (nested content, a map).
type benchSendInput struct {
	ChannelID string `json:"channelId"`
	To        string `json:"to"`
	Content   struct {
		Text    string `json:"text,omitempty"`
		Subject string `json:"subject,omitempty"`
		HTML    string `json:"html,omitempty"`
	} `json:"content"`
	SendAt   *string           `json:"sendAt"`
	Metadata map[string]string `json:"metadata"`
}

// BenchmarkDecodeStrict: decoding alone, a send-message body into its input.
func BenchmarkDecodeStrict(b *testing.B) {
	body := []byte(`{"channelId":"chn_01JD0000000000000000000000","to":"+4915112345678","content":{"text":"Your code is 123456"},"metadata":{"order":"42"}}`)
	b.ReportAllocs()
	for b.Loop() {
		var in benchSendInput
		if err := decodeStrict(body, &in); err != nil {
			b.Fatal(err)
		}
	}
}
