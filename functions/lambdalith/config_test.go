package main

import (
	"os"
	"path/filepath"
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

// The embedded engine: bbolt unless SWITCHBOARD_ENGINE says pebble; a data
// dir made by the other engine is refused rather than opened empty.
func TestConfigEngine(t *testing.T) {
	dir := t.TempDir()
	get := func(engine string) func(string) string {
		return func(k string) string {
			switch k {
			case "SWITCHBOARD_ENGINE":
				return engine
			case "SWITCHBOARD_DATA_DIR":
				return dir
			}
			return ""
		}
	}
	if cfg, err := LoadConfig(get("")); err != nil || cfg.EmbeddedEngine() != EngineBbolt || cfg.EngineMismatch() != nil {
		t.Fatalf("default: %+v %v", cfg.Engine, err)
	}
	cfg, err := LoadConfig(get("Pebble"))
	if err != nil || cfg.EmbeddedEngine() != EnginePebble {
		t.Fatalf("pebble: %q %v", cfg.Engine, err)
	}
	if _, err := LoadConfig(get("rocks")); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_ENGINE") {
		t.Fatalf("unknown engine: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, PebbleDir), 0o700); err != nil {
		t.Fatal(err)
	}
	bolt, _ := LoadConfig(get(""))
	if err := bolt.EngineMismatch(); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_ENGINE=pebble") {
		t.Fatalf("a pebble dir opened as bbolt: %v", err)
	}
	if err := cfg.EngineMismatch(); err != nil {
		t.Fatalf("a pebble dir opened as pebble: %v", err)
	}
}
