package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/logging"
	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
)

// Config is the whole configuration: plain environment variables, the same in
// local and Lambda mode (see the README's configuration table).
type Config struct {
	Lambda  bool   // AWS_LAMBDA_RUNTIME_API is set
	Port    int    // PORT (local mode), default 8080
	DataDir string // SWITCHBOARD_DATA_DIR, default ./.data
	Store   string // SWITCHBOARD_STORE: embedded | dynamodb (always dynamodb in Lambda mode)
	// Engine (SWITCHBOARD_ENGINE) is the embedded store's engine: bbolt (the
	// default: one file, switchboard.db) or pebble (a log-structured store
	// with a write-ahead log, in the directory pebble/). A data dir keeps the
	// engine it was made with: nothing migrates one into the other.
	Engine          string
	Table           string     // SWITCHBOARD_TABLE, default switchboard
	OperatorKey     string     // SWITCHBOARD_OPERATOR_KEY (secret; never logged)
	OperatorKeyHash string     // SWITCHBOARD_OPERATOR_KEY_SHA256 (hex), preferred in Lambda mode
	PublicURL       string     // SWITCHBOARD_PUBLIC_URL, default http://127.0.0.1:$PORT
	WorkQueueURL    string     // SWITCHBOARD_WORK_QUEUE_URL (Lambda mode work queue)
	KMSKeyID        string     // SWITCHBOARD_KMS_KEY_ID: KMS key wrapping tenant data keys (required in Lambda mode)
	OutboxShards    int        // SWITCHBOARD_OUTBOX_SHARDS: outbox index partitions of the DynamoDB store, default dynamostore.DefaultOutboxShards in Lambda mode, LocalOutboxShards in local mode; raise only
	LogLevel        slog.Level // SWITCHBOARD_LOG_LEVEL, default info
	SweepEvery      int        // SWITCHBOARD_SWEEP_SECONDS, local mode outbox sweep period, default 1
	Workers         int        // SWITCHBOARD_WORKERS, local mode work goroutines, default 32 (1 while API requests are in flight); 0 pauses work (it stays in the store)
	// WebhookRetryScale (SWITCHBOARD_WEBHOOK_RETRY_SCALE) multiplies Svix's
	// retry schedule of subscriber webhooks (default 1; tests use 0.001).
	WebhookRetryScale float64
	// TokenTTLSeconds (SWITCHBOARD_TOKEN_TTL_SECONDS) is the life of access
	// tokens from issue-token: 60 to 3600, default 900.
	TokenTTLSeconds int
	// KeyRotationHours (SWITCHBOARD_SIGNING_KEY_ROTATION_HOURS) is the age of
	// the newest signing key at which the rotation job makes a new one: 1 to
	// 720, default 24.
	KeyRotationHours int
	// AuditRetentionDays (SWITCHBOARD_AUDIT_RETENTION_DAYS) is how long
	// audit log entries are kept: 1 to 3650, default 90.
	AuditRetentionDays int
	// TenantResourcesPath (SWITCHBOARD_TENANT_RESOURCES_PATH) is the SSM
	// path of the siloed tenants' resources parameters (<path><tenantId>,
	// ADR 0013), e.g. /switchboard/tenants/: it starts and ends with '/'.
	// Lambda mode only; unset: no tenant has dedicated resources.
	TenantResourcesPath string
	// EventBus (SWITCHBOARD_EVENT_BUS) is the EventBridge bus (name or ARN)
	// that every integration event is also put on (ADR 0016). Lambda mode
	// only; unset: no bus.
	EventBus string
}

// Engines of the embedded store.
const (
	EnginePebble = "pebble"
	EngineBbolt  = "bbolt"
)

// EmbeddedEngine is the engine the embedded store of c uses: c.Engine, or
// bbolt when unset.
func (c Config) EmbeddedEngine() string {
	if c.Engine != "" {
		return c.Engine
	}
	return EngineBbolt
}

// EngineMismatch reports a data dir made by the other engine than the one
// configured (and none of this one's), so that local mode does not start on
// an empty store beside the user's data.
func (c Config) EngineMismatch() error {
	engine := c.EmbeddedEngine()
	has := func(name string) bool { _, err := os.Stat(filepath.Join(c.DataDir, name)); return err == nil }
	switch {
	case engine == EngineBbolt && !has(BboltFile) && has(PebbleDir):
		return fmt.Errorf("%s holds a pebble store (%s/) and no bbolt one: set SWITCHBOARD_ENGINE=pebble to use it", c.DataDir, PebbleDir)
	case engine == EnginePebble && !has(PebbleDir) && has(BboltFile):
		return fmt.Errorf("%s holds a bbolt store (%s) and no pebble one: unset SWITCHBOARD_ENGINE (bbolt) to use it", c.DataDir, BboltFile)
	}
	return nil
}

// BboltFile and PebbleDir are the embedded store's place in the data dir;
// AuditFile the audit log's with the bbolt engine.
const (
	BboltFile = "switchboard.db"
	PebbleDir = "pebble"
	AuditFile = "audit.db"
)

// LocalOutboxShards is the outbox shard count of local mode on a DynamoDB
// store (a development table, DynamoDB Local): its sweep runs every second
// and reads every shard, which at the deployed count
// (dynamostore.DefaultOutboxShards, sized for 100,000 messages/s) would be
// thousands of queries a second for nothing. Point local mode at a deployed
// table only with SWITCHBOARD_OUTBOX_SHARDS set to the deployment's.
const LocalOutboxShards = 16

