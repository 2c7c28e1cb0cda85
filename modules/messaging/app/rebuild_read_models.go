package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// MaxRebuildIDs bounds the ids of one rebuild-read-models call.
const MaxRebuildIDs = 100

// Rebuilder re-derives read-model rows from their streams.
type Rebuilder interface {
	// RebuildChannel rewrites a channel's rows (its "channels" row and its
	// route) from its stream; false, nil when the tenant has no such channel.
	RebuildChannel(ctx context.Context, tenantID, channelID string) (bool, error)
	// RebuildMessage rewrites a message's rows (its "messages" row with its
	// list memberships, its provider lookup) from its stream; false, nil when
	// the tenant has no such message.
	RebuildMessage(ctx context.Context, tenantID, messageID string) (bool, error)
}

// RebuildReadModelsInput is the body of rebuild-read-models: 1 to 100 ids
// in all.
type RebuildReadModelsInput struct {
	ChannelIDs []string `json:"channelIds" validate:"omitempty,max=100,dive,max=64"`
	MessageIDs []string `json:"messageIds" validate:"omitempty,max=100,dive,max=64"`
}

// RebuildReadModelsOutput is the answer of rebuild-read-models: how many of
// the ids named a channel or message of the tenant (the others are skipped).
type RebuildReadModelsOutput struct {
	Rebuilt int `json:"rebuilt"`
}

// RebuildReadModelsHandler runs rebuild-read-models [admin]: it re-derives
// the rows of the named channels and messages from their streams. It is
// idempotent; rows already right are written again with the same bytes.
type RebuildReadModelsHandler struct {
	Rebuilder Rebuilder
	Scopes    Scopes
	Logger    *slog.Logger
}

// Handle implements the command, authorized on the tenant (its root scope).
// Errors: 400 for no ids or more than 100.
func (h RebuildReadModelsHandler) Handle(ctx context.Context, in RebuildReadModelsInput) (RebuildReadModelsOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return RebuildReadModelsOutput{}, err
	}
	if n := len(in.ChannelIDs) + len(in.MessageIDs); n < 1 || n > MaxRebuildIDs {
		p := map[string]any{"min": 1, "max": MaxRebuildIDs}
		return RebuildReadModelsOutput{}, errs.Invalid(
			errs.FieldError{Field: "channelIds", Code: "errors.validation.range", Params: p},
			errs.FieldError{Field: "messageIds", Code: "errors.validation.range", Params: p})
	}
	root, err := h.Scopes.RootScopeID(ctx, tenantID)
	if err != nil {
		return RebuildReadModelsOutput{}, fmt.Errorf("rebuild read models: %w", err)
	}
	if err := authz.Require(ctx, authz.Tenant(tenantID, root)); err != nil {
		return RebuildReadModelsOutput{}, err
	}
	n, err := RebuildReadModels(ctx, h.Rebuilder, tenantID, in.ChannelIDs, in.MessageIDs)
	if err != nil {
		return RebuildReadModelsOutput{}, err
	}
	uow.OnCommit(ctx, func(ctx context.Context) {
		h.Logger.InfoContext(ctx, "read models rebuilt", slog.Int("rebuilt", n),
			slog.Int("channels", len(in.ChannelIDs)), slog.Int("messages", len(in.MessageIDs)))
	})
	return RebuildReadModelsOutput{Rebuilt: n}, nil
}

// RebuildReadModels re-derives the rows of channels and messages of a tenant
// from their streams and returns how many ids named an existing stream
// (malformed, unknown and repeated ids are skipped). It authorizes nothing:
// the caller is the rebuild command (which did) or a job of the system.
//
// Each entity's rows are committed on their own, at once (not staged in a
// unit of work), so any number of ids can be rebuilt by calling it in pages.
// There is no scan: rebuilding every row needs the ids from elsewhere (see
// package adapters).
func RebuildReadModels(ctx context.Context, r Rebuilder, tenantID string, channelIDs, messageIDs []string) (int, error) {
	n := 0
	seen := make(map[string]bool, len(channelIDs)+len(messageIDs))
	for _, id := range channelIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		ok, err := r.RebuildChannel(ctx, tenantID, id)
		if err != nil {
			return n, fmt.Errorf("rebuild read models: channel %s: %w", id, err)
		}
		if ok {
			n++
		}
	}
	for _, id := range messageIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		ok, err := r.RebuildMessage(ctx, tenantID, id)
		if err != nil {
			return n, fmt.Errorf("rebuild read models: message %s: %w", id, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}
