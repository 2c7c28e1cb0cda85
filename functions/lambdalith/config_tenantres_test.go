package main

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
	"github.com/switchboard-dev/switchboard/modules/kernel/work/sqstransport"
)

// SWITCHBOARD_TENANT_RESOURCES_PATH: unset by default, a path that starts
// and ends with '/' taken as it is, anything else refused naming the variable.
func TestConfigTenantResourcesPath(t *testing.T) {
	get := func(v string) func(string) string {
		return func(k string) string {
			if k == "SWITCHBOARD_TENANT_RESOURCES_PATH" {
				return v
			}
			return ""
		}
	}
	if c, err := LoadConfig(get("")); err != nil || c.TenantResourcesPath != "" {
		t.Fatalf("default: %q, %v", c.TenantResourcesPath, err)
	}
	if c, err := LoadConfig(get("/switchboard/tenants/")); err != nil || c.TenantResourcesPath != "/switchboard/tenants/" {
		t.Fatalf("valid path: %q, %v", c.TenantResourcesPath, err)
	}
	for _, bad := range []string{"switchboard/tenants/", "/switchboard/tenants", "/switch board/", "/aws/tenants/", "//"} {
		if _, err := LoadConfig(get(bad)); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_TENANT_RESOURCES_PATH") {
			t.Errorf("%q: err = %v, want one naming the variable", bad, err)
		}
	}
}

// Lambda mode with a path routes work by tenant through the SSM resolver
// (built without a network call); without one every tenant shares.
func TestLambdaWiresTenantResources(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-central-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	for _, path := range []string{"/switchboard/tenants/", ""} {
		env := map[string]string{
			"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "SWITCHBOARD_KMS_KEY_ID": "alias/switchboard-test",
			"SWITCHBOARD_PUBLIC_URL": "https://api.example.com", "SWITCHBOARD_DATA_DIR": t.TempDir(),
			"SWITCHBOARD_WORK_QUEUE_URL":        "https://sqs.eu-central-1.amazonaws.com/123456789012/switchboard-work",
			"SWITCHBOARD_TENANT_RESOURCES_PATH": path,
		}
		cfg, err := LoadConfig(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		app, err := Build(context.Background(), cfg, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		tr, ok := app.Relay.Transport.(*sqstransport.Transport)
		if !ok {
			t.Fatalf("transport %T, want SQS", app.Relay.Transport)
		}
		ssm, isSSM := tr.Resources.(*tenantres.SSM)
		switch {
		case path != "" && (!isSSM || ssm.ParameterName("tnt_1") != path+"tnt_1"):
			t.Errorf("path %q: resolver %T, want SSM reading %stnt_1", path, tr.Resources, path)
		case path == "" && tr.Resources != nil:
			t.Errorf("no path: resolver %T, want none", tr.Resources)
		}
		app.Close()
	}
}
