package work_test

import (
	"context"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// denyAll is an Authorizer that refuses everything.
type denyAll struct{}

func (denyAll) Authorize(context.Context, invocation.Principal, string, authz.Resource) error {
	return errs.New(errs.KindForbidden, errs.CodeForbidden)
}

// callerCtx is the context of an HTTP invocation by a user whose guard
// denies everything, as the rpc edge builds it.
func callerCtx(parent context.Context, tenantID string) context.Context {
	user := invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_1", TenantID: tenantID}
	ctx := invocation.With(parent, &invocation.Context{InvocationID: "inv_http", Trigger: "http", Principal: user})
	return authz.WithGuard(ctx, authz.NewGuard(denyAll{}, user, "messaging:send-message"))
}

// cancelAfterCommit is a store whose commit succeeds and then ends the
// caller's context: the HTTP client went away right after the commit.
type cancelAfterCommit struct {
	eventstore.Appender
	cancel context.CancelFunc
}

func (c *cancelAfterCommit) Commit(ctx context.Context, cm *eventstore.Commit) error {
	err := c.Appender.Commit(ctx, cm)
	c.cancel()
	return err
}

// authzProbe is a work handler that checks what it may do.
type authzProbe struct {
	mu      sync.Mutex
	runs    int
	ctxErr  error
	require error
}

func (p *authzProbe) handle(ctx context.Context, it work.Item) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runs++
	p.ctxErr = ctx.Err()
	p.require = authz.Require(ctx, authz.Resource{Type: "tenant", ID: it.TenantID})
	return p.require
}

// Inline work committed by an HTTP invocation runs as the system principal,
// not as the HTTP caller, and is not cancelled with the caller's request.
func TestInlineWorkIsNotJudgedAsTheCallerNorCancelledWithIt(t *testing.T) {
	e := newEnv(t)
	var p authzProbe
	relay := e.relay(e.inline(p.handle))
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	runner := &uow.Runner{Store: &cancelAfterCommit{Appender: e.store, cancel: cancel}, AfterCommit: relay.AfterCommit}
	it := work.Item{ID: "wrk_01JWNNSVG0000000000000AAAA", TenantID: e.tenant, Type: "test.work", DueAt: t0,
		Payload: []byte(`{}`), Invocation: invocation.Meta{InvocationID: "inv_http", Principal: "service_account:sva_1"}}
	err := runner.Run(callerCtx(ctx, e.tenant), e.tenant, func(ctx context.Context) error {
		return eventstore.Write(ctx, e.store, &eventstore.Commit{TenantID: e.tenant, Outbox: []work.Item{it}})
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Fatal("the caller's context was not cancelled after the commit")
	}
	if p.runs != 1 || p.ctxErr != nil || p.require != nil {
		t.Fatalf("work ran %d times, ctx err %v, authz.Require = %v; want once, live, allowed as system", p.runs, p.ctxErr, p.require)
	}
	if left := e.pending(); len(left) != 0 {
		t.Fatalf("pending = %v, want the work done and acknowledged", idsOf(left))
	}
}

// The Executor runs a handler as the system principal even when its caller's
// context carries an invocation guard.
func TestExecutorIgnoresTheCallersGuard(t *testing.T) {
	e := newEnv(t)
	var p authzProbe
	reg := work.NewRegistry()
	reg.Register("test.work", p.handle)
	x := e.executor(reg, nil)
	it := e.commit("test.work", 0)[0]
	user := invocation.Principal{Kind: invocation.KindServiceAccount, ID: "sva_1", TenantID: e.tenant}
	ctx := authz.WithGuard(e.ctx, authz.NewGuard(denyAll{}, user, "messaging:send-message"))
	if err := x.Execute(ctx, it); err != nil || p.require != nil {
		t.Fatalf("Execute = %v, authz.Require = %v; want allowed as system", err, p.require)
	}
}
