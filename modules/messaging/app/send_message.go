package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// SendMessageInput is the body of send-message. The rules of the contract
// (domain.CheckOutbound) are checked by the handler, which knows the
// channel's type, so that one answer names every invalid field.
type SendMessageInput struct {
	ChannelID string            `json:"channelId" validate:"required,max=64"`
	To        string            `json:"to"`
	Content   domain.Content    `json:"content"`
	SendAt    *string           `json:"sendAt"` // RFC 3339; null or absent: now
	Metadata  map[string]string `json:"metadata"`
}

// SendMessageOutput is the answer of send-message (202).
type SendMessageOutput struct {
	MessageID string `json:"messageId"`
	Status    string `json:"status"` // "queued" | "scheduled"
}

// SendMessageHandler runs send-message [sender]: it accepts an outbound
// message on a channel of the caller's tenant and queues its dispatch (at
// sendAt for a scheduled message). It is the hot path: one read (the
// channel's row), one staged write (the message's first event, its row, its
// message.queued integration event and its dispatch work), no replay.
type SendMessageHandler struct {
	Repo    Repository
	Reads   ReadModel
	IDs     ids.Generator
	Clock   clock.Clock
	Logger  *slog.Logger
	Metrics Metrics // MessagesAccepted after the commit; nil: none
}

// Handle implements the command. Errors: 404 errs.NotFound("channel") for a
// channel that is malformed, unknown or of another tenant; 400 with every
// invalid field (to, content.*, sendAt, metadata.*).
func (h SendMessageHandler) Handle(ctx context.Context, in SendMessageInput) (SendMessageOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return SendMessageOutput{}, err
	}
	ch, err := h.Reads.ChannelByID(ctx, tenantID, in.ChannelID)
	if err != nil {
		return SendMessageOutput{}, fmt.Errorf("send message: channel %s: %w", in.ChannelID, err)
	}
	if err := authz.Require(ctx, channelResource(ch)); err != nil {
		return SendMessageOutput{}, err
	}
	now := h.Clock.Now()
	sendAt, badSendAt := parseSendAt(in.SendAt)
	ref := domain.ChannelRef{ID: ch.ChannelID, ScopeID: ch.ScopeID, ScopePath: ch.ScopePath,
		Type: domain.ChannelType(ch.Type), Provider: ch.Provider, From: ch.From}
	accepted, err := domain.Accept(h.IDs.New(ids.Message), ref,
		domain.OutboundMessage{To: in.To, Content: in.Content, SendAt: sendAt, Metadata: in.Metadata}, now)
	if badSendAt != nil {
		var fields []errs.FieldError
		if err != nil {
			fields = errs.As(err).Fields
		}
		return SendMessageOutput{}, errs.Invalid(append(fields, *badSendAt)...)
	}
	if err != nil {
		return SendMessageOutput{}, err
	}
	due := now
	if accepted.SendAt != nil {
		due = accepted.SendAt.Time
	}
	err = h.Repo.SaveMessage(ctx, tenantID, nil, []domain.Event{accepted},
		Work{Type: WorkDispatch, Payload: DispatchPayload{MessageID: accepted.MessageID, Attempt: 1}, DueAt: due})
	if err != nil {
		return SendMessageOutput{}, fmt.Errorf("send message %s: %w", accepted.MessageID, err)
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.Logger.InfoContext(ctx, "message accepted", slog.String("messageId", accepted.MessageID),
			slog.String("channelId", accepted.ChannelID), slog.String("status", string(accepted.Status)))
		countMessage(ctx, h.Metrics, MetricMessagesAccepted, accepted.ChannelType)
	})
	return SendMessageOutput{MessageID: accepted.MessageID, Status: string(accepted.Status)}, nil
}

// parseSendAt reads sendAt (RFC 3339, any offset: clock.ParseRFC3339); a
// malformed one is the field error errors.validation.datetime, as in every
// date-time input (its range is the domain's to check).
func parseSendAt(s *string) (*time.Time, *errs.FieldError) {
	if s == nil {
		return nil, nil
	}
	t, err := clock.ParseRFC3339(*s)
	if err != nil {
		return nil, &errs.FieldError{Field: "sendAt", Code: "errors.validation.datetime"}
	}
	return &t, nil
}
