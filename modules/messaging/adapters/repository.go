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
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// Repository implements app.Repository and app.Rebuilder over the event store.
type Repository struct {
	store eventstore.Store
	ids   ids.Generator
	clock clock.Clock
}

var (
	_ app.Repository = (*Repository)(nil)
	_ app.Rebuilder  = (*Repository)(nil)
)

// NewRepository returns a repository writing to store; gen makes event and
// work ids, clk stamps events.
func NewRepository(store eventstore.Store, gen ids.Generator, clk clock.Clock) *Repository {
	return &Repository{store: store, ids: gen, clock: clk}
}

// history reads and decodes a whole stream, oldest first.
func (r *Repository) history(ctx context.Context, tenantID, stream string) ([]domain.Recorded, error) {
	return eventstore.ReadDecoded(ctx, r.store, tenantID, stream, decode)
}

// Channel implements app.Repository.
func (r *Repository) Channel(ctx context.Context, tenantID, channelID string) (*domain.Channel, error) {
	if !ids.Valid(ids.Channel, channelID) {
		return nil, errs.NotFound("channel")
	}
	h, err := r.history(ctx, tenantID, ChannelStream(channelID))
	if err != nil {
		return nil, err
	}
	c := domain.ReplayChannel(tenantID, h)
	if c == nil {
		return nil, errs.NotFound("channel")
	}
	return c, nil
}

// Message implements app.Repository.
func (r *Repository) Message(ctx context.Context, tenantID, messageID string) (*domain.Message, error) {
	if !ids.Valid(ids.Message, messageID) {
		return nil, errs.NotFound("message")
	}
	h, err := r.history(ctx, tenantID, MessageStream(messageID))
	if err != nil {
		return nil, err
	}
	m := domain.ReplayMessage(tenantID, h)
	if m == nil {
		return nil, errs.NotFound("message")
	}
	return m, nil
}

// MessageHistory implements app.Repository: the stored events, each one's data
// decoded and encoded again (historyData: times in the contract's format),
// or as stored when it does not decode (a newer type). During a rolling
// deploy, a field a newer version adds to an event of the same schema
// version does not show when an older version answers.
func (r *Repository) MessageHistory(ctx context.Context, tenantID, messageID string) ([]app.HistoryEvent, error) {
	if !ids.Valid(ids.Message, messageID) {
		return nil, errs.NotFound("message")
	}
	stream := MessageStream(messageID)
	evs, err := r.store.ReadStream(ctx, tenantID, stream, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	if len(evs) == 0 {
		return nil, errs.NotFound("message")
	}
	out := make([]app.HistoryEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, app.HistoryEvent{
			EventID: e.ID, Type: e.Type, Version: e.Version, OccurredAt: e.OccurredAt,
			InvocationID: e.Invocation.InvocationID, Principal: e.Invocation.Principal, Data: historyData(e),
		})
	}
	return out, nil
}

// historyData is an event's data as get-message-history shows it: decoded
// and encoded again, so that an event stored before domain.Timestamp shows its
// times in the contract's format too; what does not decode shows as stored.
func historyData(e eventstore.Event) []byte {
	ev, err := codec.Decode(e)
	if err != nil {
		return e.Data
	}
	data, err := marshal(ev)
	if err != nil {
		return e.Data
	}
	return data
}

