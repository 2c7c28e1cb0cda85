package cedarauthz_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// tree is a scope tree: id -> parent ("" for the root).
type tree map[string]string

func (tr tree) path(id string) []string {
	var p []string
	for ; id != ""; id = tr[id] {
		p = append(p, id)
	}
	slices.Reverse(p)
	return p
}

func (tr tree) ids() []string {
	ids := make([]string, 0, len(tr))
	for id := range tr {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// resourcesAt are the resources of every type act applies to, with their own
// scope at own (the tenant only at the root).
func resourcesAt(tr tree, act authz.Action, own string) []authz.Resource {
	path := tr.path(own)
	var out []authz.Resource
	for _, typ := range act.Resources {
		switch typ {
		case authz.ResourceTenant:
			if len(path) == 1 {
				out = append(out, authz.Tenant("tnt_1", own))
			}
		case authz.ResourceScope:
			out = append(out, authz.Resource{Type: typ, ID: own, ScopePath: path})
		default:
			out = append(out, authz.Resource{Type: typ, ID: typ + "_in_" + own, ScopePath: path})
		}
	}
	return out
}

// relation names where a binding lies relative to a resource's own scope.
func relation(tr tree, binding, own string) string {
	switch {
	case binding == "":
		return "without scope"
	case binding == own:
		return "at"
	case slices.Contains(tr.path(own), binding):
		return "above"
	case slices.Contains(tr.path(binding), own):
		return "below"
	}
	return "sibling branch"
}

// Every catalogue action x role x binding position x principal kind: Cedar
// decides as authz.Roles, the hand-written rules it replaces.
func TestEquivalentToTheRolesItReplaces(t *testing.T) {
	tr := tree{"scp_root": "", "scp_eu": "scp_root", "scp_fr": "scp_eu", "scp_paris": "scp_fr", "scp_us": "scp_root", "scp_ny": "scp_us"}
	roles := []string{"admin", "sender", "viewer", "owner", "rol_01JD0000000000000000000000"}
	kinds := []invocation.PrincipalKind{invocation.KindServiceAccount, invocation.KindOperator, invocation.KindSystem, invocation.KindAnonymous}
	positions := append(tr.ids(), "") // every scope of the tree, and a binding without one
	oracle := authz.Roles{}
	seen := map[string]int{}
	n := 0
	for _, act := range authz.Actions() {
		for _, own := range tr.ids() {
			for _, res := range resourcesAt(tr, act, own) {
				for _, kind := range kinds {
					for _, role := range roles {
						for _, at := range append(positions, "none") {
							p := invocation.Principal{Kind: kind, ID: "sva_1", TenantID: "tnt_1"}
							rel := "none"
							if at != "none" {
								p.Roles = []invocation.RoleBinding{{Role: role, ScopeID: at}}
								rel = relation(tr, at, own)
							}
							want := allowed(t, oracle, p, act.Name, res)
							got := allowed(t, builtin, p, act.Name, res)
							if got != want {
								t.Errorf("%s %s (%s bound %s %s) on %s %v: cedar %v, roles %v",
									kind, act.Name, role, rel, at, res.Type, res.ScopePath, got, want)
							}
							n++
							seen[fmt.Sprintf("%s/%s/%v", kind, rel, want)]++
						}
					}
				}
			}
		}
	}
	// The matrix covers every position, allowed and denied.
	for _, rel := range []string{"at", "above", "below", "sibling branch", "none", "without scope"} {
		if seen["service_account/"+rel+"/false"] == 0 {
			t.Errorf("no denied case with a binding %s", rel)
		}
	}
	for _, rel := range []string{"at", "above"} {
		if seen["service_account/"+rel+"/true"] == 0 {
			t.Errorf("no allowed case with a binding %s", rel)
		}
	}
	t.Logf("%d decisions compared", n)
}

// Bindings of several roles at several scopes, against the same oracle.
func TestEquivalentWithSeveralBindings(t *testing.T) {
	tr := tree{"scp_root": "", "scp_eu": "scp_root", "scp_fr": "scp_eu", "scp_us": "scp_root"}
	var all []invocation.RoleBinding
	for _, role := range []string{"admin", "sender", "viewer"} {
		for _, s := range tr.ids() {
			all = append(all, invocation.RoleBinding{Role: role, ScopeID: s})
		}
	}
	oracle := authz.Roles{}
	// Every pair of bindings.
	for i := range all {
		for j := i; j < len(all); j++ {
			p := sa(all[i], all[j])
			for _, act := range authz.Actions() {
				for _, own := range tr.ids() {
					for _, res := range resourcesAt(tr, act, own) {
						if got, want := allowed(t, builtin, p, act.Name, res), allowed(t, oracle, p, act.Name, res); got != want {
							t.Errorf("%v %s on %s %v: cedar %v, roles %v", p.Roles, act.Name, res.Type, res.ScopePath, got, want)
						}
					}
				}
			}
		}
	}
}
