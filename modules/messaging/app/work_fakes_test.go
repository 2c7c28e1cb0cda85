package app_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// memRepo is an in-memory app.Repository and app.ReadModel: streams of
// events per message, replayed like the real repository, with optimistic
// concurrency on the message's version.
type memRepo struct {
	mu       sync.Mutex
	clock    clock.Clock
	channels map[string]*domain.Channel    // tenant/channel
	streams  map[string][]domain.Recorded  // tenant/message
	pmids    map[string]string             // tenant/channel/pmid -> message id
	pending  map[string]app.PendingReceipt // tenant/channel/pmid -> a receipt waiting for its send
	work     []app.Work
	saves    [][]domain.Event

	failReads error // Message and Channel fail with it
	failSaves int   // the next n saves (after skipSaves) fail with errMemStore
	skipSaves int   // saves that succeed before failSaves applies
}

var errMemStore = errors.New("store unavailable")

func newMemRepo(clk clock.Clock) *memRepo {
	return &memRepo{clock: clk, channels: map[string]*domain.Channel{}, streams: map[string][]domain.Recorded{}, pmids: map[string]string{}, pending: map[string]app.PendingReceipt{}}
}

func (r *memRepo) Channel(_ context.Context, wTenant, wChannel string) (*domain.Channel, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failReads != nil {
		return nil, r.failReads
	}
	c, ok := r.channels[wTenant+"/"+wChannel]
	if !ok {
		return nil, errs.NotFound("channel")
	}
	cp := *c
	return &cp, nil
}

func (r *memRepo) Message(_ context.Context, wTenant, messageID string) (*domain.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failReads != nil {
		return nil, r.failReads
	}
	m := domain.ReplayMessage(wTenant, r.streams[wTenant+"/"+messageID])
	if m == nil {
		return nil, errs.NotFound("message")
	}
	return m, nil
}

func (r *memRepo) MessageHistory(context.Context, string, string) ([]app.HistoryEvent, error) {
	return nil, errors.New("not in the fake")
}

func (r *memRepo) SaveChannel(_ context.Context, wTenant string, c app.Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := make([]domain.Recorded, 0, len(c.Events))
	for i, e := range c.Events {
		h = append(h, domain.Recorded{Event: e, Version: c.Base + int64(i) + 1})
	}
	ch := domain.ReplayChannel(wTenant, h)
	r.channels[wTenant+"/"+ch.ID] = ch
	return nil
}

func (r *memRepo) SaveMessage(_ context.Context, wTenant string, before *domain.Message, events []domain.Event, work ...app.Work) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.skipSaves > 0 {
		r.skipSaves--
	} else if r.failSaves > 0 {
		r.failSaves--
		return errMemStore
	}
	if len(events) == 0 {
		return errors.New("save without events")
	}
	id := memMessageID(events[0])
	key := wTenant + "/" + id
	var base int64
	if before != nil {
		base = before.Version
	}
	if int64(len(r.streams[key])) != base {
		return app.ErrConcurrency.Wrap(eventstore.ErrConflict) // as the real repository: the unit of work re-runs
	}
	now := r.clock.Now()
	sent, receipt := "", false
	for _, e := range events {
		switch e := e.(type) {
		case domain.MessageSent:
			sent = e.ProviderMessageID
		case domain.MessageDelivered, domain.MessageUndelivered:
			receipt = sent != ""
		}
	}
	if sent != "" {
		// As the real repository: the lookup row is written only if absent,
		// unless the save applies the receipt that waited in it.
		m := domain.ReplayMessage(wTenant, r.streams[key])
		pk := wTenant + "/" + m.ChannelID + "/" + sent
		if _, waits := r.pending[pk]; waits && !receipt {
			return app.ErrConcurrency.Wrap(eventstore.ErrConflict)
		}
		delete(r.pending, pk)
	}
	for i, e := range events {
		if memMessageID(e) != id {
			return errors.New("events of two messages in one save")
		}
		r.streams[key] = append(r.streams[key], domain.Recorded{Event: e, Version: base + int64(i) + 1, OccurredAt: now})
	}
	m := domain.ReplayMessage(wTenant, r.streams[key])
	if m.ProviderMessageID != "" {
		r.pmids[wTenant+"/"+m.ChannelID+"/"+m.ProviderMessageID] = m.ID
	}
	r.work = append(r.work, work...)
	r.saves = append(r.saves, events)
	return nil
}

