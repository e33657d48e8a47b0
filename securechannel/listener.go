package securechannel

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
)

// Listener is the worker that answers first handshake messages and spawns a responder
// channel for each. It is reachable from the flows it was opened to (the transports, or an
// outer channel); the channels it spawns carry its flow as their spawner, so workers opened
// to Flow() are reachable from all of them.
type Listener struct {
	router *routing.Router
	name   string
	cfg    Config
	flow   routing.FlowID
	// strangers is the spawner flow of channels whose peer the Admitter does not vouch
	// for: only workers opened to it are reachable from them.
	strangers routing.FlowID

	mu        sync.Mutex
	closed    bool
	pending   int
	perLink   map[routing.Link]int
	perSource map[netip.Addr]int
	channels  map[*Channel]struct{}

	refused  atomic.Uint64 // handshakes dropped by the pending caps
	refusals *ratelog.Logger
}

// sourced is a link that knows the address its peer connects from (a TCP connection).
// Handshakes over other links, such as a channel nested in one to a hub, are not counted per
// source: there the hub is the source of them all, and each is capped per link instead.
type sourced interface {
	Source() netip.Addr
}

// refusalLogInterval spaces a listener's log lines about refused handshakes.
const refusalLogInterval = 10 * time.Second

// slot is what a pending handshake holds against the caps.
type slot struct {
	link   routing.Link
	source netip.Addr // the zero Addr when the link does not know it
}

func slotOf(link routing.Link) slot {
	s := slot{link: link}
	if sl, ok := link.(sourced); ok {
		s.source = sl.Source()
	}
	return s
}

// Listen registers a listener at the local address name, reachable from flows.
func Listen(r *routing.Router, name string, cfg Config, flows ...routing.FlowID) (*Listener, error) {
	cfg.setDefaults()
	if cfg.Auth == nil {
		return nil, errors.New("securechannel: listen: no Authenticator")
	}
	l := &Listener{
		router:    r,
		name:      name,
		cfg:       cfg,
		flow:      r.NewFlow(),
		strangers: r.NewFlow(),
		perLink:   make(map[routing.Link]int),
		perSource: make(map[netip.Addr]int),
		channels:  make(map[*Channel]struct{}),
		refusals:  ratelog.New(cfg.Logger.With("component", "securechannel", "listener", name), slog.LevelWarn, "refused first handshake messages", refusalLogInterval),
	}
	if err := r.Register(name, l, flows...); err != nil {
		return nil, err
	}
	return l, nil
}

// Flow is the spawner flow of the listener's channels.
func (l *Listener) Flow() routing.FlowID { return l.flow }

// StrangerFlow is the spawner flow of the channels of strangers (see Admitter): open to it
// only the workers a peer without membership may reach.
func (l *Listener) StrangerFlow() routing.FlowID { return l.strangers }

// Address is the listener's local address.
func (l *Listener) Address() routing.Address { return routing.LocalAddress(l.name) }

// Channels returns the listener's established channels.
func (l *Listener) Channels() []*Channel {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Channel, 0, len(l.channels))
	for c := range l.channels {
		if c.isReady() {
			out = append(out, c)
		}
	}
	return out
}

