package rpc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/problem"
)

// Defaults of Config.
const (
	DefaultMaxBody        = 256 << 10
	DefaultIdempotencyTTL = 24 * time.Hour
	MaxBatch              = 100
	maxCommitAttempts     = 3
)

// Authenticator turns a bearer credential into a principal (see package auth).
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (invocation.Principal, error)
}

// Store is what the edge needs of the event store: committing a unit of work
// with its idempotency record, and reading idempotency records.
type Store interface {
	eventstore.Appender
	eventstore.IdempotencyReader
}

// Config wires a Server. Every field but Logger, Clock, IDs and the limits is required.
type Config struct {
	Auth       Authenticator
	Authorizer Authorizer // default RoleAuthorizer
	Store      Store
	IDs        ids.Generator
	Clock      clock.Clock
	Logger     *slog.Logger
	// AfterCommit is called with the outbox entries of every successful commit
	// (the work relay); it must not block for long and never fails the call.
	AfterCommit func(ctx context.Context, entries []eventstore.OutboxEntry)
	// AllowLogLevelHeader lets callers lower the log level of one invocation with
	// "X-Log-Level: debug" (local mode; in Lambda mode only the operator may).
	AllowLogLevelHeader bool
	MaxBody             int64         // default DefaultMaxBody
	IdempotencyTTL      time.Duration // default DefaultIdempotencyTTL
}

// Server is the HTTP edge. It implements http.Handler and Registrar.
type Server struct {
	cfg       Config
	validator *Validator
	commands  map[string]*Endpoint
	queries   map[string]*Endpoint
	mux       *http.ServeMux
}

// NewServer returns a server with the built-in routes.
func NewServer(cfg Config) *Server {
	if cfg.Authorizer == nil {
		cfg.Authorizer = RoleAuthorizer{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.IDs == nil {
		cfg.IDs = ids.NewULIDs()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = DefaultIdempotencyTTL
	}
	s := &Server{cfg: cfg, validator: NewValidator(), commands: map[string]*Endpoint{}, queries: map[string]*Endpoint{}, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("/commands/{name}", s.serveCall(KindCommand))
	s.mux.HandleFunc("/queries/{name}", s.serveCall(KindQuery))
	s.mux.HandleFunc("/commands", s.serveBatch)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errs.New(errs.KindNotFound, errs.CodeRouteNotFound).With("method", r.Method).With("path", r.URL.Path))
	})
	return s
}

// Register implements Registrar. A name registered twice panics (a wiring bug).
func (s *Server) Register(eps ...Endpoint) {
	for i := range eps {
		ep := eps[i]
		table := s.commands
		if ep.Kind == KindQuery {
			table = s.queries
		}
		if _, dup := table[ep.Name]; dup {
			panic(fmt.Sprintf("rpc: %s %q registered twice", ep.Kind, ep.Name))
		}
		table[ep.Name] = &ep
	}
}

