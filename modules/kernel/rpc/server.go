package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/modules/kernel/auth"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz"
	"github.com/switchboard-dev/switchboard/modules/kernel/authz/cedarauthz"
	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/errs"
	"github.com/switchboard-dev/switchboard/modules/kernel/eventstore"
	"github.com/switchboard-dev/switchboard/modules/kernel/ids"
	"github.com/switchboard-dev/switchboard/modules/kernel/invocation"
	"github.com/switchboard-dev/switchboard/modules/kernel/problem"
	"github.com/switchboard-dev/switchboard/modules/kernel/secrets"
	"github.com/switchboard-dev/switchboard/modules/kernel/uow"
)

// Defaults of Config.
const (
	DefaultMaxBody        = 256 << 10
	DefaultIdempotencyTTL = 24 * time.Hour
	MaxBatch              = 100
)

// Store is what the edge needs of the event store: committing units of work
// with their idempotency records, and reading idempotency records.
type Store interface {
	eventstore.Appender
	eventstore.IdempotencyReader
}

// Config wires a Server. Auth and Store are required.
type Config struct {
	Auth       Authenticator
	Authorizer authz.Authorizer // default cedarauthz: the built-in roles over the catalogue (ADR 0009)
	Auditor    Auditor          // default LogAuditor over Logger
	Store      Store
	// Sealer encrypts idempotency replay bodies at rest. Production wiring
	// always sets it; nil stores them as they are (tests of the edge only).
	Sealer secrets.Sealer
	// Runner commits units of work; default: a runner over Store whose
	// AfterCommit is the field below.
	Runner *uow.Runner
	IDs    ids.Generator
	Clock  clock.Clock
	Logger *slog.Logger
	// AfterCommit is called with the outbox entries of every successful commit
	// (the work relay) when Runner is nil.
	AfterCommit func(ctx context.Context, entries []eventstore.OutboxEntry)
	// AllowLogLevelHeader lets callers lower the log level of one invocation with
	// "X-Log-Level: debug" (local mode; in Lambda mode only the operator may).
	AllowLogLevelHeader bool
	// AuthThrottle counts failed authentication attempts per API key id and
	// per source address (ADR 0011); default auth.NewThrottle with the
	// default limits on Clock.
	AuthThrottle   *auth.Throttle
	MaxBody        int64         // default DefaultMaxBody
	IdempotencyTTL time.Duration // default DefaultIdempotencyTTL
}

// Server is the HTTP edge. It implements http.Handler and Registrar.
//
// Around every request (any route): recovery, the invocation context
// (correlation headers) and the access log. For /commands and /queries: the
// limits (method, content type, body size, headers), then the call chain,
// the same for HTTP and API Gateway events:
//
//	Audit > Recover > Authenticate (throttled, ADR 0011) > CheckAccess > Authorize > Idempotency > UnitOfWork > endpoint
//
// and the response mapping (result or problem+json) at the end.
type Server struct {
	cfg       Config
	validator *Validator
	commands  map[string]*Endpoint
	queries   map[string]*Endpoint
	mux       *http.ServeMux
	allow     map[string]*string // path -> the methods of its routes mounted with Handle (the 405s' Allow)
	call      Handler
	refused   Handler // the chain's first steps, for calls refused before it (refuse)
}

