package adapters

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/boltstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/dynamostore/dynamotest"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

var t0 = time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC)

const (
	tenant = "tnt_01JX0000000000000000000001"
	chnA   = "chn_01JX00000000000000000000AA"
)

type fixture struct {
	store eventstore.Store
	clock *clock.Fixed
	ids   *ids.Sequence
	repo  *Repository
	reads *ReadModel
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := clock.NewFixed(t0)
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "store.db"), boltstore.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return newFixtureOn(store, clk)
}

// newFixtureOn is a fixture on store, whose clock is clk.
func newFixtureOn(store eventstore.Store, clk *clock.Fixed) *fixture {
	f := &fixture{store: store, clock: clk, ids: ids.NewSequence(t0)}
	f.repo = NewRepository(store, f.ids, f.clock)
	f.reads = NewReadModel(store, "https://sb.example.com/")
	return f
}

var meta = invocation.Context{
	InvocationID: "inv_01JX0000000000000000000009", ActionID: "01JX000000000000000000000A",
	TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Trigger: "http",
	Principal: invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_1", TenantID: tenant},
}

func callCtx() context.Context { c := meta; return invocation.With(context.Background(), &c) }

func (f *fixture) accepted(scope, channel string, sendAt *time.Time) domain.MessageAccepted {
	ev := domain.MessageAccepted{
		MessageID: f.ids.New(ids.Message), ChannelID: channel, ScopeID: scope, ScopePath: []string{"scp_root", scope},
		ChannelType: domain.ChannelSMS, Provider: "sandbox", To: "+15551230000", From: "+15550001111",
		Content: domain.Content{Text: "hi"}, Status: domain.StatusQueued,
	}
	if sendAt != nil {
		ev.SendAt, ev.Status = new(domain.At(*sendAt)), domain.StatusScheduled
	}
	return ev
}

