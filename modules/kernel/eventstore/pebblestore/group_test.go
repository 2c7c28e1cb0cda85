package pebblestore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/internal/kvlayout"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// holdCommitter makes the committer busy with a batch that waits until the
// returned release is called, so that the writes submitted meanwhile queue
// and then run as one batch. queued reports how many are waiting.
func holdCommitter(t *testing.T, s *Store) (release func(), queued func() int) {
	t.Helper()
	inside := make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	go func() {
		_ = s.w.write(0, func(*pebble.Batch) error {
			once.Do(func() { close(inside) })
			<-gate
			return nil
		})
	}()
	<-inside
	var releaseOnce sync.Once
	release = func() { releaseOnce.Do(func() { close(gate) }) }
	t.Cleanup(release)
	queued = func() int {
		s.w.mu.Lock()
		defer s.w.mu.Unlock()
		return len(s.w.queue)
	}
	return release, queued
}

// waitQueued waits until n writes are queued.
func waitQueued(t *testing.T, queued func() int, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued after 10 s, want %d", queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func ev(id string) eventstore.Event {
	return eventstore.Event{ID: id, Type: "group.test", SchemaVersion: 1, Data: json.RawMessage(`{"id":"` + id + `"}`)}
}

// TestGroupCommitErrorsReachTheirCallers: 32 concurrent commits in one
// batch, among them pairs that race for one stream version, one IfAbsent
// row, one outbox id and one idempotency key, and a commit too large. Every
// caller gets its own answer: exactly one of each pair wins, the other gets
// ErrConflict (ErrDuplicate for the key) and writes nothing, the large one
// gets ErrTooLarge, and the rest commit, with one log sync for all. A
// loser's Commit is left as it was given; a winner's events carry their
// versions.
func TestGroupCommitErrorsReachTheirCallers(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	const tnt = "tnt_group"
	due := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for round := range 5 {
		type racer struct {
			c    *eventstore.Commit
			pair string // "" for a commit of its own
			want error  // what the loser of its pair gets; nil for a commit of its own
		}
		var rs []racer
		plain := func(name string) *eventstore.Commit {
			return &eventstore.Commit{TenantID: tnt,
				Appends: []eventstore.StreamAppend{{StreamID: name, Events: []eventstore.Event{ev("evt_" + name)}}},
				Records: []eventstore.Record{{Collection: "rows", Key: name, Data: json.RawMessage(`{}`),
					Lists: []eventstore.ListEntry{{List: eventstore.List{Name: "rows", Slot: 1}, Partition: fmt.Sprint(round), Sort: name}}}},
				Outbox: []eventstore.OutboxEntry{{ID: "wrk_" + name, Type: "x", DueAt: due}},
			}
		}
		for i := range 22 {
			rs = append(rs, racer{c: plain(fmt.Sprintf("r%d-plain-%d", round, i))})
		}
		for side := range 2 {
			name := fmt.Sprintf("r%d-stream-%d", round, side)
			c := plain(name)
			c.Appends[0].StreamID = fmt.Sprintf("r%d-hot", round)
			rs = append(rs, racer{c: c, pair: "stream", want: eventstore.ErrConflict})

			c = plain(fmt.Sprintf("r%d-row-%d", round, side))
			c.Records = append(c.Records, eventstore.Record{Collection: "unique", Key: fmt.Sprintf("r%d", round), IfAbsent: true, Data: json.RawMessage(`{}`)})
			rs = append(rs, racer{c: c, pair: "row", want: eventstore.ErrConflict})

			c = plain(fmt.Sprintf("r%d-work-%d", round, side))
			c.Outbox = append(c.Outbox, eventstore.OutboxEntry{ID: fmt.Sprintf("wrk_r%d-shared", round), Type: "x", DueAt: due})
			rs = append(rs, racer{c: c, pair: "work", want: eventstore.ErrConflict})

			c = plain(fmt.Sprintf("r%d-idem-%d", round, side))
			c.Idempotency = &eventstore.Idempotency{Key: fmt.Sprintf("r%d-key", round), Status: 200 + side, Body: json.RawMessage(`{}`)}
			rs = append(rs, racer{c: c, pair: "idem", want: eventstore.ErrDuplicate})
		}
		large := plain(fmt.Sprintf("r%d-large", round))
		large.Records[0].Data = json.RawMessage(`"` + strings.Repeat("x", eventstore.MaxItemBytes) + `"`)
		rs = append(rs, racer{c: large, pair: "large", want: eventstore.ErrTooLarge})

		release, queued := holdCommitter(t, s)
		txsBefore, syncsBefore := s.w.txs.Load(), s.w.syncs.Load()
		errs := make([]error, len(rs))
		var wg sync.WaitGroup
		for i, r := range rs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = s.Commit(ctx, r.c) }()
		}
		waitQueued(t, queued, len(rs)-1) // the large one fails before it queues
		release()
		wg.Wait()
		if n := s.w.txs.Load() - txsBefore; n != 1 {
			t.Fatalf("round %d: %d batches for one group of %d commits, want 1", round, n, len(rs)-1)
		}
		// The holder's batch wrote nothing (no sync); the group's one sync.
		if n := s.w.syncs.Load() - syncsBefore; n != 1 {
			t.Fatalf("round %d: %d log syncs for one group, want 1", round, n)
		}

		wins := map[string]int{}
		for i, r := range rs {
			err, c := errs[i], r.c
			switch {
			case err == nil && r.pair == "large":
				t.Fatalf("round %d: the large commit succeeded", round)
			case err == nil:
				wins[r.pair]++
				if e := c.Appends[0].Events[0]; e.Version != 1 || e.TenantID != tnt || e.StreamID != c.Appends[0].StreamID {
					t.Fatalf("round %d: a committed event reads %+v, want version 1 of its stream", round, e)
				}
				evs, err := s.ReadStream(ctx, tnt, c.Appends[0].StreamID, 1, 0)
				if err != nil || len(evs) != 1 || evs[0].ID != c.Appends[0].Events[0].ID {
					t.Fatalf("round %d: stream %s = %+v, %v; want the winner's event", round, c.Appends[0].StreamID, evs, err)
				}
			case r.want == nil || !errors.Is(err, r.want):
				t.Fatalf("round %d: commit of %s (pair %q): %v, want %v", round, c.Records[0].Key, r.pair, err, r.want)
			default:
				if e := c.Appends[0].Events[0]; e.Version != 0 || e.TenantID != "" || e.StreamID != "" {
					t.Fatalf("round %d: a failed commit's event was changed: %+v", round, e)
				}
				// The loser wrote nothing: not its row, nor its work.
				if _, err := s.GetRecord(ctx, tnt, "rows", c.Records[0].Key); !errors.Is(err, eventstore.ErrNotFound) {
					t.Fatalf("round %d: the loser's row %s: %v, want not found", round, c.Records[0].Key, err)
				}
				if has(t, s, nsKey(nsOutboxIDs, []byte(c.Outbox[0].ID))) {
					t.Fatalf("round %d: the loser's outbox entry %s is pending", round, c.Outbox[0].ID)
				}
			}
		}
		if want := map[string]int{"": 22, "stream": 1, "row": 1, "work": 1, "idem": 1}; fmt.Sprint(wins) != fmt.Sprint(want) {
			t.Fatalf("round %d: winners %v, want %v", round, wins, want)
		}
		rows, _, err := s.ListRecords(ctx, tnt, eventstore.ListQuery{List: eventstore.List{Name: "rows", Slot: 1}, Partition: fmt.Sprint(round), Page: eventstore.Page{Limit: 100}})
		if err != nil || len(rows) != 26 {
			t.Fatalf("round %d: %d rows listed, %v; want 26 (22 commits of their own, 4 winners)", round, len(rows), err)
		}
	}
}

