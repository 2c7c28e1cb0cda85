// Package kernel is Switchboard's shared kernel: the small set of packages every
// bounded context (modules/<context>) builds on. It holds no business rules.
//
//   - ids:        prefixed ULIDs and an injectable generator
//   - clock:      an injectable clock
//   - invocation: the invocation context (ids, trace, principal, tenant, toggles)
//   - errs:       the one error vocabulary, mapped to HTTP only at the edge
//   - problem:    RFC 9457 problem+json rendering with localized messages
//   - logging:    slog JSON logs that carry the invocation context
//   - eventstore: the event store port (source of truth), its unit of work and adapters
//   - work:       durable asynchronous work: outbox relay, sweep, handlers
//   - auth:       credentials (operator key, API keys) and principals
//   - rpc:        POST /commands/{name}, /queries/{name}, middleware and batch
//   - trigger:    the Lambda trigger router (API Gateway v1/v2, SQS, EventBridge)
package kernel
