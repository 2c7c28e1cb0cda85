package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// ReadModel implements app.ReadModel with keyed list queries only.
type ReadModel struct {
	store eventstore.RecordReader
}

var _ app.ReadModel = (*ReadModel)(nil)

// NewReadModel returns the read model of store.
func NewReadModel(store eventstore.RecordReader) *ReadModel { return &ReadModel{store: store} }

// ListSubscriptions implements app.ReadModel: one page of SubscriptionsList
// (scopeID "") or of the scope's partition of SubscriptionsByScopeList.
func (m *ReadModel) ListSubscriptions(ctx context.Context, tenantID, scopeID string, limit int, cursor string) ([]app.SubscriptionView, string, error) {
	q := eventstore.ListQuery{List: SubscriptionsList, Page: eventstore.Page{Limit: limit, Cursor: cursor, Descending: true}}
	if scopeID != "" {
		q.List, q.Partition = SubscriptionsByScopeList, scopeID
	}
	rows, next, err := m.list(ctx, tenantID, q)
	if err != nil {
		return nil, "", err
	}
	out, err := subscriptionViews(rows)
	return out, next, err
}

// ListDeliveries implements app.ReadModel: one page of the subscription's
// partition of DeliveriesList.
func (m *ReadModel) ListDeliveries(ctx context.Context, tenantID, subscriptionID string, limit int, cursor string) ([]app.DeliveryView, string, error) {
	rows, next, err := m.list(ctx, tenantID, eventstore.ListQuery{
		List: DeliveriesList, Partition: subscriptionID, Page: eventstore.Page{Limit: limit, Cursor: cursor, Descending: true},
	})
	if err != nil {
		return nil, "", err
	}
	out := make([]app.DeliveryView, 0, len(rows))
	for _, r := range rows {
		var row DeliveryRow
		if err := json.Unmarshal(r.Data, &row); err != nil {
			return nil, "", fmt.Errorf("decode %s %s: %w", CollectionDeliveries, r.Key, err)
		}
		out = append(out, app.DeliveryView{
			DeliveryID: row.DeliveryID, SubscriptionID: row.SubscriptionID, EventID: row.EventID, EventType: row.EventType,
			MessageID: row.MessageID, Status: domain.DeliveryStatus(row.Status), Attempts: row.Attempts, LastStatusCode: row.LastStatusCode,
			LastError: row.LastError, NextAttemptAt: row.NextAttemptAt, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
		})
	}
	return out, next, nil
}

// list reads one page; a cursor the list refuses is app.ErrInvalidCursor.
func (m *ReadModel) list(ctx context.Context, tenantID string, q eventstore.ListQuery) ([]eventstore.Record, string, error) {
	rows, next, err := m.store.ListRecords(ctx, tenantID, q)
	if err != nil {
		if q.Cursor != "" && errors.Is(err, eventstore.ErrInvalid) {
			return nil, "", app.ErrInvalidCursor.Wrap(err)
		}
		return nil, "", fmt.Errorf("list %s: %w", q.List.Name, err)
	}
	return rows, next, nil
}

func subscriptionViews(rows []eventstore.Record) ([]app.SubscriptionView, error) {
	out := make([]app.SubscriptionView, 0, len(rows))
	for _, r := range rows {
		var row SubscriptionRow
		if err := json.Unmarshal(r.Data, &row); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", CollectionSubscriptions, r.Key, err)
		}
		out = append(out, app.SubscriptionView{
			SubscriptionID: row.SubscriptionID, ScopeID: row.ScopeID, ScopePath: row.ScopePath, URL: row.URL,
			EventTypes: row.EventTypes, Status: domain.SubscriptionStatus(row.Status), CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
		})
	}
	return out, nil
}
