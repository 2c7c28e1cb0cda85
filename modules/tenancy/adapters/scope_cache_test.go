package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
)

// The scope tree: every scope's path, cached; more than MaxTreeScopes is
// authz.ErrScopeTreeTooLarge (a 400 for the list that asked, not a 500).
func TestScopeCache(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	add := func(tenant string, n int) {
		var rows []eventstore.Record
		for i := range n {
			id := fmt.Sprintf("scp_%026d", i)
			data, _ := json.Marshal(ScopeRow{ScopeID: id, Path: []string{"scp_root", id}})
			rows = append(rows, eventstore.Record{Collection: CollectionScopes, Key: id, Data: data,
				Lists: []eventstore.ListEntry{{List: ScopesList, Sort: id}}})
		}
		if err := store.PutRecords(ctx, tenant, rows); err != nil {
			t.Fatal(err)
		}
	}
	add("tnt_small", 3)
	add("tnt_big", MaxTreeScopes+1)
	c := NewScopeCache(NewReadModel(store), clock.NewFixed(clock.System{}.Now()))
	paths, err := c.Paths(ctx, "tnt_small")
	if err != nil || len(paths) != 3 || len(paths[0]) != 2 {
		t.Fatalf("small tree: %v %v", paths, err)
	}
	add("tnt_small", 4) // within the TTL the cached tree answers
	if paths, _ := c.Paths(ctx, "tnt_small"); len(paths) != 3 {
		t.Fatalf("cached tree: %d paths", len(paths))
	}
	for range 2 { // the second answer is the cached one
		if _, err := c.Paths(ctx, "tnt_big"); !errors.Is(err, authz.ErrScopeTreeTooLarge) {
			t.Fatalf("big tree: %v", err)
		}
	}
}
