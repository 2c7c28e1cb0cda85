package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// CancelMessageInput is the body of cancel-message.
type CancelMessageInput struct {
	MessageID string `json:"messageId" validate:"required,max=64"`
}

// CancelMessageOutput is the answer of cancel-message.
type CancelMessageOutput struct {
	MessageID string `json:"messageId"`
	Status    string `json:"status"` // "canceled"
}

// CancelMessageHandler runs cancel-message [sender]: it cancels a message
// that is still scheduled or queued. The message is rebuilt from its stream
// and the cancellation appended at the version read, so a dispatch that wins
// the race makes the unit of work run the handler again, which then answers
// 409.
type CancelMessageHandler struct {
	Repo   Repository
	Logger *slog.Logger
}

// Handle implements the command. Errors: 404 errs.NotFound("message"); 409
// domain.ErrNotCancelable (with the current status) for a message past
// queued, also one canceled before: a retry that must not fail uses an
// Idempotency-Key.
func (h CancelMessageHandler) Handle(ctx context.Context, in CancelMessageInput) (CancelMessageOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return CancelMessageOutput{}, err
	}
	m, err := h.Repo.Message(ctx, tenantID, in.MessageID)
	if err != nil {
		return CancelMessageOutput{}, fmt.Errorf("cancel message %s: %w", in.MessageID, err)
	}
	if err := authz.Require(ctx, messageResource(m.ID, m.ScopePath)); err != nil {
		return CancelMessageOutput{}, err
	}
	ev, err := m.Cancel()
	if err != nil {
		return CancelMessageOutput{}, err
	}
	if err := h.Repo.SaveMessage(ctx, tenantID, m, []domain.Event{ev}); err != nil {
		return CancelMessageOutput{}, fmt.Errorf("cancel message %s: %w", m.ID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.Logger.InfoContext(ctx, "message canceled", slog.String("messageId", m.ID), slog.String("from", string(m.Status)))
	})
	return CancelMessageOutput{MessageID: m.ID, Status: string(domain.StatusCanceled)}, nil
}
