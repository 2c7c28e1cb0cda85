// Package ports exposes the messaging application to the outside: its rpc
// endpoints (commands and queries), its work handlers and the provider
// webhook route. It only translates; every rule lives in app and domain.
package ports

import (
	"net/http"

	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/messaging/app"
)

// Actions checked by the authorizer. Persisted in role definitions.
const (
	ActionCreateChannel     = "channels:create-channel"
	ActionGetChannel        = "channels:get-channel"
	ActionListChannels      = app.ActionListChannels
	ActionSendMessage       = "messaging:send-message"
	ActionCancelMessage     = "messaging:cancel-message"
	ActionGetMessage        = "messaging:get-message"
	ActionListMessages      = "messaging:list-messages"
	ActionGetMessageHistory = "messaging:get-message-history"
	ActionRebuildReadModels = "messaging:rebuild-read-models"
)

// Endpoints returns the messaging commands and queries.
func Endpoints(a *app.Application) []rpc.Endpoint {
	return []rpc.Endpoint{
		rpc.Command("create-channel", ActionCreateChannel, a.Commands.CreateChannel.Handle),
		rpc.Query("get-channel", ActionGetChannel, a.Queries.GetChannel.Handle),
		rpc.Query("list-channels", ActionListChannels, a.Queries.ListChannels.Handle),
		rpc.Command("send-message", ActionSendMessage, a.Commands.SendMessage.Handle, rpc.WithStatus(http.StatusAccepted)),
		rpc.Command("cancel-message", ActionCancelMessage, a.Commands.CancelMessage.Handle),
		rpc.Query("get-message", ActionGetMessage, a.Queries.GetMessage.Handle),
		rpc.Query("list-messages", ActionListMessages, a.Queries.ListMessages.Handle),
		rpc.Query("get-message-history", ActionGetMessageHistory, a.Queries.GetMessageHistory.Handle),
		rpc.Command("rebuild-read-models", ActionRebuildReadModels, a.Commands.RebuildReadModels.Handle),
	}
}
