package app

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// Application is everything the webhooks context can do.
type Application struct {
	Commands Commands
	Queries  Queries
	Work     WorkHandlers
	// FanOut is the subscriber of the message integration events.
	FanOut FanOutHandler
}

// Commands change state.
type Commands struct {
	CreateSubscription CreateSubscriptionHandler
}

// Queries read state.
type Queries struct {
	ListSubscriptions ListSubscriptionsHandler
	ListDeliveries    ListDeliveriesHandler
}

// WorkHandlers run asynchronous work items.
type WorkHandlers struct {
	Deliver            DeliverHandler
	ContinueFanOut     ContinueFanOutHandler
	SubscriptionHealth SubscriptionHealthHandler
}

// Deps are the application's dependencies.
type Deps struct {
	Repo    Repository
	Reads   ReadModel
	Scopes  Scopes
	Targets Targets
	Sender  Sender
	Sealer  secrets.Sealer
	IDs     ids.Generator
	Clock   clock.Clock
	Logger  *slog.Logger // nil: discard
	// Retry is the retry policy of deliveries (Scale 0 is 1).
	Retry domain.RetryPolicy
	// Rand draws the jitter of retries in [0, 1); nil: math/rand/v2. It is
	// called from several goroutines at once (the fan-out's attempts).
	Rand func() float64
	// Gate bounds each subscription's attempts in flight; nil: an
	// EndpointGate with its defaults.
	Gate *EndpointGate
}

// New wires the handlers.
func New(d Deps) *Application {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	draw := d.Rand
	if draw == nil {
		draw = rand.Float64
	}
	gate := d.Gate
	if gate == nil {
		gate = &EndpointGate{}
	}
	at := attempter{Repo: d.Repo, Sender: d.Sender, Sealer: d.Sealer, Clock: d.Clock, Retry: d.Retry, Rand: draw, Logger: log, Gate: gate}
	return &Application{
		Commands: Commands{
			CreateSubscription: CreateSubscriptionHandler{Repo: d.Repo, Scopes: d.Scopes, Targets: d.Targets, Sealer: d.Sealer, IDs: d.IDs, Logger: log},
		},
		Queries: Queries{
			ListSubscriptions: ListSubscriptionsHandler{Reads: d.Reads, Scopes: d.Scopes},
			ListDeliveries:    ListDeliveriesHandler{Repo: d.Repo, Reads: d.Reads},
		},
		Work: WorkHandlers{
			Deliver:            DeliverHandler{at},
			ContinueFanOut:     ContinueFanOutHandler{at},
			SubscriptionHealth: SubscriptionHealthHandler{Repo: d.Repo, Reads: d.Reads, Logger: log},
		},
		FanOut: FanOutHandler{attempter: at},
	}
}

// TimeFormat is how responses render times: RFC 3339, UTC, milliseconds.
const TimeFormat = domain.TimeFormat

func formatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

// tenantOf returns the tenant of the invocation.
