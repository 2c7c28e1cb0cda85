// Package webhooks is the subscriber-webhooks bounded context: tenant apps
// subscribe an endpoint (a URL) at a scope to message events, and every
// matching event reaches them as a signed POST (Standard Webhooks), retried
// on Svix's schedule until a 2xx.
//
// # Context map
//
//   - Downstream of messaging (conformist): it subscribes to the message
//     integration events ("message.queued", ...: work.IntegrationEvent whose
//     detail is {"tenantId","invocation","scopePath","data"}) and forwards
//     "data" (the contract's message) as the webhook body's data.
//   - Downstream of tenancy: it places subscriptions in the scope tree
//     through the small Scopes interface (tenancy's module implements it).
//   - Published language: the events "webhooks.*" of its streams, the
//     integration event "webhooks.subscription-disabled", and the work types
//     "webhooks.deliver", "webhooks.fan-out", "webhooks.subscription-health".
//
// # Layout
//
//   - domain:   aggregates Subscription and Delivery; event types; target URL
//     and address rules; retry schedule; health and pause rules (pure)
//   - app:      one handler per command, query, work type and subscriber; the ports it needs
//   - adapters: event-store repository and read models, the Standard Webhooks
//     HTTP sender, the target guard
//   - ports:    rpc endpoints, work registration, event subscriptions
//
// Streams: "subscription-<subId>", "delivery-<dlvId>". Read models
// ("webhook-subscriptions", "webhook-deliveries", the (subscription, event)
// keys) are written with the events they derive from.
package webhooks

import (
	"log/slog"
	"net/http"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/webhooks/adapters"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
	"github.com/switchboard-dev/switchboard/modules/webhooks/ports"
)

// Scopes is what the module needs of tenancy: where a scope sits in its
// tenant's tree (*tenancy.Module implements it).
type Scopes = app.Scopes

// Resolver resolves host names for the target guard (*net.Resolver is one).
type Resolver = adapters.Resolver

// Deps are what the webhooks module needs from the process.
type Deps struct {
	Store  eventstore.Store
	Sealer secrets.Sealer // seals subscription secrets (purpose "webhooks.subscription-secret")
	Scopes Scopes
	IDs    ids.Generator
	Clock  clock.Clock
	Logger *slog.Logger // nil: discard
	// HTTPClient makes the attempts; nil: the guarded default (no proxy, no
	// redirects, 15 s, every connection checked by the target guard unless
	// AllowPrivateTargets). A client given here is used as it is.
	HTTPClient *http.Client
	// AllowPrivateTargets lets subscriptions reach loopback, private,
	// link-local and metadata addresses: local mode only. False (Lambda
	// mode) refuses them at creation and at every delivery.
	AllowPrivateTargets bool
	// RetryScale multiplies the retry schedule: 1 (or 0) is Svix's; tests use 0.001.
	RetryScale float64
	// Resolver resolves URL hosts for the target guard; nil: net.DefaultResolver.
	Resolver Resolver
	// Rand draws the retry jitter in [0, 1); nil: math/rand/v2. A constant
	// 0.5 gives the schedule without jitter (tests). It must be safe for
	// concurrent use (the fan-out's attempts run in parallel).
	Rand func() float64
	// Gate bounds each subscription's attempts in flight (see
	// app.EndpointGate); nil: the defaults.
	Gate *app.EndpointGate
}

// Module is the wired webhooks context.
type Module struct {
	app  *app.Application
	repo *adapters.Repository
}

// New wires the module.
func New(d Deps) *Module {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("module", "webhooks"))
	guard := &adapters.Guard{Resolver: d.Resolver, AllowPrivate: d.AllowPrivateTargets}
	client := d.HTTPClient
	if client == nil {
		client = adapters.NewHTTPClient(guard)
	}
	repo := adapters.NewRepository(d.Store, d.IDs, d.Clock)
	return &Module{
		repo: repo,
		app: app.New(app.Deps{
			Repo:    repo,
			Reads:   adapters.NewReadModel(d.Store),
			Scopes:  d.Scopes,
			Targets: guard,
			Sender:  &adapters.HTTPSender{Client: client},
			Sealer:  d.Sealer,
			IDs:     d.IDs,
			Clock:   d.Clock,
			Logger:  log,
			Retry:   domain.RetryPolicy{Scale: d.RetryScale, Jitter: domain.DefaultJitter},
			Rand:    d.Rand,
			Gate:    d.Gate,
		}),
	}
}

// App returns the application, for tests and for in-process callers.
func (m *Module) App() *app.Application { return m.app }

// Endpoints returns the module's commands and queries.
func (m *Module) Endpoints() []rpc.Endpoint { return ports.Endpoints(m.app) }

// RegisterWork registers the module's work types with r.
func (m *Module) RegisterWork(r *work.Registry) { ports.RegisterWork(r, m.app) }

// Subscribe subscribes the module to the message integration events. Their
// delivery needs the handler of work.PublishType registered once in the
// process: r.Register(work.PublishType, s.PublishHandler()).
func (m *Module) Subscribe(s *work.Subscriptions) { ports.Subscribe(s, m.app) }
