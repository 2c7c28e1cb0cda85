package app

import (
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/identity/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
)

// Application is everything the identity context can do.
type Application struct {
	Commands Commands
	Queries  Queries
	Jobs     Jobs
}

// Commands change state.
type Commands struct {
	IssueToken IssueTokenHandler
}

// Queries read state (not rpc queries: the JWKS route and the verifier's source).
type Queries struct {
	PublicKeys PublicKeysHandler
}

// Jobs are the scheduled jobs.
type Jobs struct {
	RotateSigningKeys RotateSigningKeysHandler
}

// Deps are the application's dependencies.
type Deps struct {
	Repo      Repository
	Sealer    secrets.Sealer
	Namespace string // the sealing namespace of signing keys (adapters.PlatformNamespace)
	IDs       ids.Generator
	Clock     clock.Clock
	Logger    *slog.Logger // nil: discard
	// TokenLifetime is the life of issued tokens (default
	// domain.DefaultTokenLifetime, at most domain.MaxTokenLifetime).
	TokenLifetime time.Duration
	// RotationPeriod is the age of the newest key that makes the rotation
	// job create a new one (default domain.DefaultRotationPeriod).
	RotationPeriod time.Duration
}

// New wires the handlers.
func New(d Deps) *Application {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.TokenLifetime <= 0 || d.TokenLifetime > domain.MaxTokenLifetime {
		d.TokenLifetime = domain.DefaultTokenLifetime
	}
	if d.RotationPeriod <= 0 {
		d.RotationPeriod = domain.DefaultRotationPeriod
	}
	rotate := RotateSigningKeysHandler{repo: d.Repo, sealer: d.Sealer, namespace: d.Namespace, ids: d.IDs, clock: d.Clock, period: d.RotationPeriod, log: d.Logger}
	ring := &KeyRing{repo: d.Repo, sealer: d.Sealer, namespace: d.Namespace, clock: d.Clock, bootstrap: rotate}
	return &Application{
		Commands: Commands{IssueToken: IssueTokenHandler{ring: ring, repo: d.Repo, ids: d.IDs, clock: d.Clock, lifetime: d.TokenLifetime, log: d.Logger}},
		Queries:  Queries{PublicKeys: PublicKeysHandler{repo: d.Repo}},
		Jobs:     Jobs{RotateSigningKeys: rotate},
	}
}
