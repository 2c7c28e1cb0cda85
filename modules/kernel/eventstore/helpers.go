package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// TruncateLastError returns s as kept in OutboxEntry.LastError: valid UTF-8
// (invalid bytes become U+FFFD) and at most MaxLastError bytes, cut at a
// character boundary. Adapters apply it when they store an entry; the work
// path uses it for the errors it records.
func TruncateLastError(s string) string {
	s = strings.ToValidUTF8(s, "\ufffd")
	if len(s) <= MaxLastError {
		return s
	}
	n := MaxLastError
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ValidateList checks a list's name and slot: the slot in 1..MaxListSlots,
// the name non-empty and without '#' or NUL. Errors wrap ErrInvalid.
func ValidateList(l List) error {
	if l.Slot < 1 || l.Slot > MaxListSlots {
		return fmt.Errorf("list %s: slot %d not in 1..%d: %w", l.Name, l.Slot, MaxListSlots, ErrInvalid)
	}
	if l.Name == "" || strings.ContainsAny(l.Name, "#\x00") {
		return fmt.Errorf("list name %q: empty or contains '#' or NUL: %w", l.Name, ErrInvalid)
	}
	return nil
}

// ValidateLists checks a row's list memberships as every adapter does before
// a commit: each list valid (ValidateList), at most one entry per slot,
// partitions and sorts without NUL, and no Lists on a Global row or a
// Delete. Errors wrap ErrInvalid.
func ValidateLists(r Record) error {
	if r.Global && !r.ExpiresAt.IsZero() {
		return fmt.Errorf("expiry on a global row: %w", ErrInvalid)
	}
	if len(r.Lists) == 0 {
		return nil
	}
	if r.Global {
		return fmt.Errorf("lists on a global row: %w", ErrInvalid)
	}
	if r.Delete {
		return fmt.Errorf("lists on a delete: %w", ErrInvalid)
	}
	var slots [MaxListSlots + 1]bool
	for _, e := range r.Lists {
		if err := ValidateList(e.List); err != nil {
			return err
		}
		if slots[e.List.Slot] {
			return fmt.Errorf("list %s: slot %d used twice: %w", e.List.Name, e.List.Slot, ErrInvalid)
		}
		slots[e.List.Slot] = true
		if strings.ContainsRune(e.Partition, 0) || strings.ContainsRune(e.Sort, 0) {
			return fmt.Errorf("list %s: partition or sort contains NUL: %w", e.List.Name, ErrInvalid)
		}
	}
	return nil
}

// MarshalJSON encodes v as the store and the work path keep JSON: without
// HTML escaping, so "<" in a message's html costs one byte against
// MaxItemBytes and MaxOutboxPayload, not six.
func MarshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ValidatePut checks a row for RecordWriter.PutRecords as every adapter does:
// a tenant's row to write (no IfAbsent, Delete or Global), then as in a
// commit (ValidateLists).
func ValidatePut(r Record) error {
	if r.IfAbsent || r.Delete || r.Global || r.Source != nil {
		return fmt.Errorf("put record %s/%s: IfAbsent, Delete, Global and Source rows are for commits: %w", r.Collection, r.Key, ErrInvalid)
	}
	return ValidateLists(r)
}

// CheckCommitBytes checks the sizes every adapter refuses before any I/O
// (ErrTooLarge): the idempotency record's Body over MaxItemBytes, and the
// commit's values (Data of events and records, outbox payloads, the Body)
// over MaxCommitBytes together.
func CheckCommitBytes(c *Commit) error {
	total := 0
	if c.Idempotency != nil {
		if n := len(c.Idempotency.Body); n > MaxItemBytes {
			return fmt.Errorf("idempotency %s: body of %d bytes: %w", c.Idempotency.Key, n, ErrTooLarge)
		}
		total += len(c.Idempotency.Body)
	}
	for _, a := range c.Appends {
		for _, e := range a.Events {
			total += len(e.Data)
		}
	}
	for _, r := range c.Records {
		total += len(r.Data)
	}
	for _, e := range c.Outbox {
		total += len(e.Payload)
	}
	if total > MaxCommitBytes {
		return fmt.Errorf("%d bytes of values in one commit, more than %d: %w", total, MaxCommitBytes, ErrTooLarge)
	}
	return nil
}