// SaveChannel implements app.Repository: the events, the channel's row and
// its global route row (if absent when the channel is created: a channel id
// is never taken twice), in one commit through eventstore.Write.
func (r *Repository) SaveChannel(ctx context.Context, tenantID string, c app.Change) error {
	if tenantID == "" || len(c.Events) == 0 {
		return fmt.Errorf("save channel: no tenant or no events: %w", eventstore.ErrInvalid)
	}
	first, ok := c.Events[0].(domain.ChannelCreated)
	if !ok && c.Base == 0 {
		return fmt.Errorf("save channel: a new channel starts with %s, not %s: %w", domain.TypeChannelCreated, c.Events[0].EventType(), eventstore.ErrInvalid)
	}
	stream, err := streamOf(c.Events[0])
	if err != nil {
		return fmt.Errorf("save channel: %w", err)
	}
	now := r.clock.Now()
	var history []domain.Recorded
	if c.Base > 0 {
		if history, err = r.history(ctx, tenantID, stream); err != nil {
			return fmt.Errorf("save channel: %w", err)
		}
	}
	sa := eventstore.StreamAppend{StreamID: stream, ExpectedVersion: c.Base}
	for i, ev := range c.Events {
		if s, err := streamOf(ev); err != nil || s != stream {
			return fmt.Errorf("save %s: event %s of another stream %q: %w", stream, ev.EventType(), s, eventstore.ErrInvalid)
		}
		e, err := encode(ctx, r.ids, ev, now)
		if err != nil {
			return fmt.Errorf("save %s: %w", stream, err)
		}
		sa.Events = append(sa.Events, e)
		history = append(history, domain.Recorded{Event: ev, Version: c.Base + int64(i) + 1, OccurredAt: now})
	}
	recs, err := ProjectChannel(tenantID, history)
	if err != nil {
		return fmt.Errorf("save %s: %w", stream, err)
	}
	if ok && c.Base == 0 {
		for i := range recs {
			if recs[i].Collection == CollectionChannelRoutes && recs[i].Key == first.ChannelID {
				recs[i].IfAbsent = true
			}
		}
	}
	commit := &eventstore.Commit{TenantID: tenantID, Appends: []eventstore.StreamAppend{sa}, Records: recs}
	return r.write(ctx, commit, stream)
}

// SaveMessage implements app.Repository. The events are appended at
// before.Version (0 for a new message); the row is the message after
// applying them to a copy of before, stamped now; the provider-message
// lookup row is written when an event brings a provider message id
// (message-sent; message-received if absent); each public status change is one
// integration event (work.Publication) whose id is the domain event's evt_
// id, so a subscriber webhook's webhook-id is stable; the work items join the
// outbox (DueAt zero: now).
func (r *Repository) SaveMessage(ctx context.Context, tenantID string, before *domain.Message, events []domain.Event, wk ...app.Work) error {
	if tenantID == "" {
		return fmt.Errorf("save message: no tenant: %w", eventstore.ErrInvalid)
	}
	if len(events) == 0 && len(wk) == 0 {
		return nil
	}
	now := r.clock.Now()
	meta := invocation.From(ctx).Meta()
	m := domain.Message{TenantID: tenantID, CreatedAt: now}
	if before != nil {
		m = *before
	}
	id := m.ID
	if id == "" && len(events) > 0 {
		id = messageIDOf(events[0])
	}
	if !ids.Valid(ids.Message, id) {
		return fmt.Errorf("save message: message id %q: %w", id, eventstore.ErrInvalid)
	}
	stream := MessageStream(id)
	commit := &eventstore.Commit{TenantID: tenantID}
	if len(events) > 0 {
		sa := eventstore.StreamAppend{StreamID: stream, ExpectedVersion: m.Version}
		base, lookup, received, receipt := m.Version, false, false, false
		for i, ev := range events {
			if messageIDOf(ev) != id {
				return fmt.Errorf("save %s: event %s of another stream: %w", stream, ev.EventType(), eventstore.ErrInvalid)
			}
			e, err := encode(ctx, r.ids, ev, now)
			if err != nil {
				return fmt.Errorf("save %s: %w", stream, err)
			}
			sa.Events = append(sa.Events, e)
			m.Apply(domain.Recorded{Event: ev, Version: base + int64(i) + 1, OccurredAt: now})
			switch ev.(type) {
			case domain.MessageSent:
				lookup = true
			case domain.MessageReceived:
				lookup, received = true, true
			case domain.MessageDelivered, domain.MessageUndelivered:
				receipt = lookup // with the send: the receipt that waited in the lookup row
			}
			if typ := app.PublicEventType(ev); typ != "" {
				entry, err := r.publication(tenantID, e.ID, typ, meta, &m, now)
				if err != nil {
					return fmt.Errorf("save %s: %w", stream, err)
				}
				commit.Outbox = append(commit.Outbox, entry)
			}
		}
		if m.ID != id {
			return fmt.Errorf("save %s: a new message starts with its acceptance or receipt: %w", stream, eventstore.ErrInvalid)
		}
		row, err := ProjectMessage(&m)
		if err != nil {
			return fmt.Errorf("save %s: %w", stream, err)
		}
		// The row, written with every append, keeps the stream's version
		// (no head item on DynamoDB: ADR 0008).
		sa.HeadRecord = &eventstore.RecordRef{Collection: row.Collection, Key: row.Key}
		commit.Appends = []eventstore.StreamAppend{sa}
		commit.Records = append(commit.Records, row)
		if lookup {
			rec, ok, err := ProjectProviderMessage(&m)
			if err != nil {
				return fmt.Errorf("save %s: %w", stream, err)
			}
			if ok {
				// An inbound message is made once per (channel, provider
				// message id): a concurrent twin's commit conflicts, and its
				// unit of work runs again and finds this one. A send's row
				// is written only if absent too: a receipt that waits there
				// (app.PendingReceipt) makes the commit conflict, and the
				// re-run applies it with the send, replacing it.
				rec.IfAbsent = received || !receipt
				if received {
					// A receipt waiting under an inbound message's id
					// (a stray one: ids of both directions share the key)
					// gives way, else the inbound would conflict for good;
					// the message is then made once by a claim row of its
					// own, written if absent, in place of the lookup row's
					// condition.
					waiting, err := r.PendingReceipt(ctx, tenantID, m.ChannelID, m.ProviderMessageID)
					if err != nil {
						return fmt.Errorf("save %s: %w", stream, err)
					}
					if waiting != nil {
						rec.IfAbsent = false
						commit.Records = append(commit.Records, eventstore.Record{Collection: CollectionInboundClaims,
							Key: rec.Key, Data: rec.Data, IfAbsent: true})
					}
				}
				commit.Records = append(commit.Records, rec)
			}
		}
	}
	for _, w := range wk {
		payload, err := json.Marshal(w.Payload)
		if err != nil {
			return fmt.Errorf("save %s: encode work %s: %w", stream, w.Type, err)
		}
		due := w.DueAt
		if due.IsZero() {
			due = now
		}
		commit.Outbox = append(commit.Outbox, eventstore.OutboxEntry{
			ID: r.ids.New(ids.Work), TenantID: tenantID, Type: w.Type, Payload: payload, DueAt: due, Invocation: meta,
		})
	}
	return r.write(ctx, commit, stream)
}