// Refused counts first handshake messages dropped because too many handshakes were pending.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// HandleMessage answers a first handshake message with message 2 and keeps the responder
// pending until message 3 or the handshake timeout.
func (l *Listener) HandleMessage(m *routing.Message) {
	defer m.Release()
	p := m.Payload()
	if len(p) != 1+xxMessage1Len || p[0] != typeHandshake {
		return
	}
	back, err := m.ReplyRoute() // the channel's messages go back the way this one came
	if err != nil {
		return
	}
	link := m.Local.Link
	s := slotOf(link)
	if why, limit := l.admit(s); why != "" {
		l.refused.Add(1)
		attrs := []slog.Attr{slog.String("reason", why), slog.Int("limit", limit)}
		if s.source.IsValid() {
			attrs = append(attrs, slog.String("last_source", s.source.String()))
		}
		l.refusals.Note(attrs...)
		return
	}
	l.mu.Lock()
	cfg := l.cfg // SetKeys may change it
	l.mu.Unlock()
	c := newChannel(l.router, cfg, false, link, l.flow)
	c.strangers = l.strangers
	ok := false
	defer func() {
		if !ok {
			l.release(c, s)
		}
	}()
	hs, err := newHandshakeState(false, cfg.Static, cfg.Rand, prologue, nil)
	if err != nil {
		return
	}
	if _, _, _, err := hs.ReadMessage(nil, p[1:]); err != nil {
		return
	}
	own, err := cfg.Auth.Payload()
	if err != nil {
		c.log.Error("own handshake payload", "err", err)
		return
	}
	msg2, _, _, err := hs.WriteMessage([]byte{typeHandshake}, own)
	if err != nil {
		return
	}
	c.remote = back
	c.hs = hs
	var flows []routing.FlowID
	if m.Local.Flow != routing.FlowLocal {
		flows = append(flows, m.Local.Flow)
	}
	if err := l.router.Register(c.dec, decryptor{c}, flows...); err != nil {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.router.Unregister(c.dec)
		return
	}
	l.channels[c] = struct{}{}
	l.mu.Unlock()
	ok = true
	go l.track(c, s)
	c.sendHandshake(msg2)
}

// track keeps a channel's pending slot until it is established or gone, then its place in
// the listener's set until it closes.
func (l *Listener) track(c *Channel, s slot) {
	timeout := time.NewTimer(l.cfg.HandshakeTimeout)
	defer timeout.Stop()
	select {
	case <-c.ready:
	case <-c.done:
	case <-timeout.C:
		c.handshakeTimeout()
	}
	l.mu.Lock()
	l.unpend(s)
	l.mu.Unlock()
	<-c.done
	l.mu.Lock()
	delete(l.channels, c)
	l.mu.Unlock()
}

// admit takes a pending slot for a handshake, or says which cap refuses it.
func (l *Listener) admit(s slot) (why string, limit int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return "listener closed", 0
	case l.pending >= l.cfg.MaxPending:
		return "too many pending handshakes", l.cfg.MaxPending
	case l.perLink[s.link] >= l.cfg.MaxPendingPerLink:
		return "too many pending handshakes over one connection", l.cfg.MaxPendingPerLink
	case s.source.IsValid() && l.perSource[s.source] >= l.cfg.MaxPendingPerSource:
		return "too many pending handshakes from one source", l.cfg.MaxPendingPerSource
	}
	l.pending++
	l.perLink[s.link]++
	if s.source.IsValid() {
		l.perSource[s.source]++
	}
	return "", 0
}

func (l *Listener) unpend(s slot) {
	l.pending--
	if l.perLink[s.link]--; l.perLink[s.link] <= 0 {
		delete(l.perLink, s.link)
	}
	if s.source.IsValid() {
		if l.perSource[s.source]--; l.perSource[s.source] <= 0 {
			delete(l.perSource, s.source)
		}
	}
}

// release gives back the pending slot of a handshake that never got going.
func (l *Listener) release(c *Channel, s slot) {
	l.mu.Lock()
	l.unpend(s)
	l.mu.Unlock()
	c.close(errors.New("securechannel: handshake failed"), false)
}

// SetKeys makes the channels the listener spawns from now on use static and auth, as a node
// does after rotating its identity; the channels already spawned keep theirs.
func (l *Listener) SetKeys(static noise.DHKey, auth Authenticator) {
	l.mu.Lock()
	l.cfg.Static, l.cfg.Auth = static, auth
	l.mu.Unlock()
}

// Close stops accepting handshakes and closes every channel the listener spawned.
func (l *Listener) Close() error {
	l.router.Unregister(l.name)
	l.mu.Lock()
	l.closed = true
	cs := make([]*Channel, 0, len(l.channels))
	for c := range l.channels {
		cs = append(cs, c)
	}
	l.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	l.refusals.Stop()
	return nil
}
