// Package domain holds the tenancy context's business rules: the Tenant, Scope
// and ServiceAccount aggregates, their events and their errors.
//
// It is pure: no storage, no AWS, no clock or id generator (callers pass ids in
// and read times from the recorded events). Aggregates are rebuilt from their
// events with Replay*/Apply; commands on aggregates validate and return the
// new events without changing the aggregate, so the caller decides whether
// they are persisted.
//
// Event type strings are persisted: they are explicit constants, never derived
// by reflection, and never renamed (events/contracts/tenancy.md).
package domain
