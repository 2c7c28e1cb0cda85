package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Context keys the app reads (cdk.json "context", or `cdk -c key=value`).
// Values given with -c arrive as strings, values from cdk.json keep their
// JSON type; both are accepted.
const (
	// CtxBootstrapDir is the directory holding the linux/arm64 `bootstrap`
	// binary that becomes the function code (relative to the repo root).
	CtxBootstrapDir = "bootstrapDir"
	// CtxHTTPAPI chooses the API in front of the function: true (default) an
	// HTTP API (v2), false a REST API (v1). The LocalStack kit sets false
	// (HTTP APIs are a paid LocalStack feature).
	CtxHTTPAPI = "httpApi"
	// CtxOperatorKeySHA256 is the lowercase hex SHA-256 of the operator key
	// (`printf %s "$KEY" | sha256sum`). Empty disables onboard-tenant.
	CtxOperatorKeySHA256 = "operatorKeySha256"
	// CtxRemovalPolicy is "retain" (default; the table and logs survive
	// `cdk destroy`) or "destroy" (LocalStack and throw-away dev stacks).
	CtxRemovalPolicy = "removalPolicy"
	// CtxNamePrefix prefixes the physical names the app fixes (queues, rules,
	// key aliases, the event bus, the dashboard) and the SSM path of the
	// siloed tenants' resources (/<prefix>/tenants/).
	CtxNamePrefix = "namePrefix"
	// CtxPublicURL, when set, becomes SWITCHBOARD_PUBLIC_URL (base of inbound
	// webhook URLs), e.g. a custom domain in front of the API. "{apiId}" in it
	// is replaced by the API's id (the LocalStack kit uses
	// http://{apiId}.execute-api.localhost.localstack.cloud:4566/prod). Empty:
	// the API's own execute-api URL.
	CtxPublicURL = "publicUrl"
	// CtxTenantsManifest is the path of the tenants manifest (relative to
	// the repository root, where cdk.json is): see tenants.go.
	CtxTenantsManifest = "tenantsManifest"
	// CtxAlarmEmail, when set, subscribes this address to the alarm topic
	// (SNS asks the address to confirm).
	CtxAlarmEmail = "alarmEmail"
)

// PublicURLAPIID is the placeholder in CtxPublicURL for the API's id.
const PublicURLAPIID = "{apiId}"

// Defaults used when a context key is absent.
const (
	DefaultBootstrapDir = "dist/lambdalith"
	DefaultNamePrefix   = "switchboard"
	// DefaultTenantsManifest is the manifest the repository ships.
	DefaultTenantsManifest = "infra/tenants.json"
	// BootstrapFile is the executable name the provided.al2023 runtime starts.
	BootstrapFile = "bootstrap"
)

// Config is the resolved deployment configuration of one Switchboard stack.
type Config struct {
	// BootstrapDir is the asset directory; it must contain BootstrapFile and
	// should contain nothing else (the whole directory is hashed and uploaded).
	BootstrapDir string
	// HTTPAPI puts an HTTP API (v2) in front of the function; false a REST API (v1).
	HTTPAPI bool
	// OperatorKeySHA256 is the lowercase hex SHA-256 of the operator key, or empty.
	OperatorKeySHA256 string
	// RetainData keeps the table and the log group when the stack is deleted
	// (and turns on table deletion protection).
	RetainData bool
	// NamePrefix prefixes fixed physical names: <prefix>-work, <prefix>-work-dlq,
	// <prefix>-<tenant id>-work, /<prefix>/tenants/<tenant id>, ...
	NamePrefix string
	// PublicURL is the optional SWITCHBOARD_PUBLIC_URL (may hold PublicURLAPIID).
	PublicURL string
	// TenantsManifest is the path of the tenants manifest.
	TenantsManifest string
	// AlarmEmail is the optional address subscribed to the alarm topic.
	AlarmEmail string
}

// DefaultConfig is the configuration used for absent context keys.
func DefaultConfig() Config {
	return Config{
		BootstrapDir:    DefaultBootstrapDir,
		HTTPAPI:         true,
		RetainData:      true,
		NamePrefix:      DefaultNamePrefix,
		TenantsManifest: DefaultTenantsManifest,
	}
}

