package routing

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Protocols of the route text form. Besides these, the name of every registered address
// Kind is one: /ip4/ADDR/tcp/PORT for a host:port kind, /NAME/VALUE for an opaque one.
const (
	ProtoIP4     = "ip4"     // /ip4/ADDR/KIND/PORT, KIND a host:port kind such as tcp
	ProtoIP6     = "ip6"     // /ip6/ADDR/KIND/PORT
	ProtoDNS     = "dnsaddr" // /dnsaddr/NAME/KIND/PORT
	ProtoService = "service" // a worker on the node reached so far
	ProtoSecure  = "secure"  // a secure channel to the listener NAME at the node reached so far
	ProtoProject = "project" // the hub of an enrolled project
)

// Hop is one step of a Path. Host hops (ip4, ip6, dnsaddr) have a Port and the Kind of
// transport that reaches it ("tcp"); a hop of an opaque kind has the kind's name as Proto.
type Hop struct {
	Proto string
	Value string
	Port  uint16
	Kind  string
}

// Path is the text form of a route that users type, as in Ockam:
// /ip4/10.0.0.1/tcp/4000/secure/api/service/echo. Secure and project hops are instructions
// that a node resolves (by creating channels); Route converts a path without them.
type Path []Hop

// maxPathLen bounds the text a user may give.
const maxPathLen = 4096

// ParsePath parses the text form. Errors name the offending part and what was expected.
func ParsePath(s string) (Path, error) {
	if len(s) > maxPathLen {
		return nil, fmt.Errorf("route: %d characters, at most %d", len(s), maxPathLen)
	}
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("route %q: must start with /, as in /ip4/127.0.0.1/tcp/4000/service/echo", s)
	}
	parts := strings.Split(s[1:], "/")
	var p Path
	for i := 0; i < len(parts); i++ {
		proto := parts[i]
		if i+1 >= len(parts) || parts[i+1] == "" {
			return nil, fmt.Errorf("route %q: /%s needs a value after it", s, proto)
		}
		val := parts[i+1]
		i++
		h := Hop{Proto: proto, Value: val}
		switch proto {
		case ProtoIP4, ProtoIP6, ProtoDNS:
			k, ok := Kind{}, i+2 < len(parts)
			if ok {
				k, ok = kindNamed(parts[i+1])
			}
			if !ok || !k.HostPort {
				return nil, fmt.Errorf("route %q: /%s/%s must be followed by /tcp/PORT (or /KIND/PORT with another host:port kind: %s)", s, proto, val, kindNames(true))
			}
			h.Kind = k.Name
			port, err := strconv.ParseUint(parts[i+2], 10, 16)
			if err != nil || port == 0 {
				return nil, fmt.Errorf("route %q: port %q is not a number from 1 to 65535", s, parts[i+2])
			}
			i += 2
			h.Port = uint16(port)
			if err := h.checkHost(); err != nil {
				return nil, fmt.Errorf("route %q: %w", s, err)
			}
		case ProtoService, ProtoSecure, ProtoProject:
			if err := LocalAddress(val).validate(); err != nil {
				return nil, fmt.Errorf("route %q: %w", s, err)
			}
		default:
			if k, ok := kindNamed(proto); ok && !k.HostPort {
				if err := (Address{k.Type, val}).validate(); err != nil {
					return nil, fmt.Errorf("route %q: %w", s, err)
				}
				break
			}
			want := "ip4, ip6, dnsaddr, service, secure or project"
			if opaque := kindNames(false); opaque != "" {
				want += ", or an address kind: " + opaque
			}
			return nil, fmt.Errorf("route %q: unknown protocol /%s (want %s)", s, proto, want)
		}
		if len(p) >= MaxHops {
			return nil, fmt.Errorf("route %q: more than %d hops", s, MaxHops)
		}
		p = append(p, h)
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("route %q: empty", s)
	}
	return p, nil
}

// checkHost validates and canonicalises the host of a TCP hop.
func (h *Hop) checkHost() error {
	switch h.Proto {
	case ProtoIP4:
		a, err := netip.ParseAddr(h.Value)
		if err != nil || !a.Is4() {
			return fmt.Errorf("%q is not an IPv4 address", h.Value)
		}
		h.Value = a.String()
	case ProtoIP6:
		a, err := netip.ParseAddr(h.Value)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("%q is not an IPv6 address", h.Value)
		}
		h.Value = a.String()
	case ProtoDNS:
		if !validHostname(h.Value) {
			return fmt.Errorf("%q is not a host name", h.Value)
		}
		h.Value = strings.ToLower(h.Value)
	}
	return nil
}

func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// isHost reports whether h is a host hop (ip4, ip6, dnsaddr).
func (h Hop) isHost() bool { return h.Proto == ProtoIP4 || h.Proto == ProtoIP6 || h.Proto == ProtoDNS }

// IsTCP reports whether h is a TCP hop.
func (h Hop) IsTCP() bool { return h.isHost() && (h.Kind == "tcp" || h.Kind == "") }

// IsTransport reports whether h is the address of a transport (of any registered kind), which
// a node dials rather than resolves.
func (h Hop) IsTransport() bool {
	if h.isHost() {
		return true
	}
	k, ok := kindNamed(h.Proto)
	return ok && !k.HostPort
}

// HostPort returns a host hop's dialable host:port.
func (h Hop) HostPort() string { return net.JoinHostPort(h.Value, strconv.Itoa(int(h.Port))) }

// Address returns the routing address of a transport or service hop.
func (h Hop) Address() (Address, error) {
	switch {
	case h.isHost():
		k, ok := kindNamed(h.Kind)
		if h.Kind == "" {
			k, ok = kindNamed("tcp")
		}
		if !ok || !k.HostPort {
			return Address{}, fmt.Errorf("route: /%s/%s/%s/%d: no transport of that kind", h.Proto, h.Value, h.Kind, h.Port)
		}
		return Address{k.Type, h.HostPort()}, nil
	case h.Proto == ProtoService:
		return LocalAddress(h.Value), nil
	case h.IsTransport():
		k, _ := kindNamed(h.Proto)
		return Address{k.Type, h.Value}, nil
	}
	return Address{}, fmt.Errorf("route: /%s/%s must be resolved by a node", h.Proto, h.Value)
}

// String prints the path in its text form; ParsePath(p.String()) equals p.
func (p Path) String() string {
	var b strings.Builder
	for _, h := range p {
		b.WriteByte('/')
		b.WriteString(h.Proto)
		b.WriteByte('/')
		b.WriteString(h.Value)
		if h.isHost() {
			b.WriteByte('/')
			b.WriteString(cmp.Or(h.Kind, "tcp"))
			b.WriteByte('/')
			b.WriteString(strconv.Itoa(int(h.Port)))
		}
	}
	return b.String()
}

// Route converts a path of transport and service hops into a route.
func (p Path) Route() (Route, error) {
	var r Route
	for _, h := range p {
		a, err := h.Address()
		if err != nil {
			return Route{}, err
		}
		if err := r.Append(a); err != nil {
			return Route{}, err
		}
	}
	return r, nil
}
