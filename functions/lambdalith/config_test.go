package main

import (
	"strings"
	"testing"
)

// Lambda mode has no sensible default public URL: channels would hand out a
// loopback inbound webhook URL and the sandbox's receipts would park.
func TestLambdaModeNeedsPublicURL(t *testing.T) {
	env := map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "SWITCHBOARD_KMS_KEY_ID": "k"}
	_, err := LoadConfig(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_PUBLIC_URL") {
		t.Fatalf("err = %v, want one naming SWITCHBOARD_PUBLIC_URL", err)
	}
	env["SWITCHBOARD_PUBLIC_URL"] = "https://api.example.com/"
	c, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil || c.PublicURL != "https://api.example.com" {
		t.Fatalf("config = %+v, %v", c.PublicURL, err)
	}
	// Local mode keeps its default.
	c, err = LoadConfig(func(string) string { return "" })
	if err != nil || c.PublicURL != "http://127.0.0.1:8080" {
		t.Fatalf("local default = %q, %v", c.PublicURL, err)
	}
}
