package adapters

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/modules/webhooks/app"
	"github.com/switchboard-dev/switchboard/modules/webhooks/domain"
)

// Resolver resolves host names; *net.Resolver is one (net.DefaultResolver
// in production), tests inject their own.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// ErrForbiddenAddress is the dial error of a connection to an address
// subscriber webhooks may not reach.
var ErrForbiddenAddress = errors.New("target address forbidden")

// Timeouts of the guard and the default client.
const (
	// ResolveTimeout bounds the creation-time resolution of a URL's host.
	ResolveTimeout = 5 * time.Second
	// DialTimeout bounds one connection attempt.
	DialTimeout = 10 * time.Second
	// AttemptTimeout is the whole attempt: a 2xx within it is a success.
	AttemptTimeout = 15 * time.Second
)

// Guard keeps subscriber webhooks away from loopback, private, link-local,
// metadata and other internal addresses (domain.ForbiddenAddr,
// domain.ForbiddenHost), twice: Check refuses such a URL when a subscription
// is created, and the dialer of every delivery (DialContext, with Control on
// the socket) refuses to connect to such an address, so a name that
// resolves elsewhere at delivery time (DNS rebinding) is caught. With
// AllowPrivate (local mode) it allows everything.
type Guard struct {
	Resolver     Resolver // nil: net.DefaultResolver
	AllowPrivate bool
}

var _ app.Targets = (*Guard)(nil)

func (g *Guard) resolver() Resolver {
	if g.Resolver == nil {
		return net.DefaultResolver
	}
	return g.Resolver
}

// Check implements app.Targets. A host that does not resolve (now) is
// accepted: the dial-time check covers it.
func (g *Guard) Check(ctx context.Context, u *url.URL) error {
	if g.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if domain.ForbiddenAddr(a) {
			return domain.ErrTargetForbidden.With("host", host)
		}
		return nil
	}
	if domain.ForbiddenHost(host) {
		return domain.ErrTargetForbidden.With("host", host)
	}
	ctx, cancel := context.WithTimeout(ctx, ResolveTimeout)
	defer cancel()
	addrs, err := g.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if domain.ForbiddenAddr(a) {
			return domain.ErrTargetForbidden.With("host", host)
		}
	}
	return nil
}

// Control is the net.Dialer Control function of deliveries: it refuses a
// socket whose remote address is forbidden, whatever name led to it.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrForbiddenAddress, address)
	}
	if domain.ForbiddenAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr().Unmap().WithZone(""))
	}
	return nil
}

// DialContext resolves addr's host with the guard's resolver and connects to
// its addresses in turn, each socket checked by Control.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port", addr)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if !g.AllowPrivate && domain.ForbiddenHost(host) {
			return nil, fmt.Errorf("%w: %s", ErrForbiddenAddress, host)
		}
		if addrs, err = g.resolver().LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("dial %s: no address", host)
		}
	}
	d := net.Dialer{Timeout: DialTimeout, Control: g.Control}
	var errs []error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// NewHTTPClient returns the client of deliveries: every connection through
// g.DialContext; no proxy (a proxy would dial for us, unchecked); redirects
// not followed (a 3xx is a failed attempt, and cannot lead elsewhere); the
// whole attempt within AttemptTimeout.
func NewHTTPClient(g *Guard) *http.Client {
	return &http.Client{
		Timeout: AttemptTimeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           g.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   DialTimeout,
			ResponseHeaderTimeout: AttemptTimeout,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// isForbidden reports whether err is the guard's refusal.
func isForbidden(err error) bool { return errors.Is(err, ErrForbiddenAddress) }