// Handle mounts another route (provider webhooks, JWKS) behind the same
// invocation context, recovery and logging.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP implements http.Handler: invocation context, recovery and the
// access log around every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Clock.Now()
	ic, headerErr := s.newInvocation(r)
	ctx := invocation.With(r.Context(), ic)
	r = r.WithContext(ctx)
	w.Header().Set("X-Invocation-Id", ic.InvocationID)
	w.Header().Set("X-Trace-Id", ic.TraceID)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.ErrorContext(ctx, "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wrote {
				s.fail(rec, r, errs.New(errs.KindInternal, errs.CodeInternal))
			}
		}
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		s.cfg.Logger.Log(ctx, level, "http request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "durationMs", float64(s.cfg.Clock.Now().Sub(start).Microseconds())/1000)
	}()
	if headerErr != nil {
		s.fail(rec, r, headerErr)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// newInvocation builds the invocation context from the request headers.
func (s *Server) newInvocation(r *http.Request) (*invocation.Context, error) {
	ic := &invocation.Context{
		InvocationID: s.cfg.IDs.New(ids.Invocation),
		Trigger:      "http",
		Locale:       problem.Negotiate(r.Header.Get("Accept-Language")),
	}
	ic.TraceID, ic.ParentSpanID = invocation.ParseTraceparent(r.Header.Get("traceparent"))
	if ic.TraceID == "" {
		ic.TraceID = invocation.NewTraceID()
	}
	if s.cfg.AllowLogLevelHeader {
		ic.Toggles.LogLevel = logLevelHeader(r)
	}
	if a := r.Header.Get("X-Action-Id"); a != "" {
		if !ids.ValidULID(a) {
			return ic, errs.New(errs.KindInvalid, "errors.header.invalid").With("header", "X-Action-Id")
		}
		ic.ActionID = a
	}
	if k, ok := r.Header["Idempotency-Key"]; ok {
		if len(k) != 1 || !validIdempotencyKey(k[0]) {
			return ic, errs.New(errs.KindInvalid, errs.CodeIdempotencyKey)
		}
		ic.IdempotencyKey = k[0]
	}
	return ic, nil
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// logLevelHeader reads the per-invocation log level toggle ("X-Log-Level: debug"), nil if absent or invalid.
func logLevelHeader(r *http.Request) *slog.Level {
	var l slog.Level
	if v := r.Header.Get("X-Log-Level"); v == "" || l.UnmarshalText([]byte(v)) != nil {
		return nil
	}
	return &l
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// serveCall serves POST /commands/{name} and POST /queries/{name}.
func (s *Server) serveCall(kind Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		name := r.PathValue("name")
		ep := s.lookup(kind, name)
		if ep == nil {
			code := errs.CodeUnknownCommand
			if kind == KindQuery {
				code = errs.CodeUnknownQuery
			}
			s.fail(w, r, errs.New(errs.KindNotFound, code).With("name", name))
			return
		}
		body, err := s.readBody(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := s.authenticate(r, ep); err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := s.invoke(ctx, ep, body, invocation.From(ctx).IdempotencyKey)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if res.replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		writeRaw(w, res.status, res.body)
	}
}

// lookup finds an endpoint.
func (s *Server) lookup(kind Kind, name string) *Endpoint {
	if kind == KindQuery {
		return s.queries[name]
	}
	return s.commands[name]
}

// readBody enforces method, content type and size.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &errs.Error{Kind: errs.KindInvalid, Code: errs.CodeMethodNotAllowed,
			Params: map[string]any{"method": r.Method, "path": r.URL.Path}}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errs.New(errs.KindTooLarge, errs.CodeTooLarge).With("limit", s.cfg.MaxBody)
		}
		return nil, errs.New(errs.KindInvalid, errs.CodeMalformedJSON).With("reason", "the body could not be read")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" || len(body) > 0 {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
			return nil, errs.New(errs.KindUnsupportedMedia, errs.CodeUnsupportedMedia)
		}
	}
	return body, nil
}

// authenticate checks the bearer credential and the endpoint's access, and
// sets the principal in the invocation context.
func (s *Server) authenticate(r *http.Request, ep *Endpoint) error {
	ic := invocation.From(r.Context())
	cred, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return errs.New(errs.KindUnauthenticated, errs.CodeUnauthenticated)
	}
	p, err := s.cfg.Auth.Authenticate(r.Context(), cred)
	switch {
	case errors.Is(err, auth.ErrNotConfigured) && ep.Access == AccessOperator:
		return errs.New(errs.KindUnavailable, errs.CodeNotConfigured).With("setting", "SWITCHBOARD_OPERATOR_KEY")
	case errors.Is(err, auth.ErrUnauthenticated) || errors.Is(err, auth.ErrNotConfigured):
		return errs.New(errs.KindUnauthenticated, errs.CodeUnauthenticated)
	case err != nil:
		return errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(fmt.Errorf("authenticate: %w", err))
	}
	ic.Principal = p
	if p.Kind == invocation.KindOperator && !s.cfg.AllowLogLevelHeader {
		ic.Toggles.LogLevel = logLevelHeader(r)
	}
	return nil
}

// bearer extracts the credential of an "Authorization: Bearer <credential>"
// header; the scheme is case-insensitive (RFC 9110).
func bearer(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	cred = strings.TrimSpace(cred)
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return "", false
	}
	return cred, true
}

// permit checks the endpoint's access and the authorizer.
func (s *Server) permit(ctx context.Context, ep *Endpoint) error {
	p := invocation.From(ctx).Principal
	operator := p.Kind == invocation.KindOperator
	if (ep.Access == AccessOperator) != operator {
		return errs.New(errs.KindForbidden, errs.CodeForbidden).With("action", ep.Action)
	}
	if operator {
		return nil
	}
	return s.cfg.Authorizer.Authorize(ctx, p, ep)
}

// result is the outcome of one call.
type result struct {
	status   int
	body     []byte
	replayed bool
}

