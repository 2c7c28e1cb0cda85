package cedarauthz_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz/cedarauthz"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// staticRoles is a role source answering fixed roles for tenant "tnt_1".
type staticRoles struct {
	set   authz.RoleSet
	err   error
	calls int
}

func (s *staticRoles) TenantRoles(_ context.Context, tenantID string) (authz.RoleSet, error) {
	s.calls++
	if tenantID != "tnt_1" {
		return authz.RoleSet{Version: "none"}, s.err
	}
	return s.set, s.err
}

const (
	roleA = "rol_01JQ0000000000000000000AAA"
	roleB = "rol_01JQ0000000000000000000BBB"
)

func TestTenantRolePolicyText(t *testing.T) {
	known := func(string) bool { return true }
	src, err := cedarauthz.TenantRolePolicy(authz.TenantRole{ID: roleA, Actions: []string{"channels:get-channel"}}, known)
	if err != nil || !strings.Contains(src, `principal.hasTag("`+roleA+`")`) || !strings.Contains(src, `Switchboard::Action::"channels:get-channel"`) {
		t.Fatalf("%v\n%s", err, src)
	}
	for _, bad := range []authz.TenantRole{
		{ID: `rol_x") || true || ("`, Actions: []string{"channels:get-channel"}},
		{ID: "rol_01jq0000000000000000000aaa", Actions: []string{"channels:get-channel"}},
		{ID: roleA, Actions: []string{`channels:get-channel"] , resource) when { true }; permit(principal, action in ["x`}},
		{ID: roleA, Actions: []string{"all"}},
		{ID: roleA},
	} {
		if src, err := cedarauthz.TenantRolePolicy(bad, known); err == nil {
			t.Fatalf("%+v accepted:\n%s", bad, src)
		}
	}
}

func TestTenantRolesDecide(t *testing.T) {
	src := &staticRoles{set: authz.RoleSet{Version: "1", Roles: []authz.TenantRole{
		{ID: roleA, Actions: []string{"channels:get-channel", "no:such-action"}},
	}}}
	a := cedarauthz.Must(cedarauthz.WithRoleSource(src))
	ch := authz.Resource{Type: authz.ResourceChannel, ID: "chn_1", ScopePath: []string{"scp_0", "scp_1"}}
	if !allowed(t, a, sa(bind(roleA, "scp_1")), "channels:get-channel", ch) {
		t.Fatal("role not granted")
	}
	if allowed(t, a, sa(bind(roleA, "scp_1")), "messaging:send-message", ch) || allowed(t, a, sa(bind(roleB, "scp_1")), "channels:get-channel", ch) {
		t.Fatal("more than the role")
	}
	if allowed(t, builtin, sa(bind(roleA, "scp_1")), "channels:get-channel", ch) {
		t.Fatal("granted without a role source")
	}
	other := sa(bind(roleA, "scp_1"))
	other.TenantID = "tnt_2"
	if allowed(t, a, other, "channels:get-channel", ch) {
		t.Fatal("another tenant's role")
	}
	before := src.calls
	allowed(t, a, sa(bind("viewer", "scp_1")), "channels:get-channel", ch)
	if src.calls != before {
		t.Fatal("the source asked for a principal without a tenant role")
	}
	// A new version is taken; an error denies.
	src.set = authz.RoleSet{Version: "2", Roles: []authz.TenantRole{{ID: roleA, Actions: []string{"messaging:send-message"}}}}
	if !allowed(t, a, sa(bind(roleA, "scp_1")), "messaging:send-message", ch) || allowed(t, a, sa(bind(roleA, "scp_1")), "channels:get-channel", ch) {
		t.Fatal("new version not taken")
	}
	src.err = errors.New("store down")
	if allowed(t, a, sa(bind(roleA, "scp_1")), "messaging:send-message", ch) {
		t.Fatal("allowed on a source error")
	}
}

// FuzzTenantRoleInheritance: in random scope trees, two tenant roles of
// random actions; a binding of one at S grants exactly its actions in S's
// subtree, and random bindings of tenant and built-in roles their union.
func FuzzTenantRoleInheritance(f *testing.F) {
	f.Add(uint64(1), uint8(5), uint8(1), uint8(3))
	f.Add(uint64(2), uint8(2), uint8(4), uint8(4))
	f.Add(uint64(3), uint8(0), uint8(3), uint8(2))
	f.Add(uint64(4), uint8(5), uint8(2), uint8(6))
	actions := authz.Actions()
	f.Fuzz(func(t *testing.T, seed uint64, depth, branching, nBindings uint8) {
		r := rand.New(rand.NewPCG(seed, seed>>32|1))
		tr, children := randomTree(r, 1+int(depth)%6, 1+int(branching)%5)
		scopes := tr.ids()
		roleActions := map[string][]string{}
		var set authz.RoleSet
		for _, id := range []string{roleA, roleB} {
			var acts []string
			for _, a := range actions {
				if r.IntN(3) == 0 {
					acts = append(acts, a.Name)
				}
			}
			if len(acts) == 0 {
				acts = []string{actions[r.IntN(len(actions))].Name}
			}
			roleActions[id] = acts
			set.Roles = append(set.Roles, authz.TenantRole{ID: id, Actions: acts})
		}
		set.Version = "v"
		a := cedarauthz.Must(cedarauthz.WithRoleSource(&staticRoles{set: set}))
		grantsAny := func(role string, act authz.Action) bool {
			if acts, ok := roleActions[role]; ok {
				return slices.Contains(acts, act.Name)
			}
			return grants(role, act)
		}
		for _, s := range scopes {
			below := subtree(children, s)
			role := []string{roleA, roleB}[r.IntN(2)]
			p := sa(bind(role, s))
			for _, own := range scopes {
				for _, act := range actions {
					for _, res := range resourcesAt(tr, act, own) {
						want := below[own] && grantsAny(role, act)
						if got := allowed(t, a, p, act.Name, res); got != want {
							t.Fatalf("%s at %s, %s on %s in %v: allowed %v, want %v", role, s, act.Name, res.Type, res.ScopePath, got, want)
						}
					}
				}
			}
		}
		roles := []string{roleA, roleB, "admin", "sender", "viewer", "rol_01JQ0000000000000000000CCC"}
		var bs []invocation.RoleBinding
		for range int(nBindings) % 7 {
			bs = append(bs, bind(roles[r.IntN(len(roles))], scopes[r.IntN(len(scopes))]))
		}
		p := sa(bs...)
		for _, own := range scopes {
			path := tr.path(own)
			for _, act := range actions {
				want := false
				for _, b := range bs {
					want = want || (slices.Contains(path, b.ScopeID) && grantsAny(b.Role, act))
				}
				for _, res := range resourcesAt(tr, act, own) {
					if got := allowed(t, a, p, act.Name, res); got != want {
						t.Fatalf("bindings %v, %s on %s in %s: allowed %v, want %v", bs, act.Name, res.Type, strings.Join(path, "/"), got, want)
					}
				}
			}
		}
	})
}
