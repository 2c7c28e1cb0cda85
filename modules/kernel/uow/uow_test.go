package uow_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// store answers its commits with errs in turn (nil once they run out).
type store struct {
	errs    []error
	commits []*eventstore.Commit
}

func (s *store) Commit(_ context.Context, c *eventstore.Commit) error {
	s.commits = append(s.commits, c)
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return err
	}
	return nil
}

func stage(ctx context.Context) error {
	return eventstore.Write(ctx, nil, &eventstore.Commit{TenantID: "tnt_a", Outbox: []eventstore.OutboxEntry{{ID: "wrk_1", Type: "t"}}})
}

func TestRunCommitsOnceAndHandsTheOutbox(t *testing.T) {
	s := &store{}
	var handed []eventstore.OutboxEntry
	r := &uow.Runner{Store: s, AfterCommit: func(_ context.Context, e []eventstore.OutboxEntry) { handed = append(handed, e...) }}
	err := r.Run(context.Background(), "tnt_a", stage, func(_ context.Context, c *eventstore.Commit) error {
		c.Idempotency = &eventstore.Idempotency{Key: "k"}
		return nil
	})
	if err != nil || len(s.commits) != 1 || s.commits[0].Idempotency == nil || len(handed) != 1 {
		t.Fatalf("err %v, commits %d, handed %v", err, len(s.commits), handed)
	}
}

func TestRunRerunsConflictsNotDuplicates(t *testing.T) {
	conflict := fmt.Errorf("append: %w", eventstore.ErrConflict)
	s := &store{errs: []error{conflict, conflict}}
	runs := 0
	r := &uow.Runner{Store: s}
	fn := func(ctx context.Context) error { runs++; return stage(ctx) }
	if err := r.Run(context.Background(), "tnt_a", fn, nil); err != nil || runs != 3 {
		t.Fatalf("err %v after %d runs, want success on the third", err, runs)
	}
	s = &store{errs: []error{conflict, conflict, conflict}}
	r.Store, runs = s, 0
	if err := r.Run(context.Background(), "tnt_a", fn, nil); !errors.Is(err, eventstore.ErrConflict) || runs != 3 {
		t.Fatalf("err %v after %d runs, want the conflict after 3", err, runs)
	}
	s = &store{errs: []error{fmt.Errorf("%w", eventstore.ErrDuplicate)}}
	r.Store, runs = s, 0
	if err := r.Run(context.Background(), "tnt_a", fn, nil); !errors.Is(err, eventstore.ErrDuplicate) || runs != 1 {
		t.Fatalf("err %v after %d runs, want the duplicate at once", err, runs)
	}
}

func TestRunFailuresWriteNothing(t *testing.T) {
	s := &store{}
	r := &uow.Runner{Store: s}
	boom := errors.New("boom")
	if err := r.Run(context.Background(), "tnt_a", func(ctx context.Context) error { _ = stage(ctx); return boom }, nil); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if err := r.Run(context.Background(), "tnt_a", func(context.Context) error { panic("x") }, nil); !errors.Is(err, uow.ErrPanic) {
		t.Fatalf("err = %v, want ErrPanic", err)
	}
	if err := r.Run(context.Background(), "tnt_a", stage, func(context.Context, *eventstore.Commit) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want finish's error", err)
	}
	if err := r.Run(context.Background(), "tnt_a", func(context.Context) error { return nil }, nil); err != nil {
		t.Fatalf("empty unit: %v", err)
	}
	if len(s.commits) != 0 {
		t.Fatalf("%d commits, want none", len(s.commits))
	}
}
