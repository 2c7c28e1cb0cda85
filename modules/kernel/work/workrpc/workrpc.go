// Package workrpc exposes the operator tools of the work path as RPC
// endpoints (operator key only):
//
//   - query list-parked-work {"limit"?: 1..1000} -> {"items": [...], "count": n}:
//     outbox entries that used their attempts, of every tenant, with their
//     type, attempt count and last error;
//   - command replay-parked-work {"workIds"?: [...]} -> {"replayed": n,
//     "notFound": [...]}: makes the named parked entries (all of them, up to
//     1000, when workIds is empty) due now with a fresh attempt count and
//     hands them to the relay. Named entries are looked up among the first
//     1000 parked entries only; notFound lists the workIds not found there
//     (unknown, already replayed, or beyond them: ask again after replaying).
package workrpc

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// Actions. Persisted in role definitions.
const (
	ActionListParked   = "work:list-parked-work"
	ActionReplayParked = "work:replay-parked-work"
)

// ListParkedInput is the body of list-parked-work.
type ListParkedInput struct {
	Limit *int `json:"limit" validate:"omitempty,min=1,max=1000"` // absent: 100; 0 is refused, as in every list
}

// ParkedItem is one parked entry.
type ParkedItem struct {
	WorkID       string `json:"workId"`
	TenantID     string `json:"tenantId"`
	Type         string `json:"type"`
	Attempt      int    `json:"attempt"`
	LastError    string `json:"lastError"`
	InvocationID string `json:"invocationId"`
	TraceID      string `json:"traceId"`
}

// ListParkedOutput is the answer of list-parked-work.
type ListParkedOutput struct {
	Items []ParkedItem `json:"items"`
	Count int          `json:"count"`
}

// ReplayParkedInput is the body of replay-parked-work.
type ReplayParkedInput struct {
	WorkIDs []string `json:"workIds" validate:"max=1000,dive,required,max=64"`
}

// ReplayParkedOutput is the answer of replay-parked-work.
type ReplayParkedOutput struct {
	Replayed int `json:"replayed"`
	// NotFound are the workIds that were not replayed because they are not
	// among the first 1000 parked entries (never null).
	NotFound []string `json:"notFound"`
}

// Endpoints returns the operator endpoints over p.
func Endpoints(p *work.Parked) []rpc.Endpoint {
	list := func(ctx context.Context, in ListParkedInput) (ListParkedOutput, error) {
		limit := 0 // Parked.List's default
		if in.Limit != nil {
			limit = *in.Limit
		}
		items, err := p.List(ctx, limit)
		if err != nil {
			return ListParkedOutput{}, fmt.Errorf("list-parked-work: %w", err)
		}
		out := ListParkedOutput{Items: make([]ParkedItem, 0, len(items)), Count: len(items)}
		for _, it := range items {
			out.Items = append(out.Items, ParkedItem{WorkID: it.ID, TenantID: it.TenantID, Type: it.Type, Attempt: it.Attempt,
				LastError: it.LastError, InvocationID: it.Invocation.InvocationID, TraceID: it.Invocation.TraceID})
		}
		return out, nil
	}
	replay := func(ctx context.Context, in ReplayParkedInput) (ReplayParkedOutput, error) {
		n, notFound, err := p.Replay(ctx, in.WorkIDs)
		if err != nil {
			return ReplayParkedOutput{}, fmt.Errorf("replay-parked-work: %w", err)
		}
		if notFound == nil {
			notFound = []string{}
		}
		return ReplayParkedOutput{Replayed: n, NotFound: notFound}, nil
	}
	return []rpc.Endpoint{
		rpc.Query("list-parked-work", ActionListParked, list, rpc.OperatorOnly()),
		rpc.Command("replay-parked-work", ActionReplayParked, replay, rpc.OperatorOnly()),
	}
}
