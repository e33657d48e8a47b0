package tcp

import (
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// refusalLogInterval spaces a listener's log lines about refused connections.
const refusalLogInterval = 10 * time.Second

// admit counts a new connection from src as unauthenticated, or says why the caps refuse
// it. When every place is taken, a source holding fewer than another still gets one: the
// oldest unauthenticated connection of the source holding the most gives it up, and the
// caller closes that victim. So flooding sources compete with themselves, and one that has
// not been connecting always gets in.
func (l *Listener) admit(src netip.Addr) (victim *Conn, why string, limit int) {
	cfg := &l.t.cfg
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bySource[src] >= cfg.MaxPreAuthPerSource {
		return nil, "too many unauthenticated connections from this source", cfg.MaxPreAuthPerSource
	}
	if l.preAuth >= cfg.MaxPreAuthConns {
		if victim = l.victim(src); victim == nil {
			return nil, "too many unauthenticated connections", cfg.MaxPreAuthConns
		}
	}
	l.preAuth++
	l.bySource[src]++
	return victim, "", 0
}

// victim takes the oldest unauthenticated connection of the source holding the most, if that
// is more than src holds, off the list of those that may give up their place. l.mu is held.
func (l *Listener) victim(src netip.Addr) *Conn {
	most := src
	for s, cs := range l.waiting {
		if len(cs) > 0 && l.bySource[s] > l.bySource[most] {
			most = s
		}
	}
	cs := l.waiting[most]
	if most == src || len(cs) == 0 {
		return nil
	}
	v := cs[0]
	l.forgetLocked(v)
	return v
}

// track lists an admitted connection as one that may give up its place.
func (l *Listener) track(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !c.preAuth.Load() {
		return // closed already: unadmit has run
	}
	if l.waiting == nil {
		l.waiting = make(map[netip.Addr][]*Conn)
	}
	l.waiting[c.source] = append(l.waiting[c.source], c)
}

// forgetLocked takes c off the list of tracked connections. l.mu is held.
func (l *Listener) forgetLocked(c *Conn) {
	cs := l.waiting[c.source]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(l.waiting, c.source)
	} else {
		l.waiting[c.source] = cs
	}
}

// unadmit gives back the places of a connection from src that authenticated or closed; c is
// the connection, nil if it was never made.
func (l *Listener) unadmit(src netip.Addr, c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.preAuth--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
	if c != nil {
		l.forgetLocked(c)
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
