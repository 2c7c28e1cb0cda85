package rpc_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// A recorded user agent is valid UTF-8 and at most MaxUserAgent bytes, cut
// at a character boundary (an oversized header must not make audit rows
// too large for the store).
func TestCleanUserAgent(t *testing.T) {
	for _, ua := range []string{"curl/8.5.0", strings.Repeat("A", 400<<10), strings.Repeat("é", 400), "bad\xff\xfebytes"} {
		got := rpc.CleanUserAgent(ua)
		if len(got) > rpc.MaxUserAgent || !utf8.ValidString(got) {
			t.Fatalf("%q... -> %d bytes, valid %v", ua[:min(len(ua), 20)], len(got), utf8.ValidString(got))
		}
		if len(ua) <= rpc.MaxUserAgent && utf8.ValidString(ua) && got != ua {
			t.Fatalf("%q changed to %q", ua, got)
		}
	}
}
