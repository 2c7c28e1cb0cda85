package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// MaxDeliveriesPerCommit bounds the deliveries one fan-out commit creates:
// each costs at most five store items (stream head, its event or two, row,
// a retry item and a health item, never all of them) and a commit takes at
// most 100. The rest continue in a WorkFanOut item.
const MaxDeliveriesPerCommit = 15

// MaxSubscriptionsPerContinuation bounds the subscription ids one WorkFanOut
// item carries: with an inline body (up to InlineBodyMax, more once escaped
// in JSON) 1,000 ids of ~30 bytes keep the item far below the outbox's
// payload limit (eventstore.MaxOutboxPayload, 200 KiB). More subscriptions
// than that continue in several items.
const MaxSubscriptionsPerContinuation = 1000

// chunks splits ids into runs of at most n (n > 0), in order.
func chunks(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > n {
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

// messageIDOf is the "messageId" of a message event's data ("" without one).
func messageIDOf(data json.RawMessage) string {
	var m struct {
		MessageID string `json:"messageId"`
	}
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	return m.MessageID
}

// MessageEventDetail is the detail of a message integration event
// (work.IntegrationEvent.Detail), as the messaging context publishes it.
type MessageEventDetail struct {
	TenantID   string          `json:"tenantId"`
	Invocation invocation.Meta `json:"invocation"`
	// ScopePath is the message's scope path: root .. the message's scope.
	ScopePath []string `json:"scopePath"`
	// Data is the message (the contract's message object).
	Data json.RawMessage `json:"data"`
}

// DeliverPayload is the payload of WorkDeliver.
type DeliverPayload struct {
	DeliveryID string `json:"deliveryId"`
	Attempt    int    `json:"attempt"` // 1..domain.MaxAttempts
	// Deferrals is how many tries of the delivery were put off before this
	// one (domain.Delivery.Deferrals): with Attempt, what makes a
	// redelivered item of a try already recorded do nothing. Absent: 0.
	Deferrals int `json:"deferrals,omitempty"`
	// Body is the webhook body when it is at most InlineBodyMax bytes: it
	// travels with the attempt (and its retries) instead of in a
	// "webhook-payloads" row. A string, not raw JSON: the bytes come back
	// exactly as built (raw JSON would be re-encoded, with HTML escaping).
	// Empty: the attempt reads the event's payload row.
	Body string `json:"body,omitempty"`
}

// InlineBodyMax is the largest webhook body the attempts carry in their work
// items (DeliverPayload.Body): an SMS's or a plain email's. A larger one is
// stored once per event in a "webhook-payloads" row, which every attempt of
// every subscription reads, rather than copied into each attempt item. In
// the capacity run the row cost 2 write units per event in its transaction
// (ADR 0008); the body in the work item, compressed by the store, costs
// none while the item stays under 1 KB.
const InlineBodyMax = 16 << 10

// FanOutPayload is the payload of WorkFanOut: the subscriptions an event
// still has to be delivered to, and its body when it travels inline.
type FanOutPayload struct {
	EventID         string   `json:"eventId"`
	EventType       string   `json:"eventType"`
	MessageID       string   `json:"messageId,omitempty"` // the event's message; absent in items queued before
	SubscriptionIDs []string `json:"subscriptionIds"`
	// Body is the webhook body when it is carried inline (InlineBodyMax);
	// empty when stored in a payload row already.
	Body string `json:"body,omitempty"`
	// EventTime is the event's time, the time part of the delivery ids of an
	// event whose id is not an evt_ id (see DeliveryID). Absent in items
	// queued before it existed.
	EventTime time.Time `json:"eventTime,omitzero"`
}

// DeliveryID is the id of the delivery of an event to a subscription:
// derived from them (ids.Derive), so that every run of the fan-out names the
// same delivery and creating its stream at version 0 is the dedupe (ADR
// 0017's conditioned write; no key row, ADR 0008). Its time part is the
// event's: the time of an evt_ id, else eventTime.
func DeliveryID(tenantID, subscriptionID, eventID string, eventTime time.Time) string {
	if t, err := ids.Time(eventID); err == nil && ids.Valid(ids.Event, eventID) {
		eventTime = t
	}
	return ids.Derive(ids.Delivery, eventTime, tenantID, subscriptionID, eventID)
}

// FanOutHandler is the subscriber of the message integration events: it
// creates one delivery per enabled subscription that receives the event,
// with its first attempt.
type FanOutHandler struct {
	attempter
}

// Handle delivers one integration event to the matching subscriptions: those
// enabled at any scope of the message's scope path (one keyed list query per
// scope: a subscription sees its scope and every scope below it), created
// no later than the event, whose event types match. It is idempotent: a
// subscription that has a delivery of the event gets none again. An event
// that cannot be delivered (no tenant, scope path or data object) is logged
// and dropped: retrying would not help.
// Errors are the store's (the work path retries).
func (h FanOutHandler) Handle(ctx context.Context, ev work.IntegrationEvent) error {
	if !domain.KnownEventType(ev.Type) {
		return nil
	}
	log := h.Logger.With(slog.String("eventId", ev.ID), slog.String("eventType", ev.Type))
	var d MessageEventDetail
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		log.ErrorContext(ctx, "message event without a readable detail; not delivered", slog.String("error", err.Error()))
		return nil
	}
	tenantID := ev.TenantID
	if tenantID == "" {
		tenantID = d.TenantID
	}
	if reason := checkEvent(ev, d, tenantID); reason != "" {
		log.ErrorContext(ctx, "message event not delivered: "+reason, slog.String("tenantId", tenantID))
		return nil
	}
	at := ev.Time
	if at.IsZero() {
		at = h.Clock.Now()
	}
	body, err := domain.BuildPayload(ev.Type, at, d.Data)
	if err != nil {
		log.ErrorContext(ctx, "message event whose data is not an object; not delivered")
		return nil
	}
	ctx = continueInvocation(ctx, d.Invocation, tenantID)
	var targets []string
	loaded := map[string]*domain.Subscription{}
	for _, scopeID := range d.ScopePath {
		subs, err := h.Repo.EnabledSubscriptions(ctx, tenantID, scopeID)
		if err != nil {
			return fmt.Errorf("fan out %s: subscriptions of %s: %w", ev.ID, scopeID, err)
		}
		for _, s := range subs {
			// A subscription made after the event does not get it: the
			// target set is the same on every run of the event (a
			// redelivered publication stages nothing: ADR 0017).
			if s.Status == domain.Enabled && domain.MatchesEventType(s.EventTypes, ev.Type) && loaded[s.ID] == nil && !s.CreatedAt.After(at) {
				loaded[s.ID] = s
				targets = append(targets, s.ID)
			}
		}
	}
	return deliveryMaker{h.attempter}.Make(ctx, tenantID, ev.ID, ev.Type, messageIDOf(d.Data), ev.Time, body, targets, loaded)
}

// checkEvent returns why an event cannot be delivered, or "".
func checkEvent(ev work.IntegrationEvent, d MessageEventDetail, tenantID string) string {
	switch {
	case !ids.Valid(ids.Tenant, tenantID):
		return "no tenant"
	case d.TenantID != "" && d.TenantID != tenantID:
		return "detail of another tenant"
	case !validEventID(ev.ID):
		return "no usable event id"
	case len(d.ScopePath) == 0:
		return "no scope path"
	}
	for _, s := range d.ScopePath {
		if !ids.Valid(ids.Scope, s) {
			return "a scope path with a bad scope id"
		}
	}
	return ""
}

// validEventID reports whether id can be a webhook-id and a key: 1..200
// letters, digits, '_', '-', '.' or ':' (an evt_ id, or an EventBridge id).
func validEventID(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// continueInvocation makes the work of an event continue the invocation that
// caused it (its invocation and trace ids travel into the deliveries and
// their webhooks), acting as the system.
func continueInvocation(ctx context.Context, m invocation.Meta, tenantID string) context.Context {
	if m.InvocationID == "" && m.TraceID == "" {
		return ctx
	}
	trigger := invocation.From(ctx).Trigger
	if trigger == "" {
		trigger = work.TriggerWorker
	}
	return invocation.With(ctx, invocation.FromMeta(m, trigger, tenantID))
}

// deliveryMaker creates the deliveries of one event and makes their first
// attempts, shared by the subscriber and WorkFanOut.
type deliveryMaker struct {
	attempter
}

// Make creates a delivery for each of subscriptionIDs that has none of the
// event yet, at most MaxDeliveriesPerCommit, and makes its first attempt (in
// parallel) before the commit that records both: a delivery is created
// with its first attempt's outcome, and only a failed attempt stages a
// WorkDeliver item for the next one (ADR 0008). An attempt that could not
// be made (its subscription or the body could not be read, its key did not
// open, it panicked) does not hold back the others: its delivery is created
// with a WorkDeliver item for attempt 1, which the work path runs and
// retries on its own. The rest of the subscriptions go into WorkFanOut items
// (of at most MaxSubscriptionsPerContinuation ids each). body travels in the
// retry items when it is at most InlineBodyMax bytes, else it is stored with
// the first deliveries (nil: stored already, and read once for the
// attempts). eventTime is the event's time (see DeliveryID; zero when
// unknown). loaded holds the subscriptions the caller read already (by id;
// may be nil): their attempts use them instead of reading them again.
//
// An attempt whose record does not commit (a crash, a store failure, a
// conflict with a concurrent fan-out of the same event) is made again by the
// next run, with the same webhook-id (receivers dedupe by it: section 9).
func (m deliveryMaker) Make(ctx context.Context, tenantID, eventID, eventType, messageID string, eventTime time.Time, body []byte, subscriptionIDs []string, loaded map[string]*domain.Subscription) error {
	now := m.Clock.Now()
	c := Changes{TenantID: tenantID}
	inline := ""
	if body != nil && len(body) <= InlineBodyMax {
		inline = string(body)
	}
	var fresh []*domain.Delivery
	var creations []domain.DeliveryCreated // fresh[i]'s creation
	continued := false
	for i, subID := range subscriptionIDs {
		if len(fresh) == MaxDeliveriesPerCommit {
			for _, rest := range chunks(subscriptionIDs[i:], MaxSubscriptionsPerContinuation) {
				c.Work = append(c.Work, Work{Type: WorkFanOut, DueAt: now,
					Payload: FanOutPayload{EventID: eventID, EventType: eventType, MessageID: messageID, SubscriptionIDs: rest, EventTime: eventTime, Body: inline}})
			}
			continued = true
			break
		}
		deliveryID := DeliveryID(tenantID, subID, eventID, eventTime)
		exists, err := m.Repo.DeliveryExists(ctx, tenantID, subID, eventID, deliveryID)
		if err != nil {
			return fmt.Errorf("fan out %s: %w", eventID, err)
		}
		if exists {
			continue
		}
		created, err := domain.CreateDelivery(deliveryID, subID, eventID, eventType)
		if err != nil {
			return err
		}
		created.MessageID = messageID
		d := &domain.Delivery{}
		if err := d.Apply(domain.Recorded{Event: created, Version: 1, OccurredAt: now}); err != nil {
			return fmt.Errorf("fan out %s: %w", eventID, err)
		}
		fresh, creations = append(fresh, d), append(creations, created)
	}
	if len(fresh) > 0 && body != nil && inline == "" {
		c.Payloads = append(c.Payloads, Payload{EventID: eventID, Body: body})
	}
	failures := make([]error, len(fresh))
	if len(fresh) > 0 && body == nil {
		// A continuation of a large body: read its row once, not per attempt.
		var err error
		if body, err = m.Repo.Payload(ctx, tenantID, eventID); err != nil {
			for i := range failures {
				failures[i] = err
			}
		}
	}
	outcomes := make([]outcome, len(fresh))
	var wg sync.WaitGroup
	for i, d := range fresh {
		if failures[i] != nil {
			continue
		}
		wg.Go(func() {
			outcomes[i], failures[i] = m.attemptSafely(ctx, tenantID, d, loaded[d.SubscriptionID], body, inline)
		})
	}
	wg.Wait()
	for i, d := range fresh {
		created := creations[i]
		if failures[i] != nil {
			// Recorded without an attempt: the attempt runs as its own item.
			c.Deliveries = append(c.Deliveries, DeliveryChange{Events: []domain.Event{created}})
			c.Work = append(c.Work, Work{Type: WorkDeliver, DueAt: now, Payload: DeliverPayload{DeliveryID: d.ID, Attempt: 1, Body: inline}})
			continue
		}
		c.Deliveries = append(c.Deliveries, DeliveryChange{Events: domain.FoldFirstAttempt(created, outcomes[i].events)})
		c.Work = append(c.Work, outcomes[i].work...)
	}
	if len(c.Deliveries) == 0 && len(c.Work) == 0 {
		return nil
	}
	// A concurrent fan-out of the same event that creates one of these
	// deliveries first makes this commit conflict on the delivery's stream
	// (created at version 0 under the same derived id); the unit of work
	// runs the handler again, which then skips it.
	if err := m.Repo.Save(ctx, c); err != nil {
		return fmt.Errorf("fan out %s: %w", eventID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		m.Logger.InfoContext(ctx, "deliveries created", slog.String("eventId", eventID), slog.String("eventType", eventType),
			slog.Int("deliveries", len(fresh)), slog.Bool("continued", continued))
		for i, o := range outcomes {
			if failures[i] != nil {
				m.Logger.WarnContext(ctx, "first attempt not made; it runs as a work item", slog.String("deliveryId", fresh[i].ID),
					slog.String("subscriptionId", fresh[i].SubscriptionID), slog.String("error", failures[i].Error()))
				continue
			}
			if o.log != nil {
				o.log(ctx)
			}
		}
	})
	return nil
}

// attemptSafely makes the first attempt of d, turning a panic into an error
// (the goroutine it runs on is not the unit of work's, which recovers the
// handler's own panics).
func (m deliveryMaker) attemptSafely(ctx context.Context, tenantID string, d *domain.Delivery, sub *domain.Subscription, body []byte, inline string) (o outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			o, err = outcome{}, fmt.Errorf("deliver %s: panic: %v", d.ID, r)
		}
	}()
	return m.attempt(ctx, tenantID, d, sub, 1, body, inline)
}
