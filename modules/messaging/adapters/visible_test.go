package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// staleIndexStore is an eventstore.RecordReader whose ListRecords behaves as
// the port's contract allows (and as dynamostore does while its list index
// lags the table): it reads `limit` index entries below To (and below the
// cursor's position), newest first, drops those whose row has moved since (a
// message that left the status partition), and answers a next cursor when
// more entries follow. A page may therefore hold fewer rows than the limit
// while a next cursor follows. (Written by a review that found the merge
// taking such a page for a full one.)
type staleIndexStore struct {
	// partition -> index entries (message ids) and which of them are stale
	entries map[string][]string
	stale   map[string]bool
	reads   int
}

func (s *staleIndexStore) GetRecord(context.Context, string, string, string) (eventstore.Record, error) {
	return eventstore.Record{}, eventstore.ErrNotFound
}
func (s *staleIndexStore) GetGlobalRecord(context.Context, string, string, ...eventstore.ReadOption) (eventstore.Record, error) {
	return eventstore.Record{}, eventstore.ErrNotFound
}
func (s *staleIndexStore) ListRecords(_ context.Context, tenantID string, q eventstore.ListQuery) ([]eventstore.Record, string, error) {
	below := q.To
	if q.Cursor != "" {
		pos, err := eventstore.DecodeListCursor(tenantID, q.List, q.Partition, q.Cursor)
		if err != nil {
			return nil, "", err
		}
		below = string(pos)
	}
	s.reads++
	var es []string
	for _, id := range s.entries[q.Partition] {
		if below == "" || id < below {
			es = append(es, id)
		}
	}
	slices.SortFunc(es, func(a, b string) int { return strings.Compare(b, a) })
	next := ""
	if len(es) > q.Limit {
		es = es[:q.Limit]
		next = eventstore.EncodeListCursor(tenantID, q.List, q.Partition, []byte(es[len(es)-1]))
	}
	var rows []eventstore.Record
	for _, id := range es {
		if s.stale[id] {
			continue // moved to another status since the index was read
		}
		scope, _, _ := strings.Cut(q.Partition, "/")
		b, _ := json.Marshal(MessageRow{MessageID: id, ScopeID: scope, Status: "queued"})
		rows = append(rows, eventstore.Record{Collection: CollectionMessages, Key: id, Data: b})
	}
	return rows, next, nil
}

const (
	rvTenant = "tnt_01JX0000000000000000000001"
	scpA     = "scp_01JX00000000000000000000AA"
	scpB     = "scp_01JX00000000000000000000BB"
	// ULIDs, newest first: a9 > m8 > a7 > b6 > b5
	a9 = "msg_01JX00000000000000000000A9"
	m8 = "msg_01JX00000000000000000000A8"
	a7 = "msg_01JX00000000000000000000A7"
	b6 = "msg_01JX00000000000000000000A6"
	b5 = "msg_01JX00000000000000000000A5"
)

// pageAll pages list-messages' merge of scopes A and B (status queued) to the end.
func pageAll(t *testing.T, rm *ReadModel, limit int) []string {
	t.Helper()
	return pageMessageIDs(t, 10, func(cursor string) ([]app.MessageView, string, error) {
		return rm.ListMessagesIn(context.Background(), rvTenant, []string{scpA, scpB}, domain.StatusQueued, limit, cursor)
	})
}

// A stale index entry in one partition must not make the merge skip that
// partition's later rows (a7 is queued and in scope A).
func TestVisibleMergeDoesNotSkipRowsAfterAShortPage(t *testing.T) {
	st := &staleIndexStore{
		entries: map[string][]string{scpA + "/queued": {a9, m8, a7}, scpB + "/queued": {b6, b5}},
		stale:   map[string]bool{m8: true}, // m8 just moved from queued to sending; the index lags
	}
	got := pageAll(t, NewReadModel(st, ""), 2)
	want := []string{a9, a7, b6, b5}
	if !slices.Equal(got, want) {
		t.Fatalf("paged %v, want %v (no gaps)", got, want)
	}
}

// A partition whose whole page is stale must not end the list early
// (nextCursor null while the partition has more rows).
func TestVisibleMergeDoesNotEndEarlyOnAnEmptyShortPage(t *testing.T) {
	st := &staleIndexStore{
		entries: map[string][]string{scpA + "/queued": {m8, a7}, scpB + "/queued": {}},
		stale:   map[string]bool{m8: true},
	}
	got := pageAll(t, NewReadModel(st, ""), 1)
	if !slices.Equal(got, []string{a7}) {
		t.Fatalf("paged %v, want [%s]: the first page came back empty with nextCursor null", got, a7)
	}
}

// A partition short after its top-ups ends the page at its last row, and one
// with no row at all after them makes the page a retryable 503 rather than a
// page that skips it.
func TestVisibleMergeBoundsItsTopUps(t *testing.T) {
	stale := map[string]bool{}
	var aEntries []string
	for i := range 600 {
		id := "msg_01JX000000000000000000" + fmt.Sprintf("%04d", 9999-i)
		aEntries = append(aEntries, id)
		stale[id] = i > 0 // only the newest row of A is current
	}
	st := &staleIndexStore{entries: map[string][]string{scpA + "/queued": aEntries, scpB + "/queued": {b6, b5}}, stale: stale}
	rm := NewReadModel(st, "")
	views, next, err := rm.ListMessagesIn(context.Background(), rvTenant, []string{scpA, scpB}, domain.StatusQueued, 2, "")
	if err != nil || len(views) != 1 || views[0].MessageID != aEntries[0] || next == "" {
		t.Fatalf("first page %v next %q err %v: want A's one current row and a cursor", views, next, err)
	}
	st.reads = 0
	_, _, err = rm.ListMessagesIn(context.Background(), rvTenant, []string{scpA, scpB}, domain.StatusQueued, 2, next)
	if !errors.Is(err, ErrListLagging) || st.reads != 1+5 {
		t.Fatalf("second page: err %v after %d reads, want ErrListLagging after B's read and A's 5", err, st.reads)
	}
}
