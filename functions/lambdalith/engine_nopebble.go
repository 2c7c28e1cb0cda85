//go:build nopebble

package main

import (
	"errors"

	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// openPebble: this binary was built without the pebble engine (the Lambda
// bootstrap, -tags nopebble).
func openPebble(string) (eventstore.Store, func() error, error) {
	return nil, nil, errors.New("this binary was built without the pebble engine (-tags nopebble): use SWITCHBOARD_ENGINE=bbolt")
}
