package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// Tenant-defined roles (create-role, list-roles), the catalogue (list-actions),
// the caller's permissions in a scope (get-permissions) and what grant-role
// and create-service-account share: resolving a role and the escalation check.

// resolveRole reads the role a binding names: a built-in role's name, or the
// id of a tenant role of the tenant. It returns the role and its actions.
// Errors: 400 errors.tenancy.invalid_role for anything else that is not
// "rol_..."; 404 errs.NotFound("role") for a "rol_..." that is malformed,
// missing or another tenant's (an id that names nothing is not found).
func resolveRole(ctx context.Context, repo Repository, tenantID, role string) (domain.Role, []string, error) {
	if strings.HasPrefix(role, ids.Role+"_") {
		if !ids.Valid(ids.Role, role) {
			return "", nil, errs.NotFound("role")
		}
		r, err := repo.Role(ctx, tenantID, role)
		if err != nil {
			return "", nil, fmt.Errorf("read role %s: %w", role, err)
		}
		return domain.Role(r.ID), r.Actions, nil
	}
	r, err := domain.ParseRole(role)
	if err != nil {
		return "", nil, err
	}
	for _, b := range authz.BuiltinRoles() {
		if b.Name == string(r) {
			return r, b.Actions, nil
		}
	}
	return "", nil, domain.ErrInvalidRole(role)
}

// requireCanGrant is the escalation check of grant-role and
// create-service-account: the caller may bind a role at a scope only when it
// may itself take, at that scope, every action the role grants there (each
// evaluated on authz.ProbeResource; an action the binding would not grant in
// that scope, such as a tenant-wide one below the root, is not asked). An
// admin of the scope holds every action. 403 naming the first missing action.
func requireCanGrant(ctx context.Context, tenantID string, scope *domain.Scope, actions []string) error {
	for _, name := range actions {
		a, ok := authz.LookupAction(name)
		if !ok {
			continue // no longer in the catalogue: the role grants nothing by it
		}
		res, ok := authz.ProbeResource(a, tenantID, scope.Path)
		if !ok {
			continue
		}
		if !authz.Can(ctx, name, res) {
			return errs.New(errs.KindForbidden, errs.CodeForbidden).With("action", name).With("reason", "role_exceeds_caller")
		}
	}
	return nil
}

// CreateRoleInput is the body of create-role.
type CreateRoleInput struct {
	Name    string   `json:"name" validate:"required,min=1,max=200"`
	Actions []string `json:"actions" validate:"required,max=100,dive,max=100"`
}

// CreateRoleOutput is the answer of create-role.
type CreateRoleOutput struct {
	RoleID string `json:"roleId"`
}

// CreateRoleHandler runs create-role: a tenant-defined role, usable wherever
// a built-in role is (grant-role, create-service-account), by its id.
type CreateRoleHandler struct {
	repo  Repository
	reads ReadModel
	ids   ids.Generator
	log   *slog.Logger
}

// Handle implements the command. It decides on the tenant (its root scope:
// roles are tenant-wide, so only admins at the root create them). Errors:
// 400 (see domain.CreateRole: unknown actions are named one field error
// each); 409 ErrRoleNameTaken, ErrTooManyTenantRoles.
func (h CreateRoleHandler) Handle(ctx context.Context, in CreateRoleInput) (CreateRoleOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return CreateRoleOutput{}, err
	}
	t, err := h.repo.Tenant(ctx, tenantID)
	if err != nil {
		return CreateRoleOutput{}, fmt.Errorf("create role: %w", err)
	}
	if err := authz.Require(ctx, authz.Tenant(tenantID, t.RootScopeID)); err != nil {
		return CreateRoleOutput{}, err
	}
	inCatalogue := func(name string) bool { _, ok := authz.LookupAction(name); return ok }
	created, err := domain.CreateRole(h.ids.New(ids.Role), in.Name, in.Actions, inCatalogue)
	if err != nil {
		return CreateRoleOutput{}, err
	}
	taken, err := h.reads.RoleNameTaken(ctx, tenantID, created.Name)
	if err != nil {
		return CreateRoleOutput{}, fmt.Errorf("create role: %w", err)
	}
	if taken {
		return CreateRoleOutput{}, domain.ErrRoleNameTaken
	}
	existing, err := h.reads.ListRoles(ctx, tenantID)
	if err != nil {
		return CreateRoleOutput{}, fmt.Errorf("create role: %w", err)
	}
	if len(existing) >= domain.MaxTenantRoles {
		return CreateRoleOutput{}, domain.ErrTooManyTenantRoles
	}
	// The name row is written if absent: a concurrent create of the same
	// name fails the commit (409 concurrency).
	if err := h.repo.Save(ctx, Changes{TenantID: tenantID, Aggregates: []Change{{Events: []domain.Event{created}}}}); err != nil {
		return CreateRoleOutput{}, fmt.Errorf("create role %s: %w", created.RoleID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.log.InfoContext(ctx, "role created", slog.String("roleId", created.RoleID), slog.Int("actions", len(created.Actions)))
	})
	return CreateRoleOutput{RoleID: created.RoleID}, nil
}

// ListRolesInput is the body of list-roles.
type ListRolesInput struct{}

// RoleItem is one role in list-roles. Role is what bindings name: the
// built-in role's name or the tenant role's id.
type RoleItem struct {
	Role      string   `json:"role"`
	RoleID    *string  `json:"roleId"` // null for a built-in role
	Name      string   `json:"name"`
	BuiltIn   bool     `json:"builtIn"`
	Actions   []string `json:"actions"`
	CreatedAt *string  `json:"createdAt"` // null for a built-in role
}

