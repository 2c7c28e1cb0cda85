package pebblestore

import (
	"bytes"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
)

// Low-water marks.
//
// The outbox ("o/") and the expiry index ("ie/") are queues: keys are added
// in roughly ascending order and deleted from the front (acknowledged work,
// purged records). In an LSM tree a deleted key stays as a tombstone until
// compactions drop it, so a scan from the front of such a range steps over
// every tombstone still there: measured, 100,000 acknowledged entries made
// one PendingOutbox call take 8 ms instead of 0.08. The committer, the only
// writer, keeps for each a low-water mark, a key below which the range holds
// no live key, and scans start there:
//
//   - Every write of a key into the range lowers the mark to it, at once
//     (during apply, before the batch is applied, so before any reader's
//     view can hold the key). Lowering is always safe.
//   - The outbox's mark is raised by the committer between batches, after
//     some acknowledgements (outboxRaiseEvery): it seeks the first live key
//     of the DB's state at that moment (every batch applied, synced or not)
//     from the mark. A reader whose (older) view still holds an entry below
//     it misses an entry that is already deleted (acknowledged or moved),
//     which PendingOutbox's contract allows ("entries went meanwhile").
//   - The expiry index's mark is raised by Purge, which runs in the
//     committer and deletes every entry from the mark on, in order: its
//     batch then holds no live entry before the one after the last it
//     deleted, which becomes the pending mark; a write of a smaller key
//     later in the same batch lowers the pending mark too. Once the batch
//     is applied, the pending mark becomes the mark (a dropped batch drops
//     it).
//
// The marks live in memory: after Open, scans start at the front until the
// first raise. Each tombstone is stepped over about once per raise instead
// of once per scan.
type hints struct {
	outboxLow     atomic.Pointer[[]byte] // key after "o/"; nil: the front
	outboxDels    int                    // outbox deletions since the last raise (committer only)
	expiryLow     []byte                 // key after "ie/"; nil: the front (committer only)
	expiryPending []byte                 // the mark once the batch being built is applied; nil: none (committer only)
}

// outboxRaiseEvery is how many outbox deletions make the committer raise
// the outbox's mark (a seek over as many tombstones, some 80 µs).
const outboxRaiseEvery = 512

// lowerOutbox lowers the outbox's mark to k (an outbox key without "o/").
// Committer only.
func (h *hints) lowerOutbox(k []byte) {
	if low := h.outboxLow.Load(); low != nil && bytes.Compare(k, *low) < 0 {
		k = slices.Clone(k)
		h.outboxLow.Store(&k)
	}
}

// outboxDeleted counts n outbox deletions towards the next raise. Committer
// only.
func (h *hints) outboxDeleted(n int) { h.outboxDels += n }

// outboxStart is the key PendingOutbox starts at: "o/" and the mark.
func (h *hints) outboxStart() []byte {
	if low := h.outboxLow.Load(); low != nil {
		return nsKey(nsOutbox, *low)
	}
	return []byte(nsOutbox)
}

// maybeRaiseOutbox raises the outbox's mark to the first live outbox key
// when enough entries were deleted since the last raise. Committer only,
// between batches (the DB's state then holds every batch applied).
func (c *committer) maybeRaiseOutbox() {
	if c.outboxDels < outboxRaiseEvery {
		return
	}
	c.outboxDels = 0
	start := c.outboxStart()
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: prefixEnd([]byte(nsOutbox))})
	if err != nil {
		slog.Warn("pebblestore: outbox low-water mark not raised", slog.Any("error", err))
		return
	}
	low := []byte{0xff} // no live entry: above every outbox key, until one is written
	if it.First() {
		low = slices.Clone(it.Key()[len(nsOutbox):])
	}
	if err := it.Close(); err != nil {
		slog.Warn("pebblestore: outbox low-water mark not raised", slog.Any("error", err))
		return
	}
	c.outboxLow.Store(&low)
}

// lowerExpiry lowers the expiry index's marks to k (a key without "ie/").
// Committer only.
func (h *hints) lowerExpiry(k []byte) {
	if h.expiryLow != nil && bytes.Compare(k, h.expiryLow) < 0 {
		h.expiryLow = slices.Clone(k)
	}
	if h.expiryPending != nil && bytes.Compare(k, h.expiryPending) < 0 {
		h.expiryPending = slices.Clone(k)
	}
}

// expiryStart is the key Purge starts at: "ie/" and the mark. Committer
// only.
func (h *hints) expiryStart() []byte { return nsKey(nsExpiry, h.expiryLow) }

// purgedTo records that Purge deleted every entry from the mark to last (a
// key without "ie/") in the batch being built. Committer only.
func (h *hints) purgedTo(last []byte) {
	h.expiryPending = append(slices.Clone(last), 0) // the first key after last
}

// raiseExpiry makes the pending mark the mark, once its batch is applied.
// Committer only.
func (h *hints) raiseExpiry() {
	if p := h.expiryPending; p != nil && (h.expiryLow == nil || bytes.Compare(p, h.expiryLow) > 0) {
		h.expiryLow = p
	}
	h.expiryPending = nil
}
