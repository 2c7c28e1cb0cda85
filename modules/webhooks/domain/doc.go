// Package domain holds the subscriber-webhooks context's business rules: the
// Subscription and Delivery aggregates, their events, the event-type filter,
// the target URL rules (syntax and forbidden addresses), the retry schedule,
// the endpoint health rule and the pause rule (pause.go).
//
// It is pure: no storage, no network, no clock or id generator (callers pass
// ids, times and random draws in). Aggregates are rebuilt from their events
// with Apply; commands on aggregates validate and return the new events
// without changing the aggregate, so the caller decides whether they are
// persisted.
//
// Event type strings and every other persisted string are explicit
// constants, never derived by reflection, and never renamed.
package domain
