package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
)

// ReadModel implements app.ReadModel over the event store's records.
type ReadModel struct {
	store eventstore.RecordReader
}

var _ app.ReadModel = (*ReadModel)(nil)

// NewReadModel returns the read model of store.
func NewReadModel(store eventstore.RecordReader) *ReadModel { return &ReadModel{store: store} }

// ScopeNameTaken implements app.ReadModel.
func (m *ReadModel) ScopeNameTaken(ctx context.Context, tenantID, parentScopeID, name string) (bool, error) {
	key := ScopeNameKey(parentScopeID, name)
	_, err := m.store.GetRecord(ctx, tenantID, CollectionScopeNames, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, eventstore.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("get %s %s: %w", CollectionScopeNames, key, err)
	}
}

// ListScopes implements app.ReadModel: one page of ScopesList, newest first.
// The list is eventually consistent (a scope created a moment ago may show
// on a later call).
func (m *ReadModel) ListScopes(ctx context.Context, tenantID string, limit int, cursor string) ([]app.ScopeView, string, error) {
	rows, next, err := m.store.ListRecords(ctx, tenantID, eventstore.ListQuery{
		List: ScopesList,
		Page: eventstore.Page{Limit: limit, Cursor: cursor, Descending: true},
	})
	if err != nil {
		if cursor != "" && errors.Is(err, eventstore.ErrInvalid) {
			return nil, "", app.ErrInvalidCursor.Wrap(err)
		}
		return nil, "", fmt.Errorf("list %s: %w", CollectionScopes, err)
	}
	out := make([]app.ScopeView, 0, len(rows))
	for _, r := range rows {
		var row ScopeRow
		if err := json.Unmarshal(r.Data, &row); err != nil {
			return nil, "", fmt.Errorf("decode %s %s: %w", CollectionScopes, r.Key, err)
		}
		out = append(out, app.ScopeView{
			ScopeID: row.ScopeID, ParentScopeID: row.ParentScopeID, Name: row.Name, Path: row.Path, CreatedAt: row.CreatedAt,
		})
	}
	return out, next, nil
}
