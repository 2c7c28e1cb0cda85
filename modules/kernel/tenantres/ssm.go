package tenantres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/sync/singleflight"

	"github.com/switchboard-dev/switchboard/modules/kernel/clock"
	"github.com/switchboard-dev/switchboard/modules/kernel/lru"
)

// Defaults of SSMOptions.
const (
	// DefaultFoundTTL is how long a parameter found is used before it is
	// read again: a changed queue or key reaches every instance within it.
	DefaultFoundTTL = 5 * time.Minute
	// DefaultNotFoundTTL is how long "no parameter" is believed: a deploy
	// that adds a tenant's resources is noticed within it.
	DefaultNotFoundTTL = 30 * time.Second
	// DefaultErrorTTL is how long a failed lookup is not repeated.
	DefaultErrorTTL = 5 * time.Second
	// DefaultMaxEntries bounds the cache (tenants, found or not).
	DefaultMaxEntries = 10000
	// DefaultLookupTimeout bounds one GetParameter call (with the SDK's
	// retries).
	DefaultLookupTimeout = 5 * time.Second
)

// GetParameterAPI is the part of *ssm.Client the SSM resolver uses.
type GetParameterAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ GetParameterAPI = (*ssm.Client)(nil)

// SSMOptions tune the SSM resolver; zero values take the defaults.
type SSMOptions struct {
	FoundTTL      time.Duration // default DefaultFoundTTL
	NotFoundTTL   time.Duration // default DefaultNotFoundTTL
	ErrorTTL      time.Duration // default DefaultErrorTTL
	MaxEntries    int           // default DefaultMaxEntries
	LookupTimeout time.Duration // default DefaultLookupTimeout
	Clock         clock.Clock   // default clock.System
	Logger        *slog.Logger  // default: discard
}

// SSM is the Lambda-mode Resolver: one ssm:GetParameter of <path><tenantId>
// per tenant, cached per instance.
//
//   - A parameter found is kept FoundTTL, "no parameter" (ParameterNotFound)
//     NotFoundTTL, in a cache bounded to MaxEntries tenants (least recently
//     used go first).
//   - Concurrent lookups of one tenant make one call. The call runs detached
//     from the caller's context (bounded by LookupTimeout), so a caller whose
//     context ends stops waiting without failing the others.
//   - A failed lookup (SSM unreachable or throttled after the SDK's retries,
//     access denied, a value that breaks the contract) answers the last good
//     answer when there is one (stale, logged) and the error otherwise; it is
//     not repeated for ErrorTTL either way.
//
// Safe for concurrent use.
type SSM struct {
	api  GetParameterAPI
	path string
	o    SSMOptions

	mu    sync.Mutex
	cache *lru.Cache[string, cached]
	calls singleflight.Group
}

// cached is the cache entry of one tenant.
type cached struct {
	res     Resources
	err     error // the last lookup failed with nothing to fall back on
	good    bool  // res is an answer SSM gave (found or not found)
	expires time.Time
}

var _ Resolver = (*SSM)(nil)

// NewSSM returns a resolver reading <path><tenantId> through api. path must
// pass ValidatePath. It makes no request.
func NewSSM(api GetParameterAPI, path string, o SSMOptions) (*SSM, error) {
	if api == nil {
		return nil, errors.New("tenant resources: no SSM client")
	}
	if err := ValidatePath(path); err != nil {
		return nil, err
	}
	if o.FoundTTL <= 0 {
		o.FoundTTL = DefaultFoundTTL
	}
	if o.NotFoundTTL <= 0 {
		o.NotFoundTTL = DefaultNotFoundTTL
	}
	if o.ErrorTTL <= 0 {
		o.ErrorTTL = DefaultErrorTTL
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = DefaultLookupTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &SSM{api: api, path: path, o: o, cache: lru.New[string, cached](o.MaxEntries)}, nil
}

// ParameterName is the name of tenantID's parameter.
func (s *SSM) ParameterName(tenantID string) string { return s.path + tenantID }

// Resources implements Resolver. The empty id and the store's reserved
// namespaces (starting with '_': "_operator", "_platform") are not tenants:
// not found, without a call.
func (s *SSM) Resources(ctx context.Context, tenantID string) (Resources, error) {
	if tenantID == "" || strings.HasPrefix(tenantID, "_") {
		return Resources{}, nil
	}
	if err := checkTenantID(tenantID); err != nil {
		return Resources{}, err
	}
	s.mu.Lock()
	e, ok := s.cache.Get(tenantID)
	s.mu.Unlock()
	if ok && s.o.Clock.Now().Before(e.expires) {
		return e.res, e.err
	}
	ch := s.calls.DoChan(tenantID, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.LookupTimeout)
		defer cancel()
		return s.lookup(lctx, tenantID), nil
	})
	select {
	case r := <-ch:
		e := r.Val.(cached)
		return e.res, e.err
	case <-ctx.Done():
		return Resources{}, fmt.Errorf("tenant resources %s: %w", tenantID, ctx.Err())
	}
}

// lookup reads the parameter and caches the outcome.
func (s *SSM) lookup(ctx context.Context, tenantID string) cached {
	name := s.ParameterName(tenantID)
	res, err := s.get(ctx, name)
	now := s.o.Clock.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	prev, hadPrev := s.cache.Get(tenantID)
	var e cached
	switch {
	case err == nil:
		ttl := s.o.NotFoundTTL
		if res.Found {
			ttl = s.o.FoundTTL
		}
		e = cached{res: res, good: true, expires: now.Add(ttl)}
		if hadPrev && prev.good && prev.res != res {
			s.o.Logger.InfoContext(ctx, "tenant resources changed", slog.String("tenantId", tenantID),
				slog.String("parameter", name), slog.Bool("found", res.Found), slog.String("tier", string(res.Tier)),
				slog.String("workQueueUrl", res.WorkQueueURL), slog.String("kmsKeyArn", res.KMSKeyARN))
		}
	case hadPrev && prev.good:
		// Stale if error: the last answer SSM gave beats none.
		e = cached{res: prev.res, good: true, expires: now.Add(s.o.ErrorTTL)}
		s.o.Logger.WarnContext(ctx, "tenant resources lookup failed; using the last answer", slog.String("tenantId", tenantID),
			slog.String("parameter", name), slog.Bool("found", prev.res.Found), slog.String("error", err.Error()))
	default:
		e = cached{err: err, expires: now.Add(s.o.ErrorTTL)}
		s.o.Logger.WarnContext(ctx, "tenant resources lookup failed", slog.String("tenantId", tenantID),
			slog.String("parameter", name), slog.String("error", err.Error()))
	}
	s.cache.Put(tenantID, e)
	return e
}

// get reads one parameter: its resources, not found, or an error.
func (s *SSM) get(ctx context.Context, name string) (Resources, error) {
	out, err := s.api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(false)})
	var notFound *types.ParameterNotFound
	if errors.As(err, &notFound) {
		return Resources{}, nil
	}
	if err != nil {
		return Resources{}, fmt.Errorf("tenant resources: get parameter %s: %w", name, err)
	}
	if out == nil || out.Parameter == nil || out.Parameter.Value == nil {
		return Resources{}, fmt.Errorf("tenant resources: get parameter %s: %w: no value", name, ErrMalformed)
	}
	res, err := Parse(*out.Parameter.Value)
	if err != nil {
		return Resources{}, fmt.Errorf("tenant resources: parameter %s: %w", name, err)
	}
	return res, nil
}
