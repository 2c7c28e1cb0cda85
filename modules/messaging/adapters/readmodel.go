package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
)

// ReadModel implements app.ReadModel over the event store's records.
type ReadModel struct {
	store     eventstore.RecordReader
	publicURL string
}

var _ app.ReadModel = (*ReadModel)(nil)

// NewReadModel returns the read model of store; publicURL is the base of the
// channels' inbound webhook URLs (derived when read, so a new public URL
// shows at once).
func NewReadModel(store eventstore.RecordReader, publicURL string) *ReadModel {
	return &ReadModel{store: store, publicURL: publicURL}
}

// ChannelByID implements app.ReadModel with one strongly consistent read.
func (m *ReadModel) ChannelByID(ctx context.Context, tenantID, channelID string) (app.ChannelView, error) {
	if !ids.Valid(ids.Channel, channelID) {
		return app.ChannelView{}, errs.NotFound("channel")
	}
	rec, err := m.store.GetRecord(ctx, tenantID, CollectionChannels, channelID)
	if errors.Is(err, eventstore.ErrNotFound) {
		return app.ChannelView{}, errs.NotFound("channel")
	}
	if err != nil {
		return app.ChannelView{}, fmt.Errorf("get %s %s: %w", CollectionChannels, channelID, err)
	}
	return m.channelView(rec)
}

func (m *ReadModel) channelView(rec eventstore.Record) (app.ChannelView, error) {
	var row ChannelRow
	if err := json.Unmarshal(rec.Data, &row); err != nil {
		return app.ChannelView{}, fmt.Errorf("decode %s %s: %w", CollectionChannels, rec.Key, err)
	}
	cfg := row.Config
	if cfg == nil {
		cfg = map[string]string{}
	}
	return app.ChannelView{
		ChannelID: row.ChannelID, ScopeID: row.ScopeID, ScopePath: row.ScopePath, Name: row.Name, Type: row.Type,
		Provider: row.Provider, From: row.From, Config: cfg, CreatedAt: row.CreatedAt,
		InboundWebhookURL: app.InboundWebhookURL(m.publicURL, row.Provider, row.ChannelID),
	}, nil
}

// ChannelTenant implements app.ReadModel: one eventually consistent read of
// the global route row, and a consistent one when that finds nothing (a
// channel created a moment ago is found; an unknown id costs one read more).
func (m *ReadModel) ChannelTenant(ctx context.Context, channelID string) (string, error) {
	if !ids.Valid(ids.Channel, channelID) {
		return "", errs.NotFound("channel")
	}
	rec, err := m.store.GetGlobalRecord(ctx, CollectionChannelRoutes, channelID, eventstore.Eventually)
	if errors.Is(err, eventstore.ErrNotFound) {
		rec, err = m.store.GetGlobalRecord(ctx, CollectionChannelRoutes, channelID)
	}
	if errors.Is(err, eventstore.ErrNotFound) {
		return "", errs.NotFound("channel")
	}
	if err != nil {
		return "", fmt.Errorf("get %s %s: %w", CollectionChannelRoutes, channelID, err)
	}
	var row ChannelRouteRow
	if err := json.Unmarshal(rec.Data, &row); err != nil || row.TenantID == "" {
		return "", fmt.Errorf("decode %s %s: %w", CollectionChannelRoutes, channelID, errors.Join(err, errors.New("no tenant")))
	}
	return row.TenantID, nil
}

