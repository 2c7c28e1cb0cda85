// Package audit is the audit log's bounded context: every API invocation of
// a tenant, allowed, denied, failed or unauthenticated (when the credential
// named a real key of the tenant), with its principal, action, resources,
// source and outcome, written outside the invocation's commit by a buffered
// writer (the rpc audit hook's Auditor) and read by list-audit-log, newest
// first, through keyed lists of the tenant (all, by principal, by outcome)
// sharded for the tenant's traffic. Entries expire after the retention.
// Entity history stays in the event streams.
package audit

import (
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/audit/adapters"
	"github.com/switchboard-dev/switchboard/modules/audit/app"
	"github.com/switchboard-dev/switchboard/modules/audit/ports"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
)

// DefaultRetention is how long entries are kept unless configured.
const DefaultRetention = 90 * 24 * time.Hour

// Deps are the module's dependencies.
type Deps struct {
	Store     adapters.Store
	Scopes    app.Scopes
	IDs       ids.Generator
	Logger    *slog.Logger
	Retention time.Duration // <= 0: DefaultRetention
}

// Module is the wired audit context.
type Module struct {
	writer   *adapters.Writer
	list     app.ListAuditLogHandler
	operator app.ListOperatorAuditLogHandler
}

// New wires the module.
func New(d Deps) *Module {
	if d.Retention <= 0 {
		d.Retention = DefaultRetention
	}
	log := &adapters.Log{Store: d.Store, Retention: d.Retention}
	return &Module{
		writer:   &adapters.Writer{Log: log, IDs: d.IDs, Logger: d.Logger},
		list:     app.ListAuditLogHandler{Log: log, Scopes: d.Scopes},
		operator: app.ListOperatorAuditLogHandler{Log: log},
	}
}

// Writer is the rpc.Auditor (and AuditFlusher) that records entries. Call
// Writer().Start() in a long-running process (local mode) and Stop when it
// ends; in Lambda mode leave it stopped: the server flushes it per request.
func (m *Module) Writer() *adapters.Writer { return m.writer }

// Endpoints returns the audit queries.
func (m *Module) Endpoints() []rpc.Endpoint { return ports.Endpoints(m.list, m.operator) }
