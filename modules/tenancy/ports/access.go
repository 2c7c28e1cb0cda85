package ports

import "github.com/switchboard-dev/switchboard/modules/kernel/authz"

// Actions of service accounts, role bindings and API keys. Persisted in role
// definitions.
const (
	ActionCreateServiceAccount = "tenancy:create-service-account"
	ActionGrantRole            = "tenancy:grant-role"
	ActionRevokeRole           = "tenancy:revoke-role"
	ActionIssueAPIKey          = "tenancy:issue-api-key"
	ActionRevokeAPIKey         = "tenancy:revoke-api-key"
	ActionListAPIKeys          = "tenancy:list-api-keys"
	ActionCreateRole           = "tenancy:create-role"
	ActionListRoles            = "tenancy:list-roles"
	ActionListActions          = "tenancy:list-actions"
	ActionGetPermissions       = "tenancy:get-permissions"
)

// AccessActions are the catalogue entries of these actions: the resource
// types their handlers decide on (the scope where an account is created or a
// role is granted; the service account, in its own scope; the tenant for a
// list of all keys).
var AccessActions = []authz.Action{
	{Name: ActionCreateServiceAccount, Resources: []string{authz.ResourceScope}},
	{Name: ActionGrantRole, Resources: []string{authz.ResourceServiceAccount, authz.ResourceScope}},
	{Name: ActionRevokeRole, Resources: []string{authz.ResourceServiceAccount, authz.ResourceScope}},
	{Name: ActionIssueAPIKey, Resources: []string{authz.ResourceServiceAccount}},
	{Name: ActionRevokeAPIKey, Resources: []string{authz.ResourceServiceAccount}},
	{Name: ActionListAPIKeys, Resources: []string{authz.ResourceTenant, authz.ResourceServiceAccount}, ReadOnly: true},
	// Roles are tenant-wide: created by admins at the root. Listing roles and
	// the catalogue, and asking for one's own permissions, are open to every
	// service account of the tenant (authz.AllowOpen).
	{Name: ActionCreateRole, Resources: []string{authz.ResourceTenant}},
	{Name: ActionListRoles, Resources: []string{authz.ResourceTenant}, ReadOnly: true, Open: true},
	{Name: ActionListActions, Resources: []string{authz.ResourceTenant}, ReadOnly: true, Open: true},
	{Name: ActionGetPermissions, Resources: []string{authz.ResourceScope}, ReadOnly: true, Open: true},
}

// The catalogue is read once when the edge's authorizer is built: register
// at init, before any wiring runs.
func init() { authz.RegisterActions(AccessActions...) }
