package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/paging"
	"github.com/switchboard-dev/switchboard/modules/messaging/domain"
)

// ListMessagesInput is the body of list-messages.
type ListMessagesInput struct {
	ScopeID   string `json:"scopeId" validate:"omitempty,max=64"`
	ChannelID string `json:"channelId" validate:"omitempty,max=64"`
	Status    string `json:"status" validate:"omitempty,max=32"`
	Limit     int    `json:"limit" validate:"omitempty,min=1,max=100"`
	Cursor    string `json:"cursor" validate:"omitempty,max=1024"`
}

// ListMessagesOutput is one page of messages.
type ListMessagesOutput struct {
	Items      []MessageView `json:"items"`
	NextCursor *string       `json:"nextCursor"` // null on the last page
}

// ListMessagesHandler runs list-messages: the caller's tenant's messages,
// newest first, from the one list partition that answers the filter (no
// scans, no filtering of pages).
//
// Filters: scopeId is the scope of the message's channel, exactly (not the
// scopes below it); channelId one channel; status one status. With both a
// scope and a channel, the page is empty when the channel is not in that scope.
type ListMessagesHandler struct {
	Reads  ReadModel
	Scopes Scopes
}

// Handle implements the query. It authorizes on the channel when one is
// given, else on the scope, else on the tenant (its root scope). Errors: 404
// for a channel or scope that is malformed, missing or of another tenant;
// 400 for an unknown status, a limit outside 1..100 or a cursor the list did
// not issue.
func (h ListMessagesHandler) Handle(ctx context.Context, in ListMessagesInput) (ListMessagesOutput, error) {
	tenantID, err := tenantOf(ctx)
	if err != nil {
		return ListMessagesOutput{}, err
	}
	limit, err := paging.Limit(in.Limit)
	if err != nil {
		return ListMessagesOutput{}, err
	}
	status := domain.Status(in.Status)
	if status != "" && !status.Valid() {
		all := make([]string, 0, len(domain.Statuses()))
		for _, s := range domain.Statuses() {
			all = append(all, string(s))
		}
		return ListMessagesOutput{}, errs.Invalid(errs.FieldError{Field: "status", Code: domain.CodeOneOf,
			Params: map[string]any{"allowed": strings.Join(all, ", ")}})
	}
	empty := ListMessagesOutput{Items: []MessageView{}}
	switch {
	case in.ChannelID != "":
		ch, err := h.Reads.ChannelByID(ctx, tenantID, in.ChannelID)
		if err != nil {
			return ListMessagesOutput{}, fmt.Errorf("list messages: channel %s: %w", in.ChannelID, err)
		}
		if err := authz.Require(ctx, channelResource(ch)); err != nil {
			return ListMessagesOutput{}, err
		}
		if in.ScopeID != "" && in.ScopeID != ch.ScopeID {
			// No message of the channel lies in another scope; a scope that
			// does not exist is still a 404.
			if _, err := scopePath(ctx, h.Scopes, tenantID, in.ScopeID); err != nil {
				return ListMessagesOutput{}, fmt.Errorf("list messages: %w", err)
			}
			return empty, nil
		}
	default:
		if err := requireScopeOrTenant(ctx, h.Scopes, tenantID, in.ScopeID); err != nil {
			return ListMessagesOutput{}, fmt.Errorf("list messages: %w", err)
		}
	}
	views, next, err := h.Reads.ListMessages(ctx, tenantID,
		MessageFilter{ScopeID: in.ScopeID, ChannelID: in.ChannelID, Status: status}, limit, in.Cursor)
	if err != nil {
		return ListMessagesOutput{}, fmt.Errorf("list messages: %w", err)
	}
	if views == nil {
		views = []MessageView{}
	}
	return ListMessagesOutput{Items: views, NextCursor: paging.Next(next)}, nil
}
