// Package secrets seals small secrets (webhook signing keys, provider API
// tokens, ...) so that they can be stored next to ordinary tenant data.
//
// # Design
//
// Secrets use envelope encryption with per-tenant data keys. A [KeyWrapper]
// (AWS KMS in Lambda mode, a key file in local mode) makes 32-byte data keys
// and returns them together with a wrapped (encrypted) copy that is bound to
// the tenant: a wrapped key made for tenant A cannot be unwrapped on behalf of
// tenant B. [Envelope] encrypts every secret with AES-256-GCM under such a
// data key and stores the wrapped key inside the sealed blob, so a blob is
// self-contained: there is no table of data keys, and opening a blob never
// reads the store.
//
// To keep KMS off the hot path, an Envelope reuses one data key per tenant
// for new seals until it is older than the key TTL ([WithKeyTTL], default 5
// minutes) or has sealed [WithMaxUses] secrets (default 100000), and it keeps
// unwrapped keys in a bounded LRU cache ([WithCacheSize], default 10000)
// indexed by a SHA-256 hash of the tenant id and the wrapped key. Concurrent
// cache misses for the same key make a single call to the KeyWrapper.
//
// # Wire format (version 1)
//
//	+---------+----------------+-------------+----------+-------------------+
//	| version | wrapped length | wrapped key | nonce    | ciphertext || tag |
//	| 1 byte  | uint16, BE     | n bytes     | 12 bytes | len(pt)+16 bytes  |
//	+---------+----------------+-------------+----------+-------------------+
//
// version is 0x01. The GCM associated data is
//
//	version(1) || uint32BE(len(tenantID)) || tenantID || uint32BE(len(purpose)) || purpose
//
// so a blob only opens for the tenant and purpose it was sealed for, and the
// length prefixes keep ("ab","c") and ("a","bc") apart. Opening anything that
// does not verify (wrong tenant or purpose, a flipped bit, a truncated or
// empty blob, an unknown version) fails with an error wrapping [ErrDecrypt].
//
// Errors never carry plaintext, key material or sealed bytes.
package secrets
