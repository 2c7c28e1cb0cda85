package work_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// A durable transport acknowledges exactly the items it took; a refused one
// is rescheduled alone with its attempt, last error and backoff.
func TestRelayAcksPerItem(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", -5*time.Second, -4*time.Second, -3*time.Second, -2*time.Second, -time.Second)
	refused := items[2].ID
	tr := &recorder{durable: true, refuse: func(it work.Item) error {
		if it.ID == refused {
			return errors.New("message too large")
		}
		return nil
	}}
	n, err := e.relay(tr).Sweep(e.ctx)
	if err != nil || n != 4 {
		t.Fatalf("Sweep = (%d, %v), want (4, nil)", n, err)
	}
	left := e.pending()
	if len(left) != 1 || left[0].ID != refused {
		t.Fatalf("pending = %v, want only the refused %s", idsOf(left), refused)
	}
	assertRescheduled(t, left[0], 1)
	if left[0].LastError != "message too large" {
		t.Fatalf("LastError = %q", left[0].LastError)
	}
	if !strings.Contains(e.logs.String(), "hand-off failed") {
		t.Fatalf("logs = %q, want the refusal logged", e.logs.String())
	}
}

// One entry the transport keeps refusing among 250 due entries: every other
// entry is delivered and acknowledged at once, and the poisoned one is parked
// after MaxAttempts with its last error, never blocking the others.
func TestSweepPoisonedEntryIsParkedAndNothingIsBlocked(t *testing.T) {
	e := newEnv(t)
	due := make([]time.Duration, 250)
	for i := range due {
		due[i] = -time.Duration(250-i) * time.Millisecond
	}
	var items []work.Item
	for start := 0; start < len(due); start += 50 { // a commit takes at most 100 items
		items = append(items, e.commit("test.work", due[start:min(start+50, len(due))]...)...)
	}
	poisoned := items[0].ID // the earliest: at the head of every page
	delivered := map[string]int{}
	tr := &recorder{durable: true, refuse: func(it work.Item) error {
		if it.ID == poisoned {
			return errors.New("sqs send: message of 300000 bytes, more than 262144")
		}
		delivered[it.ID]++
		return nil
	}}
	r := e.relay(tr)
	n, err := r.Sweep(e.ctx)
	if err != nil || n != 249 {
		t.Fatalf("first Sweep = (%d, %v), want (249, nil)", n, err)
	}
	if len(delivered) != 249 {
		t.Fatalf("delivered %d entries, want 249", len(delivered))
	}
	for id, k := range delivered {
		if k != 1 {
			t.Fatalf("entry %s delivered %d times", id, k)
		}
	}
	if got := idsOf(e.pending()); !reflect.DeepEqual(got, []string{poisoned}) {
		t.Fatalf("pending = %v, want only the poisoned entry (the others acknowledged)", got)
	}
	// Later sweeps try it again after each backoff until it is parked.
	for sweep := 2; sweep <= 20; sweep++ {
		e.clock.Advance(10 * time.Minute)
		if _, err := r.Sweep(e.ctx); err == nil {
			if p, _ := e.stored(poisoned); p.DueAt.Equal(eventstore.ParkedAt) {
				break
			}
			t.Fatalf("sweep %d of the poisoned entry alone succeeded", sweep)
		}
	}
	got, ok := e.stored(poisoned)
	if !ok || !got.DueAt.Equal(eventstore.ParkedAt) || got.Attempt != work.DefaultMaxAttempts ||
		!strings.Contains(got.LastError, "more than 262144") {
		t.Fatalf("poisoned entry = %+v (found %v), want parked at attempt %d with its last error", got, ok, work.DefaultMaxAttempts)
	}
	parked, err := e.store.ParkedOutbox(e.ctx, 10)
	if err != nil || len(parked) != 1 || parked[0].ID != poisoned {
		t.Fatalf("ParkedOutbox = (%v, %v)", idsOf(parked), err)
	}
	if !strings.Contains(e.logs.String(), "level=ERROR") || !strings.Contains(e.logs.String(), "parked") {
		t.Fatalf("logs = %q, want the parked entry logged at error level", e.logs.String())
	}
	// Parked: later sweeps leave it alone.
	e.clock.Advance(time.Hour)
	before := len(tr.sent())
	if n, err := r.Sweep(e.ctx); n != 0 || err != nil || len(tr.sent()) != before {
		t.Fatalf("Sweep after parking = (%d, %v), sent again: %v", n, err, len(tr.sent()) != before)
	}
}

