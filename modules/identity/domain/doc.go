// Package domain is the identity context's model, pure (no I/O, no clock, no
// randomness): the platform's signing key set (an event-sourced aggregate)
// with its rotation and retirement rules, and the facts of the context.
package domain
