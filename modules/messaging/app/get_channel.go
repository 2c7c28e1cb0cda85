package app

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
)

// GetChannelInput is the body of get-channel.
type GetChannelInput struct {
	ChannelID string `json:"channelId" validate:"required,max=64"`
}

// GetChannelHandler runs get-channel: one channel of the caller's tenant,
// from the "channels" read model; never its credentials or inbound secret.
type GetChannelHandler struct {
	Reads ReadModel
}

// Handle implements the query. Errors: 404 errs.NotFound("channel") for an
// id that is malformed, unknown or of another tenant.
func (h GetChannelHandler) Handle(ctx context.Context, in GetChannelInput) (ChannelView, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return ChannelView{}, err
	}
	ch, err := h.Reads.ChannelByID(ctx, tenantID, in.ChannelID)
	if err != nil {
		return ChannelView{}, fmt.Errorf("get channel %s: %w", in.ChannelID, err)
	}
	if err := authz.Require(ctx, channelResource(ch)); err != nil {
		return ChannelView{}, err
	}
	return ch, nil
}

// channelResource is a channel as authorization sees it.
func channelResource(ch ChannelView) authz.Resource {
	return authz.Resource{Type: "channel", ID: ch.ChannelID, ScopePath: ch.ScopePath}
}

// messageResource is a message as authorization sees it.
func messageResource(id string, scopePath []string) authz.Resource {
	return authz.Resource{Type: "message", ID: id, ScopePath: scopePath}
}
