package domain

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxURLLength is the longest subscription URL, in bytes.
const MaxURLLength = 2048

// ParseTargetURL checks a subscription URL's form: absolute http or https,
// at most MaxURLLength bytes, a host (a DNS name in ASCII or an IP literal),
// no user info and no fragment. A host that is neither a dotted-quad IPv4
// address nor a DNS name whose last label has a letter (such as "2130706433"
// or "0x7f.1", which some resolvers read as IPv4) is refused too. It does not
// resolve anything (see ForbiddenHost, ForbiddenAddr). Errors: 400
// errors.webhook.invalid_url on "url", with a "reason" parameter.
func ParseTargetURL(raw string) (*url.URL, error) {
	bad := func(reason string) error {
		return invalid("url", CodeInvalidURL, map[string]any{"reason": reason, "max": MaxURLLength})
	}
	if raw == "" || len(raw) > MaxURLLength || !utf8.ValidString(raw) {
		return nil, bad("length")
	}
	if strings.TrimSpace(raw) != raw || strings.ContainsAny(raw, " \t\r\n\\") {
		return nil, bad("whitespace")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("syntax")
	}
	switch {
	case !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https"):
		return nil, bad("scheme")
	case u.Opaque != "" || u.Host == "":
		return nil, bad("not_absolute")
	case u.User != nil:
		return nil, bad("userinfo")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, bad("fragment")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, bad("port")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, bad("port")
	}
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		if _, err := netip.ParseAddr(host); err != nil {
			return nil, bad("host")
		}
		return u, nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return u, nil
	}
	if !validDNSName(host) {
		return nil, bad("host")
	}
	return u, nil
}

// validDNSName reports whether host is an ASCII DNS name (letters, digits,
// '-' and '_', labels of 1..63, at most 253 characters, one trailing dot
// allowed) whose last label is not all digits or hex-like (no IPv4 in
// disguise).
func validDNSName(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 253 {
		return false
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return !numericLabel(labels[len(labels)-1])
}

// numericLabel reports whether a label reads as a number to an IPv4 parser
// (WHATWG URL "ends in a number": decimal, 0x-hex or octal).
func numericLabel(l string) bool {
	s := strings.ToLower(l)
	if strings.HasPrefix(s, "0x") {
		s = s[2:]
		for i := 0; i < len(s); i++ {
			if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// metadataHosts are names of cloud metadata services and of the local
// machine, refused whatever they resolve to.
var metadataHosts = map[string]bool{
	"localhost":                  true,
	"metadata":                   true,
	"metadata.google.internal":   true,
	"metadata.goog":              true,
	"metadata.azure.internal":    true,
	"instance-data":              true,
	"instance-data.ec2.internal": true,
}

// ForbiddenHost reports whether a host name is refused by name alone:
// "localhost" and any "*.localhost", and the metadata service names
// (metadata.google.internal, ...). Case and one trailing dot are ignored.
func ForbiddenHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return metadataHosts[h] || strings.HasSuffix(h, ".localhost")
}

// forbiddenPrefixes are the address ranges subscriber webhooks may not reach.
var forbiddenPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network", unspecified
		"10.0.0.0/8",      // RFC 1918
		"100.64.0.0/10",   // carrier-grade NAT (RFC 6598)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata 169.254.169.254
		"172.16.0.0/12",   // RFC 1918
		"192.0.0.0/24",    // IETF protocol assignments
		"192.168.0.0/16",  // RFC 1918
		"198.18.0.0/15",   // benchmarking
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, broadcast
		"::/96",           // IPv4-compatible (deprecated), with the unspecified :: and the loopback ::1
		"::ffff:0:0:0/96", // IPv4-translated (SIIT, RFC 6145)
		"100::/64",        // discard-only
		"2001::/32",       // Teredo: an IPv4 address of the path in its bits
		"2002::/16",       // 6to4 (deprecated, RFC 7526): an IPv4 address in its bits
		"64:ff9b:1::/48",  // local-use NAT64
		"fc00::/7",        // unique local (includes fd00:ec2::254, AWS metadata)
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4
// address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// ForbiddenAddr reports whether subscriber webhooks may not reach a: loopback,
// private (RFC 1918, fc00::/7), link-local (169.254/16 with the metadata
// address, fe80::/10), unspecified, multicast, CGNAT (100.64/10), reserved
// ranges, IPv4 addresses in IPv6 form (IPv4-mapped ::ffff:a.b.c.d, NAT64
// 64:ff9b::a.b.c.d) of any of those, and the IPv6 forms that carry an IPv4
// address otherwise (IPv4-compatible ::a.b.c.d, SIIT ::ffff:0:a.b.c.d, 6to4
// 2002::/16, Teredo 2001::/32), whatever the address. The zone of an
// address is ignored.
func ForbiddenAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	a = a.WithZone("").Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		return ForbiddenAddr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