func TestCodecRoundTripsEveryEvent(t *testing.T) {
	at := domain.At(t0.Add(time.Hour))
	events := []domain.Event{
		domain.ChannelCreated{ChannelID: "chn_1", ScopeID: "scp_1", ScopePath: []string{"scp_1"}, Name: "n", Type: domain.ChannelSMS,
			Provider: "sandbox", From: "+15550001111", Config: map[string]string{"a": "b"}, SealedCredentials: []byte{1, 2}, SealedInboundSecret: []byte{3}},
		domain.MessageAccepted{MessageID: "msg_1", ChannelID: "chn_1", ScopeID: "scp_1", ScopePath: []string{"scp_1"}, ChannelType: domain.ChannelEmail,
			Provider: "sandbox", To: "a@example.com", From: "b@example.com", Content: domain.Content{Subject: "s", HTML: "<p>"},
			Metadata: map[string]string{"k": "v"}, SendAt: &at, Status: domain.StatusScheduled},
		domain.MessageReleased{MessageID: "msg_1"},
		domain.MessageCanceled{MessageID: "msg_1"},
		domain.SendAttemptStarted{MessageID: "msg_1", Attempt: 2},
		domain.SendAttemptFailed{MessageID: "msg_1", Attempt: 2, Reason: "r", RetryAt: at},
		domain.MessageSent{MessageID: "msg_1", ProviderMessageID: "p1", Attempts: 3},
		domain.MessageFailed{MessageID: "msg_1", Reason: "r", Attempts: 1},
		domain.MessageDelivered{MessageID: "msg_1"},
		domain.MessageUndelivered{MessageID: "msg_1", Reason: "r"},
		domain.MessageReceived{MessageID: "msg_2", ChannelID: "chn_1", ScopeID: "scp_1", ScopePath: []string{"scp_1"}, ChannelType: domain.ChannelSMS,
			Provider: "sandbox", ProviderMessageID: "p2", To: "+1555", From: "+1666", Content: domain.Content{Text: "yo"}},
	}
	gen := ids.NewSequence(t0)
	for i, ev := range events {
		e, err := encode(callCtx(), gen, ev, t0)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != ev.EventType() || e.SchemaVersion != 1 || !ids.Valid(ids.Event, e.ID) || e.Invocation != meta.Meta() {
			t.Fatalf("envelope = %+v", e)
		}
		e.Version = int64(i + 1)
		r, err := decode(e)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Event, ev) || r.Version != int64(i+1) || !r.OccurredAt.Equal(t0) {
			t.Fatalf("decode(encode(%+v)) = %+v", ev, r)
		}
		if _, err := streamOf(ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []eventstore.Event{
		{Type: "messaging.unknown", SchemaVersion: 1, Data: []byte(`{}`)},
		{Type: domain.TypeMessageSent, SchemaVersion: 2, Data: []byte(`{}`)},
		{Type: domain.TypeMessageSent, SchemaVersion: 1, Data: []byte(`[`)},
	} {
		if _, err := decode(bad); err == nil {
			t.Fatalf("decoded %+v", bad)
		}
	}
	if s, _ := streamOf(domain.MessageSent{MessageID: "msg_9"}); s != "message-msg_9" {
		t.Fatalf("stream = %q", s)
	}
	if s, _ := streamOf(domain.ChannelCreated{ChannelID: "chn_9"}); s != "channel-chn_9" {
		t.Fatalf("stream = %q", s)
	}
}

// staged runs f in a unit of work and returns what it staged.
func staged(t *testing.T, f func(ctx context.Context) error) *eventstore.Commit {
	t.Helper()
	unit := eventstore.NewUnit("")
	if err := f(eventstore.WithUnit(callCtx(), unit)); err != nil {
		t.Fatal(err)
	}
	return unit.Commit()
}

func TestSaveMessageStagesTheWholeCommit(t *testing.T) {
	f := newFixture(t)
	ev := f.accepted("scp_a", "chn_a", nil)
	c := staged(t, func(ctx context.Context) error {
		return f.repo.SaveMessage(ctx, tenant, nil, []domain.Event{ev},
			app.Work{Type: app.WorkDispatch, Payload: app.DispatchPayload{MessageID: ev.MessageID}})
	})
	if c.TenantID != tenant || len(c.Appends) != 1 || len(c.Records) != 1 || len(c.Outbox) != 2 {
		t.Fatalf("commit = %+v", c)
	}
	a := c.Appends[0]
	if a.StreamID != "message-"+ev.MessageID || a.ExpectedVersion != 0 || len(a.Events) != 1 || a.Events[0].Invocation != meta.Meta() {
		t.Fatalf("append = %+v", a)
	}
	// The row, with one entry in each of the six message lists.
	row := c.Records[0]
	if row.Collection != "messages" || row.Key != ev.MessageID || row.IfAbsent || row.Global {
		t.Fatalf("row = %+v", row)
	}
	want := []eventstore.ListEntry{
		{List: eventstore.List{Name: "messages", Slot: 1, Shards: 16}, Partition: "", Sort: ev.MessageID},
		{List: eventstore.List{Name: "messages-by-scope", Slot: 2, Shards: 16}, Partition: "scp_a", Sort: ev.MessageID},
		{List: eventstore.List{Name: "messages-by-channel", Slot: 3, Shards: 16}, Partition: "chn_a", Sort: ev.MessageID},
		{List: eventstore.List{Name: "messages-by-status", Slot: 4, Shards: 16}, Partition: "queued", Sort: ev.MessageID},
		{List: eventstore.List{Name: "messages-by-scope-status", Slot: 5, Shards: 16}, Partition: "scp_a/queued", Sort: ev.MessageID},
		{List: eventstore.List{Name: "messages-by-channel-status", Slot: 6, Shards: 16}, Partition: "chn_a/queued", Sort: ev.MessageID},
	}
	if !reflect.DeepEqual(row.Lists, want) {
		t.Fatalf("lists = %+v\nwant %+v", row.Lists, want)
	}
	if err := eventstore.ValidateLists(row); err != nil {
		t.Fatal(err)
	}
	wantRow := `{"messageId":"` + ev.MessageID + `","channelId":"chn_a","scopeId":"scp_a","scopePath":["scp_root","scp_a"],` +
		`"channelType":"sms","provider":"sandbox","direction":"outbound","to":"+15551230000","from":"+15550001111",` +
		`"content":{"text":"hi"},"status":"queued","attempts":0,"createdAt":"2025-06-07T08:09:10.123Z",` +
		`"updatedAt":"2025-06-07T08:09:10.123Z","version":1}`
	if string(row.Data) != wantRow {
		t.Fatalf("row data = %s\nwant       %s", row.Data, wantRow)
	}

	// The integration event: message.queued, identified by the domain event's id.
	pub := c.Outbox[0]
	if pub.Type != work.PublishType || pub.TenantID != tenant || !pub.DueAt.Equal(t0) || !ids.Valid(ids.Work, pub.ID) || pub.Invocation != meta.Meta() {
		t.Fatalf("publication entry = %+v", pub)
	}
	var ie work.IntegrationEvent
	if err := json.Unmarshal(pub.Payload, &ie); err != nil {
		t.Fatal(err)
	}
	if ie.ID != a.Events[0].ID || ie.Type != "message.queued" || ie.Source != "switchboard.messaging" || ie.TenantID != tenant || !ie.Time.Equal(t0) {
		t.Fatalf("integration event = %+v", ie)
	}
	wantDetail := `{"tenantId":"` + tenant + `","invocation":{"invocationId":"inv_01JX0000000000000000000009",` +
		`"actionId":"01JX000000000000000000000A","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","principal":"service_account:sva_1"},` +
		`"scopePath":["scp_root","scp_a"],"data":{"messageId":"` + ev.MessageID + `","channelId":"chn_a","scopeId":"scp_a",` +
		`"direction":"outbound","to":"+15551230000","from":"+15550001111","content":{"text":"hi"},"status":"queued",` +
		`"statusReason":null,"attempts":0,"metadata":{},"sendAt":null,"createdAt":"2025-06-07T08:09:10.123Z","updatedAt":"2025-06-07T08:09:10.123Z"}}`
	if string(ie.Detail) != wantDetail {
		t.Fatalf("detail = %s\nwant     %s", ie.Detail, wantDetail)
	}

	// The dispatch work, due now.
	w := c.Outbox[1]
	if w.Type != app.WorkDispatch || !w.DueAt.Equal(t0) || string(w.Payload) != `{"messageId":"`+ev.MessageID+`"}` || w.Invocation != meta.Meta() || w.ID == pub.ID {
		t.Fatalf("work = %+v", w)
	}
}

func TestSaveMessageOfAScheduledMessagePublishesNothing(t *testing.T) {
	f := newFixture(t)
	at := t0.Add(time.Hour)
	ev := f.accepted("scp_a", "chn_a", &at)
	c := staged(t, func(ctx context.Context) error {
		return f.repo.SaveMessage(ctx, tenant, nil, []domain.Event{ev}, app.Work{Type: app.WorkDispatch, Payload: app.DispatchPayload{MessageID: ev.MessageID}, DueAt: at})
	})
	if len(c.Outbox) != 1 || c.Outbox[0].Type != app.WorkDispatch || !c.Outbox[0].DueAt.Equal(at) {
		t.Fatalf("outbox = %+v", c.Outbox)
	}
	if !bytes.Contains(c.Records[0].Data, []byte(`"status":"scheduled"`)) || !bytes.Contains(c.Records[0].Data, []byte(`"sendAt":"2025-06-07T09:09:10.123Z"`)) {
		t.Fatalf("row = %s", c.Records[0].Data)
	}
}

// save commits events of a message at once and returns the message after them.
func (f *fixture) save(t *testing.T, before *domain.Message, evs ...domain.Event) *domain.Message {
	t.Helper()
	if err := f.repo.SaveMessage(callCtx(), tenant, before, evs); err != nil {
		t.Fatal(err)
	}
	id := messageIDOf(evs[0])
	m, err := f.repo.Message(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSaveMessageLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	at := t0.Add(time.Minute)
	m := f.save(t, nil, f.accepted("scp_a", chnA, &at))
	f.clock.Advance(time.Minute)

	// Released and sent in one save: two events, one integration event each
	// with the message as it was after that event, and the lookup row.
	rel, _ := m.Release()
	cur := *m
	cur.Apply(domain.Recorded{Event: rel, Version: m.Version + 1})
	sent, _ := cur.Sent("sbx_1", 1)
	c := staged(t, func(ctx context.Context) error { return f.repo.SaveMessage(ctx, tenant, m, []domain.Event{rel, sent}) })
	if c.Appends[0].ExpectedVersion != 1 || len(c.Appends[0].Events) != 2 || len(c.Outbox) != 2 || len(c.Records) != 2 {
		t.Fatalf("commit = %+v", c)
	}
	for i, want := range []struct{ typ, status string }{{"message.queued", "queued"}, {"message.sent", "sent"}} {
		var ie work.IntegrationEvent
		_ = json.Unmarshal(c.Outbox[i].Payload, &ie)
		var d app.MessageEventDetail
		_ = json.Unmarshal(ie.Detail, &d)
		if ie.Type != want.typ || d.Data.Status != want.status || ie.ID != c.Appends[0].Events[i].ID {
			t.Fatalf("publication %d = %s %s (%s)", i, ie.Type, d.Data.Status, ie.ID)
		}
	}
	lookup := c.Records[1]
	if lookup.Collection != "provider-messages" || lookup.Key != chnA+"/sbx_1" || string(lookup.Data) != `{"messageId":"`+m.ID+`"}` {
		t.Fatalf("lookup = %+v", lookup)
	}
	if err := f.store.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	if id, err := f.reads.MessageByProviderID(ctx, tenant, chnA, "sbx_1"); err != nil || id != m.ID {
		t.Fatalf("by provider id: %q, %v", id, err)
	}
	for _, bad := range [][2]string{{chnA, "sbx_2"}, {"chn_01JX00000000000000000000BB", "sbx_1"}, {"chn_a", "sbx_1"}, {chnA, ""}, {chnA, strings.Repeat("x", 600)}} {
		if _, err := f.reads.MessageByProviderID(ctx, tenant, bad[0], bad[1]); errs.KindOf(err) != errs.KindNotFound {
			t.Fatalf("by provider id %v: %v", bad, err)
		}
	}
	if _, err := f.reads.MessageByProviderID(ctx, "tnt_other", chnA, "sbx_1"); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("other tenant's lookup: %v", err)
	}

	// A stale save loses: ErrConcurrency wrapping the store's conflict.
	err := f.repo.SaveMessage(callCtx(), tenant, m, []domain.Event{rel})
	if !errors.Is(err, app.ErrConcurrency) || !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("stale save: %v", err)
	}
	// Events of another message, or none that start a message, are refused.
	if err := f.repo.SaveMessage(callCtx(), tenant, m, []domain.Event{domain.MessageCanceled{MessageID: "msg_other"}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("foreign event: %v", err)
	}
	if err := f.repo.SaveMessage(callCtx(), tenant, nil, []domain.Event{domain.MessageCanceled{MessageID: f.ids.New(ids.Message)}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("new message without acceptance: %v", err)
	}
	if err := f.repo.SaveMessage(callCtx(), "", nil, []domain.Event{f.accepted("s", "c", nil)}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("no tenant: %v", err)
	}
	v, err := f.reads.MessageByID(ctx, tenant, m.ID)
	if err != nil || v.Status != "sent" || v.UpdatedAt != "2025-06-07T08:10:10.123Z" || v.CreatedAt != "2025-06-07T08:09:10.123Z" || *v.SendAt != "2025-06-07T08:10:10.123Z" {
		t.Fatalf("view = %+v, %v", v, err)
	}
}

// rowBytes reads the raw row of a collection.
func (f *fixture) rowBytes(t *testing.T, collection, key string, global bool) []byte {
	t.Helper()
	var rec eventstore.Record
	var err error
	if global {
		rec, err = f.store.GetGlobalRecord(context.Background(), collection, key)
	} else {
		rec, err = f.store.GetRecord(context.Background(), tenant, collection, key)
	}
	if err != nil {
		t.Fatalf("%s/%s: %v", collection, key, err)
	}
	return rec.Data
}

// TestRebuildGivesTheSameBytes: rows re-derived from the streams equal the
// rows the write path wrote, byte for byte, also after the rows were damaged.
func TestRebuildGivesTheSameBytes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.repo.SaveChannel(callCtx(), tenant, app.Change{Events: []domain.Event{domain.ChannelCreated{
		ChannelID: "chn_01JX0000000000000000000001", ScopeID: "scp_a", ScopePath: []string{"scp_root", "scp_a"}, Name: "Alerts",
		Type: domain.ChannelSMS, Provider: "sandbox", From: "+15550001111", Config: map[string]string{"z": "1", "a": "2"},
		SealedCredentials: []byte("sealed"),
	}}}); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	a := f.save(t, nil, f.accepted("scp_a", "chn_a", &at))
	f.clock.Advance(1500 * time.Microsecond) // sub-millisecond precision in the events, not in the rows
	rel, _ := a.Release()
	a = f.save(t, a, rel)
	f.clock.Advance(time.Second)
	sent, _ := a.Sent("sbx_1", 1)
	a = f.save(t, a, sent)
	undelivered, _ := a.Receipt(domain.StatusUndelivered, "sandbox.carrier_rejected")
	a = f.save(t, a, undelivered)
	ev := f.accepted("scp_b", "chn_b", nil)
	ev.Metadata = map[string]string{"b": "2", "a": "1"}
	b := f.save(t, nil, ev)
	canceled, _ := b.Cancel()
	b = f.save(t, b, canceled)
	in := domain.MessageReceived{MessageID: f.ids.New(ids.Message), ChannelID: "chn_a", ScopeID: "scp_a", ScopePath: []string{"scp_root", "scp_a"},
		ChannelType: domain.ChannelSMS, Provider: "sandbox", ProviderMessageID: "in_1", To: "+15550001111", From: "+15551230000", Content: domain.Content{Text: "yo"}}
	c := f.save(t, nil, in)

	type row struct {
		collection, key string
		global          bool
	}
	rows := []row{
		{"channels", "chn_01JX0000000000000000000001", false}, {"channel-routes", "chn_01JX0000000000000000000001", true},
		{"messages", a.ID, false}, {"messages", b.ID, false}, {"messages", c.ID, false},
		{"provider-messages", "chn_a/sbx_1", false}, {"provider-messages", "chn_a/in_1", false},
	}
	before := map[row][]byte{}
	for _, r := range rows {
		before[r] = f.rowBytes(t, r.collection, r.key, r.global)
	}
	if bytes.Contains(before[rows[0]], []byte("sealed")) {
		t.Fatalf("channel row holds a secret: %s", before[rows[0]])
	}
	// Damage the rows (and drop a message from its lists).
	var damage []eventstore.Record
	for _, r := range rows {
		if !r.global {
			damage = append(damage, eventstore.Record{Collection: r.collection, Key: r.key, Data: json.RawMessage(`{"damaged":true}`)})
		}
	}
	if err := f.store.Commit(ctx, &eventstore.Commit{TenantID: tenant, Records: damage}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, id := range []string{a.ID, b.ID, c.ID} {
		ok, err := f.repo.RebuildMessage(ctx, tenant, id)
		if err != nil || !ok {
			t.Fatalf("rebuild %s: %v, %v", id, ok, err)
		}
		n++
	}
	if ok, err := f.repo.RebuildChannel(ctx, tenant, "chn_01JX0000000000000000000001"); err != nil || !ok {
		t.Fatalf("rebuild channel: %v, %v", ok, err)
	}
	for _, r := range rows {
		if got := f.rowBytes(t, r.collection, r.key, r.global); !bytes.Equal(got, before[r]) {
			t.Errorf("%s/%s after rebuild:\n%s\nwant\n%s", r.collection, r.key, got, before[r])
		}
	}
	// The lists are back too.
	views, _, err := f.reads.ListMessages(ctx, tenant, app.MessageFilter{Status: domain.StatusCanceled}, 10, "")
	if err != nil || len(views) != 1 || views[0].MessageID != b.ID || !reflect.DeepEqual(views[0].Metadata, map[string]string{"a": "1", "b": "2"}) {
		t.Fatalf("canceled list = %+v, %v", views, err)
	}
	// Unknown, malformed and other tenants' ids rebuild nothing.
	for _, id := range []string{f.ids.New(ids.Message), "msg_nope", c.ID + "x"} {
		if ok, err := f.repo.RebuildMessage(ctx, tenant, id); ok || err != nil {
			t.Fatalf("rebuild %s: %v, %v", id, ok, err)
		}
	}
	if ok, err := f.repo.RebuildMessage(ctx, "tnt_other", a.ID); ok || err != nil {
		t.Fatalf("rebuild of another tenant's message: %v, %v", ok, err)
	}
	if ok, err := f.repo.RebuildChannel(ctx, "tnt_other", "chn_01JX0000000000000000000001"); ok || err != nil {
		t.Fatalf("rebuild of another tenant's channel: %v, %v", ok, err)
	}
}

// movingStore appends an event to the stream at the rebuild's first write,
// as a concurrent writer would: right before it (between the rebuild's read
// and its write) or right after it. It counts the rebuild's writes and
// those that committed.
type movingStore struct {
	eventstore.Store
	before         bool
	once           func()
	writes, stored int
}

func (s *movingStore) Commit(ctx context.Context, c *eventstore.Commit) error {
	if len(c.Appends) > 0 {
		return s.Store.Commit(ctx, c)
	}
	s.writes++
	move := s.once
	s.once = nil
	if move != nil && s.before {
		move()
	}
	err := s.Store.Commit(ctx, c)
	if err == nil {
		s.stored++
	}
	if move != nil && !s.before {
		move()
	}
	return err
}

// A rebuild whose stream moves derives the rows again and leaves the newer
// row: moved after its write, it sees the stream's tail move; moved before
// it, its row (derived from an older version: Record.Source) is refused
// and never written.
func TestRebuildDerivesAgainWhenTheStreamMoved(t *testing.T) {
	for _, c := range []struct {
		name   string
		before bool
		stored int // the rebuild's writes that committed (of 2)
	}{
		{"after the write", false, 2},
		{"before the write", true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			m := f.save(t, nil, f.accepted("scp_a", "chn_a", nil))
			moving := &movingStore{Store: f.store, before: c.before}
			repo := NewRepository(moving, f.ids, f.clock)
			moving.once = func() {
				ev, _ := m.Cancel()
				if err := f.repo.SaveMessage(callCtx(), tenant, m, []domain.Event{ev}); err != nil {
					t.Error(err)
				}
			}
			if ok, err := repo.RebuildMessage(context.Background(), tenant, m.ID); err != nil || !ok {
				t.Fatalf("rebuild: %v, %v", ok, err)
			}
			if moving.writes != 2 || moving.stored != c.stored {
				t.Fatalf("rebuild wrote %d times, %d committed; want 2 and %d", moving.writes, moving.stored, c.stored)
			}
			v, err := f.reads.MessageByID(context.Background(), tenant, m.ID)
			if err != nil || v.Status != "canceled" {
				t.Fatalf("the rebuild left a stale row: %+v, %v", v, err)
			}
		})
	}
}

// An inbound message is made once per channel and provider message id.
// A receipt that came before its send waits in the provider id's lookup row:
// a send that did not read it conflicts on that row (so it runs again and
// reads it), a send that applies it replaces it, and the row then answers
// the message.
func TestPendingReceiptWaitsInTheLookupRow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := f.save(t, nil, f.accepted("scp_a", chnA, nil))
	early := app.PendingReceipt{Status: domain.StatusDelivered, WebhookID: "rcpt_1", ReceivedAt: t0}
	if err := f.repo.SavePendingReceipt(ctx, tenant, chnA, "sbx_1", early); err != nil {
		t.Fatal(err)
	}
	if p, err := f.repo.PendingReceipt(ctx, tenant, chnA, "sbx_1"); err != nil || p == nil || *p != early {
		t.Fatalf("pending = %+v, %v", p, err)
	}
	if _, err := f.reads.MessageByProviderID(ctx, tenant, chnA, "sbx_1"); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("a waiting receipt read as a message: %v", err)
	}
	// A second receipt does not replace the first.
	if err := f.repo.SavePendingReceipt(ctx, tenant, chnA, "sbx_1", app.PendingReceipt{Status: domain.StatusUndelivered, ReceivedAt: t0}); !errors.Is(err, app.ErrConcurrency) {
		t.Fatalf("second pending receipt: %v", err)
	}

	sent, _ := m.Sent("sbx_1", 1)
	if err := f.repo.SaveMessage(ctx, tenant, m, []domain.Event{sent}); !errors.Is(err, app.ErrConcurrency) {
		t.Fatalf("a send that did not apply the waiting receipt: %v, want a conflict", err)
	}
	cur := *m
	cur.Apply(domain.Recorded{Event: sent, Version: m.Version + 1})
	delivered, _ := cur.Receipt(early.Status, early.Reason)
	if err := f.repo.SaveMessage(ctx, tenant, m, []domain.Event{sent, delivered}); err != nil {
		t.Fatal(err)
	}
	if id, err := f.reads.MessageByProviderID(ctx, tenant, chnA, "sbx_1"); err != nil || id != m.ID {
		t.Fatalf("by provider id: %q, %v", id, err)
	}
	if p, err := f.repo.PendingReceipt(ctx, tenant, chnA, "sbx_1"); err != nil || p != nil {
		t.Fatalf("still pending: %+v, %v", p, err)
	}
	// A late receipt cannot wait over a message's row.
	if err := f.repo.SavePendingReceipt(ctx, tenant, chnA, "sbx_1", early); !errors.Is(err, app.ErrConcurrency) {
		t.Fatalf("pending over a message: %v", err)
	}
	// A stray receipt's row expires.
	if err := f.repo.SavePendingReceipt(ctx, tenant, chnA, "sbx_stray", early); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(app.PendingReceiptTTL))
	if p, err := f.repo.PendingReceipt(ctx, tenant, chnA, "sbx_stray"); err != nil || p != nil {
		t.Fatalf("expired pending receipt: %+v, %v", p, err)
	}
	// An expired one is absent for the next writer too (review finding: the
	// row, still stored, failed every IfAbsent write until it was removed).
	if err := f.repo.SavePendingReceipt(ctx, tenant, chnA, "sbx_stray", app.PendingReceipt{Status: domain.StatusDelivered, ReceivedAt: f.clock.Now()}); err != nil {
		t.Fatalf("a receipt over an expired one: %v", err)
	}
}

