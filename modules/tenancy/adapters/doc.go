// Package adapters implements the tenancy ports over the event store: the
// repository (per-entity event streams), the read models derived from the
// events, and the API key lookup the kernel's authenticator uses. It is the
// only package of the context that knows package eventstore.
//
// Streams (ids within the tenant; the store prefixes the tenant id):
//
//	"tenant"                     tenancy.tenant-onboarded, tenancy.tenant-provisioned
//	"scope-<scopeId>"            tenancy.scope-created
//	"service-account-<svaId>"    tenancy.service-account-created, tenancy.api-key-issued,
//	                             tenancy.api-key-revoked, tenancy.role-granted, tenancy.role-revoked
//
// Records, written in the commit of the events they derive from:
//
//	"scopes"/<scopeId>                       the scopes read model (list-scopes)
//	"scope-names"/<parentId>/<lower(name)>   sibling-name uniqueness (if absent)
//	"service-accounts"/<svaId>               the service accounts read model
//	"api-keys"/<keyId> (global)              auth.APIKeyRecord: key id -> tenant, account,
//	                                         hash, role bindings (if absent when issued;
//	                                         rewritten on revocation and role changes)
//	"api-key-list"/<keyId>                   the list-api-keys read model (lists "api-keys",
//	                                         "api-keys-by-service-account")
//	"api-key-usage"/<keyId>                  when the key was last used (not from events)
//
// Every record but "api-key-usage" can be rebuilt by replaying the streams
// through the projection (project), which is the same code that writes them.
// The repository hands the "api-keys" rows it committed to this instance's
// key cache (Repository.OnKeysWritten, APIKeyResolver.Publish).
package adapters
