package cedarauthz_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz/cedarauthz"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
)

// BenchmarkAuthorize: one decision, Cedar against the hand-written rules it
// replaced (authz.Roles), from the shortest path to a deep one.
func BenchmarkAuthorize(b *testing.B) {
	deep := []string{"scp_1", "scp_2", "scp_3", "scp_4", "scp_5", "scp_6"}
	channel := func(path ...string) authz.Resource {
		return authz.Resource{Type: authz.ResourceChannel, ID: "chn_1", ScopePath: path}
	}
	cases := []struct {
		name  string
		p     invocation.Principal
		res   authz.Resource
		allow bool
	}{
		{"admin-at-own-scope", sa(bind("admin", "scp_1")), channel("scp_1"), true},
		{"sender-at-root-depth-6", sa(bind("sender", "scp_1")), channel(deep...), true},
		{"3-bindings-depth-6", sa(bind("viewer", "scp_1"), bind("sender", "scp_3"), bind("admin", "scp_9")), channel(deep...), true},
		{"denied-sibling-depth-6", sa(bind("admin", "scp_x")), channel(deep...), false},
	}
	// "cedar" repeats one decision (the decision cache answers after the
	// first); "cedar-uncached" asks each time for another tenant, so Cedar
	// evaluates every one.
	for _, az := range []struct {
		name  string
		a     authz.Authorizer
		fresh bool
	}{{"cedar", builtin, false}, {"cedar-uncached", builtin, true}, {"roles", authz.Roles{}, false}} {
		for _, c := range cases {
			b.Run(az.name+"/"+c.name, func(b *testing.B) {
				ctx := context.Background()
				p := c.p
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					if az.fresh {
						n++
						p.TenantID = "tnt_" + strconv.Itoa(n)
					}
					if err := az.a.Authorize(ctx, p, "messaging:send-message", c.res); (err == nil) != c.allow {
						b.Fatalf("err = %v, want allowed %v", err, c.allow)
					}
				}
			})
		}
	}
}

// BenchmarkNew: parsing and validating the built-in policies (once per server).
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cedarauthz.New(); err != nil {
			b.Fatal(err)
		}
	}
}