// publication is the outbox entry of one integration event of m.
func (r *Repository) publication(tenantID, eventID, typ string, meta invocation.Meta, m *domain.Message, now time.Time) (eventstore.OutboxEntry, error) {
	detail, err := marshal(app.MessageEventDetail{
		TenantID: tenantID, Invocation: meta, ScopePath: m.ScopePath, Data: messageRow(m).View(),
	})
	if err != nil {
		return eventstore.OutboxEntry{}, fmt.Errorf("encode %s: %w", typ, err)
	}
	ev := work.IntegrationEvent{ID: eventID, Source: app.EventSource, Type: typ, TenantID: tenantID, Time: now, Detail: detail}
	entry, err := work.Publication(r.ids.New(ids.Work), ev, now)
	if err != nil {
		return eventstore.OutboxEntry{}, err
	}
	entry.Invocation = meta
	return entry, nil
}

// PendingReceipt implements app.Repository.
func (r *Repository) PendingReceipt(ctx context.Context, tenantID, channelID, providerMessageID string) (*app.PendingReceipt, error) {
	key := ProviderMessageKey(channelID, providerMessageID)
	rec, err := r.store.GetRecord(ctx, tenantID, CollectionProviderMessages, key)
	if errors.Is(err, eventstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", CollectionProviderMessages, key, err)
	}
	var row ProviderMessageRow
	if err := json.Unmarshal(rec.Data, &row); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", CollectionProviderMessages, key, err)
	}
	if row.MessageID != "" || row.Pending == nil {
		return nil, nil
	}
	at, err := time.Parse(time.RFC3339Nano, row.Pending.ReceivedAt)
	if err != nil {
		return nil, fmt.Errorf("decode %s %s: receivedAt: %w", CollectionProviderMessages, key, err)
	}
	return &app.PendingReceipt{Status: domain.Status(row.Pending.Status), Reason: row.Pending.Reason,
		WebhookID: row.Pending.WebhookID, ReceivedAt: at}, nil
}

// SavePendingReceipt implements app.Repository.
func (r *Repository) SavePendingReceipt(ctx context.Context, tenantID, channelID, providerMessageID string, p app.PendingReceipt) error {
	key := ProviderMessageKey(channelID, providerMessageID)
	data, err := marshal(ProviderMessageRow{Pending: &PendingReceiptRow{Status: string(p.Status), Reason: p.Reason,
		WebhookID: p.WebhookID, ReceivedAt: p.ReceivedAt.UTC().Format(time.RFC3339Nano)}})
	if err != nil {
		return fmt.Errorf("save pending receipt %s: %w", key, err)
	}
	return r.write(ctx, &eventstore.Commit{TenantID: tenantID, Records: []eventstore.Record{{
		Collection: CollectionProviderMessages, Key: key, Data: data, IfAbsent: true,
		ExpiresAt: p.ReceivedAt.Add(app.PendingReceiptTTL),
	}}}, CollectionProviderMessages+"/"+key)
}

