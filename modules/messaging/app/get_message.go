package app

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
)

// GetMessageInput is the body of get-message.
type GetMessageInput struct {
	MessageID string `json:"messageId" validate:"required,max=64"`
}

// GetMessageHandler runs get-message: one message of the caller's tenant,
// from the "messages" read model (written with every event of the message,
// so it is never behind its stream).
type GetMessageHandler struct {
	Reads ReadModel
}

// Handle implements the query. Errors: 404 errs.NotFound("message") for an
// id that is malformed, unknown or of another tenant.
func (h GetMessageHandler) Handle(ctx context.Context, in GetMessageInput) (MessageView, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return MessageView{}, err
	}
	m, err := h.Reads.MessageByID(ctx, tenantID, in.MessageID)
	if err != nil {
		return MessageView{}, fmt.Errorf("get message %s: %w", in.MessageID, err)
	}
	if err := authz.Require(ctx, messageResource(m.MessageID, m.ScopePath)); err != nil {
		return MessageView{}, err
	}
	return m, nil
}
