package ports_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
	"github.com/switchboard-dev/switchboard/modules/messaging/ports"
)

// workProbe records the tenant and invocation the handlers run in.
type workProbe struct {
	app.Repository
	app.ReadModel
	calls []probeCall
}

type probeCall struct {
	what, tenant, id string
	ic               invocation.Context
}

func (p *workProbe) Message(ctx context.Context, tenantID, messageID string) (*domain.Message, error) {
	p.calls = append(p.calls, probeCall{"message", tenantID, messageID, *invocation.From(ctx)})
	return nil, errs.NotFound("message")
}

func (p *workProbe) PendingReceipt(context.Context, string, string, string) (*app.PendingReceipt, error) {
	return nil, errors.New("probe: no store")
}

func (p *workProbe) MessageByProviderID(ctx context.Context, tenantID, channelID, pmid string) (string, error) {
	p.calls = append(p.calls, probeCall{"receipt", tenantID, channelID + "/" + pmid, *invocation.From(ctx)})
	return "", errs.NotFound("message")
}

func TestRegisterWork(t *testing.T) {
	probe := &workProbe{}
	r := work.NewRegistry()
	ports.RegisterWork(r, app.DispatchHandler{Repo: probe}, app.ProviderWebhookHandler{Repo: probe, Reads: probe})
	if got := r.Types(); len(got) != 2 || got[0] != app.WorkDispatch || got[1] != app.WorkProviderWebhook {
		t.Fatalf("types %v", got)
	}
	meta := invocation.Meta{InvocationID: "inv_01JQ0000000000000000000001", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Principal: "service_account:sva_x"}
	payload := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	ctx := context.Background()

	// A dispatch item runs in its tenant, continuing its invocation as the system.
	if err := r.Handle(ctx, work.Item{ID: "wrk_1", TenantID: hookTenant, Type: app.WorkDispatch, Invocation: meta,
		Payload: payload(app.DispatchPayload{MessageID: "msg_1"})}); err != nil {
		t.Fatal(err)
	}
	c := probe.calls[0]
	if c.tenant != hookTenant || c.id != "msg_1" || c.ic.InvocationID != meta.InvocationID || c.ic.TraceID != meta.TraceID ||
		c.ic.Principal.Kind != invocation.KindSystem || c.ic.TenantID() != hookTenant || c.ic.Trigger != work.TriggerWorker {
		t.Fatalf("dispatch ran as %+v", c)
	}
	// A receipt of an unknown provider message id reads whether one waits
	// already: the store's error is an error (retry).
	err := r.Handle(ctx, work.Item{ID: "wrk_2", TenantID: hookTenant, Type: app.WorkProviderWebhook, Invocation: meta,
		Payload: payload(app.ProviderWebhookPayload{ChannelID: hookChannel, WebhookID: "rcpt_1",
			Event: app.ProviderEvent{Kind: app.EventReceipt, ProviderMessageID: "sbx_1", Status: domain.StatusDelivered}})})
	if err == nil || probe.calls[1].tenant != hookTenant || probe.calls[1].id != hookChannel+"/sbx_1" {
		t.Fatalf("receipt: %v, %+v", err, probe.calls)
	}
	// Items that can never run are errors (parked by the work path), before any read.
	for name, it := range map[string]work.Item{
		"no tenant":          {ID: "wrk_3", Type: app.WorkDispatch, Payload: payload(app.DispatchPayload{MessageID: "msg_1"})},
		"bad payload":        {ID: "wrk_4", TenantID: hookTenant, Type: app.WorkDispatch, Payload: json.RawMessage(`[1]`)},
		"no message id":      {ID: "wrk_5", TenantID: hookTenant, Type: app.WorkDispatch, Payload: json.RawMessage(`{}`)},
		"webhook no channel": {ID: "wrk_6", TenantID: hookTenant, Type: app.WorkProviderWebhook, Payload: json.RawMessage(`{}`)},
		"webhook bad json":   {ID: "wrk_7", TenantID: hookTenant, Type: app.WorkProviderWebhook, Payload: json.RawMessage(`{`)},
	} {
		if err := r.Handle(ctx, it); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if len(probe.calls) != 2 {
		t.Fatalf("%d reads, want 2", len(probe.calls))
	}
}
