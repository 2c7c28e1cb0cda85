package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
)

// GetMessageHistoryInput is the body of get-message-history.
type GetMessageHistoryInput struct {
	MessageID string `json:"messageId" validate:"required,max=64"`
}

// HistoryItem is one event of a message's stream as get-message-history shows it.
type HistoryItem struct {
	EventID      string          `json:"eventId"`
	Type         string          `json:"type"`
	Version      int64           `json:"version"`
	OccurredAt   string          `json:"occurredAt"`
	InvocationID string          `json:"invocationId"`
	Principal    string          `json:"principal"`
	Data         json.RawMessage `json:"data"`
}

// GetMessageHistoryOutput is a message's whole event stream, oldest first.
type GetMessageHistoryOutput struct {
	Events []HistoryItem `json:"events"`
}

// GetMessageHistoryHandler runs get-message-history: every event of a
// message's stream, oldest first, with the invocation that caused it.
type GetMessageHistoryHandler struct {
	Repo  Repository
	Reads ReadModel
}

// Handle implements the query. It authorizes on the message (its row gives
// the scope path). Errors: 404 errs.NotFound("message").
func (h GetMessageHistoryHandler) Handle(ctx context.Context, in GetMessageHistoryInput) (GetMessageHistoryOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return GetMessageHistoryOutput{}, err
	}
	m, err := h.Reads.MessageByID(ctx, tenantID, in.MessageID)
	if err != nil {
		return GetMessageHistoryOutput{}, fmt.Errorf("get message history %s: %w", in.MessageID, err)
	}
	if err := authz.Require(ctx, messageResource(m.MessageID, m.ScopePath)); err != nil {
		return GetMessageHistoryOutput{}, err
	}
	evs, err := h.Repo.MessageHistory(ctx, tenantID, m.MessageID)
	if err != nil {
		return GetMessageHistoryOutput{}, fmt.Errorf("get message history %s: %w", m.MessageID, err)
	}
	out := GetMessageHistoryOutput{Events: make([]HistoryItem, 0, len(evs))}
	for _, e := range evs {
		data := json.RawMessage(e.Data)
		if len(data) == 0 {
			data = json.RawMessage("{}")
		}
		out.Events = append(out.Events, HistoryItem{
			EventID: e.EventID, Type: e.Type, Version: e.Version, OccurredAt: formatTime(e.OccurredAt),
			InvocationID: e.InvocationID, Principal: e.Principal, Data: data,
		})
	}
	return out, nil
}
