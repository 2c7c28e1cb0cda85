package uow_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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
	var paused []int
	r := &uow.Runner{Store: s, MaxAttempts: 3, Pause: func(attempt int) time.Duration { paused = append(paused, attempt); return 0 }}
	fn := func(ctx context.Context) error { runs++; return stage(ctx) }
	if err := r.Run(context.Background(), "tnt_a", fn, nil); err != nil || runs != 3 || fmt.Sprint(paused) != "[1 2]" {
		t.Fatalf("err %v after %d runs (paused after %v), want success on the third after pauses [1 2]", err, runs, paused)
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

// Each run sees its number (Attempt); outside a runner it is 0.
func TestAttemptNumbersTheRuns(t *testing.T) {
	conflict := fmt.Errorf("append: %w", eventstore.ErrConflict)
	s := &store{errs: []error{conflict, conflict}}
	var seen []int
	fn := func(ctx context.Context) error { seen = append(seen, uow.Attempt(ctx)); return stage(ctx) }
	if err := (&uow.Runner{Store: s}).Run(context.Background(), "tnt_a", fn, nil); err != nil || fmt.Sprint(seen) != "[1 2 3]" {
		t.Fatalf("err %v, attempts %v", err, seen)
	}
	if n := uow.Attempt(context.Background()); n != 0 {
		t.Fatalf("outside a runner: %d", n)
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

// AfterCommit runs after the commit whatever becomes of the caller's request:
// its context keeps the caller's values and deadline, not its cancellation.
func TestAfterCommitIsNotCancelledWithTheCaller(t *testing.T) {
	type key struct{}
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), key{}, "v"), deadline)
	defer cancel()
	var (
		called  bool
		err     error
		value   any
		gotDead time.Time
	)
	r := &uow.Runner{Store: &cancelling{cancel: cancel}, AfterCommit: func(ctx context.Context, _ []eventstore.OutboxEntry) {
		called, err, value = true, ctx.Err(), ctx.Value(key{})
		gotDead, _ = ctx.Deadline()
	}}
	if err := r.Run(ctx, "tnt_a", stage, nil); err != nil {
		t.Fatal(err)
	}
	if !called || err != nil || value != "v" || !gotDead.Equal(deadline) {
		t.Fatalf("AfterCommit called %v with ctx err %v, value %v, deadline %v; want a live ctx with the values and deadline", called, err, value, gotDead)
	}
}

// cancelling is a store that cancels its caller's context once committed.
type cancelling struct {
	store
	cancel context.CancelFunc
}

func (c *cancelling) Commit(ctx context.Context, cm *eventstore.Commit) error {
	err := c.store.Commit(ctx, cm)
	c.cancel()
	return err
}

// The pause before a run again is jittered within a bound that doubles from
// 2 ms to 64 ms; a context that ends during it ends the unit with the
// conflict, and the default runner runs a unit up to 8 times.
func TestConflictPause(t *testing.T) {
	for attempt, ceiling := range map[int]time.Duration{1: 2 * time.Millisecond, 2: 4 * time.Millisecond, 6: 64 * time.Millisecond, 40: 64 * time.Millisecond} {
		for range 200 {
			if d := uow.ConflictPause(attempt); d < 0 || d > ceiling {
				t.Fatalf("ConflictPause(%d) = %v, want within [0, %v]", attempt, d, ceiling)
			}
		}
	}
	conflict := fmt.Errorf("append: %w", eventstore.ErrConflict)
	runs := 0
	fn := func(ctx context.Context) error { runs++; return stage(ctx) }
	ctx, cancel := context.WithCancel(context.Background())
	r := &uow.Runner{Store: &store{errs: []error{conflict, conflict}}, Pause: func(int) time.Duration { cancel(); return time.Hour }}
	if err := r.Run(ctx, "tnt_a", fn, nil); !errors.Is(err, eventstore.ErrConflict) || runs != 1 {
		t.Fatalf("cancelled during the pause: err %v after %d runs, want the conflict after 1", err, runs)
	}
	errs := make([]error, 10)
	for i := range errs {
		errs[i] = conflict
	}
	runs = 0
	r = &uow.Runner{Store: &store{errs: errs}, Pause: func(int) time.Duration { return 0 }}
	if err := r.Run(context.Background(), "tnt_a", fn, nil); !errors.Is(err, eventstore.ErrConflict) || runs != uow.DefaultMaxAttempts || uow.DefaultMaxAttempts != 8 {
		t.Fatalf("err %v after %d runs, want the conflict after %d", err, runs, uow.DefaultMaxAttempts)
	}
}
