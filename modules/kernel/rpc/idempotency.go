package rpc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
)

// sealedReplay is what a sealed idempotency record holds: the request's
// fingerprint and the first response's body. Both stay inside the ciphertext,
// so nothing derived from a request or a response (API keys, secrets a
// client sent) is stored in clear.
type sealedReplay struct {
	Fingerprint string          `json:"fp"`
	Body        json.RawMessage `json:"body"`
}

// Idempotency implements contract section 4 for commands sent with an
// Idempotency-Key, scoped to (tenant, principal):
//
//   - a stored record of the key is replayed (status and body, Idempotent-Replayed)
//     when the command and body match, else 422 errors.idempotency.key_reused;
//   - otherwise the call runs and the unit of work commits the record with the
//     response (Call.record), sealed with the tenant's data key when a Sealer
//     is set (purpose "idempotency:<key>");
//   - when the call fails (a precondition that a concurrent twin's commit
//     broke, a lost commit race, conflicts), the record is read once more and
//     replayed if a twin committed it: every repeat returns the first response.
//
// Queries and commands without a key pass through.
func Idempotency(store eventstore.IdempotencyReader, sealer secrets.Sealer, clk clock.Clock, ttl time.Duration) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, call *Call) (Result, error) {
			if call.Endpoint.Kind != KindCommand || call.IdempotencyKey == "" {
				return next(ctx, call)
			}
			ic := invocation.From(ctx)
			ns := ic.TenantID()
			if ns == "" {
				ns = eventstore.OperatorNamespace
			}
			key := ic.Principal.String() + ":" + call.IdempotencyKey
			fp := fingerprint(call.Endpoint.Name, call.Body)
			lookup := func() (Result, bool, error) {
				prev, err := store.GetIdempotency(ctx, ns, key)
				switch {
				case errors.Is(err, eventstore.ErrNotFound):
					return Result{}, false, nil
				case err != nil:
					return Result{}, false, errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(fmt.Errorf("read idempotency: %w", err))
				}
				res, err := replay(ctx, sealer, ns, prev, fp)
				return res, true, err
			}
			if res, found, err := lookup(); found || err != nil {
				return res, err
			}
			call.record = func(ctx context.Context, res Result) (*eventstore.Idempotency, error) {
				now := clk.Now()
				rec := &eventstore.Idempotency{TenantID: ns, Key: key, Status: res.Status, CreatedAt: now, ExpiresAt: now.Add(ttl)}
				if sealer == nil {
					rec.Fingerprint, rec.Body = fp, res.Body
					return rec, nil
				}
				plain, err := json.Marshal(sealedReplay{Fingerprint: fp, Body: res.Body})
				if err != nil {
					return nil, fmt.Errorf("idempotency record: %w", err)
				}
				sealed, err := sealer.Seal(ctx, ns, purpose(key), plain)
				if err != nil {
					return nil, fmt.Errorf("idempotency record: seal: %w", err)
				}
				rec.Body, _ = json.Marshal(base64.RawStdEncoding.EncodeToString(sealed))
				return rec, nil
			}
			res, err := next(ctx, call)
			if err == nil {
				return res, nil
			}
			if twin, found, lerr := lookup(); found {
				return twin, lerr // a twin committed first: replay its answer (or 422)
			}
			if errors.Is(err, eventstore.ErrDuplicate) {
				// The record existed at commit time and is gone (expired): a rare race.
				return Result{}, errs.New(errs.KindConflict, errs.CodeIdempotencyInFlight).Wrap(err)
			}
			return Result{}, err
		}
	}
}

func purpose(key string) string { return "idempotency:" + key }

// replay answers a repeated key from its record.
func replay(ctx context.Context, sealer secrets.Sealer, ns string, prev eventstore.Idempotency, fp string) (Result, error) {
	body, storedFP := []byte(prev.Body), prev.Fingerprint
	if sealer != nil && prev.Fingerprint == "" {
		var enc string
		sealed, err := []byte(nil), json.Unmarshal(prev.Body, &enc)
		if err == nil {
			sealed, err = base64.RawStdEncoding.DecodeString(enc)
		}
		if err == nil {
			sealed, err = sealer.Open(ctx, ns, purpose(prev.Key), sealed)
		}
		var r sealedReplay
		if err == nil {
			err = json.Unmarshal(sealed, &r)
		}
		switch {
		case errors.Is(err, secrets.ErrDecrypt):
			// A record that does not open never will: a bug or a lost key.
			return Result{}, fmt.Errorf("replay idempotency record %s: %w", prev.Key, err)
		case err != nil:
			// The key service did not answer: a retry may succeed.
			return Result{}, errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(fmt.Errorf("replay idempotency record %s: %w", prev.Key, err))
		}
		body, storedFP = r.Body, r.Fingerprint
	}
	if storedFP != fp {
		return Result{}, errs.New(errs.KindIdempotency, errs.CodeIdempotencyReused)
	}
	return Result{Status: prev.Status, Body: body, Replayed: true}, nil
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
