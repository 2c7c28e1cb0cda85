package ports_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
	"github.com/switchboard-dev/switchboard/modules/messaging/ports"
)

func TestMessagingEndpointTable(t *testing.T) {
	want := map[string]struct {
		kind   rpc.Kind
		action string
		status int
	}{
		"create-channel":      {rpc.KindCommand, "channels:create-channel", http.StatusOK},
		"get-channel":         {rpc.KindQuery, "channels:get-channel", http.StatusOK},
		"list-channels":       {rpc.KindQuery, "channels:list-channels", http.StatusOK},
		"send-message":        {rpc.KindCommand, "messaging:send-message", http.StatusAccepted},
		"cancel-message":      {rpc.KindCommand, "messaging:cancel-message", http.StatusOK},
		"get-message":         {rpc.KindQuery, "messaging:get-message", http.StatusOK},
		"list-messages":       {rpc.KindQuery, "messaging:list-messages", http.StatusOK},
		"get-message-history": {rpc.KindQuery, "messaging:get-message-history", http.StatusOK},
		"rebuild-read-models": {rpc.KindCommand, "messaging:rebuild-read-models", http.StatusOK},
	}
	eps := ports.Endpoints(app.New(app.Deps{}))
	if len(eps) != len(want) {
		t.Fatalf("%d endpoints, want %d", len(eps), len(want))
	}
	for _, ep := range eps {
		w, ok := want[ep.Name]
		if !ok {
			t.Fatalf("unexpected endpoint %q", ep.Name)
		}
		if ep.Kind != w.kind || ep.Action != w.action || ep.Status != w.status || ep.Access != rpc.AccessTenant {
			t.Errorf("%s = %+v, want %+v", ep.Name, ep, w)
		}
	}
}

// The input tags are checked with the rpc edge's own validator: a typo in a
// tag fails here, and the tags leave the business rules to the handlers (so
// that one answer names every invalid field).
func TestMessagingInputTags(t *testing.T) {
	v := rpc.NewValidator()
	g := ids.NewULIDs()
	ch, msg, scope := g.New(ids.Channel), g.New(ids.Message), g.New(ids.Scope)
	valid := []any{
		app.CreateChannelInput{ScopeID: scope},
		app.CreateChannelInput{ScopeID: "scp_malformed-is-a-404-not-a-400"},
		app.GetChannelInput{ChannelID: ch},
		app.ListChannelsInput{},
		app.ListChannelsInput{ScopeID: scope, Limit: new(100), Cursor: "c"},
		app.SendMessageInput{ChannelID: ch}, // the rules are the handler's
		app.CancelMessageInput{MessageID: msg},
		app.GetMessageInput{MessageID: msg},
		app.ListMessagesInput{ScopeID: scope, ChannelID: ch, Status: "bogus-is-the-handlers", Limit: new(1)},
		app.GetMessageHistoryInput{MessageID: msg},
		app.RebuildReadModelsInput{},
		app.RebuildReadModelsInput{ChannelIDs: []string{ch}, MessageIDs: make([]string, 100)},
	}
	for _, in := range valid {
		if err := v.Validate(in); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", in, err)
		}
	}
	invalid := []struct {
		in    any
		field string
	}{
		{app.CreateChannelInput{}, "scopeId"},
		{app.GetChannelInput{}, "channelId"},
		{app.GetChannelInput{ChannelID: strings.Repeat("x", 65)}, "channelId"},
		{app.SendMessageInput{}, "channelId"},
		{app.CancelMessageInput{}, "messageId"},
		{app.GetMessageInput{}, "messageId"},
		{app.GetMessageHistoryInput{}, "messageId"},
		{app.ListMessagesInput{Limit: new(101)}, "limit"},
		{app.ListMessagesInput{Cursor: strings.Repeat("c", 1025)}, "cursor"},
		{app.ListChannelsInput{Limit: new(-1)}, "limit"},
		{app.ListChannelsInput{Limit: new(0)}, "limit"},
		{app.ListMessagesInput{Limit: new(0)}, "limit"},
		{app.RebuildReadModelsInput{MessageIDs: make([]string, 101)}, "messageIds"},
		{app.RebuildReadModelsInput{ChannelIDs: []string{strings.Repeat("x", 65)}}, "channelIds[0]"},
	}
	for _, c := range invalid {
		err := v.Validate(c.in)
		e := errs.As(err)
		if err == nil || e.Kind != errs.KindInvalid || len(e.Fields) != 1 || e.Fields[0].Field != c.field {
			t.Errorf("Validate(%+v) = %v (fields %+v), want one error on %s", c.in, err, e.Fields, c.field)
		}
	}
}