// invoke runs one endpoint: authorization, idempotency, decoding and
// validation, the handler inside a unit of work, and the commit.
func (s *Server) invoke(ctx context.Context, ep *Endpoint, body []byte, idemKey string) (result, error) {
	if err := s.permit(ctx, ep); err != nil {
		return result{}, err
	}
	if ep.Kind == KindQuery {
		out, err := s.decodeAndCall(ctx, ep, body)
		if err != nil {
			return result{}, err
		}
		return s.encode(ep, out)
	}
	ic := invocation.From(ctx)
	var idem *eventstore.Idempotency
	if idemKey != "" {
		idem = &eventstore.Idempotency{TenantID: ic.TenantID(), Key: ic.Principal.String() + ":" + idemKey, Fingerprint: fingerprint(ep.Name, body)}
		if idem.TenantID == "" {
			idem.TenantID = eventstore.OperatorNamespace
		}
		prev, err := s.cfg.Store.GetIdempotency(ctx, idem.TenantID, idem.Key)
		switch {
		case err == nil:
			return replay(prev, idem)
		case !errors.Is(err, eventstore.ErrNotFound):
			return result{}, errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(fmt.Errorf("read idempotency: %w", err))
		}
	}
	for attempt := 1; ; attempt++ {
		res, err := s.runCommand(ctx, ep, body, idem)
		if errors.Is(err, eventstore.ErrConflict) && attempt < maxCommitAttempts {
			s.cfg.Logger.DebugContext(ctx, "commit conflict, retrying", "command", ep.Name, "attempt", attempt)
			continue
		}
		if errors.Is(err, eventstore.ErrDuplicate) && idem != nil {
			prev, rerr := s.cfg.Store.GetIdempotency(ctx, idem.TenantID, idem.Key)
			if rerr != nil {
				return result{}, errs.New(errs.KindConflict, errs.CodeIdempotencyInFlight).Wrap(rerr)
			}
			return replay(prev, idem)
		}
		if errors.Is(err, eventstore.ErrConflict) {
			return result{}, errs.New(errs.KindConflict, errs.CodeConcurrency).Wrap(err)
		}
		return res, err
	}
}

// replay answers a repeated idempotency key.
func replay(prev eventstore.Idempotency, now *eventstore.Idempotency) (result, error) {
	if prev.Fingerprint != now.Fingerprint {
		return result{}, errs.New(errs.KindIdempotency, errs.CodeIdempotencyReused)
	}
	return result{status: prev.Status, body: prev.Body, replayed: true}, nil
}

// runCommand runs the handler once in a fresh unit of work and commits it.
func (s *Server) runCommand(ctx context.Context, ep *Endpoint, body []byte, idem *eventstore.Idempotency) (result, error) {
	unit := eventstore.NewUnit(invocation.From(ctx).TenantID())
	out, err := s.decodeAndCall(eventstore.WithUnit(ctx, unit), ep, body)
	if err != nil {
		return result{}, err
	}
	res, err := s.encode(ep, out)
	if err != nil {
		return result{}, err
	}
	c := unit.Commit()
	if idem != nil {
		now := s.cfg.Clock.Now()
		rec := *idem
		rec.Status, rec.Body, rec.CreatedAt, rec.ExpiresAt = res.status, res.body, now, now.Add(s.cfg.IdempotencyTTL)
		if c.TenantID == "" {
			c.TenantID = rec.TenantID
		}
		c.Idempotency = &rec
	}
	if c.Empty() {
		return res, nil
	}
	if err := s.cfg.Store.Commit(ctx, c); err != nil {
		if errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrDuplicate) {
			return result{}, err
		}
		if errors.Is(err, eventstore.ErrTooLarge) {
			return result{}, errs.New(errs.KindTooLarge, errs.CodeTooLarge).With("limit", eventstore.MaxItemBytes).Wrap(err)
		}
		return result{}, errs.New(errs.KindUnavailable, errs.CodeUnavailable).Wrap(fmt.Errorf("commit %s: %w", ep.Name, err))
	}
	if len(c.Outbox) > 0 && s.cfg.AfterCommit != nil {
		s.cfg.AfterCommit(ctx, c.Outbox)
	}
	return res, nil
}

// decodeAndCall decodes and validates the input and calls the handler.
func (s *Server) decodeAndCall(ctx context.Context, ep *Endpoint, body []byte) (any, error) {
	in := ep.newInput()
	if err := decodeStrict(body, in); err != nil {
		return nil, err
	}
	if err := s.validator.Validate(in); err != nil {
		return nil, err
	}
	return ep.call(ctx, in)
}

func (s *Server) encode(ep *Endpoint, out any) (result, error) {
	b, err := json.Marshal(out)
	if err != nil {
		return result{}, fmt.Errorf("encode %s response: %w", ep.Name, err)
	}
	return result{status: ep.Status, body: b}, nil
}

// fail writes err as problem+json and logs it (internal errors at error level
// with their cause; client errors at debug).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	ic := invocation.From(ctx)
	e := errs.As(err)
	if e.Kind == errs.KindInternal || e.Kind == errs.KindUnavailable {
		s.cfg.Logger.ErrorContext(ctx, "request failed", "code", e.Code, "error", err.Error())
	} else {
		s.cfg.Logger.DebugContext(ctx, "request rejected", "code", e.Code, "error", err.Error())
	}
	if e.Code == errs.CodeMethodNotAllowed {
		p := problem.From(e, ic.Locale, ic.InvocationID)
		p.Status = http.StatusMethodNotAllowed
		problem.Render(w, p, e)
		return
	}
	problem.Write(w, err, ic.Locale, ic.InvocationID)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}
