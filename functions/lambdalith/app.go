package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/switchboard-dev/switchboard/modules/audit"
	auditadapters "github.com/switchboard-dev/switchboard/modules/audit/adapters"
	"github.com/switchboard-dev/switchboard/modules/identity"
	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz/cedarauthz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/metrics"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
	"github.com/switchboard-dev/switchboard/modules/kernel/trigger"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/kernel/work/ebpublisher"
	"github.com/switchboard-dev/switchboard/modules/kernel/work/sqstransport"
	"github.com/switchboard-dev/switchboard/modules/kernel/work/workrpc"
	"github.com/switchboard-dev/switchboard/modules/messaging"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
	messagingapp "github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy"
	"github.com/switchboard-dev/switchboard/modules/webhooks"
)

// App is the production wiring of the one binary. Tests build it with Build,
// exactly as main does, and drive its Server (HTTP) or Router (Lambda).
type App struct {
	Config Config
	Logger *slog.Logger
	Store  eventstore.Store
	Sealer secrets.Sealer  // the encryption port (KMS in Lambda mode, a key file in local mode)
	Runner *uow.Runner     // the one commit path: edge, work, webhooks, jobs
	Server *rpc.Server     // the HTTP edge (local mode serves it; Lambda mode reaches it through Router)
	Router *trigger.Router // the Lambda entry: API Gateway, SQS, EventBridge
	Work   *work.Registry
	Jobs   *work.Jobs
	Events *work.Subscriptions
	Relay  *work.Relay
	Parked *work.Parked      // operator tools for parked work
	Worker *work.LocalWorker // local mode only: runs work in-process
	// Audit writes the audit log (serveLocal starts its background loop).
	Audit *auditadapters.Writer
	// Tokens verifies access tokens at the edge (published keys in memory).
	Tokens *auth.TokenVerifier

	// OperatorKey is the generated (or configured) operator key in local mode;
	// empty when only its hash is configured.
	OperatorKey          string
	OperatorKeyGenerated bool

	closers []func() error
}

// Deps are what tests may replace; zero values mean production defaults.
type Deps struct {
	Logger *slog.Logger
	Clock  clock.Clock
	IDs    ids.Generator
	// DynamoDBOptions tune the DynamoDB client (the capacity report records
	// every request through them).
	DynamoDBOptions []func(*dynamodb.Options)
}

