package authz_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
)

func TestCatalogue(t *testing.T) {
	all := authz.Actions()
	if !slices.IsSortedFunc(all, func(a, b authz.Action) int { return strings.Compare(a.Name, b.Name) }) || len(all) == 0 {
		t.Fatalf("Actions() not sorted or empty: %v", all)
	}
	send, ok := authz.LookupAction("messaging:send-message")
	if !ok || send.ReadOnly || !slices.Equal(send.Resources, []string{authz.ResourceChannel}) || send.Namespace() != "messaging" {
		t.Fatalf("send-message: %+v, %v", send, ok)
	}
	send.Resources[0] = "scope" // a copy
	if again, _ := authz.LookupAction("messaging:send-message"); again.Resources[0] != authz.ResourceChannel {
		t.Fatal("LookupAction returned the catalogue's own slice")
	}
	if _, ok := authz.LookupAction("tenancy:onboard-tenant"); ok {
		t.Error("an operator action is in the catalogue")
	}
	// The same definition again is fine (resources in any order).
	authz.RegisterActions(authz.Action{Name: "messaging:list-messages", Resources: []string{authz.ResourceScope, authz.ResourceChannel, authz.ResourceTenant}, ReadOnly: true})
	for _, c := range []struct {
		name string
		a    authz.Action
	}{
		{"no namespace", authz.Action{Name: "send-message", Resources: []string{authz.ResourceChannel}}},
		{"a group's name", authz.Action{Name: "messaging:read", Resources: []string{authz.ResourceChannel}}},
		{"upper case", authz.Action{Name: "messaging:Send-Message", Resources: []string{authz.ResourceChannel}}},
		{"no resource type", authz.Action{Name: "messaging:send-fax"}},
		{"an unknown resource type", authz.Action{Name: "messaging:send-fax", Resources: []string{"fax"}}},
		{"another definition", authz.Action{Name: "messaging:send-message", Resources: []string{authz.ResourceChannel}, ReadOnly: true}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: registered", c.name)
				}
			}()
			authz.RegisterActions(c.a)
		}()
	}
	if len(authz.Actions()) != len(all) {
		t.Error("the catalogue changed")
	}
}
