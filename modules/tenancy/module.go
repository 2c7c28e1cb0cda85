// Package tenancy is the tenancy bounded context: tenants, their scope trees,
// service accounts, API keys and tenant-defined roles.
//
// # Context map
//
//   - Upstream of every other context: each command runs in a tenant, and
//     roles are granted at scopes; other contexts keep scope ids (and check
//     that a scope exists) but never own scopes.
//   - Supplier to the kernel's authenticator (conformist to auth's port): the
//     API key lookup (APIKeys) turns a key id into tenant, service account and
//     role bindings; it tells the kernel's key cache about the keys this
//     instance changed (auth.KeyChangeSource) and records when keys were last
//     used (auth.UsageRecorder, at most once per key per hour per instance).
//   - Supplier to the edge's authorizer: the tenant roles (Roles, an
//     authz.RoleSource), cached per instance, updated at once on commit.
//   - Published language: the events "tenancy.*" (events/contracts/tenancy.md)
//     and the work type "tenancy.provision-tenant".
//   - Conformist to the infrastructure's tenant resources (kernel tenantres):
//     a siloed tenant stays provisioning until its own work queue and KMS
//     key exist (ADR 0013).
//
// # Layout
//
//   - domain:   aggregates Tenant, Scope, ServiceAccount; events; rules (pure)
//   - app:      one handler per command, query and work type; the ports it needs
//   - adapters: event-store repository, read models, API key resolver
//   - ports:    rpc endpoints and work registration
//
// Streams: "tenant", "scope-<scopeId>", "service-account-<svaId>",
// "role-<roleId>". Read models ("scopes", "scope-names", "service-accounts",
// "api-key-list", "roles", "role-names", global "api-keys") are written with the events they derive from and can be rebuilt
// from the streams; "api-key-usage" (last use of a key) is the one row that is
// not derived from events.
package tenancy

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/tenantres"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/tenancy/adapters"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy/ports"
)

// Deps are what the tenancy module needs from the process.
type Deps struct {
	Store eventstore.Store
	IDs   ids.Generator
	Clock clock.Clock
	// Resources tells whether a siloed tenant's dedicated resources exist
	// (provisioning waits for them; SSM in Lambda mode). nil: no tenant has
	// dedicated resources (local mode), a siloed tenant is active at once.
	Resources tenantres.Resolver
	Logger    *slog.Logger // nil: discard
}

// Module is the wired tenancy context.
type Module struct {
	app    *app.Application
	repo   *adapters.Repository
	keys   *adapters.APIKeyResolver
	roles  *adapters.RoleCache
	scopes *adapters.ScopeCache
}

// New wires the module.
func New(d Deps) *Module {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("module", "tenancy"))
	repo := adapters.NewRepository(d.Store, d.IDs, d.Clock)
	keys := adapters.NewAPIKeyResolver(d.Store).RecordingUses(d.Store, d.Clock, log)
	// The key rows a commit of this instance wrote reach this instance's key
	// cache (auth.CachedResolver subscribes to keys) once it committed.
	repo.OnKeysWritten(keys.Publish)
	reads := adapters.NewReadModel(d.Store)
	// Likewise the roles this instance creates reach its role cache.
	roles := adapters.NewRoleCache(reads, d.Clock)
	repo.OnRolesWritten(roles.Publish)
	a := app.New(app.Deps{
		Repo:   repo,
		Reads:  reads,
		IDs:    d.IDs,
		Clock:  d.Clock,
		Logger: log,
	})
	a.Work.ProvisionTenant = a.Work.ProvisionTenant.WithResources(d.Resources, d.Clock)
	return &Module{
		scopes: adapters.NewScopeCache(reads, d.Clock),
		roles:  roles,
		repo:   repo,
		app:    a,
		keys:   keys,
	}
}

// App returns the application, for tests and for in-process callers.
func (m *Module) App() *app.Application { return m.app }

// Endpoints returns the module's commands and queries.
func (m *Module) Endpoints() []rpc.Endpoint { return ports.Endpoints(m.app) }

// RegisterWork registers the module's work types with r.
func (m *Module) RegisterWork(r *work.Registry) { ports.RegisterWork(r, m.app) }

// APIKeys returns the API key lookup for auth.Authenticator, to be wrapped in
// this instance's auth.CachedResolver: it is also an auth.KeyChangeSource
// (the cache subscribes and takes the keys this instance changes at once) and
// an auth.UsageRecorder.
func (m *Module) APIKeys() auth.APIKeyResolver { return m.keys }

// Roles returns the tenant roles for the edge's authorizer
// (cedarauthz.WithRoleSource): each tenant's roles read at most once per
// adapters.RoleCacheTTL per instance, and the roles this instance creates at
// once.
func (m *Module) Roles() authz.RoleSource { return m.roles }

// ScopePath returns the path of a scope of the tenant: the ids from the root
// scope down to and including scopeID. It answers errs.NotFound("scope") for
// a scope that does not exist or belongs to another tenant. It is the small
// interface other contexts use to place their resources in the scope tree.
func (m *Module) ScopePath(ctx context.Context, tenantID, scopeID string) ([]string, error) {
	s, err := m.repo.Scope(ctx, tenantID, scopeID)
	if err != nil {
		return nil, fmt.Errorf("scope path %s: %w", scopeID, err)
	}
	return append([]string(nil), s.Path...), nil
}

// RootScopeID returns the tenant's root scope (where tenant-wide resources
// and lists are authorized), or errs.NotFound("tenant").
func (m *Module) RootScopeID(ctx context.Context, tenantID string) (string, error) {
	t, err := m.repo.Tenant(ctx, tenantID)
	if err != nil {
		return "", fmt.Errorf("root scope of %s: %w", tenantID, err)
	}
	return t.RootScopeID, nil
}