func TestSweepStopsWhenTheStoreCannotReschedule(t *testing.T) {
	e := newEnv(t)
	e.commit("test.work", -3*time.Second, -2*time.Second, -time.Second)
	down := errors.New("store unavailable")
	fs := &faultyStore{Store: e.store, rescheduleErr: down}
	tr := &recorder{durable: true, refuse: func(it work.Item) error { return errors.New("refused") }}
	r := &work.Relay{Store: fs, Transport: tr, Clock: e.clock, Logger: e.logger, BatchSize: 1}
	n, err := r.Sweep(e.ctx)
	if !errors.Is(err, down) || n != 0 {
		t.Fatalf("Sweep = (%d, %v), want (0, the store error)", n, err)
	}
	if len(tr.sent()) != 1 || fs.reschedules != 1 {
		t.Fatalf("sent %v, %d reschedules, want one page then stop", tr.sent(), fs.reschedules)
	}
	// Some handed, the refused one not rescheduled: still stops.
	tr.refuse = func(it work.Item) error {
		if it.ID == e.pending()[0].ID {
			return errors.New("refused")
		}
		return nil
	}
	r.BatchSize = 3
	if _, err := r.Sweep(e.ctx); !errors.Is(err, down) {
		t.Fatalf("Sweep = %v, want the store error", err)
	}
	if len(e.pending()) != 1 {
		t.Fatalf("pending = %v, want the refused entry only", idsOf(e.pending()))
	}
}

func TestSweepStopsWhenNothingIsHanded(t *testing.T) {
	e := newEnv(t)
	e.commit("test.work", -3*time.Second, -2*time.Second, -time.Second)
	tr := &recorder{durable: true, err: errors.New("queue unavailable")}
	r := e.relay(tr)
	r.BatchSize = 2
	n, err := r.Sweep(e.ctx)
	if err == nil || n != 0 || !strings.Contains(err.Error(), "none of 2 items handed") {
		t.Fatalf("Sweep = (%d, %v), want (0, none handed)", n, err)
	}
	if len(tr.sent()) != 1 {
		t.Fatalf("sent %v, want one page", tr.sent())
	}
}

func TestSweepIsBoundedInPages(t *testing.T) {
	e := newEnv(t)
	var due []time.Duration
	for i := 12; i > 0; i-- {
		due = append(due, -time.Duration(i)*time.Second)
	}
	items := e.commit("test.work", due...)
	tr := &recorder{durable: true}
	r := e.relay(tr)
	r.BatchSize, r.MaxPages = 2, 5
	n, err := r.Sweep(e.ctx)
	if err != nil || n != 10 || len(tr.sent()) != 5 {
		t.Fatalf("Sweep = (%d, %v) after %d pages, want (10, nil) after 5", n, err, len(tr.sent()))
	}
	if got := idsOf(e.pending()); !reflect.DeepEqual(got, idsOf(items[10:])) {
		t.Fatalf("pending = %v, want the last two for the next run", got)
	}
}

// The store may answer short pages while more entries are due (DynamoDB
// reads a few keys per shard and filters): the sweep goes on until a page is
// empty.
func TestSweepGoesOnAfterShortPages(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", -5*time.Second, -4*time.Second, -3*time.Second, -2*time.Second, -time.Second)
	fs := &faultyStore{Store: e.store, maxPage: 2}
	tr := &recorder{durable: true}
	r := &work.Relay{Store: fs, Transport: tr, Clock: e.clock, Logger: e.logger, BatchSize: 3}
	n, err := r.Sweep(e.ctx)
	if err != nil || n != 5 {
		t.Fatalf("Sweep = (%d, %v), want (5, nil)", n, err)
	}
	want := [][]string{{items[0].ID, items[1].ID}, {items[2].ID, items[3].ID}, {items[4].ID}}
	if !reflect.DeepEqual(tr.sent(), want) {
		t.Fatalf("sent %v, want %v", tr.sent(), want)
	}
	if len(e.pending()) != 0 {
		t.Fatalf("pending = %v, want none", idsOf(e.pending()))
	}
}

// A page of entries this sweep already handed (their acknowledgements did
// not remove them) is no progress: the sweep stops instead of handing them
// again until MaxPages.
func TestSweepStopsWithoutProgress(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", -3*time.Second, -2*time.Second, -time.Second)
	fs := &faultyStore{Store: e.store, ackNoop: true}
	tr := &recorder{durable: true}
	r := &work.Relay{Store: fs, Transport: tr, Clock: e.clock, Logger: e.logger, BatchSize: 2, MaxPages: 5}
	n, err := r.Sweep(e.ctx)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = (%d, %v), want (2, nil)", n, err)
	}
	if want := [][]string{{items[0].ID, items[1].ID}}; !reflect.DeepEqual(tr.sent(), want) {
		t.Fatalf("sent %v, want one page, never the same entries again", tr.sent())
	}
	if !strings.Contains(e.logs.String(), "no progress") {
		t.Fatalf("logs = %q, want the stop explained", e.logs.String())
	}
}

