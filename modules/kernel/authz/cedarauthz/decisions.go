package cedarauthz

import (
	"strings"
	"sync"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// maxDecisions bounds the decision cache; when full it starts afresh.
const maxDecisions = 50000

// decisions remembers Cedar's answers. A decision depends only on what its
// key holds: the principal's tenant and bindings (in order), the action, the
// resource's type and scope path (a resource's own id never appears in a
// policy; a scope's id is the last element of its path), and the policy set
// asked: "builtin", or "tenant:" and the version of the tenant's roles it
// was built from (authz.RoleSet.Version changes whenever the roles do). So
// a cached answer is the answer Cedar would give again; a principal whose
// bindings change, or a tenant whose roles change, asks under another key.
type decisions struct {
	mu sync.RWMutex
	m  map[string]bool
}

func newDecisions() *decisions { return &decisions{m: map[string]bool{}} }

// key is the decision's cache key.
func decisionKey(p invocation.Principal, action string, res authz.Resource, policies string) string {
	var b strings.Builder
	b.Grow(64 + 40*(len(p.Roles)*2+len(res.ScopePath)))
	b.WriteString(p.TenantID)
	b.WriteByte(0)
	b.WriteString(action)
	b.WriteByte(0)
	b.WriteString(res.Type)
	for _, s := range res.ScopePath {
		b.WriteByte(1)
		b.WriteString(s)
	}
	for _, r := range p.Roles {
		b.WriteByte(2)
		b.WriteString(r.Role)
		b.WriteByte(3)
		b.WriteString(r.ScopeID)
	}
	b.WriteByte(4)
	b.WriteString(policies)
	return b.String()
}

func (d *decisions) get(k string) (allow, ok bool) {
	d.mu.RLock()
	allow, ok = d.m[k]
	d.mu.RUnlock()
	return allow, ok
}

func (d *decisions) put(k string, allow bool) {
	d.mu.Lock()
	if len(d.m) >= maxDecisions {
		d.m = make(map[string]bool, maxDecisions/4)
	}
	d.m[k] = allow
	d.mu.Unlock()
}
