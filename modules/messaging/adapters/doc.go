// Package adapters implements the messaging ports over the event store: the
// repository (per-entity event streams), the read models derived from the
// events, and the lookups provider webhooks need. Provider adapters live in
// subpackages (sandbox).
//
// Streams (ids within the tenant; the store prefixes the tenant id):
//
//	"channel-<channelId>"   channels.channel-created
//	"message-<messageId>"   messaging.message-accepted | messaging.message-received,
//	                        then message-released, -canceled, send-attempt-failed,
//	                        message-sent, -failed, -delivered, -undelivered
//
// Records, written in the commit of the events they derive from:
//
//	"channels"/<channelId>                            ChannelRow (never secrets); lists
//	                                                  "channels" ("") and "channels-by-scope" (<scopeId>)
//	"channel-routes"/<channelId> (global)             ChannelRouteRow: channel -> tenant, for provider webhooks
//	"messages"/<messageId>                            MessageRow; lists, 16 write shards each:
//	                                                  "messages" (""), "messages-by-scope" (<scopeId>),
//	                                                  "messages-by-channel" (<channelId>),
//	                                                  "messages-by-status" (<status>),
//	                                                  "messages-by-scope-status" (<scopeId>/<status>),
//	                                                  "messages-by-channel-status" (<channelId>/<status>)
//	"provider-messages"/<channelId>/<providerMsgId>   ProviderMessageRow: provider id -> message
//	                                                  (if absent for an inbound message: made once;
//	                                                  for a send, if absent unless the send's commit
//	                                                  applies the receipt that waited there: a
//	                                                  receipt that came first is kept in the row,
//	                                                  expiring, until the send's commit)
//	"provider-inbound-claims"/<channelId>/<providerMsgId>  if absent: makes an inbound message once
//	                                                  when its lookup row is written over a stray
//	                                                  waiting receipt
//	(<providerMsgId> as it is when it is printable UTF-8 of at most 512 bytes
//	not starting with '#', else "#" and its SHA-256: ProviderMessageKey)
//
// List sort keys are the entity ids (ULIDs): descending order is newest
// first. A message moves between status partitions as its status changes.
//
// The projection functions (ProjectChannel, ProjectMessage,
// ProjectProviderMessage) are the one definition of the rows: the write path
// projects the aggregate after its new events, a rebuild
// (Repository.RebuildChannel, RebuildMessage) the aggregate replayed from its
// stream, and both give the same bytes (times are rendered at millisecond
// precision in UTC, maps are encoded with sorted keys).
//
// Rebuilds are by id: the store has no scan (by design, ADR 0007), so
// rebuilding every row of a collection needs the ids of its streams from
// elsewhere (an export of the table, or the ids of another read model).
package adapters
