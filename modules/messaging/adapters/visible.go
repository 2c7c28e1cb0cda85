package adapters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// visiblePartition tags the cursor of a page merged from several scope
// partitions (no scope id has this form).
const visiblePartition = "*visible"

// visibleConcurrency bounds the partitions read at once for one page.
const visibleConcurrency = 8

// visibleTopUps bounds the further pages read from one partition whose page
// came back short with more to come, and visibleTopUpLimit is their size.
const (
	visibleTopUps     = 4
	visibleTopUpLimit = 100
)

// ErrListLagging is the answer of a merged page when a partition still has
// no row to show after its top-ups while its list has more: its index lags
// its rows (DynamoDB), so the page cannot be placed; a moment later it can.
var ErrListLagging = errs.New(errs.KindUnavailable, errs.CodeUnavailable).With("retryAfter", 1)

// ListMessagesIn implements app.VisibleMessages: the newest messages of the
// scope partitions of scopeIDs (messages-by-scope, or
// messages-by-scope-status with a status), merged newest first. A message
// lies in one scope partition and its sort key is its id (a ULID, a total
// order), so the page is the limit newest of every partition's limit
// newest, and the cursor is one message id: the next page reads every
// partition below it (ListQuery.To). The cursor names the tenant and the
// list, not the scopes: a caller whose visible scopes change while paging
// sees the new set from the next page on.
//
// A partition may answer a short page with more to come (the store's index
// lags its rows: entries of rows that left the partition are dropped). Such a
// partition is read on, up to visibleTopUps more pages, until it has limit
// rows; if it is still short, the page ends at its last row (its unread rows
// lie below it, so the next page reads them), and if it has no row at all,
// the call is a retryable ErrListLagging rather than a page that skips it
// (review finding: the merge took a short page for a full one, skipping rows
// or ending the list early).
func (m *ReadModel) ListMessagesIn(ctx context.Context, tenantID string, scopeIDs []string, status domain.Status, limit int, cursor string) ([]app.MessageView, string, error) {
	list := MessagesByScopeList
	if status != "" {
		list = MessagesByScopeStatusList
	}
	before := ""
	if cursor != "" {
		b, err := eventstore.DecodeListCursor(tenantID, list, visiblePartition, cursor)
		if err != nil || !ids.Valid(ids.Message, string(b)) {
			return nil, "", app.ErrInvalidCursor.Wrap(errors.Join(err, eventstore.ErrInvalid))
		}
		before = string(b)
	}
	pages := make([][]eventstore.Record, len(scopeIDs))
	more := make([]bool, len(scopeIDs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(visibleConcurrency)
	for i, scopeID := range scopeIDs {
		partition := scopeID
		if status != "" {
			partition += "/" + string(status)
		}
		g.Go(func() error {
			q := eventstore.ListQuery{List: list, Partition: partition, To: before,
				Page: eventstore.Page{Limit: limit, Descending: true}}
			for read := 0; ; read++ {
				rows, next, err := m.store.ListRecords(gctx, tenantID, q)
				if err != nil {
					return fmt.Errorf("list %s/%s: %w", list.Name, partition, err)
				}
				pages[i], more[i] = append(pages[i], rows...), next != ""
				if next == "" || len(pages[i]) >= limit || read == visibleTopUps {
					return nil
				}
				q.Page.Cursor, q.Page.Limit = next, visibleTopUpLimit
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, "", err
	}
	var rows []eventstore.Record
	cutoff := "" // the lowest key a page may end at: the last row of a short partition with more
	for i, p := range pages {
		rows = append(rows, p...)
		if more[i] && len(p) < limit {
			if len(p) == 0 {
				return nil, "", ErrListLagging
			}
			cutoff = max(cutoff, p[len(p)-1].Key)
		}
	}
	slices.SortFunc(rows, func(a, b eventstore.Record) int { return strings.Compare(b.Key, a.Key) })
	next := ""
	if len(rows) > limit || slices.Contains(more, true) {
		rows = rows[:min(limit, len(rows))]
		if end := slices.IndexFunc(rows, func(r eventstore.Record) bool { return r.Key < cutoff }); end >= 0 {
			rows = rows[:end]
		}
		if len(rows) > 0 {
			next = eventstore.EncodeListCursor(tenantID, list, visiblePartition, []byte(rows[len(rows)-1].Key))
		}
	}
	out := make([]app.MessageView, 0, len(rows))
	for _, r := range rows {
		row, err := decodeMessageRow(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, row.View())
	}
	return out, next, nil
}
