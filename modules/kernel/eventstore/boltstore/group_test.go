package boltstore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// holdCommitter makes the committer busy with a transaction that waits until
// the returned release is called, so that the writes submitted meanwhile
// queue and then run as one batch. queued reports how many are waiting.
func holdCommitter(t *testing.T, s *Store) (release func(), queued func() int) {
	t.Helper()
	inside := make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	go func() {
		_ = s.w.write(0, func(*bolt.Tx) error {
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
// gets ErrTooLarge, and the rest commit. A loser's Commit is left as it was
// given; a winner's events carry their versions.
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
		txsBefore := s.w.txs.Load()
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
			t.Fatalf("round %d: %d transactions for one batch of %d commits, want 1", round, n, len(rs)-1)
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
				if err := s.db.View(func(tx *bolt.Tx) error {
					if tx.Bucket([]byte(bucketOutboxIDs)).Get([]byte(c.Outbox[0].ID)) != nil {
						return fmt.Errorf("the loser's outbox entry %s is pending", c.Outbox[0].ID)
					}
					return nil
				}); err != nil {
					t.Fatalf("round %d: %v", round, err)
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
// error that is not a rejection, or a panic) aborts the batch's transaction;
// it runs again alone and its caller gets its error, nothing of it stays,
// and the others run again and commit.
func TestGroupCommitFailedWriteRunsAlone(t *testing.T) {
	s, _ := openTemp(t)
	put := func(k string) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketData)).Put([]byte(k), []byte("v")) }
	}
	var okRuns atomic.Int32
	boom := errors.New("boom")
	writes := []func(tx *bolt.Tx) error{
		func(tx *bolt.Tx) error { okRuns.Add(1); return put("a")(tx) },
		func(tx *bolt.Tx) error { _ = put("b")(tx); return boom },
		func(tx *bolt.Tx) error { _ = put("c")(tx); panic("c panics") },
		func(*bolt.Tx) error { return reject(eventstore.ErrConflict) },
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
		t.Fatalf("the good write ran %d times; the aborted batch should have run it again", n)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketData))
		for k, want := range map[string]bool{"a": true, "b": false, "c": false, "e": true} {
			if got := b.Get([]byte(k)) != nil; got != want {
				return fmt.Errorf("key %s stored %v, want %v", k, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCloseCommitsQueuedWrites: Close lets the queued writes commit; a write
// after Close fails.
func TestCloseCommitsQueuedWrites(t *testing.T) {
	s, path := openTemp(t)
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
	if !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		t.Fatalf("commit after Close: %v, want ErrDatabaseNotOpen", err)
	}
	release()
	if err := <-queuedErr; err != nil {
		t.Fatalf("commit queued before Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if evs, err := s2.ReadStream(ctx, "tnt_a", "s", 1, 0); err != nil || len(evs) != 1 {
		t.Fatalf("after reopen: %+v, %v; want the queued commit", evs, err)
	}
	// The mapping ahead (initialMmapSize) does not grow the file to it (bbolt
	// grows it in steps of its AllocSize, 16 MiB).
	if info, err := os.Stat(path); err != nil || info.Size() > 32<<20 {
		t.Fatalf("file of %d bytes (%v) holding one commit", info.Size(), err)
	}
}

const killChildEnv = "BOLTSTORE_KILL_CHILD_DB"

// TestKillKeepsAcknowledgedCommits: a process committing from 32 goroutines
// is killed (SIGKILL) mid-flight; every commit it had acknowledged is in the
// file after the restart. The test re-runs its own binary as that process.
func TestKillKeepsAcknowledgedCommits(t *testing.T) {
	if path := os.Getenv(killChildEnv); path != "" {
		killChild(path) // never returns: the parent kills it
	}
	path := filepath.Join(t.TempDir(), "kill.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillKeepsAcknowledgedCommits$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
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
		if len(acked) == 2000 {
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
	if len(acked) < 2000 {
		t.Fatalf("the child acknowledged only %d commits", len(acked))
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range acked {
		evs, err := s.ReadStream(context.Background(), "tnt_kill", id, 1, 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("acknowledged commit %s after kill -9: %d events, %v", id, len(evs), err)
		}
	}
}

// killChild commits from 32 goroutines and prints each acknowledged commit
// until it is killed.
func killChild(path string) {
	s, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var seq atomic.Int64
	for range 32 {
		go func() {
			for {
				id := fmt.Sprintf("s-%d", seq.Add(1))
				err := s.Commit(context.Background(), &eventstore.Commit{TenantID: "tnt_kill",
					Appends: []eventstore.StreamAppend{{StreamID: id, Events: []eventstore.Event{ev("evt_" + id)}}}})
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
