// Package messaging is the messaging bounded context: channels (a provider
// configured for one type of message in a scope) and messages (outbound
// sends with their lifecycle, inbound messages), with the provider adapters
// behind one port.
//
// # Context map
//
//   - Downstream of tenancy (customer/supplier): channels live in scopes;
//     the context asks tenancy's small Scopes interface (ScopePath,
//     RootScopeID) where a scope sits and never owns scopes.
//   - Anticorruption layer towards providers: the app.Provider port
//     (sandbox today; Twilio and Amazon SES next) translates sends, receipts
//     and inbound messages; provider webhooks (POST /webhooks/{provider}/
//     {channelId}) are verified by the provider's own signature.
//   - Upstream of subscriber webhooks (published language): one integration
//     event per public status change, "message.queued", ".sent",
//     ".delivered", ".undelivered", ".failed", ".canceled", ".received"
//     (source "switchboard.messaging", detail app.MessageEventDetail),
//     through the outbox (work.PublishType).
//   - Work types "messaging.dispatch" and "messaging.provider-webhook".
//
// # Layout
//
//   - domain:   Channel and Message aggregates, the status state machine,
//     events and the send-message and create-channel rules (pure)
//   - app:      one handler per command, query and work type; the ports
//   - adapters: event-store repository, read models, projections; sandbox
//   - ports:    rpc endpoints, work registration, the provider webhook route
//
// Streams: "channel-<channelId>", "message-<messageId>". Read models
// ("channels", "messages" with one sharded list per filter,
// "provider-messages", global "channel-routes") are written with the events
// they derive from and rebuilt from the streams by id
// (rebuild-read-models); there are no scans.
package messaging

import (
	"log/slog"
	"net/http"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/ports"
)

// Deps are what the messaging module needs from the process.
type Deps struct {
	Store eventstore.Store
	// Runner is the edge's unit-of-work runner (rpc.Server.Runner): the
	// webhook route and dispatch's claims commit through it, so their work
	// reaches the relay. Required.
	Runner    *uow.Runner
	Sealer    secrets.Sealer // seals channel credentials and inbound secrets
	Scopes    app.Scopes     // tenancy's ScopePath and RootScopeID
	Providers app.Providers  // provider adapters by name
	IDs       ids.Generator
	Clock     clock.Clock
	PublicURL string       // base of inbound webhook URLs
	Logger    *slog.Logger // nil: discard
	// Metrics records the messaging metrics (MessagesAccepted, ...Sent,
	// ...Delivered, ...Failed, DispatchLatency) after their commits: EMF in
	// Lambda mode; nil records nothing.
	Metrics app.Metrics
}

// Module is the wired messaging context.
type Module struct {
	app    *app.Application
	routes map[string]http.Handler
}

// New wires the module.
func New(d Deps) *Module {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("module", "messaging"))
	store := adapters.NewRepository(d.Store, d.IDs, d.Clock)
	cache := adapters.NewChannelCache(d.Clock, 0, 0) // channels never change: see ChannelCache
	repo := adapters.CachedRepository{Repository: store, Cache: cache}
	reads := adapters.CachedReadModel{ReadModel: adapters.NewReadModel(d.Store, d.PublicURL), Cache: cache}
	a := app.New(app.Deps{
		Repo: repo, Reads: reads, Rebuilder: store, Runner: d.Runner, Scopes: d.Scopes, Sealer: d.Sealer, Providers: d.Providers,
		IDs: d.IDs, Clock: d.Clock, PublicURL: d.PublicURL, Logger: log,
	})
	a.Commands.SendMessage.Metrics = d.Metrics
	a.Work.Dispatch.Metrics = d.Metrics
	a.Work.ProviderWebhook.Metrics = d.Metrics
	return &Module{
		app: a,
		routes: map[string]http.Handler{
			ports.WebhookPattern: ports.WebhookRoute(ports.WebhookDeps{
				Reads: reads, Repo: repo, Providers: d.Providers, Sealer: d.Sealer, Runner: d.Runner,
				IDs: d.IDs, Clock: d.Clock, Logger: log,
			}),
		},
	}
}

// App returns the application, for tests and for in-process callers (the
// rebuild job calls app.RebuildReadModels).
func (m *Module) App() *app.Application { return m.app }

// Endpoints returns the module's commands and queries.
func (m *Module) Endpoints() []rpc.Endpoint { return ports.Endpoints(m.app) }

// RegisterWork registers the module's work types with r.
func (m *Module) RegisterWork(r *work.Registry) {
	ports.RegisterWork(r, m.app.Work.Dispatch, m.app.Work.ProviderWebhook)
}

// Routes returns the module's HTTP routes besides rpc (pattern -> handler),
// to mount with rpc.Server.Handle: the provider webhook route.
func (m *Module) Routes() map[string]http.Handler { return m.routes }