// write stages or commits c and maps a version conflict to app.ErrConcurrency.
func (r *Repository) write(ctx context.Context, c *eventstore.Commit, stream string) error {
	if err := eventstore.Write(ctx, r.store, c); err != nil {
		if errors.Is(err, eventstore.ErrConflict) {
			return app.ErrConcurrency.Wrap(fmt.Errorf("save %s: %w", stream, err))
		}
		return fmt.Errorf("save %s: %w", stream, err)
	}
	return nil
}

// rebuildAttempts bounds the re-derivations of one row while its stream keeps moving.
const rebuildAttempts = 5

// RebuildChannel implements app.Rebuilder.
func (r *Repository) RebuildChannel(ctx context.Context, tenantID, channelID string) (bool, error) {
	if !ids.Valid(ids.Channel, channelID) {
		return false, nil
	}
	return r.rebuild(ctx, tenantID, ChannelStream(channelID), func(h []domain.Recorded) ([]eventstore.Record, error) {
		return ProjectChannel(tenantID, h)
	})
}

// RebuildMessage implements app.Rebuilder.
func (r *Repository) RebuildMessage(ctx context.Context, tenantID, messageID string) (bool, error) {
	if !ids.Valid(ids.Message, messageID) {
		return false, nil
	}
	return r.rebuild(ctx, tenantID, MessageStream(messageID), func(h []domain.Recorded) ([]eventstore.Record, error) {
		m := domain.ReplayMessage(tenantID, h)
		if m == nil {
			return nil, fmt.Errorf("rebuild message %s: no acceptance or receipt in %d events", messageID, len(h))
		}
		row, err := ProjectMessage(m)
		if err != nil {
			return nil, err
		}
		// The row keeps the stream's version (it is the stream's head
		// record), and is not written over a newer one.
		row.Source = &eventstore.StreamVersion{StreamID: MessageStream(messageID), Version: h[len(h)-1].Version}
		recs := []eventstore.Record{row}
		if lookup, ok, err := ProjectProviderMessage(m); err != nil {
			return nil, err
		} else if ok {
			recs = append(recs, lookup)
		}
		return recs, nil
	})
}

// rebuild re-derives the rows of one stream and commits them at once (not
// staged: a unit of work holds at most eventstore.MaxCommitItems items, a
// rebuild of 100 entities up to twice that). A row with a Source is written
// only while its stream is not past the version it was derived from (a
// conflict derives the rows again); rows without one are written without a
// condition, so a writer that appends between the read and the write would
// be overwritten by the older rows: rebuild reads the stream's tail after
// its write and derives the rows again when it moved. Whatever commits after
// that check writes its own, newer rows.
func (r *Repository) rebuild(ctx context.Context, tenantID, stream string, project func([]domain.Recorded) ([]eventstore.Record, error)) (bool, error) {
	for range rebuildAttempts {
		h, err := r.history(ctx, tenantID, stream)
		if err != nil {
			return false, fmt.Errorf("rebuild %s: %w", stream, err)
		}
		if len(h) == 0 {
			return false, nil
		}
		recs, err := project(h)
		if err != nil {
			return false, fmt.Errorf("rebuild %s: %w", stream, err)
		}
		err = r.store.Commit(ctx, &eventstore.Commit{TenantID: tenantID, Records: recs})
		if errors.Is(err, eventstore.ErrConflict) {
			continue // the stream moved past what was read: derive again
		}
		if err != nil {
			return false, fmt.Errorf("rebuild %s: %w", stream, err)
		}
		version := h[len(h)-1].Version
		newer, err := r.store.ReadStream(ctx, tenantID, stream, version+1, 1)
		if err != nil {
			return false, fmt.Errorf("rebuild %s: check version %d: %w", stream, version, err)
		}
		if len(newer) == 0 {
			return true, nil
		}
	}
	return false, fmt.Errorf("rebuild %s: the stream kept moving: %w", stream, eventstore.ErrConflict)
}
