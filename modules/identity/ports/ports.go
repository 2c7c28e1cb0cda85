// Package ports exposes the identity application: the issue-token command,
// the JWKS route and the rotation job. It only translates; every rule lives
// in app and domain.
package ports

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/modules/identity/app"
	"github.com/switchboard-dev/switchboard/modules/identity/domain"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/problem"
	"github.com/switchboard-dev/switchboard/modules/kernel/rpc"
	"github.com/switchboard-dev/switchboard/modules/kernel/work"
)

// ActionIssueToken is the action of issue-token. No role grants it: any
// authenticated service account may exchange its own credential (the
// handler decides; see app.IssueTokenHandler).
const ActionIssueToken = "identity:issue-token"

// RotationJob is the scheduled job that rotates signing keys: run it from an
// EventBridge schedule in AWS (every 15 minutes is plenty; the job only acts
// when a key is due), from a ticker in local mode.
const RotationJob = "signing-key-rotation"

// JWKSPattern is the route of the published keys.
const JWKSPattern = "GET /.well-known/jwks.json"

// Endpoints returns the identity commands.
func Endpoints(a *app.Application) []rpc.Endpoint {
	return []rpc.Endpoint{
		rpc.Command("issue-token", ActionIssueToken, a.Commands.IssueToken.Handle),
	}
}

// RegisterJobs registers the rotation job.
func RegisterJobs(j *work.Jobs, a *app.Application) {
	j.Register(RotationJob, a.Jobs.RotateSigningKeys.Handle)
}

// JWK is a public key in RFC 7517 form, an Ed25519 key as RFC 8037 has it.
type JWK struct {
	Kty string `json:"kty"` // "OKP"
	Crv string `json:"crv"` // "Ed25519"
	X   string `json:"x"`   // base64url of the 32-byte public key
	Kid string `json:"kid"`
	Use string `json:"use"` // "sig"
	Alg string `json:"alg"` // "EdDSA"
}

// JWKS is the published key set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKSRoute serves JWKSPattern: the published keys, cacheable for
// domain.JWKSMaxAge (shorter than the time a new key is published before it
// signs). Mount it on the rpc.Server (Server.Handle). No credential.
//
// Anyone may call it, so it does not read the store per request: the
// rendered set is kept for jwksRefresh (one read per instance per period,
// concurrent callers wait for that one read). A key published or retired
// shows at most that much later, far within the 10 minutes a new key is
// published before it signs.
func JWKSRoute(a *app.Application, clk clock.Clock, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		mu      sync.Mutex
		body    []byte
		fetched time.Time
	)
	render := func(ctx context.Context) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		now := clk.Now()
		if body != nil && now.Sub(fetched) < jwksRefresh && !now.Before(fetched) {
			return body, nil
		}
		keys, err := a.Queries.PublicKeys.Handle(ctx)
		if err != nil {
			return nil, err
		}
		set := JWKS{Keys: make([]JWK, 0, len(keys))}
		for _, k := range keys {
			set.Keys = append(set.Keys, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Key),
				Kid: k.KeyID, Use: "sig", Alg: "EdDSA"})
		}
		b, err := json.Marshal(set)
		if err != nil {
			return nil, err
		}
		body, fetched = b, now
		return body, nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		b, err := render(ctx)
		if err != nil {
			ic := invocation.From(ctx)
			log.ErrorContext(ctx, "jwks failed", slog.String("error", err.Error()))
			problem.Write(w, errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(err), ic.Locale, ic.InvocationID)
			return
		}
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(domain.JWKSMaxAge.Seconds())))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(b, '\n'))
	})
}

// jwksRefresh is how long JWKSRoute serves the set it rendered.
const jwksRefresh = 30 * time.Second