// LoadConfig reads the configuration through getenv.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Lambda:             getenv("AWS_LAMBDA_RUNTIME_API") != "",
		DataDir:            or(getenv("SWITCHBOARD_DATA_DIR"), "./.data"),
		Store:              strings.ToLower(or(getenv("SWITCHBOARD_STORE"), "embedded")),
		Table:              or(getenv("SWITCHBOARD_TABLE"), "switchboard"),
		OperatorKey:        getenv("SWITCHBOARD_OPERATOR_KEY"),
		OperatorKeyHash:    strings.ToLower(getenv("SWITCHBOARD_OPERATOR_KEY_SHA256")),
		WorkQueueURL:       getenv("SWITCHBOARD_WORK_QUEUE_URL"),
		KMSKeyID:           getenv("SWITCHBOARD_KMS_KEY_ID"),
		OutboxShards:       LocalOutboxShards,
		LogLevel:           logging.ParseLevel(getenv("SWITCHBOARD_LOG_LEVEL")),
		Port:               8080,
		SweepEvery:         1,
		Workers:            32,
		WebhookRetryScale:  1,
		TokenTTLSeconds:    900,
		KeyRotationHours:   24,
		AuditRetentionDays: 90,
	}
	if c.Lambda {
		c.OutboxShards = dynamostore.DefaultOutboxShards
	}
	if p := getenv("PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return c, fmt.Errorf("PORT %q is not a port number", p)
		}
		c.Port = n
	}
	if s := getenv("SWITCHBOARD_SWEEP_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return c, fmt.Errorf("SWITCHBOARD_SWEEP_SECONDS %q is not a positive number", s)
		}
		c.SweepEvery = n
	}
	if s := getenv("SWITCHBOARD_OUTBOX_SHARDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10_000 {
			return c, fmt.Errorf("SWITCHBOARD_OUTBOX_SHARDS %q: use 1 to 10000 (and never lower it on a table in use)", s)
		}
		c.OutboxShards = n
	}
	if s := getenv("SWITCHBOARD_WORKERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 256 {
			return c, fmt.Errorf("SWITCHBOARD_WORKERS %q: use 0 to 256", s)
		}
		c.Workers = n
	}
	if s := getenv("SWITCHBOARD_WEBHOOK_RETRY_SCALE"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 1 {
			return c, fmt.Errorf("SWITCHBOARD_WEBHOOK_RETRY_SCALE %q: use a number in (0, 1]", s)
		}
		c.WebhookRetryScale = f
	}
	if s := getenv("SWITCHBOARD_TOKEN_TTL_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 60 || n > 3600 {
			return c, fmt.Errorf("SWITCHBOARD_TOKEN_TTL_SECONDS %q: use 60 to 3600", s)
		}
		c.TokenTTLSeconds = n
	}
	if s := getenv("SWITCHBOARD_SIGNING_KEY_ROTATION_HOURS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 720 {
			return c, fmt.Errorf("SWITCHBOARD_SIGNING_KEY_ROTATION_HOURS %q: use 1 to 720", s)
		}
		c.KeyRotationHours = n
	}
	if s := getenv("SWITCHBOARD_AUDIT_RETENTION_DAYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 3650 {
			return c, fmt.Errorf("SWITCHBOARD_AUDIT_RETENTION_DAYS %q: use 1 to 3650", s)
		}
		c.AuditRetentionDays = n
	}
	if p := getenv("SWITCHBOARD_TENANT_RESOURCES_PATH"); p != "" {
		if err := tenantres.ValidatePath(p); err != nil {
			return c, fmt.Errorf("SWITCHBOARD_TENANT_RESOURCES_PATH: %w", err)
		}
		c.TenantResourcesPath = p
	}
	if b := strings.TrimSpace(getenv("SWITCHBOARD_EVENT_BUS")); b != "" && c.Lambda {
		bad := func(r rune) bool {
			return !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:", r)
		}
		if len(b) > 1600 || strings.ContainsFunc(b, bad) {
			return c, fmt.Errorf("SWITCHBOARD_EVENT_BUS %q: use an EventBridge bus name or ARN", b)
		}
		c.EventBus = b
	}
	switch c.Engine = strings.ToLower(strings.TrimSpace(getenv("SWITCHBOARD_ENGINE"))); c.Engine {
	case "", EnginePebble, EngineBbolt:
	default:
		return c, fmt.Errorf("SWITCHBOARD_ENGINE %q: use pebble or bbolt", c.Engine)
	}
	if c.Lambda {
		c.Store = "dynamodb"
	}
	if c.Store != "embedded" && c.Store != "dynamodb" {
		return c, fmt.Errorf("SWITCHBOARD_STORE %q: use embedded or dynamodb", c.Store)
	}
	if c.OperatorKeyHash != "" && len(c.OperatorKeyHash) != 64 {
		return c, fmt.Errorf("SWITCHBOARD_OPERATOR_KEY_SHA256 must be 64 hex characters")
	}
	if c.Lambda && strings.TrimSpace(getenv("SWITCHBOARD_PUBLIC_URL")) == "" {
		return c, fmt.Errorf("SWITCHBOARD_PUBLIC_URL is not set: Lambda mode needs the API's public URL for channels' inbound webhook URLs (providers post receipts there)")
	}
	c.PublicURL = strings.TrimRight(or(getenv("SWITCHBOARD_PUBLIC_URL"), "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))), "/")
	return c, nil
}

func or(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return v
}
