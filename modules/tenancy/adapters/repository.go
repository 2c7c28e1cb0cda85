package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/tenancy/app"
	"github.com/switchboard-dev/switchboard/modules/tenancy/domain"
)

// Repository implements app.Repository over the event store.
type Repository struct {
	store eventstore.Store
	ids   ids.Generator
	clock clock.Clock
	// keysWritten gets the API key lookup rows of every commit that wrote
	// some, once it committed (the key cache of this instance); nil: nobody.
	keysWritten func(ctx context.Context, recs []auth.APIKeyRecord)
	// rolesWritten gets the roles a commit created, once it committed (the
	// role cache of this instance); nil: nobody.
	rolesWritten func(ctx context.Context, tenantID string, roles []RoleRow)
}

// OnRolesWritten makes f receive, after each commit that created tenant
// roles, their rows: the instance that created a role evaluates it at once
// (RoleCache.Publish), other instances within their cache's TTL.
func (r *Repository) OnRolesWritten(f func(ctx context.Context, tenantID string, roles []RoleRow)) {
	r.rolesWritten = f
}

var _ app.Repository = (*Repository)(nil)

// NewRepository returns a repository writing to store; gen makes event and
// work ids, clk stamps events.
func NewRepository(store eventstore.Store, gen ids.Generator, clk clock.Clock) *Repository {
	return &Repository{store: store, ids: gen, clock: clk}
}

// OnKeysWritten makes f receive, after each commit that wrote API key lookup
// rows (issued, revoked, or rebound to an account's new role bindings), the
// records as written: the instance that made a change updates its own key
// cache at once (APIKeyResolver.Publish), other instances take it within
// their cache's TTL.
func (r *Repository) OnKeysWritten(f func(ctx context.Context, recs []auth.APIKeyRecord)) {
	r.keysWritten = f
}

// history reads and decodes a whole stream, oldest first.
func (r *Repository) history(ctx context.Context, tenantID, stream string) ([]domain.Recorded, error) {
	return eventstore.ReadDecoded(ctx, r.store, tenantID, stream, decode)
}

// Tenant implements app.Repository.
func (r *Repository) Tenant(ctx context.Context, tenantID string) (*domain.Tenant, error) {
	h, err := r.history(ctx, tenantID, TenantStream)
	if err != nil {
		return nil, err
	}
	t, err := domain.ReplayTenant(h)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", TenantStream, err)
	}
	if t == nil {
		return nil, errs.NotFound("tenant")
	}
	return t, nil
}

// Scope implements app.Repository.
func (r *Repository) Scope(ctx context.Context, tenantID, scopeID string) (*domain.Scope, error) {
	stream := ScopeStream(scopeID)
	h, err := r.history(ctx, tenantID, stream)
	if err != nil {
		return nil, err
	}
	s, err := domain.ReplayScope(h)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", stream, err)
	}
	if s == nil {
		return nil, errs.NotFound("scope")
	}
	return s, nil
}

// ServiceAccount implements app.Repository.
func (r *Repository) ServiceAccount(ctx context.Context, tenantID, serviceAccountID string) (*domain.ServiceAccount, error) {
	stream := ServiceAccountStream(serviceAccountID)
	h, err := r.history(ctx, tenantID, stream)
	if err != nil {
		return nil, err
	}
	s, err := domain.ReplayServiceAccount(h)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", stream, err)
	}
	if s == nil {
		return nil, errs.NotFound("service_account")
	}
	return s, nil
}

// Role implements app.Repository.
func (r *Repository) Role(ctx context.Context, tenantID, roleID string) (*domain.TenantRole, error) {
	stream := RoleStream(roleID)
	h, err := r.history(ctx, tenantID, stream)
	if err != nil {
		return nil, err
	}
	role, err := domain.ReplayTenantRole(h)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", stream, err)
	}
	if role == nil {
		return nil, errs.NotFound("role")
	}
	return role, nil
}

