package app

import (
	"context"
	"errors"
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
	Limit     *int   `json:"limit" validate:"omitempty,min=1,max=100"`
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
//
// Without a scope or a channel, a caller who may not list the whole tenant
// (bound below its root) gets the messages of the scopes it may list in
// (ADR 0009, plan B): the scope partitions of those scopes read together and
// merged newest first (VisibleMessages), at most MaxVisibleScopes of them
// (more: 400 asking for a scopeId); no visible scope is an empty page.
type ListMessagesHandler struct {
	Reads  ReadModel
	Scopes Scopes
	// Tree and Visible serve a caller bound below the root; nil: such a
	// caller gets 403 without a scopeId.
	Tree    ScopeTree
	Visible VisibleMessages
}

// ActionListMessages is list-messages' action; a caller bound below the
// root is asked it of each scope.
const ActionListMessages = "messaging:list-messages"

// MaxVisibleScopes bounds the scope partitions one list-messages page reads
// for a caller bound below the root (each is a query of every shard).
const MaxVisibleScopes = 16

// ScopeTree is tenancy's scope tree: every scope's path (root first).
type ScopeTree interface {
	TenantScopePaths(ctx context.Context, tenantID string) ([][]string, error)
}

// VisibleMessages reads several scope partitions as one list, newest first;
// its cursor is its own (a cursor of another list is ErrInvalidCursor).
type VisibleMessages interface {
	ListMessagesIn(ctx context.Context, tenantID string, scopeIDs []string, status domain.Status, limit int, cursor string) ([]MessageView, string, error)
}

// Handle implements the query. It authorizes on the channel when one is
// given, else on the scope, else on the tenant (its root scope). Errors: 404
// for a channel or scope that is malformed, missing or of another tenant;
// 400 for an unknown status, a limit outside 1..100 or a cursor the list did
// not issue.
func (h ListMessagesHandler) Handle(ctx context.Context, in ListMessagesInput) (ListMessagesOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
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
	case in.ScopeID == "" && h.Tree != nil && h.Visible != nil:
		root, err := h.Scopes.RootScopeID(ctx, tenantID)
		if err != nil {
			return ListMessagesOutput{}, fmt.Errorf("list messages: %w", err)
		}
		if !authz.Can(ctx, ActionListMessages, authz.Tenant(tenantID, root)) {
			return h.visible(ctx, tenantID, status, limit, in.Cursor)
		}
		if err := authz.Require(ctx, authz.Tenant(tenantID, root)); err != nil {
			return ListMessagesOutput{}, err
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

// visible answers a caller bound below the root: the messages of the scopes
// it may list in, merged.
func (h ListMessagesHandler) visible(ctx context.Context, tenantID string, status domain.Status, limit int, cursor string) (ListMessagesOutput, error) {
	authz.Visible(ctx)
	paths, err := h.Tree.TenantScopePaths(ctx, tenantID)
	if errors.Is(err, authz.ErrScopeTreeTooLarge) {
		return ListMessagesOutput{}, errs.Invalid(errs.FieldError{Field: "scopeId", Code: "errors.validation.required"})
	}
	if err != nil {
		return ListMessagesOutput{}, fmt.Errorf("list messages: %w", err)
	}
	var scopes []string
	for _, p := range paths {
		if len(p) > 0 && authz.Can(ctx, ActionListMessages, authz.Resource{Type: authz.ResourceScope, ID: p[len(p)-1], ScopePath: p}) {
			scopes = append(scopes, p[len(p)-1])
		}
	}
	if len(scopes) == 0 {
		return ListMessagesOutput{Items: []MessageView{}}, nil
	}
	if len(scopes) > MaxVisibleScopes {
		return ListMessagesOutput{}, errs.Invalid(errs.FieldError{Field: "scopeId", Code: "errors.validation.required"})
	}
	views, next, err := h.Visible.ListMessagesIn(ctx, tenantID, scopes, status, limit, cursor)
	if err != nil {
		return ListMessagesOutput{}, fmt.Errorf("list messages: %w", err)
	}
	if views == nil {
		views = []MessageView{}
	}
	return ListMessagesOutput{Items: views, NextCursor: paging.Next(next)}, nil
}
