package cedarauthz

import (
	"crypto/sha256"
	"encoding/binary"
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
	m  map[[sha256.Size]byte]bool
}

func newDecisions() *decisions { return &decisions{m: map[[sha256.Size]byte]bool{}} }

// decisionKey is the decision's cache key: a SHA-256 of its inputs, each
// length-prefixed (no separator ambiguity), so that an entry costs 32 bytes
// however deep the scope path (scopes nest without a limit).
func decisionKey(p invocation.Principal, action string, res authz.Resource, policies string) [sha256.Size]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	field := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	field(p.TenantID)
	field(action)
	field(res.Type)
	field(policies)
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(res.ScopePath)))])
	for _, s := range res.ScopePath {
		field(s)
	}
	for _, r := range p.Roles {
		field(r.Role)
		field(r.ScopeID)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (d *decisions) get(k [sha256.Size]byte) (allow, ok bool) {
	d.mu.RLock()
	allow, ok = d.m[k]
	d.mu.RUnlock()
	return allow, ok
}

func (d *decisions) put(k [sha256.Size]byte, allow bool) {
	d.mu.Lock()
	if len(d.m) >= maxDecisions {
		d.m = make(map[[sha256.Size]byte]bool, maxDecisions/4)
	}
	d.m[k] = allow
	d.mu.Unlock()
}