// ListRolesOutput is the answer of list-roles: the built-in roles, then the
// tenant's, oldest first (at most domain.MaxTenantRoles: no paging).
type ListRolesOutput struct {
	Items []RoleItem `json:"items"`
}

// ListRolesHandler runs list-roles.
type ListRolesHandler struct {
	reads ReadModel
}

// Handle implements the query: open to every service account of the tenant
// (a principal's bindings name roles; it may always learn what they are).
func (h ListRolesHandler) Handle(ctx context.Context, _ ListRolesInput) (ListRolesOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return ListRolesOutput{}, err
	}
	if err := authz.AllowOpen(ctx, tenantID); err != nil {
		return ListRolesOutput{}, err
	}
	out := ListRolesOutput{Items: []RoleItem{}}
	for _, b := range authz.BuiltinRoles() {
		out.Items = append(out.Items, RoleItem{Role: b.Name, Name: b.Name, BuiltIn: true, Actions: nonNil(b.Actions)})
	}
	views, err := h.reads.ListRoles(ctx, tenantID)
	if err != nil {
		return ListRolesOutput{}, fmt.Errorf("list roles: %w", err)
	}
	for _, v := range views {
		id := v.RoleID
		out.Items = append(out.Items, RoleItem{Role: id, RoleID: &id, Name: v.Name, Actions: nonNil(v.Actions), CreatedAt: optionalTime(v.CreatedAt)})
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// ListActionsInput is the body of list-actions.
type ListActionsInput struct{}

// ActionItem is one action of the catalogue.
type ActionItem struct {
	Action   string `json:"action"`
	ReadOnly bool   `json:"readOnly"`
	// Open: every service account of the tenant may take it, whatever its
	// roles (naming it in a role changes nothing).
	Open bool `json:"open"`
	// Privileged: read-only, but not granted by the viewer and sender roles
	// (the audit log): admins have it, a tenant role may name it.
	Privileged bool `json:"privileged"`
}

// ResourceActions are the actions that apply to one resource type.
type ResourceActions struct {
	Resource string       `json:"resource"`
	Actions  []ActionItem `json:"actions"`
}

// ListActionsOutput is the catalogue per resource type (an action that
// applies to several types is under each), and every action once with its
// resource types.
type ListActionsOutput struct {
	Resources []ResourceActions `json:"resources"`
	Actions   []CatalogueAction `json:"actions"`
}

// CatalogueAction is one action with all its resource types.
type CatalogueAction struct {
	Action     string   `json:"action"`
	Resources  []string `json:"resources"`
	ReadOnly   bool     `json:"readOnly"`
	Open       bool     `json:"open"`
	Privileged bool     `json:"privileged"`
}

// ListActionsHandler runs list-actions.
type ListActionsHandler struct{}

// Handle implements the query: open to every service account of the tenant
// (the catalogue is the same for every tenant and reveals nothing of it).
func (ListActionsHandler) Handle(ctx context.Context, _ ListActionsInput) (ListActionsOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return ListActionsOutput{}, err
	}
	if err := authz.AllowOpen(ctx, tenantID); err != nil {
		return ListActionsOutput{}, err
	}
	out := ListActionsOutput{Resources: []ResourceActions{}, Actions: []CatalogueAction{}}
	acts := authz.Actions()
	for _, t := range authz.ResourceTypes() {
		ra := ResourceActions{Resource: t, Actions: []ActionItem{}}
		for _, a := range acts {
			if slices.Contains(a.Resources, t) {
				ra.Actions = append(ra.Actions, ActionItem{Action: a.Name, ReadOnly: a.ReadOnly, Open: a.Open, Privileged: a.Privileged})
			}
		}
		out.Resources = append(out.Resources, ra)
	}
	for _, a := range acts {
		out.Actions = append(out.Actions, CatalogueAction{Action: a.Name, Resources: a.Resources, ReadOnly: a.ReadOnly, Open: a.Open, Privileged: a.Privileged})
	}
	return out, nil
}

// GetPermissionsInput is the body of get-permissions.
type GetPermissionsInput struct {
	ScopeID string `json:"scopeId" validate:"required,max=64"`
}

// GetPermissionsOutput is the answer of get-permissions.
type GetPermissionsOutput struct {
	ScopeID string   `json:"scopeId"`
	Actions []string `json:"actions"`
}

// GetPermissionsHandler runs get-permissions.
type GetPermissionsHandler struct {
	repo Repository
}

// Handle implements the query: the catalogue actions the caller may take on
// resources in the scope, each evaluated by the authorizer on
// authz.ProbeResource (its first resource type other than the tenant, in the
// scope; tenant-wide actions only at the root), plus the open actions. Open
// to every service account of the tenant (it answers only about the caller).
// Errors: 404 errs.NotFound("scope") for a malformed, missing or another
// tenant's scope.
func (h GetPermissionsHandler) Handle(ctx context.Context, in GetPermissionsInput) (GetPermissionsOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return GetPermissionsOutput{}, err
	}
	scope, err := loadScope(ctx, h.repo, tenantID, in.ScopeID)
	if err != nil {
		return GetPermissionsOutput{}, fmt.Errorf("get permissions: %w", err)
	}
	if err := authz.AllowOpen(ctx, tenantID); err != nil {
		return GetPermissionsOutput{}, err
	}
	out := GetPermissionsOutput{ScopeID: scope.ID, Actions: []string{}}
	for _, a := range authz.Actions() {
		if a.Open {
			out.Actions = append(out.Actions, a.Name)
			continue
		}
		res, ok := authz.ProbeResource(a, tenantID, scope.Path)
		if ok && authz.Can(ctx, a.Name, res) {
			out.Actions = append(out.Actions, a.Name)
		}
	}
	return out, nil
}