// Build wires the application from configuration. It makes no network call in
// Lambda mode (cold start); in local mode with SWITCHBOARD_STORE=dynamodb it
// creates the table when missing.
func Build(ctx context.Context, cfg Config, d Deps) (*App, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.IDs == nil {
		d.IDs = ids.NewULIDs()
	}
	a := &App{Config: cfg, Logger: d.Logger, Work: work.NewRegistry(), Jobs: work.NewJobs(), Events: work.NewSubscriptions()}

	var awsCfg *aws.Config
	if cfg.Store == "dynamodb" || cfg.Lambda {
		c, err := loadAWS(ctx)
		if err != nil {
			return nil, err
		}
		awsCfg = &c
	}
	if err := a.openStore(ctx, awsCfg, d.DynamoDBOptions); err != nil {
		return nil, err
	}
	// Siloed tenants' own resources (ADR 0013): SSM parameters in Lambda
	// mode; none in local mode or without a path.
	var resources tenantres.Resolver
	if cfg.Lambda && cfg.TenantResourcesPath != "" {
		r, err := tenantres.NewSSM(ssm.NewFromConfig(*awsCfg), cfg.TenantResourcesPath, tenantres.SSMOptions{Clock: d.Clock, Logger: d.Logger})
		if err != nil {
			a.Close()
			return nil, err
		}
		resources = r
	}
	if err := a.openSealer(awsCfg, d.Clock, resources); err != nil {
		a.Close()
		return nil, err
	}

	// Credentials.
	keyHash := cfg.OperatorKeyHash
	if cfg.OperatorKey != "" {
		a.OperatorKey = cfg.OperatorKey
		keyHash = auth.HashSecret(cfg.OperatorKey)
	} else if keyHash == "" && !cfg.Lambda {
		key, generated, err := localOperatorKey(cfg.DataDir)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.OperatorKey, a.OperatorKeyGenerated, keyHash = key, generated, auth.HashSecret(key)
	}
	if keyHash == "" {
		d.Logger.Warn("no operator key configured: onboard-tenant answers 503 until SWITCHBOARD_OPERATOR_KEY_SHA256 is set")
	}

	// Modules.
	tenancyMod := tenancy.New(tenancy.Deps{Store: a.Store, IDs: d.IDs, Clock: d.Clock, Resources: resources, Logger: d.Logger})
	tenancyMod.RegisterWork(a.Work)

	// The one commit path, and the work path behind it: every unit of work
	// hands its committed outbox entries to the relay.
	a.Runner = &uow.Runner{Store: a.Store, Logger: d.Logger}
	exec := &work.Executor{Handlers: a.Work, Runner: a.Runner, Clock: d.Clock, Logger: d.Logger}
	a.Relay = &work.Relay{Store: a.Store, Clock: d.Clock, Logger: d.Logger}
	var retry trigger.Retrier
	switch {
	case !cfg.Lambda:
		a.Worker = &work.LocalWorker{Handler: exec, Store: a.Store, Clock: d.Clock, Logger: d.Logger, Workers: cfg.Workers}
		a.Relay.Transport = a.Worker
	case cfg.WorkQueueURL != "":
		tr := sqstransport.New(sqs.NewFromConfig(*awsCfg), cfg.WorkQueueURL)
		tr.Resources, tr.Logger = resources, d.Logger // a siloed tenant's work goes to its own queue
		// No Relay.Grace: the sweep hands what is due within SQS's 15
		// minutes, entries being handed included (consumers dedupe).
		a.Relay.Transport = tr
		// A failed item goes back into the outbox with its backoff; the relay
		// sends it to SQS with that delay.
		retry = &work.Requeuer{Runner: a.Runner, Store: a.Store, Clock: d.Clock, Logger: d.Logger}
	default:
		d.Logger.Warn("SWITCHBOARD_WORK_QUEUE_URL is not set: asynchronous work runs inline in the invocation that causes it and in the outbox sweep")
		a.Relay.Transport = &work.Inline{Handler: exec, Store: a.Store, Clock: d.Clock, Logger: d.Logger}
	}
	a.Runner.AfterCommit = a.Relay.AfterCommit

	// Messaging: channels and messages, with the sandbox provider; its
	// integration events go through the outbox to in-process subscribers.
	sandboxProvider := sandbox.New(sandbox.Deps{Store: a.Store, Runner: a.Runner, Sealer: a.Sealer, IDs: d.IDs, Clock: d.Clock, Logger: d.Logger})
	sandboxProvider.RegisterWork(a.Work)
	// Business metrics: CloudWatch EMF lines on stdout in Lambda mode (ADR 0014).
	var recorder metrics.Recorder = metrics.Nop{}
	if cfg.Lambda {
		recorder = metrics.NewEMF(os.Stdout, metrics.EMFOptions{Clock: d.Clock, Logger: d.Logger})
	}
	messagingMod := messaging.New(messaging.Deps{
		Store: a.Store, Runner: a.Runner, Sealer: a.Sealer, Scopes: tenancyMod,
		Providers: messagingapp.Providers{sandbox.Name: sandboxProvider},
		IDs:       d.IDs, Clock: d.Clock, PublicURL: cfg.PublicURL, Logger: d.Logger, Metrics: recorder,
	})
	messagingMod.RegisterWork(a.Work)
	// In Lambda mode with SWITCHBOARD_EVENT_BUS, every published event is also
	// put on the EventBridge bus, by a work item of its own (ADR 0016).
	publish, bus := a.Events.PublishHandler(), work.EventBus(nil)
	if cfg.EventBus != "" && awsCfg != nil {
		publish = a.Events.ForwardingPublishHandler(work.BusForward{Store: a.Store, IDs: d.IDs, Clock: d.Clock})
		bus = ebpublisher.New(eventbridge.NewFromConfig(*awsCfg), cfg.EventBus)
	}
	if bus == nil {
		// The in-process subscribers (the webhooks fan-out) are idempotent
		// by state; forwarding stages a bus item that is not (ADR 0017).
		a.Work.RegisterIdempotent(work.PublishType, publish)
	} else {
		a.Work.Register(work.PublishType, publish)
	}
	a.Work.Register(work.BusType, work.BusHandler(bus)) // without a bus its items park, for a replay

	// Subscriber webhooks: subscriptions see the message.* integration
	// events of their scope and below. Lambda mode refuses private targets.
	webhooksMod := webhooks.New(webhooks.Deps{
		Store: a.Store, Sealer: a.Sealer, Scopes: tenancyMod, IDs: d.IDs, Clock: d.Clock, Logger: d.Logger,
		AllowPrivateTargets: !cfg.Lambda,
		RetryScale:          cfg.WebhookRetryScale,
	})
	webhooksMod.RegisterWork(a.Work)
	webhooksMod.Subscribe(a.Events)
	a.Parked = &work.Parked{Store: a.Store, Relay: a.Relay, Clock: d.Clock}
	a.Jobs.Register(work.SweepJob, a.Relay.SweepJobFunc())

	// Access tokens: signing keys sealed by the encryption port, rotated by
	// a scheduled job (an EventBridge schedule in AWS, serveLocal's ticker
	// in local mode).
	identityMod := identity.New(identity.Deps{
		Store: a.Store, Sealer: a.Sealer, IDs: d.IDs, Clock: d.Clock, Logger: d.Logger,
		TokenLifetime:  time.Duration(cfg.TokenTTLSeconds) * time.Second,
		RotationPeriod: time.Duration(cfg.KeyRotationHours) * time.Hour,
	})
	identityMod.RegisterJobs(a.Jobs)
	a.Tokens = &auth.TokenVerifier{Keys: identityMod, Clock: d.Clock}

	// The audit log: every API call of a tenant, written by a buffered
	// writer outside the calls' commits (flushed per request in Lambda
	// mode; serveLocal starts its background loop).
	auditStore, err := a.openAuditStore()
	if err != nil {
		a.Close()
		return nil, err
	}
	auditMod := audit.New(audit.Deps{
		Store: auditStore, Scopes: tenancyMod, IDs: d.IDs, Logger: d.Logger,
		Retention: time.Duration(cfg.AuditRetentionDays) * 24 * time.Hour,
	})
	a.Audit = auditMod.Writer()
	a.closers = append(a.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Audit.Stop(ctx)
		return nil
	})

	// The edge.
	keys := &auth.CachedResolver{Resolver: tenancyMod.APIKeys(), Clock: d.Clock}
	a.Server = rpc.NewServer(rpc.Config{
		Auth:                &auth.Authenticator{OperatorKeyHash: keyHash, Keys: keys, Tokens: a.Tokens},
		Store:               a.Store,
		Sealer:              a.Sealer,
		Runner:              a.Runner,
		IDs:                 d.IDs,
		Clock:               d.Clock,
		Logger:              d.Logger,
		AllowLogLevelHeader: !cfg.Lambda,
		Auditor:             rpc.Auditors{rpc.LogAuditor{Logger: d.Logger}, a.Audit},
		// Built-in roles and the tenants' own roles (tenancy keeps them).
		Authorizer: cedarauthz.Must(cedarauthz.WithRoleSource(tenancyMod.Roles())),
	})
	a.Server.Register(tenancyMod.Endpoints()...)
	a.Server.Register(workrpc.Endpoints(a.Parked)...)
	a.Server.Register(messagingMod.Endpoints()...)
	a.Server.Register(webhooksMod.Endpoints()...)
	a.Server.Register(identityMod.Endpoints()...)
	a.Server.Register(auditMod.Endpoints()...)
	for pattern, h := range messagingMod.Routes() {
		a.Server.Handle(pattern, h)
	}
	for pattern, h := range identityMod.Routes() {
		a.Server.Handle(pattern, h)
	}
	a.Router = &trigger.Router{HTTP: a.Server, Work: exec, Retry: retry, Jobs: a.Jobs, Events: a.Events, Logger: d.Logger, IDs: d.IDs}
	return a, nil
}

