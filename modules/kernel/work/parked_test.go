package work_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// park commits n parked entries.
func (e *env) park(n int) []work.Item {
	e.t.Helper()
	items := e.commit("test.work", make([]time.Duration, n)...)
	for i := range items {
		items[i].Attempt, items[i].DueAt, items[i].LastError = 8, eventstore.ParkedAt, "poison"
		if err := e.store.RescheduleOutbox(e.ctx, items[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	return items
}

func TestParkedListAndReplay(t *testing.T) {
	e := newEnv(t)
	parked := e.park(3)
	e.commit("test.work", 0) // not parked
	tr := &recorder{durable: true}
	p := &work.Parked{Store: e.store, Relay: e.relay(tr), Clock: e.clock}

	list, err := p.List(e.ctx, 0)
	if err != nil || !reflect.DeepEqual(sortedIDs(list), sortedIDs(parked)) {
		t.Fatalf("List = (%v, %v), want the parked entries %v", idsOf(list), err, idsOf(parked))
	}
	for _, it := range list {
		if it.Attempt != 8 || it.LastError != "poison" {
			t.Fatalf("listed %+v", it)
		}
	}
	if list, _ := p.List(e.ctx, 2); len(list) != 2 {
		t.Fatalf("List(2) = %d entries", len(list))
	}

	// Replay one by id; unknown ids are ignored and not counted.
	var seen []work.Item
	tr.refuse = func(it work.Item) error { seen = append(seen, it); return nil }
	unknown := "wrk_01JWNNSVG0000000000000ZZZZ"
	n, notFound, err := p.Replay(e.ctx, []string{parked[1].ID, unknown})
	if err != nil || n != 1 || !reflect.DeepEqual(notFound, []string{unknown}) {
		t.Fatalf("Replay = (%d, %v, %v), want (1, [%s], nil)", n, notFound, err, unknown)
	}
	if len(seen) != 1 || seen[0].ID != parked[1].ID || seen[0].Attempt != 0 || !seen[0].DueAt.Equal(t0) || seen[0].LastError != "poison" {
		t.Fatalf("handed %+v, want the replayed entry due now at attempt 0 with its last error", seen)
	}
	if _, ok := e.stored(parked[1].ID); ok {
		t.Fatal("the replayed entry was not acknowledged after the hand-off")
	}
	// Replay all.
	n, notFound, err = p.Replay(e.ctx, nil)
	if err != nil || n != 2 || len(notFound) != 0 {
		t.Fatalf("Replay(all) = (%d, %v, %v), want (2, none, nil)", n, notFound, err)
	}
	if list, _ := p.List(e.ctx, 0); len(list) != 0 {
		t.Fatalf("still parked: %v", idsOf(list))
	}
}

func TestParkedReplayWithoutRelayLeavesItToTheSweep(t *testing.T) {
	e := newEnv(t)
	parked := e.park(1)
	p := &work.Parked{Store: e.store, Clock: e.clock}
	if n, _, err := p.Replay(e.ctx, nil); err != nil || n != 1 {
		t.Fatalf("Replay = (%d, %v)", n, err)
	}
	due := e.pendingBy(t0)
	if len(due) != 1 || due[0].ID != parked[0].ID || due[0].Attempt != 0 {
		t.Fatalf("due = %+v, want the replayed entry", due)
	}
}

func TestParkedReplayStoreFailure(t *testing.T) {
	e := newEnv(t)
	e.park(2)
	down := errors.New("store unavailable")
	p := &work.Parked{Store: &faultyStore{Store: e.store, rescheduleErr: down}, Clock: e.clock}
	if n, _, err := p.Replay(e.ctx, nil); !errors.Is(err, down) || n != 0 {
		t.Fatalf("Replay = (%d, %v), want (0, the store error)", n, err)
	}
}

// Replay by id sees only the first MaxParkedList parked entries (the port
// has no lookup by id): a named entry beyond them is not replayed, and
// Replay says so instead of ignoring it silently.
func TestParkedReplayReportsIDsBeyondTheList(t *testing.T) {
	e := newEnv(t)
	parked := e.park(3)
	listed, err := e.store.ParkedOutbox(e.ctx, 1)
	if err != nil || len(listed) != 1 {
		t.Fatalf("ParkedOutbox = (%v, %v)", idsOf(listed), err)
	}
	// A store that lists one parked entry stands for one with more than MaxParkedList.
	p := &work.Parked{Store: &faultyStore{Store: e.store, maxParked: 1}, Clock: e.clock}
	want := []string{}
	for _, it := range parked {
		if it.ID != listed[0].ID {
			want = append(want, it.ID)
		}
	}
	ids := append([]string{listed[0].ID}, want...)
	ids = append(ids, want[0]) // a repeated id is reported once
	n, notFound, err := p.Replay(e.ctx, ids)
	if err != nil || n != 1 || !reflect.DeepEqual(notFound, want) {
		t.Fatalf("Replay = (%d, %v, %v), want (1, %v, nil)", n, notFound, err, want)
	}
}
