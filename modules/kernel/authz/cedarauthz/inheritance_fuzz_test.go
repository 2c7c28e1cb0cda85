package cedarauthz_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// randomTree grows a scope tree from seed: depth up to maxDepth (1..6), each
// scope with 0..branching children (the root at least one), at most 60 scopes.
func randomTree(r *rand.Rand, maxDepth, branching int) (tree, map[string][]string) {
	tr := tree{"scp_0": ""}
	children := map[string][]string{}
	level := []string{"scp_0"}
	for depth := 1; depth < maxDepth && len(level) > 0; depth++ {
		var next []string
		for _, parent := range level {
			n := r.IntN(branching + 1)
			if parent == "scp_0" && n == 0 {
				n = 1
			}
			for range n {
				if len(tr) == 60 {
					break
				}
				id := fmt.Sprintf("scp_%d", len(tr))
				tr[id] = parent
				children[parent] = append(children[parent], id)
				next = append(next, id)
			}
		}
		level = next
	}
	return tr, children
}

// subtree is s and every scope below it, found from the children (not from paths).
func subtree(children map[string][]string, s string) map[string]bool {
	out := map[string]bool{s: true}
	for pending := []string{s}; len(pending) > 0; {
		cur := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		for _, c := range children[cur] {
			out[c] = true
			pending = append(pending, c)
		}
	}
	return out
}

// grants is the contract's table of the built-in roles (API.md section 6),
// written from the catalogue independently of authz.Roles.
func grants(role string, act authz.Action) bool {
	switch role {
	case "admin":
		return true
	case "sender":
		return act.Name == "messaging:send-message" || act.Name == "messaging:cancel-message" ||
			(act.ReadOnly && (act.Namespace() == "messaging" || act.Namespace() == "channels"))
	case "viewer":
		return act.ReadOnly
	}
	return false
}

// FuzzScopeInheritance (issue 7, item 8): in random scope trees, a binding at
// S grants exactly S's subtree (every resource whose scope path contains S)
// and nothing else; random sets of bindings grant the union of theirs.
// `go test` runs the seeds; explore with
// go test -fuzz FuzzScopeInheritance ./modules/kernel/authz/cedarauthz
func FuzzScopeInheritance(f *testing.F) {
	// seed, depth (levels 1+depth%6), branching (0..1+branching%5 children), bindings (n%7)
	f.Add(uint64(1), uint8(5), uint8(1), uint8(3))
	f.Add(uint64(2), uint8(5), uint8(0), uint8(1)) // a chain, or what is left of one
	f.Add(uint64(3), uint8(2), uint8(4), uint8(4)) // wide
	f.Add(uint64(4), uint8(0), uint8(3), uint8(2)) // the root alone
	f.Add(uint64(5), uint8(5), uint8(2), uint8(6))
	f.Add(uint64(6), uint8(5), uint8(4), uint8(0)) // deep and wide (60 scopes), no random binding
	f.Add(uint64(7), uint8(4), uint8(2), uint8(5))
	actions := authz.Actions()
	roles := []string{"admin", "sender", "viewer", "owner"}
	f.Fuzz(func(t *testing.T, seed uint64, depth, branching, nBindings uint8) {
		r := rand.New(rand.NewPCG(seed, seed>>32|1))
		tr, children := randomTree(r, 1+int(depth)%6, 1+int(branching)%5)
		ids := tr.ids()
		// One binding at S: exactly S's subtree, for a random action the role grants.
		for _, s := range ids {
			below := subtree(children, s)
			role := roles[r.IntN(3)]
			var act authz.Action
			for act = actions[r.IntN(len(actions))]; !grants(role, act); act = actions[r.IntN(len(actions))] {
			}
			p := sa(bind(role, s))
			for _, own := range ids {
				for _, res := range resourcesAt(tr, act, own) {
					if got := allowed(t, builtin, p, act.Name, res); got != below[own] {
						t.Fatalf("%s at %s, %s on %s in %v: allowed %v, in the subtree %v", role, s, act.Name, res.Type, res.ScopePath, got, below[own])
					}
				}
			}
		}
		// Random bindings: allowed iff one of them is on the path and grants the action.
		var bs []invocation.RoleBinding
		for range int(nBindings) % 7 {
			scope := ids[r.IntN(len(ids))]
			if r.IntN(8) == 0 {
				scope = ""
			}
			bs = append(bs, bind(roles[r.IntN(len(roles))], scope))
		}
		p := sa(bs...)
		for _, own := range ids {
			path := tr.path(own)
			for _, act := range actions {
				want := false
				for _, b := range bs {
					want = want || (b.ScopeID != "" && slices.Contains(path, b.ScopeID) && grants(b.Role, act))
				}
				for _, res := range resourcesAt(tr, act, own) {
					if got := allowed(t, builtin, p, act.Name, res); got != want {
						t.Fatalf("bindings %v, %s on %s in %s: allowed %v, want %v", bs, act.Name, res.Type, strings.Join(path, "/"), got, want)
					}
				}
			}
		}
	})
}
