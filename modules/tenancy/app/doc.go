// Package app is the tenancy context's application layer: one handler per
// command, query and work type, each taking ctx first and a typed input.
//
// Handlers read the caller's tenant from the invocation context
// (invocation.From(ctx).TenantID()), never from input. Inputs carry `json` and
// `validate` tags that the rpc edge checks before calling; handlers still
// enforce every business rule through the domain, so they are safe to call
// without the edge (tests, workers).
//
// # Read models
//
// Queries that list read from read models ("scopes", "api-key-list"), rows derived from the
// events and written in the same commit as the events that cause them (a
// synchronous projection). The event streams stay the only source of truth: a
// read model can be dropped and rebuilt by replaying the streams. Queries of a
// single aggregate (get-tenant) rebuild it from its stream instead.
package app