func (r *memRepo) PendingReceipt(_ context.Context, wTenant, wChannel, providerMessageID string) (*app.PendingReceipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pending[wTenant+"/"+wChannel+"/"+providerMessageID]; ok {
		return &p, nil
	}
	return nil, nil
}

func (r *memRepo) SavePendingReceipt(_ context.Context, wTenant, wChannel, providerMessageID string, p app.PendingReceipt) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := wTenant + "/" + wChannel + "/" + providerMessageID
	if _, ok := r.pmids[k]; ok {
		return app.ErrConcurrency.Wrap(eventstore.ErrConflict)
	}
	if _, ok := r.pending[k]; ok {
		return app.ErrConcurrency.Wrap(eventstore.ErrConflict)
	}
	r.pending[k] = p
	return nil
}

func memMessageID(e domain.Event) string {
	switch e := e.(type) {
	case domain.MessageAccepted:
		return e.MessageID
	case domain.MessageReleased:
		return e.MessageID
	case domain.MessageCanceled:
		return e.MessageID
	case domain.SendAttemptStarted:
		return e.MessageID
	case domain.SendAttemptFailed:
		return e.MessageID
	case domain.MessageSent:
		return e.MessageID
	case domain.MessageFailed:
		return e.MessageID
	case domain.MessageDelivered:
		return e.MessageID
	case domain.MessageUndelivered:
		return e.MessageID
	case domain.MessageReceived:
		return e.MessageID
	}
	return ""
}

// ReadModel: only the provider message lookup is used by the handlers tested here.

func (r *memRepo) ChannelByID(context.Context, string, string) (app.ChannelView, error) {
	return app.ChannelView{}, errs.NotFound("channel")
}

func (r *memRepo) ChannelTenant(context.Context, string) (string, error) {
	return "", errs.NotFound("channel")
}

func (r *memRepo) ListChannels(context.Context, string, string, int, string) ([]app.ChannelView, string, error) {
	return nil, "", nil
}

func (r *memRepo) MessageByID(context.Context, string, string) (app.MessageView, error) {
	return app.MessageView{}, errs.NotFound("message")
}

func (r *memRepo) MessageByProviderID(_ context.Context, wTenant, wChannel, providerMessageID string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.pmids[wTenant+"/"+wChannel+"/"+providerMessageID]; ok {
		return id, nil
	}
	return "", errs.NotFound("message")
}

func (r *memRepo) ListMessages(context.Context, string, app.MessageFilter, int, string) ([]app.MessageView, string, error) {
	return nil, "", nil
}

// takeWork returns and forgets the work saved so far.
func (r *memRepo) takeWork() []app.Work {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.work
	r.work = nil
	return w
}

func (r *memRepo) saveCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.saves)
}

// scriptedProvider is a provider that answers from a script (the last scriptedAnswer repeats).
type scriptedProvider struct {
	mu      sync.Mutex
	answers []scriptedAnswer
	calls   []app.SendRequest
}

type scriptedAnswer struct {
	pmid string
	err  error
}

func (p *scriptedProvider) Name() string { return "scripted" }
func (p *scriptedProvider) CheckChannel(domain.ChannelType, string, map[string]string, map[string]string) error {
	return nil
}

func (p *scriptedProvider) Send(_ context.Context, req app.SendRequest) (app.SendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, req)
	a := p.answers[min(len(p.calls), len(p.answers))-1]
	return app.SendResult{ProviderMessageID: a.pmid}, a.err
}

func (p *scriptedProvider) VerifyWebhook([]byte, http.Header, []byte, time.Time) (string, error) {
	return "", app.ErrBadSignature
}

func (p *scriptedProvider) ParseWebhook([]byte) (app.ProviderEvent, error) {
	return app.ProviderEvent{}, errs.Invalid()
}

func (p *scriptedProvider) callCount() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.calls) }

// asWorker is the context the work adapter gives a handler: the item's
// tenant, as the system.
func asWorker(wTenant string) context.Context {
	return invocation.With(context.Background(), &invocation.Context{
		InvocationID: "inv_01JQ0000000000000000000001", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Trigger: "worker",
		Principal: invocation.Principal{Kind: invocation.KindSystem, ID: "system", TenantID: wTenant},
	})
}
