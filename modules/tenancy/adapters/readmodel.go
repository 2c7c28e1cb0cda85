package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// usageReads bounds the concurrent reads of "api-key-usage" rows of one page.
const usageReads = 8

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

// APIKeyOwner implements app.ReadModel from the key's global lookup row (a
// consistent read), which every key has had since it was issued; a row of
// another tenant is not found.
func (m *ReadModel) APIKeyOwner(ctx context.Context, tenantID, apiKeyID string) (string, error) {
	rec, err := m.store.GetGlobalRecord(ctx, CollectionAPIKeys, apiKeyID)
	if errors.Is(err, eventstore.ErrNotFound) {
		return "", errs.NotFound("api_key")
	}
	if err != nil {
		return "", fmt.Errorf("get %s %s: %w", CollectionAPIKeys, apiKeyID, err)
	}
	var k auth.APIKeyRecord
	if err := json.Unmarshal(rec.Data, &k); err != nil {
		return "", fmt.Errorf("decode %s %s: %w", CollectionAPIKeys, apiKeyID, err)
	}
	if k.TenantID != tenantID || k.ServiceAccountID == "" {
		return "", errs.NotFound("api_key")
	}
	return k.ServiceAccountID, nil
}

// ListAPIKeys implements app.ReadModel: one page of APIKeysList (or of the
// service account's partition of APIKeysByServiceAccountList), newest first,
// each row joined with its "api-key-usage" row: one more read per listed key
// (up to usageReads at once), so a use never rewrites the listed row.
func (m *ReadModel) ListAPIKeys(ctx context.Context, tenantID, serviceAccountID string, limit int, cursor string) ([]app.APIKeyView, string, error) {
	q := eventstore.ListQuery{List: APIKeysList, Page: eventstore.Page{Limit: limit, Cursor: cursor, Descending: true}}
	if serviceAccountID != "" {
		q.List, q.Partition = APIKeysByServiceAccountList, serviceAccountID
	}
	rows, next, err := m.store.ListRecords(ctx, tenantID, q)
	if err != nil {
		if cursor != "" && errors.Is(err, eventstore.ErrInvalid) {
			return nil, "", app.ErrInvalidCursor.Wrap(err)
		}
		return nil, "", fmt.Errorf("list %s: %w", q.List.Name, err)
	}
	out := make([]app.APIKeyView, len(rows))
	for i, r := range rows {
		var row APIKeyRow
		if err := json.Unmarshal(r.Data, &row); err != nil {
			return nil, "", fmt.Errorf("decode %s %s: %w", CollectionAPIKeyList, r.Key, err)
		}
		out[i] = app.APIKeyView{
			APIKeyID: row.APIKeyID, Name: row.Name, ServiceAccountID: row.ServiceAccountID,
			CreatedAt: row.CreatedAt, RevokedAt: row.RevokedAt,
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(usageReads)
	for i := range out {
		g.Go(func() error {
			r, err := m.store.GetRecord(gctx, tenantID, CollectionAPIKeyUsage, out[i].APIKeyID)
			switch {
			case errors.Is(err, eventstore.ErrNotFound):
				return nil
			case err != nil:
				return fmt.Errorf("get %s %s: %w", CollectionAPIKeyUsage, out[i].APIKeyID, err)
			}
			var u APIKeyUsageRow
			if err := json.Unmarshal(r.Data, &u); err != nil {
				return fmt.Errorf("decode %s %s: %w", CollectionAPIKeyUsage, out[i].APIKeyID, err)
			}
			out[i].LastUsedAt = u.LastUsedAt
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// RoleNameTaken implements app.ReadModel.
func (m *ReadModel) RoleNameTaken(ctx context.Context, tenantID, name string) (bool, error) {
	key := domain.NameKey(name)
	_, err := m.store.GetRecord(ctx, tenantID, CollectionRoleNames, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, eventstore.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("get %s %s: %w", CollectionRoleNames, key, err)
	}
}

// ListRoles implements app.ReadModel: the whole of RolesList (at most
// domain.MaxTenantRoles rows, read in pages of 100), oldest first. The list
// is eventually consistent.
func (m *ReadModel) ListRoles(ctx context.Context, tenantID string) ([]app.RoleView, error) {
	rows, err := m.listRoleRows(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]app.RoleView, 0, len(rows))
	for _, r := range rows {
		out = append(out, app.RoleView{RoleID: r.RoleID, Name: r.Name, Actions: r.Actions, CreatedAt: r.CreatedAt})
	}
	return out, nil
}

func (m *ReadModel) listRoleRows(ctx context.Context, tenantID string) ([]RoleRow, error) {
	var out []RoleRow
	cursor := ""
	for {
		recs, next, err := m.store.ListRecords(ctx, tenantID, eventstore.ListQuery{
			List: RolesList, Page: eventstore.Page{Limit: 100, Cursor: cursor},
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", CollectionRoles, err)
		}
		for _, r := range recs {
			var row RoleRow
			if err := json.Unmarshal(r.Data, &row); err != nil {
				return nil, fmt.Errorf("decode %s %s: %w", CollectionRoles, r.Key, err)
			}
			out = append(out, row)
		}
		if next == "" || len(out) >= 10*domain.MaxTenantRoles {
			return out, nil
		}
		cursor = next
	}
}