// NewServer returns a server with the built-in routes.
func NewServer(cfg Config) *Server {
	if cfg.Authorizer == nil {
		// Parsed and validated once per server; a bad policy file fails startup.
		cfg.Authorizer = cedarauthz.Must()
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
	if cfg.Auditor == nil {
		cfg.Auditor = LogAuditor{Logger: cfg.Logger}
	}
	if cfg.AuthThrottle == nil {
		cfg.AuthThrottle = auth.NewThrottle(auth.ThrottleLimits{}, cfg.Clock)
	}
	if cfg.Runner == nil {
		cfg.Runner = &uow.Runner{Store: cfg.Store, AfterCommit: cfg.AfterCommit, Logger: cfg.Logger}
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = DefaultIdempotencyTTL
	}
	s := &Server{cfg: cfg, validator: NewValidator(), commands: map[string]*Endpoint{}, queries: map[string]*Endpoint{}, mux: http.NewServeMux(), allow: map[string]*string{}}
	s.call = Chain(s.endpoint,
		Audit(cfg.Auditor, cfg.Clock),
		Recover(cfg.Logger),
		AuthenticateThrottled(cfg.Auth, cfg.AuthThrottle, cfg.AllowLogLevelHeader),
		CheckAccess(),
		Authorize(cfg.Authorizer),
		Idempotency(cfg.Store, cfg.Sealer, cfg.Clock, cfg.IdempotencyTTL),
		UnitOfWork(cfg.Runner),
	)
	s.refused = Chain(func(_ context.Context, call *Call) (Result, error) { return Result{}, call.refusal },
		Audit(cfg.Auditor, cfg.Clock),
		Recover(cfg.Logger),
		attribute(AuthenticateThrottled(cfg.Auth, cfg.AuthThrottle, cfg.AllowLogLevelHeader)),
	)
	s.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
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
// invocation context, recovery and access log. Such routes commit through
// Runner, like commands. A pattern with a method ("POST /webhooks/...")
// answers the path's other methods 405 with Allow (GET takes HEAD in).
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return
	}
	if method == http.MethodGet {
		method = "GET, HEAD"
	}
	if allow, seen := s.allow[path]; seen {
		*allow += ", " + method // Handle runs at wiring, before serving
		return
	}
	allow := &method
	s.allow[path] = allow
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, methodNotAllowed(w, r, *allow))
	})
}

// Runner is the unit-of-work runner of the edge, for routes mounted with Handle.
func (s *Server) Runner() *uow.Runner { return s.cfg.Runner }

// ServeHTTP implements http.Handler: invocation context, recovery and the
// access log around every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Clock.Now()
	ic := s.newInvocation(r)
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
		if f, ok := s.cfg.Auditor.(AuditFlusher); ok {
			// Bounded: a throttled audit store must not hold the response.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AuditFlushTimeout)
			f.FlushAudit(fctx)
			cancel()
		}
	}()
	s.mux.ServeHTTP(rec, r)
}

// newInvocation builds the invocation context from the request headers. It
// never fails: header checks belong to the routes that use the headers.
func (s *Server) newInvocation(r *http.Request) *invocation.Context {
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
	return ic
}

// checkActionID validates X-Action-Id (RPC routes) and puts it in the invocation context.
func checkActionID(r *http.Request) error {
	a := r.Header.Get("X-Action-Id")
	if a == "" {
		return nil
	}
	if !ids.ValidULID(a) {
		return errs.New(errs.KindInvalid, "errors.header.invalid").With("header", "X-Action-Id")
	}
	// A ULID's letters are case-insensitive; the canonical form (and the
	// event schemas' pattern) is upper case.
	invocation.From(r.Context()).ActionID = strings.ToUpper(a)
	return nil
}

// idempotencyKey reads the Idempotency-Key header of a single command.
func idempotencyKey(r *http.Request) (string, error) {
	k, ok := r.Header["Idempotency-Key"]
	if !ok {
		return "", nil
	}
	if len(k) != 1 || !validIdempotencyKey(k[0]) {
		return "", errs.New(errs.KindInvalid, errs.CodeIdempotencyKey)
	}
	return k[0], nil
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

// newCall makes the call of a request to ep.
func newCall(r *http.Request, ep *Endpoint, body []byte) *Call {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return &Call{
		Endpoint: ep, Body: body, Credential: bearer(r.Header.Get("Authorization")),
		Source: Source{IP: host, UserAgent: CleanUserAgent(r.UserAgent())}, LogLevel: logLevelHeader(r),
	}
}

// serveCall serves POST /commands/{name} and POST /queries/{name}.
func (s *Server) serveCall(kind Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		ep := s.lookup(kind, name)
		if ep == nil {
			code := errs.CodeUnknownCommand
			if kind == KindQuery {
				code = errs.CodeUnknownQuery
			}
			s.refuse(w, r, unknownEndpoint(kind, name), errs.New(errs.KindNotFound, code).With("name", name))
			return
		}
		body, err := s.readBody(w, r)
		if err == nil {
			err = checkActionID(r)
		}
		call := newCall(r, ep, body)
		if err == nil && kind == KindCommand {
			call.IdempotencyKey, err = idempotencyKey(r)
		}
		if err != nil {
			s.refuse(w, r, ep, err)
			return
		}
		res, err := s.call(r.Context(), call)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if res.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		writeRaw(w, res.Status, res.Body)
	}
}

