package messaging_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
	"github.com/switchboard-dev/switchboard/modules/messaging/ports"
)

// Dispatch against cancel-message, with the real store, unit of work, work
// Executor and sandbox: whatever the interleaving, a cancel that answers 200
// means the provider was never called, and a message the provider accepted
// can no longer be canceled (409) and ends sent.

// hookProvider runs before (once per call) and then delegates to the sandbox.
type hookProvider struct {
	*sandbox.Provider
	before func(ctx context.Context, req app.SendRequest)
}

func (p *hookProvider) Send(ctx context.Context, req app.SendRequest) (app.SendResult, error) {
	if p.before != nil {
		p.before(ctx, req)
	}
	return p.Provider.Send(ctx, req)
}

// hookRepo runs afterRead after each read of a message by dispatch.
type hookRepo struct {
	app.Repository
	mu        sync.Mutex
	reads     int
	afterRead func(n int)
}

func (r *hookRepo) Message(ctx context.Context, tenantID, messageID string) (*domain.Message, error) {
	m, err := r.Repository.Message(ctx, tenantID, messageID)
	r.mu.Lock()
	r.reads++
	n := r.reads
	r.mu.Unlock()
	if r.afterRead != nil {
		r.afterRead(n)
	}
	return m, err
}

type raceEnv struct {
	*env
	tn      tenant
	runner  *uow.Runner
	sandbox *sandbox.Provider
	exec    *work.Executor
	msg     string
}

// newRaceEnv wires a dispatch handler as the module does, with tune applied
// (a provider or repository wrapper), behind a work Executor.
func newRaceEnv(t *testing.T, tune func(re *raceEnv, h *app.DispatchHandler)) *raceEnv {
	t.Helper()
	e := newEnv(t)
	re := &raceEnv{env: e, tn: e.onboard(t, "Acme"), runner: &uow.Runner{Store: e.store}}
	re.sandbox = sandbox.New(sandbox.Deps{Store: e.store, Runner: re.runner, Sealer: e.sealer, IDs: e.ids, Clock: e.clock})
	sms := e.channel(t, re.tn, re.tn.eu, domain.ChannelSMS)
	re.msg = e.send(t, e.as(re.tn, ports.ActionSendMessage, "sender", re.tn.eu), sms, "+15550100005")
	h := e.app.Work.Dispatch
	tune(re, &h)
	reg := work.NewRegistry()
	ports.RegisterWork(reg, h, e.app.Work.ProviderWebhook)
	re.exec = &work.Executor{Handlers: reg, Runner: re.runner, Clock: e.clock}
	return re
}

// cancel runs cancel-message as the edge does: in its own unit of work.
func (re *raceEnv) cancel() error {
	ctx := re.as(re.tn, ports.ActionCancelMessage, "sender", re.tn.eu)
	return re.runner.Run(ctx, re.tn.TenantID, func(ctx context.Context) error {
		_, err := re.app.Commands.CancelMessage.Handle(ctx, app.CancelMessageInput{MessageID: re.msg})
		return err
	}, nil)
}

func (re *raceEnv) dispatch(t *testing.T) error {
	t.Helper()
	payload, _ := json.Marshal(app.DispatchPayload{MessageID: re.msg})
	return re.exec.Execute(context.Background(), work.Item{
		ID: re.ids.New(ids.Work), Type: app.WorkDispatch, TenantID: re.tn.TenantID, Payload: payload, DueAt: re.clock.Now(),
	})
}

func (re *raceEnv) status(t *testing.T) (domain.Status, int) {
	t.Helper()
	got, err := re.app.Queries.GetMessage.Handle(re.admin(re.tn, ports.ActionGetMessage), app.GetMessageInput{MessageID: re.msg})
	if err != nil {
		t.Fatal(err)
	}
	m, err := re.mod.App().Commands.CancelMessage.Repo.Message(context.Background(), re.tn.TenantID, re.msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Status) != got.Status {
		t.Fatalf("stream says %s, read model %s", m.Status, got.Status)
	}
	return m.Status, m.Attempts
}