func TestSweepStopsWithItsContext(t *testing.T) {
	e := newEnv(t)
	e.commit("test.work", -time.Second)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := e.relay(&recorder{durable: true}).Sweep(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep = %v, want the context's error", err)
	}
}

func TestRelayHandsWithinTheTransportsMaxDelay(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", 5*time.Minute, 20*time.Minute)
	sqsLike := &recorder{durable: true, maxDelay: 15 * time.Minute}
	e.relay(sqsLike).AfterCommit(e.ctx, items)
	if want := [][]string{{items[0].ID}}; !reflect.DeepEqual(sqsLike.sent(), want) {
		t.Fatalf("sent %v, want the entry due in 5 minutes only %v", sqsLike.sent(), want)
	}
	if got := idsOf(e.pending()); !reflect.DeepEqual(got, []string{items[1].ID}) {
		t.Fatalf("pending = %v, want the entry due in 20 minutes", got)
	}

	e2 := newEnv(t)
	items = e2.commit("test.work", 5*time.Minute)
	now := &recorder{durable: true}
	e2.relay(now).AfterCommit(e2.ctx, items)
	if len(now.sent()) != 0 || len(e2.pending()) != 1 {
		t.Fatalf("a transport with MaxDelay 0 was handed %v", now.sent())
	}
}

func TestRelayParksAtMaxAttempts(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", 0)
	items[0].Attempt = 2
	r := e.relay(&recorder{durable: true, err: errors.New("refused")})
	r.MaxAttempts = 3
	r.AfterCommit(e.ctx, items)
	got, _ := e.stored(items[0].ID)
	if got.Attempt != 3 || !got.DueAt.Equal(eventstore.ParkedAt) || got.LastError != "refused" {
		t.Fatalf("stored = %+v, want parked at attempt 3", got)
	}
}

// A transport that answers the wrong number of results is trusted for none.
type shortTransport struct{ recorder }

func (s *shortTransport) Send(ctx context.Context, items []work.Item) []error {
	s.recorder.Send(ctx, items)
	return nil
}

func TestRelayDistrustsAWrongNumberOfResults(t *testing.T) {
	e := newEnv(t)
	items := e.commit("test.work", 0, 0)
	e.relay(&shortTransport{recorder{durable: true}}).AfterCommit(e.ctx, items)
	for _, it := range items {
		got, ok := e.stored(it.ID)
		if !ok || got.Attempt != 1 || !strings.Contains(got.LastError, "0 results for 2 items") {
			t.Fatalf("stored = %+v (found %v), want kept and rescheduled", got, ok)
		}
	}
}

func TestLastErrorIsTruncatedAtACharacter(t *testing.T) {
	long := errors.New(strings.Repeat("é", 600)) // 2 bytes each
	got := work.LastError(long)
	if len(got) > eventstore.MaxLastError || len(got) < eventstore.MaxLastError-1 || !utf8.ValidString(got) {
		t.Fatalf("LastError = %d bytes (valid %v), want at most %d, valid UTF-8", len(got), utf8.ValidString(got), eventstore.MaxLastError)
	}
	odd := errors.New("x" + strings.Repeat("é", 600)) // a cut in the middle of a character
	if got := work.LastError(odd); len(got) != eventstore.MaxLastError-1 || !utf8.ValidString(got) {
		t.Fatalf("LastError = %d bytes (valid %v)", len(got), utf8.ValidString(got))
	}
	if work.LastError(nil) != "" || work.LastError(fmt.Errorf("short")) != "short" {
		t.Fatal("short errors are kept as they are")
	}
}

// LastError keeps an error as the stores do (eventstore.TruncateLastError):
// the entry handed back after a failure equals the one stored.
func TestLastErrorIsTheStoresForm(t *testing.T) {
	for _, msg := range []string{"short", "bad \xff byte", strings.Repeat("é", 600), "x" + strings.Repeat("\xff", 600)} {
		if got, want := work.LastError(errors.New(msg)), eventstore.TruncateLastError(msg); got != want {
			t.Errorf("LastError(%.20q…) = %.20q… (%d bytes), want %.20q… (%d bytes)", msg, got, len(got), want, len(want))
		}
	}
}
