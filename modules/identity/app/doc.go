// Package app is the identity application: one handler per command, query
// and job (issue-token, the published keys, the signing key rotation), the
// in-memory key ring that signs, and the ports it needs.
package app
