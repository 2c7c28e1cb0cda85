package main

import (
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
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

// The outbox shard count: the deployed default in Lambda mode, a small one
// in local mode (its sweep reads every shard each second), the variable
// either way; and the worker count's bounds.
func TestConfigOutboxShardsAndWorkers(t *testing.T) {
	lambda := map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "SWITCHBOARD_KMS_KEY_ID": "k", "SWITCHBOARD_PUBLIC_URL": "https://api.example.com"}
	for _, c := range []struct {
		env    map[string]string
		shards int
	}{
		{map[string]string{}, LocalOutboxShards},
		{map[string]string{"SWITCHBOARD_OUTBOX_SHARDS": "64"}, 64},
		{lambda, dynamostore.DefaultOutboxShards},
	} {
		cfg, err := LoadConfig(func(k string) string { return c.env[k] })
		if err != nil || cfg.OutboxShards != c.shards {
			t.Errorf("env %v: outbox shards %d (%v), want %d", c.env, cfg.OutboxShards, err, c.shards)
		}
	}
	if cfg, err := LoadConfig(func(string) string { return "" }); err != nil || cfg.Workers != 32 {
		t.Errorf("default workers %d (%v), want 32", cfg.Workers, err)
	}
	for _, bad := range []string{"-1", "257", "x"} {
		if _, err := LoadConfig(func(k string) string {
			if k == "SWITCHBOARD_WORKERS" {
				return bad
			}
			return ""
		}); err == nil {
			t.Errorf("SWITCHBOARD_WORKERS=%s accepted", bad)
		}
	}
}

// The audit retention: 90 days unless set, 1 to 3650.
func TestConfigAuditRetention(t *testing.T) {
	get := func(v string) func(string) string {
		return func(k string) string {
			if k == "SWITCHBOARD_AUDIT_RETENTION_DAYS" {
				return v
			}
			return ""
		}
	}
	if cfg, err := LoadConfig(get("")); err != nil || cfg.AuditRetentionDays != 90 {
		t.Fatalf("default %d, %v", cfg.AuditRetentionDays, err)
	}
	if cfg, err := LoadConfig(get("7")); err != nil || cfg.AuditRetentionDays != 7 {
		t.Fatalf("7: %d, %v", cfg.AuditRetentionDays, err)
	}
	for _, bad := range []string{"0", "3651", "x", "-1"} {
		if _, err := LoadConfig(get(bad)); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_AUDIT_RETENTION_DAYS") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
