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
