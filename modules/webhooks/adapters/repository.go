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

// EnabledSubscriptions implements app.Repository: the rows of one
// partition (the scope) of EnabledSubscriptionsList, every page.
func (r *Repository) EnabledSubscriptions(ctx context.Context, tenantID, scopeID string) ([]*domain.Subscription, error) {
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
// at most domain.MaxAttempts attempts).
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
	for _, ch := range c.Subscriptions {
		s := &domain.Subscription{}
		if ch.Before != nil {
			cp := *ch.Before
			s = &cp
		}
		sa, stored, err := r.appendEvents(ctx, s.Version, ch.Events, now, s.Apply)
		if err != nil {
			return err
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
// "webhooks.subscription-disabled".
type DisabledData struct {
	SubscriptionID string    `json:"subscriptionId"`
	ScopeID        string    `json:"scopeId"`
	URL            string    `json:"url"`
	Status         string    `json:"status"`
	FailingSince   time.Time `json:"failingSince"`
	DisabledAt     time.Time `json:"disabledAt"`
}

// publishDisabled builds the outbox entry that publishes a subscription's
// disabling to the other contexts (work.PublishType), with the same detail
// shape as the message events.
func (r *Repository) publishDisabled(tenantID string, s *domain.Subscription, eventID string, meta invocation.Meta, now time.Time) (eventstore.OutboxEntry, error) {
	data := DisabledData{SubscriptionID: s.ID, ScopeID: s.ScopeID, URL: s.URL, Status: string(s.Status)}
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