// TestGroupCommitFailedWriteRunsAlone: a write that fails after it wrote (an
// error that is not a rejection, or a panic) drops the group's batch; it
// runs again alone and its caller gets its error, nothing of it stays, and
// the others run again and commit.
func TestGroupCommitFailedWriteRunsAlone(t *testing.T) {
	s, _ := openTemp(t)
	put := func(k string) func(b *pebble.Batch) error {
		return func(b *pebble.Batch) error { return b.Set([]byte("test/"+k), []byte("v"), nil) }
	}
	var okRuns atomic.Int32
	boom := errors.New("boom")
	writes := []func(b *pebble.Batch) error{
		func(b *pebble.Batch) error { okRuns.Add(1); return put("a")(b) },
		func(b *pebble.Batch) error { _ = put("b")(b); return boom },
		func(b *pebble.Batch) error { _ = put("c")(b); panic("c panics") },
		func(*pebble.Batch) error { return reject(eventstore.ErrConflict) },
		put("e"),
	}
	release, queued := holdCommitter(t, s)
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.w.write(1, w) }()
		waitQueued(t, queued, i+1) // in this order
	}
	release()
	wg.Wait()
	if errs[0] != nil || errs[4] != nil {
		t.Fatalf("good writes: %v, %v", errs[0], errs[4])
	}
	if !errors.Is(errs[1], boom) {
		t.Fatalf("failing write: %v, want boom", errs[1])
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "c panics") {
		t.Fatalf("panicking write: %v", errs[2])
	}
	if !errors.Is(errs[3], eventstore.ErrConflict) {
		t.Fatalf("rejected write: %v, want ErrConflict", errs[3])
	}
	if n := okRuns.Load(); n < 2 {
		t.Fatalf("the good write ran %d times; the dropped batch should have run it again", n)
	}
	for k, want := range map[string]bool{"a": true, "b": false, "c": false, "e": true} {
		if got := has(t, s, []byte("test/"+k)); got != want {
			t.Fatalf("key %s stored %v, want %v", k, got, want)
		}
	}
}