// Save implements app.Repository: one eventstore.Commit with the appends, the
// projected records and the outbox entries, through eventstore.Write (staged
// in the invocation's unit of work when there is one).
func (r *Repository) Save(ctx context.Context, c app.Changes) error {
	if c.TenantID == "" {
		return fmt.Errorf("save: no tenant: %w", eventstore.ErrInvalid)
	}
	now := r.clock.Now()
	meta := invocation.From(ctx).Meta()
	commit := &eventstore.Commit{TenantID: c.TenantID}
	for _, ch := range c.Aggregates {
		if len(ch.Events) == 0 {
			return fmt.Errorf("save: a change without events: %w", eventstore.ErrInvalid)
		}
		stream, err := streamOf(ch.Events[0])
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		sa := eventstore.StreamAppend{StreamID: stream, ExpectedVersion: ch.Base}
		recorded := make([]domain.Recorded, 0, len(ch.Events))
		for i, ev := range ch.Events {
			if s, err := streamOf(ev); err != nil || s != stream {
				return fmt.Errorf("save %s: event %s of another stream %q: %w", stream, ev.EventType(), s, eventstore.ErrInvalid)
			}
			e, err := encode(ctx, r.ids, ev, now)
			if err != nil {
				return fmt.Errorf("save %s: %w", stream, err)
			}
			sa.Events = append(sa.Events, e)
			recorded = append(recorded, domain.Recorded{Event: ev, Version: ch.Base + int64(i) + 1, OccurredAt: now})
		}
		commit.Appends = append(commit.Appends, sa)
		recs, err := r.project(ctx, c.TenantID, stream, ch.Base, recorded)
		if err != nil {
			return fmt.Errorf("save %s: project: %w", stream, err)
		}
		commit.Records = append(commit.Records, recs...)
	}
	for _, w := range c.Work {
		payload, err := json.Marshal(w.Payload)
		if err != nil {
			return fmt.Errorf("save: encode work %s: %w", w.Type, err)
		}
		commit.Outbox = append(commit.Outbox, eventstore.OutboxEntry{
			ID: r.ids.New(ids.Work), TenantID: c.TenantID, Type: w.Type,
			Payload: payload, DueAt: w.DueAt, Invocation: meta,
		})
	}
	keys, err := writtenKeys(commit.Records)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := eventstore.Write(ctx, r.store, commit); err != nil {
		if errors.Is(err, eventstore.ErrConflict) {
			return app.ErrConcurrency.Wrap(fmt.Errorf("save: %w", err))
		}
		return fmt.Errorf("save: %w", err)
	}
	roles, err := writtenRoles(commit.Records)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if len(roles) > 0 && r.rolesWritten != nil {
		tenantID := c.TenantID
		eventstore.OnCommit(ctx, func(ctx context.Context) { r.rolesWritten(ctx, tenantID, roles) })
	}
	if len(keys) > 0 && r.keysWritten != nil {
		// After the unit of work commits (at once when there is none); never
		// for a unit that fails or is run again.
		eventstore.OnCommit(ctx, func(ctx context.Context) { r.keysWritten(ctx, keys) })
	}
	return nil
}

// writtenKeys decodes the API key lookup rows among recs.
func writtenKeys(recs []eventstore.Record) ([]auth.APIKeyRecord, error) {
	var out []auth.APIKeyRecord
	for _, rec := range recs {
		if !rec.Global || rec.Collection != CollectionAPIKeys {
			continue
		}
		var k auth.APIKeyRecord
		if err := json.Unmarshal(rec.Data, &k); err != nil {
			return nil, fmt.Errorf("decode api key row %s: %w", rec.Key, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// writtenRoles decodes the role rows among recs.
func writtenRoles(recs []eventstore.Record) ([]RoleRow, error) {
	var out []RoleRow
	for _, rec := range recs {
		if rec.Global || rec.Collection != CollectionRoles {
			continue
		}
		var row RoleRow
		if err := json.Unmarshal(rec.Data, &row); err != nil {
			return nil, fmt.Errorf("decode role row %s: %w", rec.Key, err)
		}
		out = append(out, row)
	}
	return out, nil
}

// project returns the records derived from the new events of one stream.
// base is the stream's version before them.
func (r *Repository) project(ctx context.Context, tenantID, stream string, base int64, evs []domain.Recorded) ([]eventstore.Record, error) {
	switch first := evs[0].Event.(type) {
	case domain.TenantOnboarded, domain.TenantProvisioned:
		return nil, nil // get-tenant replays the stream; no row needed
	case domain.ScopeCreated:
		var out []eventstore.Record
		for _, e := range evs {
			sc, ok := e.Event.(domain.ScopeCreated)
			if !ok {
				return nil, fmt.Errorf("event %s in scope stream", e.Event.EventType())
			}
			recs, err := ProjectScopeCreated(sc, e.OccurredAt)
			if err != nil {
				return nil, err
			}
			out = append(out, recs...)
		}
		return out, nil
	case domain.ServiceAccountCreated, domain.APIKeyIssued, domain.APIKeyRevoked, domain.RoleGranted, domain.RoleRevoked:
		var history []domain.Recorded
		if base > 0 {
			var err error
			if history, err = r.history(ctx, tenantID, stream); err != nil {
				return nil, err
			}
		}
		sva, err := domain.ReplayServiceAccount(append(history, evs...))
		if err != nil {
			return nil, err
		}
		return ProjectServiceAccount(tenantID, sva, evs)
	case domain.RoleCreated:
		var out []eventstore.Record
		for _, e := range evs {
			rc, ok := e.Event.(domain.RoleCreated)
			if !ok {
				return nil, fmt.Errorf("event %s in role stream", e.Event.EventType())
			}
			recs, err := ProjectRoleCreated(rc, e.OccurredAt)
			if err != nil {
				return nil, err
			}
			out = append(out, recs...)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("no projection of %T", first)
	}
}
