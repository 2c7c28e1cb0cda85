package catalogtest_test

import (
	"testing"

	auditapp "github.com/switchboard-dev/switchboard/modules/audit/app"
	auditports "github.com/switchboard-dev/switchboard/modules/audit/ports"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/work/workrpc"
	messagingapp "github.com/switchboard-dev/switchboard/modules/messaging/app"
	messagingports "github.com/switchboard-dev/switchboard/modules/messaging/ports"
	tenancyapp "github.com/switchboard-dev/switchboard/modules/tenancy/app"
	tenancyports "github.com/switchboard-dev/switchboard/modules/tenancy/ports"
	webhooksapp "github.com/switchboard-dev/switchboard/modules/webhooks/app"
	webhooksports "github.com/switchboard-dev/switchboard/modules/webhooks/ports"
)

// endpoints are the endpoints the binary registers (functions/lambdalith: the
// modules' ports and the work tools), built over empty applications: only
// their declarations are read.
func endpoints() []rpc.Endpoint {
	var eps []rpc.Endpoint
	eps = append(eps, tenancyports.Endpoints(&tenancyapp.Application{})...)
	eps = append(eps, workrpc.Endpoints(nil)...)
	eps = append(eps, messagingports.Endpoints(&messagingapp.Application{})...)
	eps = append(eps, webhooksports.Endpoints(&webhooksapp.Application{})...)
	eps = append(eps, auditports.Endpoints(auditapp.ListAuditLogHandler{}, auditapp.ListOperatorAuditLogHandler{})...)
	return eps
}

// Every tenant endpoint's action is in the catalogue (else it would be denied
// to everyone), a query's as read-only; no operator endpoint's is (no role
// grants them); and the catalogue holds nothing else.
func TestCatalogueHoldsEveryEndpointAction(t *testing.T) {
	declared := map[string]bool{}
	for _, ep := range endpoints() {
		act, ok := authz.LookupAction(ep.Action)
		if ep.Access == rpc.AccessOperator {
			if ok {
				t.Errorf("operator endpoint %s: its action %s is in the catalogue", ep.Name, ep.Action)
			}
			continue
		}
		declared[ep.Action] = true
		switch {
		case !ok:
			t.Errorf("%s %s: action %q missing from the catalogue (authz/actions.go)", ep.Kind, ep.Name, ep.Action)
		case act.ReadOnly != (ep.Kind == rpc.KindQuery):
			t.Errorf("%s %s: action %s read-only %v", ep.Kind, ep.Name, ep.Action, act.ReadOnly)
		case act.ReadOnly != authz.IsRead(ep.Action):
			t.Errorf("%s: read-only %v, but authz.IsRead says %v", ep.Action, act.ReadOnly, authz.IsRead(ep.Action))
		}
	}
	for _, act := range authz.Actions() {
		if !declared[act.Name] {
			t.Errorf("catalogue action %s: no endpoint declares it", act.Name)
		}
	}
	if len(declared) == 0 {
		t.Fatal("no endpoint")
	}
}
