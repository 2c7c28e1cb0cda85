package cedarauthz_test

import (
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz/cedarauthz"
)

// Every resource type has an entity type, and every action one of them.
func TestResourceTypesAreModelled(t *testing.T) {
	for _, typ := range authz.ResourceTypes() {
		if _, ok := cedarauthz.EntityType(typ); !ok {
			t.Errorf("resource type %s has no entity type", typ)
		}
	}
}