// openSealer makes the encryption port: KMS when SWITCHBOARD_KMS_KEY_ID is
// set (required in Lambda mode; a siloed tenant's own key when resources
// names one), else the master key file of the data dir.
func (a *App) openSealer(awsCfg *aws.Config, clk clock.Clock, resources tenantres.Resolver) error {
	cfg := a.Config
	var wrapper secrets.KeyWrapper
	switch {
	case cfg.KMSKeyID != "":
		if awsCfg == nil {
			c, err := loadAWS(context.Background())
			if err != nil {
				return err
			}
			awsCfg = &c
		}
		wrapper = secrets.NewKMSKeyring(kms.NewFromConfig(*awsCfg), cfg.KMSKeyID).WithResources(resources, a.Logger)
	case cfg.Lambda:
		return errors.New("SWITCHBOARD_KMS_KEY_ID is not set: Lambda mode needs the KMS key that wraps the tenants' data keys")
	default:
		path := filepath.Join(cfg.DataDir, "master.key")
		k, err := secrets.OpenKeyFile(path)
		if err != nil {
			return fmt.Errorf("local master key %s: %w", path, err)
		}
		wrapper = k
	}
	a.Sealer = secrets.NewEnvelope(wrapper, secrets.WithClock(clk))
	return nil
}