// checkOutcome: a 200 cancel never reaches the provider; a 409 one ends sent.
func (re *raceEnv) checkOutcome(t *testing.T, cancelErr error) {
	t.Helper()
	status, attempts := re.status(t)
	accepted, calls, err := re.sandbox.Sends(context.Background(), re.tn.TenantID, re.msg)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cancelErr == nil:
		if status != domain.StatusCanceled || accepted != 0 || calls != 0 {
			t.Fatalf("cancel answered 200, but the message is %s and the provider got %d calls, accepted %d", status, calls, accepted)
		}
	case errors.Is(cancelErr, domain.ErrNotCancelable):
		if status != domain.StatusSent || accepted != 1 || attempts != 1 {
			t.Fatalf("cancel answered 409, but the message is %s after %d attempts (provider accepted %d)", status, attempts, accepted)
		}
	default:
		t.Fatalf("cancel: %v", cancelErr)
	}
}

// TestCancelDuringProviderCall: the cancel commits after dispatch read the
// message, right before the provider call.
func TestCancelDuringProviderCall(t *testing.T) {
	var cancelErr error
	called := false
	re := newRaceEnv(t, func(re *raceEnv, h *app.DispatchHandler) {
		h.Providers = app.Providers{sandbox.Name: &hookProvider{Provider: re.sandbox, before: func(context.Context, app.SendRequest) {
			if !called {
				called = true
				cancelErr = re.cancel()
			}
		}}}
	})
	if err := re.dispatch(t); err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	if !called {
		t.Fatal("the provider was never called")
	}
	if e := errs.As(cancelErr); cancelErr != nil && e.Params["status"] != string(domain.StatusSending) {
		t.Fatalf("cancel: %v (params %v), want 409 with status sending", cancelErr, e.Params)
	}
	re.checkOutcome(t, cancelErr)
}

// TestCancelAfterDispatchRead: the cancel commits right after any of
// dispatch's reads of the message (before its claim, or after it).
func TestCancelAfterDispatchRead(t *testing.T) {
	for n := 1; n <= 3; n++ {
		var cancelErr error
		canceled := false
		re := newRaceEnv(t, func(re *raceEnv, h *app.DispatchHandler) {
			h.Repo = &hookRepo{Repository: h.Repo, afterRead: func(i int) {
				if i == n && !canceled {
					canceled = true
					cancelErr = re.cancel()
				}
			}}
		})
		if err := re.dispatch(t); err != nil {
			t.Fatalf("read %d: dispatch: %v", n, err)
		}
		if !canceled {
			continue // dispatch read the message fewer times
		}
		re.checkOutcome(t, cancelErr)
	}
}

// TestCancelWhileProviderBlocks: while the provider call is under way the
// message is sending and cancel answers 409; the message ends sent.
func TestCancelWhileProviderBlocks(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	re := newRaceEnv(t, func(re *raceEnv, h *app.DispatchHandler) {
		h.Providers = app.Providers{sandbox.Name: &hookProvider{Provider: re.sandbox, before: func(context.Context, app.SendRequest) {
			once.Do(func() { close(entered) })
			<-release
		}}}
	})
	done := make(chan error, 1)
	go func() { done <- re.dispatch(t) }()
	select {
	case <-entered:
	case err := <-done:
		t.Fatalf("dispatch ended without calling the provider: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the provider was never called")
	}
	cancelErr := re.cancel()
	if wantErr(t, cancelErr, errs.KindConflict, domain.CodeNotCancelable).Params["status"] != string(domain.StatusSending) {
		t.Fatalf("cancel during the provider call: %v, want 409 with status sending", cancelErr)
	}
	if s, _ := re.status(t); s != domain.StatusSending {
		t.Fatalf("status during the provider call: %s", s)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	re.checkOutcome(t, cancelErr)
}
