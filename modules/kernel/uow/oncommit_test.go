package uow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// conflictOnce fails the first commit with a version conflict.
type conflictOnce struct {
	mu      sync.Mutex
	commits int
	fail    error
}

func (s *conflictOnce) Commit(context.Context, *eventstore.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits++
	if s.commits == 1 {
		return fmt.Errorf("append x: %w", eventstore.ErrConflict)
	}
	return s.fail
}

// What a handler logs about its writes runs once, after the commit: not
// before it, not once per re-run, and not at all when the commit fails.
func TestOnCommitRunsOnceAfterTheCommit(t *testing.T) {
	for _, c := range []struct {
		name  string
		fail  error
		wantN int
	}{{"commits on the second run", nil, 1}, {"never commits", errors.New("store down"), 0}} {
		t.Run(c.name, func(t *testing.T) {
			store := &conflictOnce{fail: c.fail}
			r := &uow.Runner{Store: store}
			logged, runs := 0, 0
			err := r.Run(context.Background(), "tnt_1", func(ctx context.Context) error {
				runs++
				if err := eventstore.Write(ctx, store, &eventstore.Commit{TenantID: "tnt_1",
					Records: []eventstore.Record{{Collection: "c", Key: "k", Data: json.RawMessage(`{}`)}}}); err != nil {
					return err
				}
				uow.OnCommit(ctx, func(context.Context) {
					if store.commits == 0 {
						t.Error("logged before the commit")
					}
					logged++
				})
				return nil
			}, nil)
			if (err == nil) != (c.fail == nil) || runs != 2 || logged != c.wantN {
				t.Fatalf("err %v, %d runs, logged %d times; want %d", err, runs, logged, c.wantN)
			}
		})
	}
}

// counting records the commits it is given.
type counting struct {
	mu      sync.Mutex
	commits []*eventstore.Commit
}

func (s *counting) Commit(_ context.Context, c *eventstore.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits = append(s.commits, c)
	return nil
}

// A write made WithoutUnit commits at once, before the unit goes on, and
// stays when the unit then fails; the unit's own writes do not.
func TestWithoutUnitCommitsAtOnce(t *testing.T) {
	store := &counting{}
	r := &uow.Runner{Store: store}
	rec := func(key string) *eventstore.Commit {
		return &eventstore.Commit{TenantID: "tnt_1", Records: []eventstore.Record{{Collection: "c", Key: key, Data: json.RawMessage(`{}`)}}}
	}
	boom := errors.New("boom")
	err := r.Run(context.Background(), "tnt_1", func(ctx context.Context) error {
		if err := eventstore.Write(uow.WithoutUnit(ctx), store, rec("claim")); err != nil {
			return err
		}
		if len(store.commits) != 1 {
			t.Errorf("%d commits after the write without the unit, want 1", len(store.commits))
		}
		if err := eventstore.Write(ctx, store, rec("staged")); err != nil {
			return err
		}
		return boom
	}, nil)
	if !errors.Is(err, boom) || len(store.commits) != 1 || store.commits[0].Records[0].Key != "claim" {
		t.Fatalf("err %v, commits %d; want boom and the claim alone", err, len(store.commits))
	}
}
