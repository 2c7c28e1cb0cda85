package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
	"golang.org/x/sync/errgroup"
)

// IntegrationSource is the source of the webhooks context's integration events.
const IntegrationSource = "switchboard.webhooks"

// Repository implements app.Repository over the event store.
type Repository struct {
	store eventstore.Store
	ids   ids.Generator
	clock clock.Clock
}

var _ app.Repository = (*Repository)(nil)

// NewRepository returns a repository writing to store; gen makes event and
// work ids, clk stamps events.
func NewRepository(store eventstore.Store, gen ids.Generator, clk clock.Clock) *Repository {
	return &Repository{store: store, ids: gen, clock: clk}
}

// history reads and decodes a whole stream, oldest first.
func (r *Repository) history(ctx context.Context, tenantID, stream string) ([]domain.Recorded, error) {
	return eventstore.ReadDecoded(ctx, r.store, tenantID, stream, decode)
}

// Subscription implements app.Repository: from its row, which is written
// with every event of the subscription (a snapshot), so the stream, which
// grows with every change of health, is never replayed on the hot path.
func (r *Repository) Subscription(ctx context.Context, tenantID, subscriptionID string) (*domain.Subscription, error) {
	rec, err := r.store.GetRecord(ctx, tenantID, CollectionSubscriptions, subscriptionID)
	if errors.Is(err, eventstore.ErrNotFound) {
		return nil, errs.NotFound("subscription")
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", CollectionSubscriptions, subscriptionID, err)
	}
	var row SubscriptionRow
	if err := json.Unmarshal(rec.Data, &row); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", CollectionSubscriptions, subscriptionID, err)
	}
	return subscriptionFromRow(row), nil
}