// refuse answers a call refused before the chain (an unknown name, the
// method, the body's size, a header, the shape of a batch) with that
// refusal, after the chain's first steps: the call is audited, as its
// caller's failed call when its credential authenticates, else as an
// unauthenticated call.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, ep *Endpoint, refusal error) {
	s.fail(w, r, s.audited(r, ep, refusal))
}

// audited runs a refused call through the chain's first steps (refused)
// and returns the refusal.
func (s *Server) audited(r *http.Request, ep *Endpoint, refusal error) error {
	call := newCall(r, ep, nil)
	call.refusal = refusal
	_, err := s.refused(r.Context(), call)
	return err
}

// attribute runs authn for a call refused before the chain, for its audit
// entry only: the refusal is the answer whatever the credential (404 is
// checked before 401, command names being public; a malformed request is
// refused as such), and a failed credential still counts toward the auth
// throttle, as on any call.
func attribute(authn Middleware) Middleware {
	return func(next Handler) Handler {
		authed := authn(next)
		return func(ctx context.Context, call *Call) (Result, error) {
			_, _ = authed(ctx, call) // next answers the refusal; authn, its own error
			return Result{}, call.refusal
		}
	}
}

// unknownEndpoint stands for a name no endpoint has, in the audit: the name
// as recorded (at most MaxRecordedName bytes), no action.
func unknownEndpoint(kind Kind, name string) *Endpoint {
	return &Endpoint{Kind: kind, Name: recorded(name, MaxRecordedName), Access: AccessTenant}
}

// lookup finds an endpoint.
func (s *Server) lookup(kind Kind, name string) *Endpoint {
	if kind == KindQuery {
		return s.queries[name]
	}
	return s.commands[name]
}

// readBody enforces method, content type and size (the limits).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, methodNotAllowed(w, r, http.MethodPost)
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

// endpoint is the innermost step of the chain: decode and validate the
// input, call the handler, fail closed when it made no authorization
// decision, encode the answer.
func (s *Server) endpoint(ctx context.Context, call *Call) (Result, error) {
	ep := call.Endpoint
	in := ep.newInput()
	if err := decodeStrict(call.Body, in); err != nil {
		return Result{}, err
	}
	if err := s.validator.Validate(in); err != nil {
		return Result{}, err
	}
	out, err := ep.call(ctx, in)
	if err != nil {
		return Result{}, err
	}
	if g, ok := authz.GuardFrom(ctx); ok && !g.Decided() {
		s.cfg.Logger.ErrorContext(ctx, "endpoint made no authorization decision; denied", "endpoint", ep.Name)
		return Result{}, errs.New(errs.KindForbidden, errs.CodeForbidden).With("action", ep.Action)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return Result{}, fmt.Errorf("encode %s response: %w", ep.Name, err)
	}
	return Result{Status: ep.Status, Body: b}, nil
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
	if st := status(e); st != problem.Status(e.Kind) {
		p := problem.From(e, ic.Locale, ic.InvocationID)
		p.Status = st
		problem.Render(w, p, e)
		return
	}
	problem.Write(w, err, ic.Locale, ic.InvocationID)
}

// methodNotAllowed sets the Allow header and returns the 405 refusal of r.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) error {
	w.Header().Set("Allow", allow)
	return &errs.Error{Kind: errs.KindInvalid, Code: errs.CodeMethodNotAllowed,
		Params: map[string]any{"method": r.Method, "path": r.URL.Path}}
}

// status is the HTTP status of an error as the server answers it (and the
// audit records it): its kind's, but 405 for a method other than POST.
func status(e *errs.Error) int {
	if e.Code == errs.CodeMethodNotAllowed {
		return http.StatusMethodNotAllowed
	}
	return problem.Status(e.Kind)
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
