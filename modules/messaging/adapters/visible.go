package adapters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

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

// ListMessagesIn implements app.VisibleMessages: the newest messages of the
// scope partitions of scopeIDs (messages-by-scope, or
// messages-by-scope-status with a status), merged newest first. A message
// lies in one scope partition and its sort key is its id (a ULID, a total
// order), so the page is the limit newest of every partition's limit
// newest, and the cursor is one message id: the next page reads every
// partition below it (ListQuery.To). The cursor names the tenant and the
// list, not the scopes: a caller whose visible scopes change while paging
// sees the new set from the next page on.
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
			rows, next, err := m.store.ListRecords(gctx, tenantID, eventstore.ListQuery{
				List: list, Partition: partition, To: before,
				Page: eventstore.Page{Limit: limit, Descending: true},
			})
			if err != nil {
				return fmt.Errorf("list %s/%s: %w", list.Name, partition, err)
			}
			pages[i], more[i] = rows, next != ""
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, "", err
	}
	var rows []eventstore.Record
	for _, p := range pages {
		rows = append(rows, p...)
	}
	slices.SortFunc(rows, func(a, b eventstore.Record) int { return strings.Compare(b.Key, a.Key) })
	next := ""
	if len(rows) > limit || slices.Contains(more, true) {
		rows = rows[:min(limit, len(rows))]
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
