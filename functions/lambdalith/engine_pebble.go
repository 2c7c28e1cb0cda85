//go:build !nopebble

package main

import (
	"context"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore/pebblestore"
)

// openPebble opens the pebble engine of the embedded store in dir, with its
// purger; close stops both. The Lambda bootstrap is built without it
// (-tags nopebble: Lambda mode never opens an embedded store).
func openPebble(dir string) (eventstore.Store, func() error, error) {
	s, err := pebblestore.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	purge, stop := context.WithCancel(context.Background())
	s.StartPurger(purge, time.Minute) // removes expired idempotency records and rows
	return s, func() error { stop(); return s.Close() }, nil
}