// EnabledSubscriptions implements app.Repository: the scope's set of
// enabled subscriptions (its "webhook-scope-subscriptions" row, strongly
// consistent), each loaded as Subscription loads it; a subscription that
// does not read as enabled is left out. A scope without that row (no
// subscription of it changed since the row exists) is read from
// EnabledSubscriptionsList instead, as before.
func (r *Repository) EnabledSubscriptions(ctx context.Context, tenantID, scopeID string) ([]*domain.Subscription, error) {
	set, err := r.scopeSubscriptions(ctx, tenantID, scopeID)
	if err != nil {
		return nil, err
	}
	if set == nil {
		return r.listedSubscriptions(ctx, tenantID, scopeID)
	}
	subs := make([]*domain.Subscription, len(set.SubscriptionIDs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxParallelReads)
	for i, id := range set.SubscriptionIDs {
		g.Go(func() error {
			s, err := r.Subscription(gctx, tenantID, id)
			switch {
			case errs.KindOf(err) == errs.KindNotFound:
				return nil
			case err != nil:
				return err
			}
			if s.Status == domain.Enabled {
				subs[i] = s
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := subs[:0]
	for _, s := range subs {
		if s != nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// maxParallelReads bounds the subscription rows EnabledSubscriptions reads
// at once.
const maxParallelReads = 16

// scopeSubscriptions reads a scope's set from its row; nil when the scope
// has none.
func (r *Repository) scopeSubscriptions(ctx context.Context, tenantID, scopeID string) (*domain.ScopeSubscriptions, error) {
	rec, err := r.store.GetRecord(ctx, tenantID, CollectionScopeSubscriptions, scopeID)
	if errors.Is(err, eventstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", CollectionScopeSubscriptions, scopeID, err)
	}
	var row ScopeSubscriptionsRow
	if err := json.Unmarshal(rec.Data, &row); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", CollectionScopeSubscriptions, scopeID, err)
	}
	return &domain.ScopeSubscriptions{ScopeID: row.ScopeID, SubscriptionIDs: row.SubscriptionIDs, Version: row.Version}, nil
}

// listedSubscriptions reads the rows of one partition (the scope) of
// EnabledSubscriptionsList, every page. On DynamoDB the list's index lags
// the table: a subscription created a moment ago may be missing, which is
// why the fan-out reads the scope's set when it has one.
func (r *Repository) listedSubscriptions(ctx context.Context, tenantID, scopeID string) ([]*domain.Subscription, error) {
	var out []*domain.Subscription
	cursor := ""
	for {
		rows, next, err := r.store.ListRecords(ctx, tenantID, eventstore.ListQuery{
			List: EnabledSubscriptionsList, Partition: scopeID, Page: eventstore.Page{Limit: 100, Cursor: cursor},
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", EnabledSubscriptionsList.Name, err)
		}
		for _, rec := range rows {
			var row SubscriptionRow
			if err := json.Unmarshal(rec.Data, &row); err != nil {
				return nil, fmt.Errorf("decode %s %s: %w", CollectionSubscriptions, rec.Key, err)
			}
			out = append(out, subscriptionFromRow(row))
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// replayScopeSubscriptions rebuilds a scope's set from its stream; nil when
// the stream is empty.
func (r *Repository) replayScopeSubscriptions(ctx context.Context, tenantID, scopeID string) (*domain.ScopeSubscriptions, error) {
	stream := ScopeSubscriptionsStream(scopeID)
	h, err := r.history(ctx, tenantID, stream)
	if err != nil || len(h) == 0 {
		return nil, err
	}
	set := &domain.ScopeSubscriptions{ScopeID: scopeID}
	for _, rec := range h {
		if err := set.Apply(rec); err != nil {
			return nil, fmt.Errorf("replay %s: %w", stream, err)
		}
	}
	return set, nil
}

// scopeChanges are the changes of the scopes' sets one Save makes: each
// set as loaded and the events that move it.
type scopeChanges struct {
	sets   map[string]*domain.ScopeSubscriptions
	events map[string][]domain.Event
	order  []string
}

// track records that subscription s left or joined its scope's set (was,
// is: enabled before and after the change). The set is loaded on its first
// change: from its row, else from its stream (a row lost), else, for a scope
// whose subscriptions were made before the sets existed, from the
// subscriptions its list holds, all in one ScopeSubscriptionsStarted.
func (r *Repository) track(ctx context.Context, tenantID string, sc *scopeChanges, s *domain.Subscription, was, is bool) error {
	if was == is {
		return nil
	}
	set, ok := sc.sets[s.ScopeID]
	if !ok {
		loaded, err := r.scopeSubscriptions(ctx, tenantID, s.ScopeID)
		if err != nil {
			return err
		}
		if loaded == nil {
			loaded, err = r.replayScopeSubscriptions(ctx, tenantID, s.ScopeID)
			if err != nil {
				return err
			}
		}
		if loaded == nil {
			loaded = &domain.ScopeSubscriptions{ScopeID: s.ScopeID}
			listed, err := r.listedSubscriptions(ctx, tenantID, s.ScopeID)
			if err != nil {
				return err
			}
			var ids []string
			for _, l := range listed {
				if l.ID != s.ID {
					ids = append(ids, l.ID)
				}
			}
			// One event however many: a commit holds at most
			// eventstore.MaxCommitItems items.
			sc.events[s.ScopeID] = append(sc.events[s.ScopeID], loaded.Start(ids)...)
		}
		set = loaded
		sc.sets[s.ScopeID] = set
		sc.order = append(sc.order, s.ScopeID)
	}
	if is {
		// The set's limit counts the members this save adds before it
		// (a legacy start is applied only when the events are appended).
		if len(set.SubscriptionIDs)+pendingMembers(sc.events[s.ScopeID]) >= domain.MaxScopeSubscriptions {
			return domain.ErrTooManyInScope
		}
		evs, err := set.Add(s.ID)
		if err != nil {
			return err
		}
		sc.events[s.ScopeID] = append(sc.events[s.ScopeID], evs...)
	} else {
		sc.events[s.ScopeID] = append(sc.events[s.ScopeID], set.Remove(s.ID)...)
	}
	return nil
}

// pendingMembers is how many members the set events evs add (not yet
// applied to the set): a start's and each addition, less each removal.
func pendingMembers(evs []domain.Event) int {
	n := 0
	for _, ev := range evs {
		switch e := ev.(type) {
		case domain.ScopeSubscriptionsStarted:
			n += len(e.SubscriptionIDs)
		case domain.ScopeSubscriptionAdded:
			n++
		case domain.ScopeSubscriptionRemoved:
			n--
		}
	}
	return n
}

// ReplaySubscription rebuilds a subscription from its stream (rebuilding
// rows, tests), or errs.NotFound("subscription").
func (r *Repository) ReplaySubscription(ctx context.Context, tenantID, subscriptionID string) (*domain.Subscription, error) {
	stream := SubscriptionStream(subscriptionID)
	h, err := r.history(ctx, tenantID, stream)
	if err != nil {
		return nil, err
	}
	s, err := domain.ReplaySubscription(h)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", stream, err)
	}
	if s == nil {
		return nil, errs.NotFound("subscription")
	}
	return s, nil
}

// Delivery implements app.Repository (a delivery's stream is short: created,
// at most domain.MaxAttempts attempts and domain.MaxDeferrals tries put off
// at the pace, with at most one held try after each of those: ~60 events).
func (r *Repository) Delivery(ctx context.Context, tenantID, deliveryID string) (*domain.Delivery, error) {
	stream := DeliveryStream(deliveryID)
	h, err := r.history(ctx, tenantID, stream)
	if err != nil {
		return nil, err
	}
	d, err := domain.ReplayDelivery(h)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", stream, err)
	}
	if d == nil {
		return nil, errs.NotFound("delivery")
	}
	return d, nil
}

// DeliveryExists implements app.Repository: the row of deliveryID, then the
// key row a delivery made before ids were derived has (ADR 0008); two reads
// when there is none, no write.
func (r *Repository) DeliveryExists(ctx context.Context, tenantID, subscriptionID, eventID, deliveryID string) (bool, error) {
	_, err := r.store.GetRecord(ctx, tenantID, CollectionDeliveries, deliveryID)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, eventstore.ErrNotFound):
		return false, fmt.Errorf("get %s %s: %w", CollectionDeliveries, deliveryID, err)
	}
	key := DeliveryKey(subscriptionID, eventID)
	_, err = r.store.GetRecord(ctx, tenantID, CollectionDeliveryKeys, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, eventstore.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("get %s %s: %w", CollectionDeliveryKeys, key, err)
	}
}

// Payload implements app.Repository.
func (r *Repository) Payload(ctx context.Context, tenantID, eventID string) ([]byte, error) {
	rec, err := r.store.GetRecord(ctx, tenantID, CollectionPayloads, eventID)
	if errors.Is(err, eventstore.ErrNotFound) {
		return nil, errs.NotFound("payload")
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", CollectionPayloads, eventID, err)
	}
	return rec.Data, nil
}

// Save implements app.Repository: one eventstore.Commit with the appends,
// the projected rows, the payloads, the work and the integration events,
// through eventstore.Write (staged in the invocation's unit of work when
// there is one).
func (r *Repository) Save(ctx context.Context, c app.Changes) error {
	if c.TenantID == "" {
		return fmt.Errorf("save: no tenant: %w", eventstore.ErrInvalid)
	}
	now := r.clock.Now()
	meta := invocation.From(ctx).Meta()
	commit := &eventstore.Commit{TenantID: c.TenantID}
	scopes := &scopeChanges{sets: map[string]*domain.ScopeSubscriptions{}, events: map[string][]domain.Event{}}
	for _, ch := range c.Subscriptions {
		s := &domain.Subscription{}
		if ch.Before != nil {
			cp := *ch.Before
			s = &cp
		}
		was := s.Version > 0 && s.Status == domain.Enabled
		sa, stored, err := r.appendEvents(ctx, s.Version, ch.Events, now, s.Apply)
		if err != nil {
			return err
		}
		if err := r.track(ctx, c.TenantID, scopes, s, was, s.Status == domain.Enabled); err != nil {
			if errs.KindOf(err) == errs.KindConflict {
				return err // ErrTooManyInScope: the caller's answer
			}
			return fmt.Errorf("save %s: %w", sa.StreamID, err)
		}
		row, err := ProjectSubscription(s)
		if err != nil {
			return fmt.Errorf("save %s: %w", sa.StreamID, err)
		}
		commit.Appends = append(commit.Appends, sa)
		commit.Records = append(commit.Records, row)
		for i, ev := range ch.Events {
			if _, ok := ev.(domain.SubscriptionDisabled); !ok {
				continue
			}
			entry, err := r.publishDisabled(c.TenantID, s, stored[i].ID, meta, now)
			if err != nil {
				return fmt.Errorf("save %s: %w", sa.StreamID, err)
			}
			commit.Outbox = append(commit.Outbox, entry)
		}
	}
	for _, scopeID := range scopes.order {
		evs := scopes.events[scopeID]
		if len(evs) == 0 {
			continue
		}
		set := scopes.sets[scopeID]
		sa, _, err := r.appendEvents(ctx, set.Version, evs, now, set.Apply)
		if err != nil {
			return err
		}
		row, err := ProjectScopeSubscriptions(set)
		if err != nil {
			return fmt.Errorf("save %s: %w", sa.StreamID, err)
		}
		// The set's row, written with every append, keeps the stream's
		// version: two writers of one scope conflict (ADR 0008's head rows).
		sa.HeadRecord = &eventstore.RecordRef{Collection: row.Collection, Key: row.Key}
		commit.Appends = append(commit.Appends, sa)
		commit.Records = append(commit.Records, row)
	}
	for _, ch := range c.Deliveries {
		d := &domain.Delivery{}
		if ch.Before != nil {
			cp := *ch.Before
			d = &cp
		}
		sa, _, err := r.appendEvents(ctx, d.Version, ch.Events, now, d.Apply)
		if err != nil {
			return err
		}
		rows, err := ProjectDelivery(d)
		if err != nil {
			return fmt.Errorf("save %s: %w", sa.StreamID, err)
		}
		// The delivery's row, written with every append, keeps the stream's
		// version (no head item on DynamoDB: ADR 0008).
		sa.HeadRecord = &eventstore.RecordRef{Collection: rows[0].Collection, Key: rows[0].Key}
		commit.Appends = append(commit.Appends, sa)
		commit.Records = append(commit.Records, rows...)
	}
	for _, p := range c.Payloads {
		if !json.Valid(p.Body) {
			return fmt.Errorf("save: payload of %s is not JSON: %w", p.EventID, eventstore.ErrInvalid)
		}
		commit.Records = append(commit.Records, eventstore.Record{Collection: CollectionPayloads, Key: p.EventID, Data: p.Body})
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
	if err := eventstore.Write(ctx, r.store, commit); err != nil {
		if errors.Is(err, eventstore.ErrConflict) {
			return app.ErrConcurrency.Wrap(fmt.Errorf("save: %w", err))
		}
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// appendEvents encodes the events of one aggregate at version base, applying
// each to the aggregate (apply) so that it ends in its new state.
func (r *Repository) appendEvents(ctx context.Context, base int64, events []domain.Event, now time.Time, apply func(domain.Recorded) error) (eventstore.StreamAppend, []eventstore.Event, error) {
	if len(events) == 0 {
		return eventstore.StreamAppend{}, nil, fmt.Errorf("save: a change without events: %w", eventstore.ErrInvalid)
	}
	stream, err := streamOf(events[0])
	if err != nil {
		return eventstore.StreamAppend{}, nil, fmt.Errorf("save: %w", err)
	}
	sa := eventstore.StreamAppend{StreamID: stream, ExpectedVersion: base}
	for i, ev := range events {
		if s, err := streamOf(ev); err != nil || s != stream {
			return sa, nil, fmt.Errorf("save %s: event %s of another stream %q: %w", stream, ev.EventType(), s, eventstore.ErrInvalid)
		}
		e, err := encode(ctx, r.ids, ev, now)
		if err != nil {
			return sa, nil, fmt.Errorf("save %s: %w", stream, err)
		}
		if err := apply(domain.Recorded{Event: ev, Version: base + int64(i) + 1, OccurredAt: now}); err != nil {
			return sa, nil, fmt.Errorf("save %s: %w", stream, err)
		}
		sa.Events = append(sa.Events, e)
	}
	return sa, sa.Events, nil
}

// DisabledData is the "data" of the integration event
// "webhooks.subscription-disabled". It names the subscription, not its URL
// (which may carry a token), as Svix's endpoint.disabled does.
type DisabledData struct {
	SubscriptionID string    `json:"subscriptionId"`
	ScopeID        string    `json:"scopeId"`
	Status         string    `json:"status"`
	FailingSince   time.Time `json:"failingSince"`
	DisabledAt     time.Time `json:"disabledAt"`
}

// publishDisabled builds the outbox entry that publishes a subscription's
// disabling to the other contexts (work.PublishType), with the same detail
// shape as the message events.
func (r *Repository) publishDisabled(tenantID string, s *domain.Subscription, eventID string, meta invocation.Meta, now time.Time) (eventstore.OutboxEntry, error) {
	data := DisabledData{SubscriptionID: s.ID, ScopeID: s.ScopeID, Status: string(s.Status)}
	if s.FailingSince != nil {
		data.FailingSince = *s.FailingSince
	}
	if s.DisabledAt != nil {
		data.DisabledAt = *s.DisabledAt
	}
	detail, err := json.Marshal(struct {
		TenantID   string          `json:"tenantId"`
		Invocation invocation.Meta `json:"invocation"`
		ScopePath  []string        `json:"scopePath"`
		Data       DisabledData    `json:"data"`
	}{tenantID, meta, s.ScopePath, data})
	if err != nil {
		return eventstore.OutboxEntry{}, fmt.Errorf("publish %s: %w", domain.TypeSubscriptionDisabled, err)
	}
	entry, err := work.Publication(r.ids.New(ids.Work), work.IntegrationEvent{
		ID: eventID, Source: IntegrationSource, Type: domain.TypeSubscriptionDisabled, TenantID: tenantID, Time: now, Detail: detail,
	}, now)
	if err != nil {
		return eventstore.OutboxEntry{}, err
	}
	entry.Invocation = meta
	return entry, nil
}