// ConfigFromContext reads the Config from the construct tree's context
// (normally the App's). It checks value formats but not the file system;
// Validate does both.
func ConfigFromContext(node constructs.Node) (Config, error) {
	cfg := DefaultConfig()
	get := func(key string) any { return node.TryGetContext(jsii.String(key)) }
	var err error
	if cfg.BootstrapDir, err = stringContext(get(CtxBootstrapDir), CtxBootstrapDir, cfg.BootstrapDir); err != nil {
		return Config{}, err
	}
	if cfg.HTTPAPI, err = boolContext(get(CtxHTTPAPI), CtxHTTPAPI, cfg.HTTPAPI); err != nil {
		return Config{}, err
	}
	if cfg.OperatorKeySHA256, err = stringContext(get(CtxOperatorKeySHA256), CtxOperatorKeySHA256, ""); err != nil {
		return Config{}, err
	}
	cfg.OperatorKeySHA256 = strings.ToLower(strings.TrimSpace(cfg.OperatorKeySHA256))
	policy, err := stringContext(get(CtxRemovalPolicy), CtxRemovalPolicy, "retain")
	if err != nil {
		return Config{}, err
	}
	switch strings.ToLower(policy) {
	case "retain":
		cfg.RetainData = true
	case "destroy":
		cfg.RetainData = false
	default:
		return Config{}, fmt.Errorf("context %s: want \"retain\" or \"destroy\", got %q", CtxRemovalPolicy, policy)
	}
	if cfg.NamePrefix, err = stringContext(get(CtxNamePrefix), CtxNamePrefix, cfg.NamePrefix); err != nil {
		return Config{}, err
	}
	if cfg.PublicURL, err = stringContext(get(CtxPublicURL), CtxPublicURL, ""); err != nil {
		return Config{}, err
	}
	if cfg.TenantsManifest, err = stringContext(get(CtxTenantsManifest), CtxTenantsManifest, cfg.TenantsManifest); err != nil {
		return Config{}, err
	}
	if cfg.AlarmEmail, err = stringContext(get(CtxAlarmEmail), CtxAlarmEmail, ""); err != nil {
		return Config{}, err
	}
	cfg.AlarmEmail = strings.TrimSpace(cfg.AlarmEmail)
	if err := cfg.checkFormats(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// MaxNamePrefix bounds the name prefix so that every name made from it fits
// its service's limit: the longest are the job rules,
// <prefix>-job-signing-key-rotation (64 characters at most), and the siloed
// tenants' queues, <prefix>-<tenant id>-work (80).
const MaxNamePrefix = 32

var (
	hexSHA256  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	namePrefix = regexp.MustCompile(fmt.Sprintf(`^[A-Za-z0-9_-]{1,%d}$`, MaxNamePrefix))
	email      = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// Validate checks the formats and that BootstrapDir holds a regular
// BootstrapFile, so a stack is never synthesized without function code.
func (c Config) Validate() error {
	if err := c.checkFormats(); err != nil {
		return err
	}
	if c.BootstrapDir == "" {
		return errors.New("validate config: empty bootstrap dir")
	}
	p := filepath.Join(c.BootstrapDir, BootstrapFile)
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("validate config: lambda binary %s: %w (build it with `make build-lambda`)", p, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("validate config: lambda binary %s is not a regular file", p)
	}
	return nil
}

func (c Config) checkFormats() error {
	if c.OperatorKeySHA256 != "" && !hexSHA256.MatchString(c.OperatorKeySHA256) {
		return fmt.Errorf("validate config: %s must be 64 lowercase hex characters (sha256), got %d characters",
			CtxOperatorKeySHA256, len(c.OperatorKeySHA256))
	}
	if !namePrefix.MatchString(c.NamePrefix) {
		return fmt.Errorf("validate config: %s %q: want 1-%d of [A-Za-z0-9_-]", CtxNamePrefix, c.NamePrefix, MaxNamePrefix)
	}
	if c.PublicURL != "" {
		// The placeholder stands for an API id: lowercase letters and digits.
		u, err := url.Parse(strings.ReplaceAll(c.PublicURL, PublicURLAPIID, "a1b2c3d4e5"))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("validate config: %s %q: want an absolute http(s) URL", CtxPublicURL, c.PublicURL)
		}
	}
	if c.TenantsManifest == "" {
		return fmt.Errorf("validate config: empty %s", CtxTenantsManifest)
	}
	if c.AlarmEmail != "" && !email.MatchString(c.AlarmEmail) {
		return fmt.Errorf("validate config: %s %q: want an email address", CtxAlarmEmail, c.AlarmEmail)
	}
	return nil
}

// RemovalPolicy is the policy for stateful resources (table, keys, log groups).
func (c Config) RemovalPolicy() awscdk.RemovalPolicy {
	if c.RetainData {
		return awscdk.RemovalPolicy_RETAIN
	}
	return awscdk.RemovalPolicy_DESTROY
}

func stringContext(v any, key, def string) (string, error) {
	switch x := v.(type) {
	case nil:
		return def, nil
	case string:
		if x == "" {
			return def, nil
		}
		return x, nil
	default:
		return "", fmt.Errorf("context %s: want a string, got %T", key, v)
	}
}

func boolContext(v any, key string, def bool) (bool, error) {
	switch x := v.(type) {
	case nil:
		return def, nil
	case bool:
		return x, nil
	case string:
		if x == "" {
			return def, nil
		}
		b, err := strconv.ParseBool(x)
		if err != nil {
			return false, fmt.Errorf("context %s: want true or false, got %q", key, x)
		}
		return b, nil
	default:
		return false, fmt.Errorf("context %s: want a boolean, got %T", key, v)
	}
}