// Two concurrent runs of one inbound message over a stray waiting receipt
// make one message: the lookup row is written over the receipt, and a claim
// row, written if absent, stands in for its condition (review finding: both
// twins committed).
func TestInboundTwinsOverAStrayReceiptMakeOneMessage(t *testing.T) {
	f := newFixture(t)
	if err := f.repo.SavePendingReceipt(context.Background(), tenant, chnA, "in_9", app.PendingReceipt{Status: domain.StatusDelivered, ReceivedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	received := func() domain.MessageReceived {
		return domain.MessageReceived{MessageID: f.ids.New(ids.Message), ChannelID: chnA, ScopeID: "scp_a", ScopePath: []string{"scp_a"},
			ChannelType: domain.ChannelSMS, Provider: "sandbox", ProviderMessageID: "in_9", To: "+1555", From: "+1666", Content: domain.Content{Text: "yo"}}
	}
	a, b := received(), received()
	ca := staged(t, func(ctx context.Context) error { return f.repo.SaveMessage(ctx, tenant, nil, []domain.Event{a}) })
	cb := staged(t, func(ctx context.Context) error { return f.repo.SaveMessage(ctx, tenant, nil, []domain.Event{b}) })
	if err := f.store.Commit(context.Background(), ca); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Commit(context.Background(), cb); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("the second twin: %v, want a conflict", err)
	}
	if id, err := f.reads.MessageByProviderID(context.Background(), tenant, chnA, "in_9"); err != nil || id != a.MessageID {
		t.Fatalf("lookup = %q, %v", id, err)
	}
}

func TestReceivedTwiceIsAConflict(t *testing.T) {
	f := newFixture(t)
	received := func() domain.MessageReceived {
		return domain.MessageReceived{MessageID: f.ids.New(ids.Message), ChannelID: chnA, ScopeID: "scp_a", ScopePath: []string{"scp_a"},
			ChannelType: domain.ChannelSMS, Provider: "sandbox", ProviderMessageID: "in_1", To: "+1555", From: "+1666", Content: domain.Content{Text: "yo"}}
	}
	first := received()
	c := staged(t, func(ctx context.Context) error { return f.repo.SaveMessage(ctx, tenant, nil, []domain.Event{first}) })
	if len(c.Records) != 2 || !c.Records[1].IfAbsent || len(c.Outbox) != 1 {
		t.Fatalf("commit = %+v", c)
	}
	if err := f.store.Commit(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	err := f.repo.SaveMessage(callCtx(), tenant, nil, []domain.Event{received()})
	if !errors.Is(err, app.ErrConcurrency) {
		t.Fatalf("second inbound with the same provider id: %v", err)
	}
	if id, err := f.reads.MessageByProviderID(context.Background(), tenant, chnA, "in_1"); err != nil || id != first.MessageID {
		t.Fatalf("lookup = %q, %v", id, err)
	}
	// A stray receipt waiting under an inbound message's provider id gives
	// way to the message (review finding: the inbound conflicted for good).
	f.clock.Advance(time.Second)
	if err := f.repo.SavePendingReceipt(context.Background(), tenant, chnA, "in_2", app.PendingReceipt{Status: domain.StatusDelivered, ReceivedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	third := received()
	third.ProviderMessageID = "in_2"
	if err := f.repo.SaveMessage(callCtx(), tenant, nil, []domain.Event{third}); err != nil {
		t.Fatalf("inbound over a waiting receipt: %v", err)
	}
	if id, err := f.reads.MessageByProviderID(context.Background(), tenant, chnA, "in_2"); err != nil || id != third.MessageID {
		t.Fatalf("lookup = %q, %v", id, err)
	}
	// A rebuild rewrites the lookup row (no if-absent).
	if ok, err := f.repo.RebuildMessage(context.Background(), tenant, first.MessageID); !ok || err != nil {
		t.Fatalf("rebuild: %v, %v", ok, err)
	}
}

func TestSaveChannelAndReadIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.ids.New(ids.Channel)
	created := domain.ChannelCreated{ChannelID: id, ScopeID: "scp_a", ScopePath: []string{"scp_root", "scp_a"}, Name: "Mail",
		Type: domain.ChannelEmail, Provider: "sandbox", From: "noreply@example.com", SealedInboundSecret: []byte("sealed")}
	c := staged(t, func(ctx context.Context) error {
		return f.repo.SaveChannel(ctx, tenant, app.Change{Events: []domain.Event{created}})
	})
	if len(c.Records) != 2 || !c.Records[1].Global || !c.Records[1].IfAbsent || c.Records[1].Collection != "channel-routes" {
		t.Fatalf("records = %+v", c.Records)
	}
	wantLists := []eventstore.ListEntry{
		{List: eventstore.List{Name: "channels", Slot: 1, Shards: 1}, Partition: "", Sort: id},
		{List: eventstore.List{Name: "channels-by-scope", Slot: 2, Shards: 1}, Partition: "scp_a", Sort: id},
	}
	if !reflect.DeepEqual(c.Records[0].Lists, wantLists) {
		t.Fatalf("lists = %+v", c.Records[0].Lists)
	}
	if err := f.store.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	v, err := f.reads.ChannelByID(ctx, tenant, id)
	want := app.ChannelView{ChannelID: id, ScopeID: "scp_a", ScopePath: []string{"scp_root", "scp_a"}, Name: "Mail", Type: "email",
		Provider: "sandbox", From: "noreply@example.com", Config: map[string]string{},
		InboundWebhookURL: "https://sb.example.com/webhooks/sandbox/" + id, CreatedAt: "2025-06-07T08:09:10.123Z"}
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("view = %+v, %v\nwant   %+v", v, err, want)
	}
	if tn, err := f.reads.ChannelTenant(ctx, id); err != nil || tn != tenant {
		t.Fatalf("tenant = %q, %v", tn, err)
	}
	for _, bad := range []string{f.ids.New(ids.Channel), "chn_nope", ""} {
		if _, err := f.reads.ChannelTenant(ctx, bad); errs.KindOf(err) != errs.KindNotFound {
			t.Fatalf("tenant of %q: %v", bad, err)
		}
		if _, err := f.reads.ChannelByID(ctx, tenant, bad); errs.KindOf(err) != errs.KindNotFound {
			t.Fatalf("channel %q: %v", bad, err)
		}
	}
	if _, err := f.reads.ChannelByID(ctx, "tnt_other", id); errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("another tenant's channel: %v", err)
	}
	ch, err := f.repo.Channel(ctx, tenant, id)
	if err != nil || string(ch.SealedInboundSecret) != "sealed" || ch.Version != 1 {
		t.Fatalf("channel = %+v, %v", ch, err)
	}
	// The same channel id again: the route row exists (if absent fails).
	if err := f.repo.SaveChannel(callCtx(), tenant, app.Change{Events: []domain.Event{created}}); !errors.Is(err, app.ErrConcurrency) {
		t.Fatalf("second create: %v", err)
	}
	if err := f.repo.SaveChannel(callCtx(), tenant, app.Change{Events: []domain.Event{domain.MessageCanceled{MessageID: "msg_1"}}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("message event as a channel: %v", err)
	}
}

func TestMessageListQueryPicksOnePartition(t *testing.T) {
	cases := []struct {
		f         app.MessageFilter
		list      string
		partition string
	}{
		{app.MessageFilter{}, "messages", ""},
		{app.MessageFilter{ScopeID: "scp_1"}, "messages-by-scope", "scp_1"},
		{app.MessageFilter{ChannelID: "chn_1"}, "messages-by-channel", "chn_1"},
		{app.MessageFilter{Status: "sent"}, "messages-by-status", "sent"},
		{app.MessageFilter{ScopeID: "scp_1", Status: "sent"}, "messages-by-scope-status", "scp_1/sent"},
		{app.MessageFilter{ChannelID: "chn_1", Status: "sent"}, "messages-by-channel-status", "chn_1/sent"},
		{app.MessageFilter{ScopeID: "scp_1", ChannelID: "chn_1"}, "messages-by-channel", "chn_1"},
		{app.MessageFilter{ScopeID: "scp_1", ChannelID: "chn_1", Status: "failed"}, "messages-by-channel-status", "chn_1/failed"},
	}
	for _, tc := range cases {
		q := MessageListQuery(tc.f)
		if q.List.Name != tc.list || q.Partition != tc.partition || q.List.Shards != 16 {
			t.Errorf("%+v: %s/%q (%d shards), want %s/%q", tc.f, q.List.Name, q.Partition, q.List.Shards, tc.list, tc.partition)
		}
	}
}

func TestListMessagesPagesNewestFirst(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var all, inA []string
	for i := range 7 {
		scope := "scp_a"
		if i%2 == 1 {
			scope = "scp_b"
		}
		m := f.save(t, nil, f.accepted(scope, "chn_"+scope, nil))
		all = append([]string{m.ID}, all...)
		if scope == "scp_a" {
			inA = append([]string{m.ID}, inA...)
		}
	}
	page := func(flt app.MessageFilter, limit int) []string {
		return pageMessageIDs(t, 20, func(cursor string) ([]app.MessageView, string, error) {
			return f.reads.ListMessages(ctx, tenant, flt, limit, cursor)
		})
	}
	if got := page(app.MessageFilter{}, 3); !reflect.DeepEqual(got, all) {
		t.Fatalf("all = %v\nwant  %v", got, all)
	}
	if got := page(app.MessageFilter{ScopeID: "scp_a", Status: domain.StatusQueued}, 2); !reflect.DeepEqual(got, inA) {
		t.Fatalf("scope a = %v\nwant  %v", got, inA)
	}
	if got := page(app.MessageFilter{ScopeID: "scp_b", ChannelID: "chn_scp_a"}, 2); len(got) != 0 {
		t.Fatalf("channel outside the scope = %v", got)
	}
	if got := page(app.MessageFilter{Status: domain.StatusSent}, 2); len(got) != 0 {
		t.Fatalf("sent = %v", got)
	}
	if _, _, err := f.reads.ListMessages(ctx, tenant, app.MessageFilter{}, 2, "%%%"); !errors.Is(err, app.ErrInvalidCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	if views, _, err := f.reads.ListMessages(ctx, "tnt_other", app.MessageFilter{}, 10, ""); err != nil || len(views) != 0 {
		t.Fatalf("other tenant: %v, %v", views, err)
	}
}

// pageMessageIDs pages a message list to its end (at most maxPages pages)
// and returns the ids in the order listed.
func pageMessageIDs(t *testing.T, maxPages int, fetch func(cursor string) ([]app.MessageView, string, error)) []string {
	t.Helper()
	var got []string
	cursor := ""
	for range maxPages {
		views, next, err := fetch(cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			got = append(got, v.MessageID)
		}
		if next == "" {
			return got
		}
		cursor = next
	}
	t.Fatal("too many pages")
	return nil
}

// get-message-history shows the times in an event's data in the contract's
// format (RFC 3339 UTC, three fraction digits), also for events stored before
// domain.Timestamp with up to nine digits (acceptance finding).
func TestHistoryShowsTimesWithMilliseconds(t *testing.T) {
	f := newFixture(t)
	id := f.ids.New(ids.Message)
	old := func(typ, data string) eventstore.Event {
		return eventstore.Event{ID: f.ids.New(ids.Event), Type: typ, SchemaVersion: SchemaVersion, OccurredAt: t0, Data: json.RawMessage(data)}
	}
	c := &eventstore.Commit{TenantID: tenant, Appends: []eventstore.StreamAppend{{StreamID: MessageStream(id), Events: []eventstore.Event{
		old(domain.TypeMessageAccepted, `{"messageId":"`+id+`","channelId":"`+chnA+`","scopeId":"scp_a","scopePath":["scp_a"],"channelType":"sms",`+
			`"provider":"sandbox","to":"+15551230000","from":"+15550001111","content":{"text":"hi"},"metadata":{"sendAt":"2030-01-02T03:04:05.1Z"},`+
			`"sendAt":"2030-01-02T04:04:05.123456789+01:00","status":"scheduled"}`),
		old(domain.TypeMessageReleased, `{"messageId":"`+id+`"}`),
		old(domain.TypeSendAttemptStarted, `{"messageId":"`+id+`","attempt":1}`),
		old(domain.TypeSendAttemptFailed, `{"messageId":"`+id+`","attempt":1,"reason":"r","retryAt":"2030-01-02T03:05:00Z"}`),
	}}}}
	if err := f.store.Commit(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	h, err := f.repo.MessageHistory(context.Background(), tenant, id)
	if err != nil || len(h) != 4 {
		t.Fatalf("history %v, %v", h, err)
	}
	for i, want := range map[int]string{0: `"sendAt":"2030-01-02T03:04:05.123Z"`, 3: `"retryAt":"2030-01-02T03:05:00.000Z"`} {
		if !strings.Contains(string(h[i].Data), want) {
			t.Errorf("event %d data %s, want %s", i, h[i].Data, want)
		}
	}
	// The user's metadata is shown as it was given, even when it looks like a time.
	if !strings.Contains(string(h[0].Data), `"metadata":{"sendAt":"2030-01-02T03:04:05.1Z"}`) {
		t.Errorf("metadata changed: %s", h[0].Data)
	}
	// What the domain writes today reads back the same.
	at := domain.At(time.Date(2030, 1, 2, 3, 4, 5, 987654321, time.UTC))
	b, err := json.Marshal(domain.SendAttemptFailed{MessageID: id, Attempt: 1, Reason: "r", RetryAt: at})
	if err != nil || !strings.Contains(string(b), `"retryAt":"2030-01-02T03:04:05.987Z"`) {
		t.Fatalf("SendAttemptFailed encodes as %s (%v)", b, err)
	}
	var back domain.SendAttemptFailed
	if err := json.Unmarshal(b, &back); err != nil || !back.RetryAt.Equal(at.Time) {
		t.Fatalf("decoded %v (%v), want %v", back.RetryAt, err, at)
	}
}

// A provider message id of any length or bytes finds its message: ids the
// store's keys cannot hold as they are (over 512 bytes, control characters,
// invalid UTF-8, a leading '#') key their row by their SHA-256 (review
// finding: such an id was written as a key the store refuses, so the send's
// commit failed on every run, and a lookup refused ids over 512 bytes).
func TestAnyProviderMessageIDFindsItsMessage(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) { anyProviderMessageIDFindsItsMessage(t, newFixture(t)) })
	t.Run("dynamodb", func(t *testing.T) {
		anyProviderMessageIDFindsItsMessage(t, newFixtureOn(dynamoStore(t), clock.NewFixed(t0)))
	})
}

func anyProviderMessageIDFindsItsMessage(t *testing.T, f *fixture) {
	for _, pid := range []string{"sbx_plain", strings.Repeat("x", 600), "id\x00with-nul", "bad-utf8-\xff", "#sha256-lookalike", strings.Repeat("é", 2000)} {
		ctx := context.Background()
		m := f.save(t, nil, f.accepted("scp_a", chnA, nil))
		started, _, _ := m.StartAttempt(1)
		cur := *m
		cur.Apply(domain.Recorded{Event: started, Version: m.Version + 1})
		sent, _ := cur.Sent(pid, 1)
		if err := f.repo.SaveMessage(callCtx(), tenant, m, []domain.Event{started, sent}); err != nil {
			t.Fatalf("%.20q: save: %v", pid, err)
		}
		if id, err := f.reads.MessageByProviderID(ctx, tenant, chnA, pid); err != nil || id != m.ID {
			t.Fatalf("%.20q: by provider id: %q, %v", pid, id, err)
		}
		if _, err := f.reads.MessageByProviderID(ctx, tenant, chnA, pid+"x"); errs.KindOf(err) != errs.KindNotFound {
			t.Fatalf("%.20q: another id found a message: %v", pid, err)
		}
	}
	if k := ProviderMessageKey(chnA, "sbx_1"); k != chnA+"/sbx_1" {
		t.Fatalf("a plain id keys its row as it is (rows written before): %q", k)
	}
}

// dynamoStore is a store on a fresh table of DynamoDB Local (deleted after
// the test).
func dynamoStore(t *testing.T) eventstore.Store {
	client, table := dynamotest.Table(t, "switchboard-messaging-adapters-test")
	return dynamostore.New(client, table, dynamostore.WithOutboxShards(4))
}