// openAuditStore is where the audit log is kept: the store, but for the
// bbolt engine a file of its own (AuditFile), so that its writes, one per
// API call, have their own writer and do not queue behind the calls' commits
// (bbolt has one writer per file).
func (a *App) openAuditStore() (auditadapters.Store, error) {
	cfg := a.Config
	if cfg.Store != "embedded" || cfg.EmbeddedEngine() != EngineBbolt {
		return a.Store, nil
	}
	path := filepath.Join(cfg.DataDir, AuditFile)
	s, err := boltstore.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open the audit store %s: %w", path, err)
	}
	purge, stop := context.WithCancel(context.Background())
	s.StartPurger(purge, time.Minute) // removes entries past their retention
	a.closers = append(a.closers, s.Close, func() error { stop(); return nil })
	return s, nil
}

// openStore opens the embedded or the DynamoDB store.
func (a *App) openStore(ctx context.Context, awsCfg *aws.Config, opts []func(*dynamodb.Options)) error {
	cfg := a.Config
	if cfg.Store == "embedded" {
		if err := cfg.EngineMismatch(); err != nil {
			return err
		}
	}
	if cfg.Store == "embedded" && cfg.EmbeddedEngine() == EnginePebble {
		path := filepath.Join(cfg.DataDir, PebbleDir)
		s, closeStore, err := openPebble(path)
		if err != nil {
			return fmt.Errorf("open embedded store %s: %w", path, err)
		}
		a.Store = s
		a.closers = append(a.closers, closeStore)
		return nil
	}
	if cfg.Store == "embedded" {
		path := filepath.Join(cfg.DataDir, BboltFile)
		s, err := boltstore.Open(path)
		if err != nil {
			return fmt.Errorf("open embedded store %s: %w", path, err)
		}
		a.Store = s
		purge, stop := context.WithCancel(context.Background())
		s.StartPurger(purge, time.Minute) // removes expired idempotency records and rows
		a.closers = append(a.closers, s.Close, func() error { stop(); return nil })
		return nil
	}
	// The store reads shards in parallel (up to 64 queries at once for the
	// outbox): keep that many connections open, not the SDK's 10 per host.
	pooled := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 128, 128
	})
	opts = append([]func(*dynamodb.Options){func(o *dynamodb.Options) { o.HTTPClient = pooled }}, opts...)
	client := dynamodb.NewFromConfig(*awsCfg, opts...)
	if !cfg.Lambda {
		if err := dynamostore.EnsureTable(ctx, client, cfg.Table); err != nil {
			return fmt.Errorf("dynamodb table %s: %w", cfg.Table, err)
		}
	}
	a.Store = dynamostore.New(client, cfg.Table, dynamostore.WithOutboxShards(cfg.OutboxShards))
	return nil
}

// loadAWS reads the standard AWS configuration (environment, shared files; no
// network). Against an emulator endpoint without credentials it uses dummy
// ones, and a default region when none is set.
func loadAWS(ctx context.Context) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, awsconfig.WithRegion("us-east-1"))
	}
	emulated := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
	if emulated && os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	c, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return c, fmt.Errorf("load AWS configuration: %w", err)
	}
	return c, nil
}

// localOperatorKey reads the operator key kept in the data dir, or makes one.
func localOperatorKey(dir string) (key string, generated bool, err error) {
	path := filepath.Join(dir, "operator.key")
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read operator key %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	key = "sbo_" + auth.NewSecret()
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write operator key %s: %w", path, err)
	}
	return key, true, nil
}

// Close releases the store.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}
