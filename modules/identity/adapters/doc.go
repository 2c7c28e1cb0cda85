// Package adapters implements the identity application's ports over the
// event store: the platform key set (stream "signing-keys" with its snapshot
// row, in the platform namespace) and the tenants' token-issued events.
package adapters
