package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigFromContext(t *testing.T) {
	upper := strings.ToUpper(testKeyHash)
	def := DefaultConfig()
	tests := []struct {
		name    string
		ctx     map[string]any
		want    Config
		wantErr string
	}{
		{name: "cdk.json defaults", ctx: nil, want: def},
		{
			name: "strings from -c",
			ctx: map[string]any{CtxHTTPAPI: "false", CtxRemovalPolicy: "DESTROY", CtxBootstrapDir: "out/fn",
				CtxOperatorKeySHA256: upper, CtxNamePrefix: "sb_2", CtxPublicURL: "https://sb.example.com",
				CtxTenantsManifest: "ops/tenants.json", CtxAlarmEmail: " ops@example.com "},
			want: Config{BootstrapDir: "out/fn", HTTPAPI: false, RetainData: false, OperatorKeySHA256: testKeyHash,
				NamePrefix: "sb_2", PublicURL: "https://sb.example.com", TenantsManifest: "ops/tenants.json", AlarmEmail: "ops@example.com"},
		},
		{
			name: "json types",
			ctx:  map[string]any{CtxHTTPAPI: false, CtxRemovalPolicy: "retain"},
			want: Config{BootstrapDir: DefaultBootstrapDir, HTTPAPI: false, RetainData: true, NamePrefix: DefaultNamePrefix, TenantsManifest: DefaultTenantsManifest},
		},
		{
			name: "public url template",
			ctx:  map[string]any{CtxPublicURL: "http://{apiId}.execute-api.localhost.localstack.cloud:4566/prod"},
			want: func() Config {
				c := def
				c.PublicURL = "http://{apiId}.execute-api.localhost.localstack.cloud:4566/prod"
				return c
			}(),
		},
		{name: "bad bool", ctx: map[string]any{CtxHTTPAPI: "maybe"}, wantErr: CtxHTTPAPI},
		{name: "bool type", ctx: map[string]any{CtxHTTPAPI: 1}, wantErr: CtxHTTPAPI},
		{name: "bad removal policy", ctx: map[string]any{CtxRemovalPolicy: "snapshot"}, wantErr: CtxRemovalPolicy},
		{name: "short hash", ctx: map[string]any{CtxOperatorKeySHA256: "abc"}, wantErr: CtxOperatorKeySHA256},
		{name: "raw key instead of hash", ctx: map[string]any{CtxOperatorKeySHA256: strings.Repeat("k", 64)}, wantErr: CtxOperatorKeySHA256},
		{name: "bad prefix", ctx: map[string]any{CtxNamePrefix: "sb.work"}, wantErr: CtxNamePrefix},
		{name: "long prefix", ctx: map[string]any{CtxNamePrefix: strings.Repeat("s", MaxNamePrefix+1)}, wantErr: CtxNamePrefix},
		{name: "bad url", ctx: map[string]any{CtxPublicURL: "localhost:4566"}, wantErr: CtxPublicURL},
		{name: "bad email", ctx: map[string]any{CtxAlarmEmail: "ops"}, wantErr: CtxAlarmEmail},
		{name: "non-string", ctx: map[string]any{CtxBootstrapDir: 3}, wantErr: CtxBootstrapDir},
		{name: "manifest non-string", ctx: map[string]any{CtxTenantsManifest: true}, wantErr: CtxTenantsManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromContext(newApp(t, tt.ctx, "").Node())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The longest prefix still makes names within every service's limit.
func TestNamePrefixFitsNames(t *testing.T) {
	p := strings.Repeat("p", MaxNamePrefix)
	for _, c := range []struct {
		name string
		max  int
	}{
		{TenantQueueName(p, siloedID), 80},
		{TenantDLQName(p, siloedID), 80},
		{PooledDLQName(p), 80},
		{IntegrationBusName(p), 256},
		{KeyAlias(p, "tenants/"+siloedID), 256},
	} {
		if len(c.name) > c.max {
			t.Errorf("%s: %d characters, limit %d", c.name, len(c.name), c.max)
		}
	}
	for _, j := range ScheduledJobs {
		if n := JobRuleName(p, j.Name); len(n) > 64 {
			t.Errorf("rule %s: %d characters, limit 64", n, len(n))
		}
	}
}

func TestValidateBootstrap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BootstrapDir = filepath.Join(t.TempDir(), "missing")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "make build-lambda") {
		t.Errorf("missing dir: err = %v, want a hint to run make build-lambda", err)
	}

	cfg.BootstrapDir = t.TempDir()
	if err := os.Mkdir(filepath.Join(cfg.BootstrapDir, BootstrapFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("bootstrap is a dir: err = %v", err)
	}

	cfg.BootstrapDir = fakeBootstrapDir(t, t.TempDir())
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid: %v", err)
	}

	defer func() {
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), "build-lambda") {
			t.Errorf("NewSwitchboardStack without a binary: recovered %v, want a panic naming build-lambda", r)
		}
	}()
	bad := DefaultConfig()
	bad.BootstrapDir = filepath.Join(t.TempDir(), "missing")
	NewSwitchboardStack(newApp(t, nil, ""), StackID, &SwitchboardStackProps{Config: bad})
}

func TestCDKJSON(t *testing.T) {
	c := readCDKJSON(t)
	if c.App != "go run ./infra" {
		t.Errorf("app = %q", c.App)
	}
	for k, want := range map[string]any{
		CtxBootstrapDir:    DefaultBootstrapDir,
		CtxTenantsManifest: DefaultTenantsManifest,
		CtxNamePrefix:      DefaultNamePrefix,
		CtxHTTPAPI:         true,
		CtxRemovalPolicy:   "retain",
		"cli-telemetry":    false,
	} {
		if c.Context[k] != want {
			t.Errorf("context %s = %v, want %v", k, c.Context[k], want)
		}
	}
	if strings.HasPrefix(c.Output, DefaultBootstrapDir) {
		t.Errorf("output %q inside the asset dir would be hashed into the asset", c.Output)
	}
}
