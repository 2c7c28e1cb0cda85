package rpc_test

import "github.com/switchboard-dev/switchboard/modules/kernel/authz"

// The actions of this package's test endpoints, in the catalogue the default
// authorizer (cedarauthz) reads when a server is built: an action missing
// from it is denied to everyone. Their handlers decide on the tenant.
func init() {
	authz.RegisterActions(
		authz.Action{Name: "notes:create-note", Resources: []string{authz.ResourceTenant}},
		authz.Action{Name: "notes:count-notes", Resources: []string{authz.ResourceTenant}, ReadOnly: true},
		authz.Action{Name: "notes:get-note", Resources: []string{authz.ResourceTenant}, ReadOnly: true},
		authz.Action{Name: "things:create-thing", Resources: []string{authz.ResourceTenant}},
	)
}
