package app

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/paging"
)

// ListDeliveriesInput is the body of list-deliveries.
type ListDeliveriesInput struct {
	SubscriptionID string `json:"subscriptionId" validate:"required,max=64"`
	Limit          *int   `json:"limit" validate:"omitempty,min=1,max=100"`
	Cursor         string `json:"cursor" validate:"omitempty,max=1024"`
}

// DeliveryItem is one delivery in a list.
type DeliveryItem struct {
	DeliveryID     string  `json:"deliveryId"`
	SubscriptionID string  `json:"subscriptionId"`
	EventID        string  `json:"eventId"`
	EventType      string  `json:"eventType"`
	MessageID      *string `json:"messageId"` // the event's message; null for deliveries made before it was recorded
	Status         string  `json:"status"`    // "pending" | "succeeded" | "failed"
	Attempts       int     `json:"attempts"`
	LastStatusCode *int    `json:"lastStatusCode"` // null before the first response
	LastError      *string `json:"lastError"`      // null unless the last attempt failed
	NextAttemptAt  *string `json:"nextAttemptAt"`  // null unless another attempt is due
	CreatedAt      string  `json:"createdAt"`
	UpdatedAt      string  `json:"updatedAt"`
}

// ListDeliveriesOutput is one page of deliveries.
type ListDeliveriesOutput struct {
	Items      []DeliveryItem `json:"items"`
	NextCursor *string        `json:"nextCursor"`
}

// ListDeliveriesHandler runs list-deliveries: a subscription's deliveries,
// newest first.
type ListDeliveriesHandler struct {
	Repo  Repository
	Reads ReadModel
}

// Handle implements the query. Errors: 404 errs.NotFound("subscription")
// for a subscription that is missing or of another tenant; 403; 400 for a
// limit outside 1..100 or a cursor this list did not issue.
func (h ListDeliveriesHandler) Handle(ctx context.Context, in ListDeliveriesInput) (ListDeliveriesOutput, error) {
	tenantID, err := authz.TenantOf(ctx)
	if err != nil {
		return ListDeliveriesOutput{}, err
	}
	limit, err := paging.Limit(in.Limit)
	if err != nil {
		return ListDeliveriesOutput{}, err
	}
	if !ids.Valid(ids.Subscription, in.SubscriptionID) {
		return ListDeliveriesOutput{}, errs.NotFound("subscription")
	}
	sub, err := h.Repo.Subscription(ctx, tenantID, in.SubscriptionID)
	if err != nil {
		return ListDeliveriesOutput{}, fmt.Errorf("list deliveries of %s: %w", in.SubscriptionID, err)
	}
	if err := authz.Require(ctx, authz.Resource{Type: "subscription", ID: sub.ID, ScopePath: sub.ScopePath}); err != nil {
		return ListDeliveriesOutput{}, err
	}
	views, next, err := h.Reads.ListDeliveries(ctx, tenantID, sub.ID, limit, in.Cursor)
	if err != nil {
		return ListDeliveriesOutput{}, fmt.Errorf("list deliveries of %s: %w", sub.ID, err)
	}
	out := ListDeliveriesOutput{Items: make([]DeliveryItem, 0, len(views)), NextCursor: paging.Next(next)}
	for _, v := range views {
		it := DeliveryItem{
			DeliveryID: v.DeliveryID, SubscriptionID: v.SubscriptionID, EventID: v.EventID, EventType: v.EventType,
			Status: string(v.Status), Attempts: v.Attempts, NextAttemptAt: formatTimePtr(v.NextAttemptAt),
			CreatedAt: formatTime(v.CreatedAt), UpdatedAt: formatTime(v.UpdatedAt),
		}
		if v.MessageID != "" {
			id := v.MessageID
			it.MessageID = &id
		}
		if v.LastStatusCode != 0 {
			code := v.LastStatusCode
			it.LastStatusCode = &code
		}
		if v.LastError != "" {
			msg := v.LastError
			it.LastError = &msg
		}
		out.Items = append(out.Items, it)
	}
	return out, nil
}
