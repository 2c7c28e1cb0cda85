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
// entries; ids that are not parked (unknown, already replayed) are ignored and
// not counted. Empty ids replays every parked entry, up to MaxParkedList. It
// returns how many entries it replayed; on a store error, those replayed
// before it.
func (p *Parked) Replay(ctx context.Context, ids []string) (int, error) {
	parked, err := p.List(ctx, MaxParkedList)
	if err != nil {
		return 0, err
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	now := systemClock(p.Clock).Now()
	replayed := make([]Item, 0, len(parked))
	var rerr error
	for _, it := range parked {
		if len(ids) > 0 && !want[it.ID] {
			continue
		}
		it.Attempt, it.DueAt = 0, now
		if err := p.Store.RescheduleOutbox(ctx, it); err != nil {
			rerr = fmt.Errorf("replay parked work %s: %w", it.ID, err)
			break
		}
		replayed = append(replayed, it)
	}
	if p.Relay != nil && len(replayed) > 0 {
		p.Relay.AfterCommit(ctx, replayed)
	}
	return len(replayed), rerr
}
