package tcp

import (
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// refusalLogInterval spaces a listener's log lines about refused connections.
const refusalLogInterval = 10 * time.Second

// admit counts a new connection from src as unauthenticated, or says why the caps refuse it.
func (l *Listener) admit(src netip.Addr) (why string, limit int) {
	cfg := &l.t.cfg
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.preAuth >= cfg.MaxPreAuthConns:
		return "too many unauthenticated connections", cfg.MaxPreAuthConns
	case l.bySource[src] >= cfg.MaxPreAuthPerSource:
		return "too many unauthenticated connections from this source", cfg.MaxPreAuthPerSource
	}
	l.preAuth++
	l.bySource[src]++
	return "", 0
}

// unadmit gives back the slots of a connection from src that authenticated or closed.
func (l *Listener) unadmit(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.preAuth--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
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
