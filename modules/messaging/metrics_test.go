package messaging_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/metrics"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
	"github.com/switchboard-dev/switchboard/modules/messaging"
	"github.com/switchboard-dev/switchboard/modules/messaging/adapters/sandbox"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
	"github.com/switchboard-dev/switchboard/modules/messaging/ports"
)

// names records the names of the metrics recorded, with their channel type.
type names struct {
	mu sync.Mutex
	v  []string
}

func (n *names) Count(_ context.Context, name string, dims metrics.Dimensions, _ int64) {
	n.mu.Lock()
	n.v = append(n.v, fmt.Sprintf("%s{%s}", name, dims[app.DimensionChannelType]))
	n.mu.Unlock()
}

func (n *names) Duration(ctx context.Context, name string, dims metrics.Dimensions, _ time.Duration) {
	n.Count(ctx, name, dims, 0)
}

// The module hands Deps.Metrics to send-message and dispatch (and the
// provider webhooks): a message sent through it is counted.
func TestModuleRecordsMetrics(t *testing.T) {
	e := newEnv(t)
	rec := &names{}
	runner := &uow.Runner{Store: e.store}
	mod := messaging.New(messaging.Deps{
		Store: e.store, Runner: runner, Sealer: e.sealer, Scopes: e.tenancy,
		Providers: app.Providers{sandbox.Name: sandbox.New(sandbox.Deps{Store: e.store, Runner: runner, Sealer: e.sealer, IDs: e.ids, Clock: e.clock})},
		IDs:       e.ids, Clock: e.clock, PublicURL: "https://sb.example.com/", Metrics: rec,
	})
	reg := work.NewRegistry()
	mod.RegisterWork(reg)
	if mod.App().Work.ProviderWebhook.Metrics != app.Metrics(rec) {
		t.Fatal("the provider webhook handler has no recorder")
	}

	tn := e.onboard(t, "Acme")
	ch := e.channel(t, tn, tn.RootScopeID, domain.ChannelSMS)
	out, err := mod.App().Commands.SendMessage.Handle(e.as(tn, ports.ActionSendMessage, "sender", tn.RootScopeID),
		app.SendMessageInput{ChannelID: ch, To: "+15551234567", Content: domain.Content{Text: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	items, err := e.store.PendingOutbox(context.Background(), t0.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Type == app.WorkDispatch {
			if err := reg.Handle(context.Background(), it); err != nil {
				t.Fatalf("dispatch %s: %v", out.MessageID, err)
			}
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := []string{"MessagesAccepted{sms}", "MessagesSent{sms}", "DispatchLatency{sms}"}; !slices.Equal(rec.v, want) {
		t.Fatalf("recorded %v, want %v", rec.v, want)
	}
}
