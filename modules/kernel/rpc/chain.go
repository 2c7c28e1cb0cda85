package rpc

import (
	"context"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
)

// Call is one command or query on its way through the middleware chain. The
// HTTP layer fills the request part; middlewares fill the rest.
type Call struct {
	Endpoint       *Endpoint
	Body           []byte // the JSON body as received ("" means {})
	IdempotencyKey string // single commands only; "" when absent
	Credential     string // the bearer credential; "" when absent
	Source         Source

	// LogLevel is the X-Log-Level toggle of the request, applied for the
	// operator when the server does not allow it for everyone.
	LogLevel *slog.Level

	// failedAuth is the tenant and key of a credential that named a real
	// key but did not authenticate (set by Authenticate, for the audit).
	failedAuth *auth.Failure
	refusal    error                                                                  // the error of a call refused before the chain (Server.refuse)
	guard      *authz.Guard                                                           // set by Authorize
	record     func(ctx context.Context, res Result) (*eventstore.Idempotency, error) // set by Idempotency
}

// MaxUserAgent bounds the user agent a call records (bytes).
const MaxUserAgent = 512

// MaxRecordedName bounds the name of an unknown command or query as a call
// records it (bytes): the name comes from the request's path.
const MaxRecordedName = 100

// CleanUserAgent is the user agent as recorded: valid UTF-8 (invalid bytes
// replaced), at most MaxUserAgent bytes, cut at a character boundary.
func CleanUserAgent(ua string) string { return recorded(ua, MaxUserAgent) }

// recorded is s as a call records it: valid UTF-8 (invalid bytes replaced),
// at most max bytes, cut at a character boundary.
func recorded(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Source is where a call came from (audit).
type Source struct {
	IP        string
	UserAgent string
}

// Result is a successful call's answer.
type Result struct {
	Status   int
	Body     []byte
	Replayed bool
}

// Handler runs a call.
type Handler func(ctx context.Context, call *Call) (Result, error)

// Middleware wraps a Handler with one concern.
type Middleware func(next Handler) Handler

// Chain wraps h in mws; the first middleware is the outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}
