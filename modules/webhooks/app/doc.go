// Package app is the webhooks context's application layer: one file per
// command, query and work type (and the integration-event subscriber), each
// handler a struct whose exported fields are the ports it needs.
//
// Handlers read the caller's tenant from the invocation context
// (invocation.From(ctx).TenantID()), never from input. Inputs carry `json` and
// `validate` tags that the rpc edge checks before calling; handlers still
// enforce every business rule through the domain, so they are safe to call
// without the edge (tests, workers).
//
// # The delivery pipeline
//
//  1. FanOutHandler (subscriber of every message.* integration event) finds
//     the enabled subscriptions of each scope of the message's scope path
//     whose event types match, builds the body once, and creates one delivery
//     per subscription (idempotent per subscription and event id), making its
//     first attempt (in parallel) before the commit that records both; only
//     a failed attempt stages a WorkDeliver item, due on the Svix schedule.
//     More than MaxDeliveriesPerCommit deliveries continue in a WorkFanOut
//     item, so a commit stays within the store's item limit.
//  2. DeliverHandler (WorkDeliver) makes one retry, records it, and stages
//     the next attempt on the Svix schedule (domain.Schedule) as a new
//     WorkDeliver item with its DueAt; after the last one the delivery is
//     failed. A try that is not made (the endpoint gate, the pause rule) is
//     put off, not counted (domain.Delivery.RecordDeferral), and staged
//     again with the same attempt number. An attempt (first or retry: attempter) changes nothing outside
//     its delivery, so concurrent deliveries never conflict; when it may
//     change the endpoint's health it stages a WorkSubscriptionHealth item.
//  3. SubscriptionHealthHandler (WorkSubscriptionHealth) applies the health
//     rule to the subscription (failing since the first failure after a
//     success; disabled after domain.DisableAfter of failing; recovered by a
//     success), writing only when the state changes.
package app
