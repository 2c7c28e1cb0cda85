package work

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// MaxParkedList bounds List and Replay.
const MaxParkedList = 1000

// Parked are the operator tools for parked work: outbox entries that used
// their attempts (DueAt = eventstore.ParkedAt). They stay in the outbox, never
// handed again, until an operator replays them.
type Parked struct {
	Store eventstore.Outbox
	// Relay hands replayed entries at once; nil leaves them to the next sweep.
	Relay *Relay
	Clock clock.Clock // nil: system clock
}

// List returns up to limit parked entries of all tenants (limit <= 0: 100; at
// most MaxParkedList), each with its Attempt and LastError.
func (p *Parked) List(ctx context.Context, limit int) ([]Item, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxParkedList)
	items, err := p.Store.ParkedOutbox(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("list parked work: %w", err)
	}
	return items, nil
}

// Replay makes parked entries due now with Attempt 0 (LastError kept until a
// new failure replaces it) and hands them through the relay. ids names the
// entries; empty ids replays every parked entry, up to MaxParkedList.
//
// Limit: the port has no lookup by id and parked entries cannot be paged, so
// named entries are looked up among the first MaxParkedList parked entries
// only. The ids not found there (unknown, already replayed, or beyond that
// window) are not replayed; they are returned in notFound, in the order given
// and each once, so the operator sees them (replay the first entries, then
// ask again).
//
// It returns how many entries it replayed; on a store error, those replayed
// before it.
func (p *Parked) Replay(ctx context.Context, ids []string) (replayed int, notFound []string, err error) {
	parked, err := p.List(ctx, MaxParkedList)
	if err != nil {
		return 0, nil, err
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	found := make(map[string]bool, len(ids))
	now := systemClock(p.Clock).Now()
	done := make([]Item, 0, len(parked))
	var rerr error
	for _, it := range parked {
		if len(ids) > 0 && !want[it.ID] {
			continue
		}
		found[it.ID] = true
		if rerr != nil {
			continue // found, not replayed: the error says so
		}
		it.Attempt, it.DueAt = 0, now
		if err := p.Store.RescheduleOutbox(ctx, it); err != nil {
			rerr = fmt.Errorf("replay parked work %s: %w", it.ID, err)
			continue
		}
		done = append(done, it)
	}
	for _, id := range ids {
		if !found[id] {
			notFound = append(notFound, id)
			found[id] = true // report a repeated id once
		}
	}
	if p.Relay != nil && len(done) > 0 {
		p.Relay.AfterCommit(ctx, done)
	}
	return len(done), notFound, rerr
}
