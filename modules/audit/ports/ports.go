// Package ports exposes the audit log: the list-audit-log query and its
// catalogue entry. It only translates; the rules live in app.
package ports

import (
	"github.com/switchboard-dev/switchboard/modules/audit/app"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// Actions is the catalogue entry of list-audit-log: decided on the tenant,
// read-only and privileged (admins have it, viewers do not: entries show
// every caller's address and agent).
var Actions = []authz.Action{
	{Name: app.ActionListAuditLog, Resources: []string{authz.ResourceTenant}, ReadOnly: true, Privileged: true},
}

// The catalogue is read once when the edge's authorizer is built: register
// at init, before any wiring runs.
func init() { authz.RegisterActions(Actions...) }

// Endpoints returns the audit queries: the tenant's log, and the
// operator's (operator only).
func Endpoints(h app.ListAuditLogHandler, op app.ListOperatorAuditLogHandler) []rpc.Endpoint {
	return []rpc.Endpoint{
		rpc.Query("list-audit-log", app.ActionListAuditLog, h.Handle),
		rpc.Query("list-operator-audit-log", app.ActionListOperatorAuditLog, op.Handle, rpc.OperatorOnly()),
	}
}
