package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/problem"
)

// batchRequest is the body of POST /commands.
type batchRequest struct {
	Commands []batchItem `json:"commands"`
}

type batchItem struct {
	Name           string          `json:"name"`
	Input          json.RawMessage `json:"input"`
	IdempotencyKey string          `json:"idempotencyKey"`
}

type batchResult struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// serveBatch serves POST /commands: 1 to 100 commands, each run independently
// (its own authorization, idempotency key, unit of work and commit), answered
// 200 with one result per item, in order. The credential is checked once; an
// Idempotency-Key header is ignored here (keys are per item).
func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ic := invocation.From(ctx)
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req batchRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.Commands) == 0 || len(req.Commands) > MaxBatch {
		s.fail(w, r, errs.New(errs.KindInvalid, "errors.request.batch_size").With("max", MaxBatch))
		return
	}
	// Authenticate once, against any endpoint's access rules: the principal is the same for every item.
	if err := s.authenticate(r, &Endpoint{Access: AccessTenant}); err != nil {
		s.fail(w, r, err)
		return
	}
	results := make([]batchResult, len(req.Commands))
	for i, item := range req.Commands {
		results[i] = s.batchOne(r, item, ic)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

func (s *Server) batchOne(r *http.Request, item batchItem, ic *invocation.Context) (out batchResult) {
	ep := s.commands[item.Name]
	var err error
	defer func() {
		// A panic fails its item only; the rest of the batch runs.
		if p := recover(); p != nil {
			s.cfg.Logger.ErrorContext(r.Context(), "panic in batch item", "command", item.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out = problemResult(errs.New(errs.KindInternal, errs.CodeInternal), ic)
		}
	}()
	if bytes.Equal(bytes.TrimSpace(item.Input), []byte("null")) {
		item.Input = nil
	}
	switch {
	case ep == nil:
		err = errs.New(errs.KindNotFound, errs.CodeUnknownCommand).With("name", item.Name)
	case item.IdempotencyKey != "" && !validIdempotencyKey(item.IdempotencyKey):
		err = errs.New(errs.KindInvalid, errs.CodeIdempotencyKey)
	default:
		var res result
		res, err = s.invoke(r.Context(), ep, item.Input, item.IdempotencyKey)
		if err == nil {
			return batchResult{Status: res.status, Body: res.body}
		}
	}
	return problemResult(err, ic)
}

func problemResult(err error, ic *invocation.Context) batchResult {
	p := problem.From(err, ic.Locale, ic.InvocationID)
	b, _ := json.Marshal(p)
	return batchResult{Status: p.Status, Body: b}
}