// TestReadsSeeOnlySyncedWrites: a reader never sees a group's writes before
// the group's log sync returned, and sees them once its writers are
// answered.
func TestReadsSeeOnlySyncedWrites(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	release, queued := holdCommitter(t, s)
	done := make(chan error, 1)
	go func() {
		done <- s.Commit(ctx, &eventstore.Commit{TenantID: "tnt_a", Appends: []eventstore.StreamAppend{{StreamID: "s", Events: []eventstore.Event{ev("evt_1")}}}})
	}()
	waitQueued(t, queued, 1)
	// Write the key straight to the DB (visible in pebble at once, as a
	// batch is before its sync): the store's reads must not see it until
	// the committer publishes.
	if err := s.db.Set(nsKey(nsData, kvlayout.Key(kvlayout.StreamPK("tnt_a", "x"), kvlayout.VersionSK(1))), []byte(`{"eventId":"evt_x"}`), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if evs, err := s.ReadStream(ctx, "tnt_a", "x", 1, 0); err != nil || len(evs) != 0 {
		t.Fatalf("read of a write not committed through the store: %+v, %v; want nothing", evs, err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if evs, err := s.ReadStream(ctx, "tnt_a", "s", 1, 0); err != nil || len(evs) != 1 {
		t.Fatalf("read after the commit returned: %+v, %v; want its event", evs, err)
	}
}

// TestCloseCommitsQueuedWrites: Close lets the queued writes commit; a write
// after Close fails.
func TestCloseCommitsQueuedWrites(t *testing.T) {
	s, dir := openTemp(t)
	ctx := context.Background()
	release, queued := holdCommitter(t, s)
	queuedErr := make(chan error, 1)
	go func() {
		queuedErr <- s.Commit(ctx, &eventstore.Commit{TenantID: "tnt_a", Appends: []eventstore.StreamAppend{{StreamID: "s", Events: []eventstore.Event{ev("evt_1")}}}})
	}()
	waitQueued(t, queued, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.w.mu.Lock()
		c := s.w.closed
		s.w.mu.Unlock()
		if c {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close did not start")
		}
		time.Sleep(time.Millisecond)
	}
	err := s.Commit(ctx, &eventstore.Commit{TenantID: "tnt_a", Appends: []eventstore.StreamAppend{{StreamID: "late", Events: []eventstore.Event{ev("evt_2")}}}})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after Close: %v, want ErrClosed", err)
	}
	release()
	if err := <-queuedErr; err != nil {
		t.Fatalf("commit queued before Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if evs, err := s2.ReadStream(ctx, "tnt_a", "s", 1, 0); err != nil || len(evs) != 1 {
		t.Fatalf("after reopen: %+v, %v; want the queued commit", evs, err)
	}
}

// TestCloseWaitsForReads: Close waits for reads under way (they hold the
// read view's snapshot, which must close before the DB).
func TestCloseWaitsForReads(t *testing.T) {
	s, _ := openTemp(t)
	v, err := s.views.acquire()
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a read held its view", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := s.views.acquire(); !errors.Is(err, ErrClosed) {
		t.Fatalf("a read after Close began: %v, want ErrClosed", err)
	}
	v.release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentCommitsOneWinnerPerVersion: 48 goroutines commit at once,
// each to its own stream and, in the same commits, to one of 4 hot streams
// they share, at the version they last saw. Every version of a hot stream
// has exactly one winner, versions have no gaps, a losing commit writes
// nothing of its own stream either, and the reads agree with the answers.
func TestConcurrentCommitsOneWinnerPerVersion(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	const tnt, writers, hot, tries = "tnt_race", 48, 4, 40
	type win struct {
		writer int
		id     string
	}
	var mu sync.Mutex
	winners := map[string]map[int64]win{} // hot stream -> version -> winner
	own := make([][]string, writers)      // each writer's committed event ids, in order
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			hotStream := fmt.Sprintf("hot-%d", w%hot)
			mine := fmt.Sprintf("own-%d", w)
			var seen int64 // the hot stream's version as this writer last read it
			for i := range tries {
				id := fmt.Sprintf("evt_%d_%d", w, i)
				c := &eventstore.Commit{TenantID: tnt, Appends: []eventstore.StreamAppend{
					{StreamID: mine, ExpectedVersion: int64(len(own[w])), Events: []eventstore.Event{ev(id + "_own")}},
					{StreamID: hotStream, ExpectedVersion: seen, Events: []eventstore.Event{ev(id)}},
				}}
				err := s.Commit(ctx, c)
				switch {
				case err == nil:
					v := c.Appends[1].Events[0].Version
					mu.Lock()
					if winners[hotStream] == nil {
						winners[hotStream] = map[int64]win{}
					}
					if prev, dup := winners[hotStream][v]; dup {
						mu.Unlock()
						t.Errorf("%s version %d won twice: by writers %d and %d", hotStream, v, prev.writer, w)
						return
					}
					winners[hotStream][v] = win{w, id}
					mu.Unlock()
					own[w] = append(own[w], id+"_own")
					seen = v
				case errors.Is(err, eventstore.ErrConflict):
					evs, err := s.ReadStream(ctx, tnt, hotStream, seen+1, 0)
					if err != nil {
						t.Error(err)
						return
					}
					if len(evs) == 0 {
						t.Errorf("%s: a conflict at version %d, but nothing follows it", hotStream, seen)
						return
					}
					seen = evs[len(evs)-1].Version
				default:
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	total := 0
	for h := range hot {
		stream := fmt.Sprintf("hot-%d", h)
		evs, err := s.ReadStream(ctx, tnt, stream, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != len(winners[stream]) {
			t.Fatalf("%s: %d events, %d winners", stream, len(evs), len(winners[stream]))
		}
		for i, e := range evs {
			if w, ok := winners[stream][int64(i+1)]; e.Version != int64(i+1) || !ok || w.id != e.ID {
				t.Fatalf("%s event %d: version %d id %s, winner %+v", stream, i, e.Version, e.ID, w)
			}
		}
		total += len(evs)
	}
	ownTotal := 0
	for w := range writers {
		evs, err := s.ReadStream(ctx, tnt, fmt.Sprintf("own-%d", w), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != len(own[w]) {
			t.Fatalf("writer %d: %d events in its stream, %d commits won", w, len(evs), len(own[w]))
		}
		for i, e := range evs {
			if e.ID != own[w][i] || e.Version != int64(i+1) {
				t.Fatalf("writer %d event %d: %s v%d, want %s v%d", w, i, e.ID, e.Version, own[w][i], i+1)
			}
		}
		ownTotal += len(evs)
	}
	if total != ownTotal || total < hot {
		t.Fatalf("%d hot events, %d own events: want equal, and some", total, ownTotal)
	}
	st := s.WriteStats()
	t.Logf("%d commits won of %d; %d writes in %d log syncs", total, writers*tries, st.Writes, st.Syncs)
}

const killChildEnv = "PEBBLESTORE_KILL_CHILD_DIR"

// TestKillKeepsAcknowledgedCommits: a process committing from 32 goroutines
// is killed (SIGKILL) mid-flight; every commit it had acknowledged is in the
// store after the restart, with its row and outbox entry. The test re-runs
// its own binary as that process.
func TestKillKeepsAcknowledgedCommits(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir) // never returns: the parent kills it
	}
	dir := filepath.Join(t.TempDir(), "kill")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillKeepsAcknowledgedCommits$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked = append(acked, id)
		}
		if len(acked) == 3000 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() { // what it acknowledged before it died
		if id, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked = append(acked, id)
		}
	}
	_ = cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("the child acknowledged only %d commits", len(acked))
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, id := range acked {
		evs, err := s.ReadStream(ctx, "tnt_kill", id, 1, 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("acknowledged commit %s after kill -9: %d events, %v", id, len(evs), err)
		}
		if _, err := s.GetRecord(ctx, "tnt_kill", "rows", id); err != nil {
			t.Fatalf("acknowledged commit %s after kill -9: row: %v", id, err)
		}
		if _, err := s.GetIdempotency(ctx, "tnt_kill", "idem-"+id); err != nil {
			t.Fatalf("acknowledged commit %s after kill -9: idempotency: %v", id, err)
		}
	}
	// The store goes on: a new commit, and the lists hold the rows.
	if err := s.Commit(ctx, &eventstore.Commit{TenantID: "tnt_kill", Appends: []eventstore.StreamAppend{{StreamID: "after", Events: []eventstore.Event{ev("evt_after")}}}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged commits all found after kill -9", len(acked))
}

// killChild commits from 32 goroutines and prints each acknowledged commit
// until it is killed.
func killChild(dir string) {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var seq atomic.Int64
	due := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 32 {
		go func() {
			for {
				id := fmt.Sprintf("s-%d", seq.Add(1))
				err := s.Commit(context.Background(), &eventstore.Commit{TenantID: "tnt_kill",
					Appends: []eventstore.StreamAppend{{StreamID: id, Events: []eventstore.Event{ev("evt_" + id)}}},
					Records: []eventstore.Record{{Collection: "rows", Key: id, Data: json.RawMessage(`{}`),
						Lists: []eventstore.ListEntry{{List: eventstore.List{Name: "rows", Slot: 1}, Sort: id}}}},
					Outbox:      []eventstore.OutboxEntry{{ID: "wrk_" + id, Type: "x", DueAt: due}},
					Idempotency: &eventstore.Idempotency{Key: "idem-" + id, Status: 200, Body: json.RawMessage(`{}`)},
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "acked %s\n", id)
				mu.Unlock()
			}
		}()
	}
	select {}
}
