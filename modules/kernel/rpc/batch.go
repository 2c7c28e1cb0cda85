package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/problem"
)

// batchRequest is the body of POST /commands.
type batchRequest struct {
	Commands []batchItem `json:"commands"`
}

type batchItem struct {
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
	// IdempotencyKey is the item's key: absent or null for none; present, it
	// follows the Idempotency-Key header's rules (an empty key is refused
	// as an empty header is).
	IdempotencyKey *string `json:"idempotencyKey"`
}

type batchResult struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// serveBatch serves POST /commands: 1 to 100 commands, each run independently
// through the call chain (its own authorization, idempotency key, unit of work
// and commit), answered 200 with one result per item, in order. The credential
// is checked once, before any item runs; an Idempotency-Key header is ignored
// here (keys are per item).
func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ic := invocation.From(ctx)
	batch := newCall(r, batchEndpoint, nil)
	body, err := s.readBody(w, r)
	if err == nil {
		err = checkActionID(r)
	}
	var req batchRequest
	if err == nil {
		err = decodeStrict(body, &req)
	}
	if err == nil && (len(req.Commands) == 0 || len(req.Commands) > MaxBatch) {
		err = errs.New(errs.KindInvalid, "errors.request.batch_size").With("max", MaxBatch)
	}
	if err != nil {
		s.refuse(w, r, batchEndpoint, err)
		return
	}
	// Authenticate once (as the chain's first steps would, audited as "commands"):
	// the principal is the same for every item, which then skip authentication.
	auth := Chain(func(context.Context, *Call) (Result, error) { return Result{}, nil },
		Audit(auditFailuresOnly{s.cfg.Auditor}, s.cfg.Clock), AuthenticateThrottled(s.cfg.Auth, s.cfg.AuthThrottle, s.cfg.AllowLogLevelHeader), CheckAccess())
	if _, err := auth(ctx, batch); err != nil {
		s.fail(w, r, err)
		return
	}
	results := make([]batchResult, len(req.Commands))
	for i, item := range req.Commands {
		results[i] = s.batchOne(r, item, ic)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// batchEndpoint is the batch itself, in the audit.
var batchEndpoint = &Endpoint{Kind: KindCommand, Name: "commands", Action: "batch", Access: AccessTenant}

// auditFailuresOnly audits the batch's own authentication only when it fails;
// each item is audited by the chain.
type auditFailuresOnly struct{ Auditor }

func (a auditFailuresOnly) Audit(ctx context.Context, e AuditEntry) {
	if e.Outcome != OutcomeAllowed {
		a.Auditor.Audit(ctx, e)
	}
}

func (s *Server) batchOne(r *http.Request, item batchItem, ic *invocation.Context) batchResult {
	ep := s.commands[item.Name]
	if bytes.Equal(bytes.TrimSpace(item.Input), []byte("null")) {
		item.Input = nil
	}
	key := ""
	if item.IdempotencyKey != nil {
		key = *item.IdempotencyKey
	}
	var err error
	switch {
	case ep == nil, item.IdempotencyKey != nil && !validIdempotencyKey(key):
		// Refused before the chain, audited as the item's failed call (the
		// batch authenticated its caller).
		refusal := errs.New(errs.KindInvalid, errs.CodeIdempotencyKey)
		switch {
		case item.Name == "":
			ep = unknownEndpoint(KindCommand, "")
			refusal = errs.Invalid(errs.FieldError{Field: "name", Code: "errors.validation.required"})
		case ep == nil:
			ep = unknownEndpoint(KindCommand, item.Name)
			refusal = errs.New(errs.KindNotFound, errs.CodeUnknownCommand).With("name", item.Name)
		}
		err = s.audited(r, ep, refusal)
	default:
		call := newCall(r, ep, item.Input)
		call.IdempotencyKey = key
		var res Result
		res, err = s.call(r.Context(), call)
		if err == nil {
			return batchResult{Status: res.Status, Body: res.Body}
		}
	}
	return problemResult(err, ic)
}

func problemResult(err error, ic *invocation.Context) batchResult {
	p := problem.From(err, ic.Locale, ic.InvocationID)
	b, _ := json.Marshal(p)
	return batchResult{Status: p.Status, Body: b}
}