// ListChannels implements app.ReadModel: one page of ChannelsList, or of
// ChannelsByScopeList for a scope, newest first.
func (m *ReadModel) ListChannels(ctx context.Context, tenantID, scopeID string, limit int, cursor string) ([]app.ChannelView, string, error) {
	q := eventstore.ListQuery{List: ChannelsList, Page: eventstore.Page{Limit: limit, Cursor: cursor, Descending: true}}
	if scopeID != "" {
		q.List, q.Partition = ChannelsByScopeList, scopeID
	}
	rows, next, err := m.list(ctx, tenantID, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]app.ChannelView, 0, len(rows))
	for _, r := range rows {
		v, err := m.channelView(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	return out, next, nil
}

// MessageByID implements app.ReadModel with one strongly consistent read.
func (m *ReadModel) MessageByID(ctx context.Context, tenantID, messageID string) (app.MessageView, error) {
	if !ids.Valid(ids.Message, messageID) {
		return app.MessageView{}, errs.NotFound("message")
	}
	rec, err := m.store.GetRecord(ctx, tenantID, CollectionMessages, messageID)
	if errors.Is(err, eventstore.ErrNotFound) {
		return app.MessageView{}, errs.NotFound("message")
	}
	if err != nil {
		return app.MessageView{}, fmt.Errorf("get %s %s: %w", CollectionMessages, messageID, err)
	}
	row, err := decodeMessageRow(rec)
	if err != nil {
		return app.MessageView{}, err
	}
	return row.View(), nil
}

func decodeMessageRow(rec eventstore.Record) (MessageRow, error) {
	var row MessageRow
	if err := json.Unmarshal(rec.Data, &row); err != nil {
		return MessageRow{}, fmt.Errorf("decode %s %s: %w", CollectionMessages, rec.Key, err)
	}
	return row, nil
}

// MessageByProviderID implements app.ReadModel.
func (m *ReadModel) MessageByProviderID(ctx context.Context, tenantID, channelID, providerMessageID string) (string, error) {
	if !ids.Valid(ids.Channel, channelID) || providerMessageID == "" {
		return "", errs.NotFound("message")
	}
	key := ProviderMessageKey(channelID, providerMessageID)
	rec, err := m.store.GetRecord(ctx, tenantID, CollectionProviderMessages, key)
	if errors.Is(err, eventstore.ErrNotFound) {
		return "", errs.NotFound("message")
	}
	if err != nil {
		return "", fmt.Errorf("get %s %s: %w", CollectionProviderMessages, key, err)
	}
	var row ProviderMessageRow
	if err := json.Unmarshal(rec.Data, &row); err != nil {
		return "", fmt.Errorf("decode %s %s: %w", CollectionProviderMessages, key, err)
	}
	if row.MessageID == "" { // a receipt waits there for its send
		return "", errs.NotFound("message")
	}
	return row.MessageID, nil
}

// MessageListQuery returns the one list partition that answers f: the
// channel's lists when a channel is named (a channel lies in one scope), else
// the scope's, else the tenant's; each with the status when one is named.
func MessageListQuery(f app.MessageFilter) eventstore.ListQuery {
	status := string(f.Status)
	var q eventstore.ListQuery
	switch {
	case f.ChannelID != "" && status != "":
		q.List, q.Partition = MessagesByChannelStatusList, f.ChannelID+"/"+status
	case f.ChannelID != "":
		q.List, q.Partition = MessagesByChannelList, f.ChannelID
	case f.ScopeID != "" && status != "":
		q.List, q.Partition = MessagesByScopeStatusList, f.ScopeID+"/"+status
	case f.ScopeID != "":
		q.List, q.Partition = MessagesByScopeList, f.ScopeID
	case status != "":
		q.List, q.Partition = MessagesByStatusList, status
	default:
		q.List = MessagesList
	}
	return q
}

// ListMessages implements app.ReadModel: one page of the partition that
// answers f (MessageListQuery), newest first. With both a channel and a
// scope, rows of the channel outside the scope are left out (a channel lies
// in one scope, so that is all or nothing; the application answers an empty
// page without reading).
func (m *ReadModel) ListMessages(ctx context.Context, tenantID string, f app.MessageFilter, limit int, cursor string) ([]app.MessageView, string, error) {
	q := MessageListQuery(f)
	q.Page = eventstore.Page{Limit: limit, Cursor: cursor, Descending: true}
	rows, next, err := m.list(ctx, tenantID, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]app.MessageView, 0, len(rows))
	for _, r := range rows {
		row, err := decodeMessageRow(r)
		if err != nil {
			return nil, "", err
		}
		if f.ChannelID != "" && f.ScopeID != "" && row.ScopeID != f.ScopeID {
			continue
		}
		out = append(out, row.View())
	}
	return out, next, nil
}

// list reads one page; a cursor the list did not issue is app.ErrInvalidCursor.
func (m *ReadModel) list(ctx context.Context, tenantID string, q eventstore.ListQuery) ([]eventstore.Record, string, error) {
	rows, next, err := m.store.ListRecords(ctx, tenantID, q)
	if err != nil {
		if q.Cursor != "" && errors.Is(err, eventstore.ErrInvalid) {
			return nil, "", app.ErrInvalidCursor.Wrap(err)
		}
		return nil, "", fmt.Errorf("list %s/%s: %w", q.List.Name, q.Partition, err)
	}
	return rows, next, nil
}
