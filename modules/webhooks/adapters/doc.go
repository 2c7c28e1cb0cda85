// Package adapters implements the webhooks ports: the repository and read
// models over the event store, the HTTP sender that signs attempts with
// Standard Webhooks, and the target guard (creation-time resolution check and
// the dial-time address check of every delivery). It is the only package of
// the context that knows package eventstore or the network.
//
// Streams (ids within the tenant; the store prefixes the tenant id):
//
//	"subscription-<subscriptionId>"        webhooks.subscription-created, -failing, -recovered, -disabled
//	"delivery-<deliveryId>"                webhooks.delivery-created (carrying the first attempt
//	                                       when the fan-out made it), -attempted, -abandoned
//	"scope-subscriptions-<scopeId>"        webhooks.scope-subscriptions-started (a scope made before
//	                                       the sets), webhooks.scope-subscription-added, -removed: the
//	                                       scope's set of enabled subscriptions, changed in the commit
//	                                       that creates or disables one
//
// Records, written in the commit of the events they derive from:
//
//	"webhook-subscriptions"/<subscriptionId>   the subscription after its events (also the snapshot
//	                                           the repository loads, so a long stream is never replayed),
//	                                           in SubscriptionsList, SubscriptionsByScopeList and, while
//	                                           enabled, EnabledSubscriptionsList
//	"webhook-deliveries"/<deliveryId>          the delivery after its events, in DeliveriesList by its
//	                                           event (DeliverySort); its id is derived from (tenant,
//	                                           subscription, event) (app.DeliveryID), so its stream,
//	                                           created at version 0, is the one delivery per pair
//	"webhook-delivery-keys"/<subId>/<eventId>  read only: the delivery of a pair made before ids were
//	                                           derived (random ids), written with it then
//	"webhook-scope-subscriptions"/<scopeId>    the scope's set of enabled subscriptions, the head row
//	                                           of its stream (read strongly consistent by the fan-out:
//	                                           the list index lags on DynamoDB); a scope without one
//	                                           (subscriptions made before the sets) is read from
//	                                           EnabledSubscriptionsList until one of them changes
//	"webhook-payloads"/<eventId>               the body of every attempt of the event's deliveries when
//	                                           it is larger than app.InlineBodyMax (a smaller one travels
//	                                           in the attempt items); built once at fan-out, the same
//	                                           bytes on every attempt
//
// Every row but the payloads can be rebuilt by replaying the streams through
// the projection (Project*), which is the same code that writes them.
package adapters
