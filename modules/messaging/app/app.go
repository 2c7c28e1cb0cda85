package app

import (
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// Application is everything the messaging context can do.
type Application struct {
	Commands Commands
	Queries  Queries
	Work     WorkHandlers
}

// Commands change state.
type Commands struct {
	CreateChannel     CreateChannelHandler
	SendMessage       SendMessageHandler
	CancelMessage     CancelMessageHandler
	RebuildReadModels RebuildReadModelsHandler
}

// Queries read state.
type Queries struct {
	GetChannel        GetChannelHandler
	ListChannels      ListChannelsHandler
	GetMessage        GetMessageHandler
	ListMessages      ListMessagesHandler
	GetMessageHistory GetMessageHistoryHandler
}

// WorkHandlers run asynchronous work items.
//
// ---- Work handlers of dispatch and provider webhooks (app/dispatch.go,
// app/provider_webhook.go), wired in newWorkHandlers. ----
type WorkHandlers struct {
	Dispatch        DispatchHandler
	ProviderWebhook ProviderWebhookHandler
}

// newWorkHandlers wires the work handlers (their tuning fields keep their
// defaults).
func newWorkHandlers(d Deps, log *slog.Logger) WorkHandlers {
	return WorkHandlers{
		Dispatch: DispatchHandler{Repo: d.Repo, Runner: d.Runner, Providers: d.Providers, Sealer: d.Sealer, Clock: d.Clock,
			PublicURL: d.PublicURL, Logger: log},
		ProviderWebhook: ProviderWebhookHandler{Repo: d.Repo, Reads: d.Reads, IDs: d.IDs, Clock: d.Clock, Logger: log},
	}
}

// Deps are the application's dependencies.
type Deps struct {
	Repo      Repository
	Reads     ReadModel
	Rebuilder Rebuilder
	// Runner commits dispatch's claims in units of work of their own.
	Runner    *uow.Runner
	Scopes    Scopes
	Sealer    secrets.Sealer
	Providers Providers
	IDs       ids.Generator
	Clock     clock.Clock
	// PublicURL is the base of inbound webhook URLs (SWITCHBOARD_PUBLIC_URL).
	PublicURL string
	Logger    *slog.Logger // nil: discard
}

// New wires the handlers.
func New(d Deps) *Application {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Application{
		Commands: Commands{
			CreateChannel: CreateChannelHandler{Repo: d.Repo, Scopes: d.Scopes, Sealer: d.Sealer, Providers: d.Providers,
				IDs: d.IDs, PublicURL: d.PublicURL, Logger: log},
			SendMessage:       SendMessageHandler{Repo: d.Repo, Reads: d.Reads, IDs: d.IDs, Clock: d.Clock, Logger: log},
			CancelMessage:     CancelMessageHandler{Repo: d.Repo, Logger: log},
			RebuildReadModels: RebuildReadModelsHandler{Rebuilder: d.Rebuilder, Scopes: d.Scopes, Logger: log},
		},
		Queries: Queries{
			GetChannel:        GetChannelHandler{Reads: d.Reads},
			ListChannels:      ListChannelsHandler{Reads: d.Reads, Scopes: d.Scopes},
			GetMessage:        GetMessageHandler{Reads: d.Reads},
			ListMessages:      listMessages(d),
			GetMessageHistory: GetMessageHistoryHandler{Repo: d.Repo, Reads: d.Reads},
		},
		Work: newWorkHandlers(d, log),
	}
}

// TimeFormat is how responses render times: RFC 3339, UTC, milliseconds.
const TimeFormat = clock.TimeFormat

func formatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// tenantOf returns the tenant of the invocation.

// listMessages wires list-messages; a caller bound below the root is served
// when the scopes port has the tree and the read model merges partitions.
func listMessages(d Deps) ListMessagesHandler {
	h := ListMessagesHandler{Reads: d.Reads, Scopes: d.Scopes}
	h.Tree, _ = d.Scopes.(ScopeTree)
	h.Visible, _ = d.Reads.(VisibleMessages)
	return h
}
