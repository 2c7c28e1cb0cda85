package app

import (
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
)

// Application is everything the tenancy context can do.
type Application struct {
	Commands Commands
	Queries  Queries
	Work     WorkHandlers
}

// Commands change state.
type Commands struct {
	OnboardTenant        OnboardTenantHandler
	RestoreTenantAdmin   RestoreTenantAdminHandler
	CreateScope          CreateScopeHandler
	CreateServiceAccount CreateServiceAccountHandler
	GrantRole            GrantRoleHandler
	RevokeRole           RevokeRoleHandler
	IssueAPIKey          IssueAPIKeyHandler
	RevokeAPIKey         RevokeAPIKeyHandler
	CreateRole           CreateRoleHandler
}

// Queries read state.
type Queries struct {
	GetTenant      GetTenantHandler
	ListScopes     ListScopesHandler
	ListAPIKeys    ListAPIKeysHandler
	ListRoles      ListRolesHandler
	ListActions    ListActionsHandler
	GetPermissions GetPermissionsHandler
}

// WorkHandlers run asynchronous work items.
type WorkHandlers struct {
	ProvisionTenant ProvisionTenantHandler
}

// Deps are the application's dependencies.
type Deps struct {
	Repo   Repository
	Reads  ReadModel
	IDs    ids.Generator
	Clock  clock.Clock
	Logger *slog.Logger // nil: discard
}

// New wires the handlers.
func New(d Deps) *Application {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Application{
		Commands: Commands{
			OnboardTenant:      OnboardTenantHandler{repo: d.Repo, ids: d.IDs, clock: d.Clock, log: log},
			RestoreTenantAdmin: RestoreTenantAdminHandler{repo: d.Repo, ids: d.IDs, clock: d.Clock, log: log},
			CreateScope:        CreateScopeHandler{repo: d.Repo, reads: d.Reads, ids: d.IDs, log: log},

			CreateServiceAccount: CreateServiceAccountHandler{repo: d.Repo, ids: d.IDs, log: log},
			GrantRole:            GrantRoleHandler{repo: d.Repo, log: log},
			RevokeRole:           RevokeRoleHandler{repo: d.Repo, log: log},
			IssueAPIKey:          IssueAPIKeyHandler{repo: d.Repo, ids: d.IDs, log: log},
			RevokeAPIKey:         RevokeAPIKeyHandler{repo: d.Repo, reads: d.Reads, log: log},
			CreateRole:           CreateRoleHandler{repo: d.Repo, reads: d.Reads, ids: d.IDs, log: log},
		},
		Queries: Queries{
			GetTenant:      GetTenantHandler{repo: d.Repo},
			ListScopes:     ListScopesHandler{repo: d.Repo, reads: d.Reads},
			ListAPIKeys:    ListAPIKeysHandler{repo: d.Repo, reads: d.Reads},
			ListRoles:      ListRolesHandler{reads: d.Reads},
			GetPermissions: GetPermissionsHandler{repo: d.Repo},
		},
		Work: WorkHandlers{
			ProvisionTenant: ProvisionTenantHandler{repo: d.Repo, log: log},
		},
	}
}

// TimeFormat is how responses render times: RFC 3339, UTC, milliseconds.
const TimeFormat = clock.TimeFormat

func formatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// optionalTime renders t, or null for the zero time.
func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

// tenantOf returns the tenant of the invocation.
