package tcp

import (
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// refusalLogInterval spaces a listener's log lines about refused connections.
const refusalLogInterval = 10 * time.Second

// admit says whether a new connection from src may take an unauthenticated place, or why
// the caps refuse it. When every place is taken, a source holding fewer than another still
// gets one (fairshare's rule): the oldest unauthenticated connection of the source holding
// the most gives it up, and the caller closes that victim. So flooding sources compete with
// themselves, and one that has not been connecting always gets in. The place is taken by
// track, once the connection is made; only the accept loop admits, so no other admission
// comes between.
func (l *Listener) admit(src netip.Addr) (victim *Conn, why string, limit int) {
	cfg := &l.t.cfg
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.preAuth.Held(src)) >= cfg.MaxPreAuthPerSource {
		return nil, "too many unauthenticated connections from this source", cfg.MaxPreAuthPerSource
	}
	from, ok := l.preAuth.Giver(src)
	if !ok {
		return nil, "", 0
	}
	if from == src {
		return nil, "too many unauthenticated connections", cfg.MaxPreAuthConns
	}
	victim = l.preAuth.Held(from)[0]
	l.preAuth.Remove(from, victim)
	return victim, "", 0
}

// track gives an admitted connection its unauthenticated place.
func (l *Listener) track(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !c.preAuth.Load() {
		return // closed already: unadmit has run
	}
	l.preAuth.Add(c.source, c)
}

// unadmit gives back the place of c, a connection from src that authenticated or closed;
// it does nothing if c gave its place up already, or never took it.
func (l *Listener) unadmit(src netip.Addr, c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.preAuth.Remove(src, c)
}

// refuse counts and logs, rate-limited, a connection the listener will not serve.
func (l *Listener) refuse(remote net.Addr, why string, limit int) {
	l.t.stats.refused.Add(1)
	attrs := []slog.Attr{slog.String("reason", why)}
	if remote != nil {
		attrs = append(attrs, slog.String("last_remote", remote.String()))
	}
	if limit > 0 {
		attrs = append(attrs, slog.Int("limit", limit))
	}
	l.refusals.Note(attrs...)
}

// sourceOf is the source address by which connections from addr are admitted: its IPv4
// address, or the /64 network of its IPv6 address, since one host commonly holds a whole
// /64 (as WireGuard's rate limiter counts it). The zero Addr if addr is not TCP.
func sourceOf(addr net.Addr) netip.Addr {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip := ta.AddrPort().Addr().Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// preAuthExpired closes an accepted connection over which no secure channel completed
// within PreAuthTimeout.
func (c *Conn) preAuthExpired() {
	if c.authenticated.Load() || c.isClosed() {
		return
	}
	c.listener.refuse(c.RemoteAddr(), "not authenticated within "+c.t.cfg.PreAuthTimeout.String(), 0)
	c.Close()
}
