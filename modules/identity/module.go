// Package identity is the identity bounded context: access tokens (ADR 0010).
//
// # Context map
//
//   - Downstream of tenancy, through the kernel: issue-token mints a token
//     from the invocation's principal (tenant, service account, the API key
//     as session id, role bindings) that the edge authenticated with the
//     tenancy module's key lookup; it reads nothing of tenancy.
//   - Supplier to the kernel's authenticator: the published public keys
//     (auth.PublicKeySource), which auth.TokenVerifier caches.
//   - Published language: GET /.well-known/jwks.json (RFC 7517/8037), the
//     token format (kernel/auth/token.go), the events "identity.*" and the
//     scheduled job "signing-key-rotation".
//
// # Layout
//
//   - domain:   the platform key set (aggregate), rotation and retirement rules, events
//   - app:      issue-token, the public keys, the rotation job, the key ring
//   - adapters: event-store repository
//   - ports:    the rpc endpoint, the JWKS route, the job registration
//
// Streams: "signing-keys" in the platform namespace ("_platform", with its
// snapshot row "identity-signing-keys/set"), "access-token-<tokenId>" in the
// tenant (one event per issued token). Private keys are stored only sealed
// by the encryption port (KMS in AWS) for the platform namespace.
package identity

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard/modules/identity/adapters"
	"github.com/switchboard-dev/switchboard/modules/identity/app"
	"github.com/switchboard-dev/switchboard/modules/identity/ports"
	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// RotationJob is the name of the signing key rotation job.
const RotationJob = ports.RotationJob

// Deps are what the identity module needs from the process.
type Deps struct {
	Store  eventstore.Store
	Sealer secrets.Sealer
	IDs    ids.Generator
	Clock  clock.Clock
	Logger *slog.Logger // nil: discard
	// TokenLifetime of issued tokens (default 15 minutes, at most 60).
	TokenLifetime time.Duration
	// RotationPeriod of signing keys (default 24 hours).
	RotationPeriod time.Duration
}

// Module is the wired identity context.
type Module struct {
	app   *app.Application
	clock clock.Clock
	log   *slog.Logger
}

var _ auth.PublicKeySource = (*Module)(nil)

// New wires the module.
func New(d Deps) *Module {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("module", "identity"))
	clk := d.Clock
	if clk == nil {
		clk = clock.System{}
	}
	return &Module{log: log, clock: clk, app: app.New(app.Deps{
		Repo:      adapters.NewRepository(d.Store, d.IDs, d.Clock),
		Sealer:    d.Sealer,
		Namespace: adapters.PlatformNamespace,
		IDs:       d.IDs, Clock: d.Clock, Logger: log,
		TokenLifetime: d.TokenLifetime, RotationPeriod: d.RotationPeriod,
	})}
}

// App returns the application, for tests and in-process callers.
func (m *Module) App() *app.Application { return m.app }

// Endpoints returns the module's commands.
func (m *Module) Endpoints() []rpc.Endpoint { return ports.Endpoints(m.app) }

// Routes returns the module's other HTTP routes (the JWKS), by pattern.
func (m *Module) Routes() map[string]http.Handler {
	return map[string]http.Handler{ports.JWKSPattern: ports.JWKSRoute(m.app, m.clock, m.log)}
}

// RegisterJobs registers the rotation job with j.
func (m *Module) RegisterJobs(j *work.Jobs) { ports.RegisterJobs(j, m.app) }

// PublicKeys implements auth.PublicKeySource (one store read).
func (m *Module) PublicKeys(ctx context.Context) ([]auth.PublicKey, error) {
	keys, err := m.app.Queries.PublicKeys.Handle(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]auth.PublicKey, len(keys))
	for i, k := range keys {
		out[i] = auth.PublicKey{ID: k.KeyID, Key: k.Key}
	}
	return out, nil
}
