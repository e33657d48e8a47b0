package securechannel

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/adjacentnet/adjacent/internal/fairshare"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
)

// Listener is the worker that answers first handshake messages and spawns a responder
// channel for each. It is reachable from the flows it was opened to (the transports, or an
// outer channel); the channels it spawns carry its flow as their spawner, so workers opened
// to Flow() are reachable from all of them.
//
// Admission (admission.go) is fair per origin (Config.Origin): each origin has a token
// bucket for the Diffie–Hellman its first messages cost, and a share of the pending
// handshakes; under load, unproven senders get a cookie instead of message 2.
type Listener struct {
	router *routing.Router
	name   string
	cfg    Config
	flow   routing.FlowID
	// strangers is the spawner flow of channels whose peer the Admitter does not vouch
	// for: only workers opened to it are reachable from them.
	strangers routing.FlowID

	mu       sync.Mutex
	closed   bool
	origins  map[string]*origin // origins with pending handshakes or a bucket not yet full
	swept    time.Time          // when origins was last swept of idle entries
	tokens   float64            // the listener's bucket (Config.ListenerRate), as of tokensAt
	tokensAt time.Time          // zero: the bucket is full
	// pending holds the admitted handshakes not yet established or gone, by origin.
	pending  *fairshare.Table[string, *pendingHS]
	cookies  *cookieJar
	channels map[*Channel]struct{}

	stats    struct{ answered, cookies, refused, evicted atomic.Uint64 }
	refusals *ratelog.Logger
}

// sourced is a link that knows the address its peer connects from (a TCP connection).
// Handshakes over it are admitted per source address; over other links, such as a channel
// nested in one to a hub, per link unless Config.Origin says better.
type sourced interface {
	Source() netip.Addr
}

// refusalLogInterval spaces a listener's log lines about refused handshakes.
const refusalLogInterval = 10 * time.Second

// Listen registers a listener at the local address name, reachable from flows.
func Listen(r *routing.Router, name string, cfg Config, flows ...routing.FlowID) (*Listener, error) {
	cfg.setDefaults()
	if cfg.Auth == nil {
		return nil, errors.New("securechannel: listen: no Authenticator")
	}
	jar, err := newCookieJar(cfg.Rand, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("securechannel: listen: %w", err)
	}
	l := &Listener{
		router:    r,
		name:      name,
		cfg:       cfg,
		flow:      r.NewFlow(),
		strangers: r.NewFlow(),
		pending:   fairshare.New[string, *pendingHS](cfg.MaxPendingPerOrigin, cfg.MaxPending),
		origins:   make(map[string]*origin),
		cookies:   jar,
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

// ListenerStats are a listener's counters of first handshake messages.
type ListenerStats struct {
	Answered uint64 // answered with message 2: the Diffie–Hellman was done
	Cookies  uint64 // answered with a cookie instead
	Refused  uint64 // dropped: rate, invalid cookie, table full or closed
	Evicted  uint64 // pending handshakes ended to make room for another origin's
	Pending  int    // handshakes in progress now
	Origins  int    // origins the listener keeps state for now
}

// Stats returns the listener's counters.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	pending, origins := l.pending.Len(), len(l.origins)
	l.mu.Unlock()
	return ListenerStats{
		Answered: l.stats.answered.Load(), Cookies: l.stats.cookies.Load(),
		Refused: l.stats.refused.Load(), Evicted: l.stats.evicted.Load(),
		Pending: pending, Origins: origins,
	}
}

// Refused counts first handshake messages dropped by admission.
func (l *Listener) Refused() uint64 { return l.stats.refused.Load() }

// HandleMessage answers a first handshake message with message 2, keeping the responder
// pending until message 3 or the handshake timeout, or with a cookie when the listener is
// under load and the sender has not proven its origin; or drops it (admit says when).
func (l *Listener) HandleMessage(m *routing.Message) {
	defer m.Release()
	msg1, cookie, ok := parseFirst(m.Payload())
	if !ok {
		return
	}
	back, err := m.ReplyRoute() // the channel's messages go back the way this one came
	if err != nil {
		return
	}
	key := l.originOf(m)
	d := l.admit(key, msg1, cookie, m.Local.Link)
	if v := d.evict; v != nil {
		l.stats.evicted.Add(1)
		l.refusals.Note(slog.String("reason", "pending handshake of the origin holding the most ended for another origin"), slog.String("last_origin", key))
		if d.evictAnswered {
			v.refuse(errEvicted) // an honest initiator learns at once, and may try again
		}
		v.close(errEvicted, false)
	}
	switch {
	case d.why != "":
		l.stats.refused.Add(1)
		l.refusals.Note(slog.String("reason", d.why), slog.String("last_origin", key))
		return
	case d.p == nil: // a cookie
		l.stats.cookies.Add(1)
		r := routing.NewMessage()
		r.Onward = back
		r.Return.Push(l.Address())
		r.SetPayload(appendCookieReply(make([]byte, 0, 1+cookieLen), d.cookie[:]))
		l.router.Send(r)
		return
	}
	c := d.p.c
	ok = false
	defer func() {
		if !ok {
			l.release(d.p)
		}
	}()
	hs, err := newHandshakeState(false, c.cfg.Static, c.cfg.Rand, prologue, nil)
	if err != nil {
		return
	}
	if _, _, _, err := hs.ReadMessage(nil, msg1); err != nil {
		return
	}
	own, err := c.cfg.Auth.Payload()
	if err != nil {
		c.log.Error("own handshake payload", "err", err)
		return
	}
	msg2, _, _, err := hs.WriteMessage([]byte{typeHandshake}, own)
	if err != nil {
		return
	}
	l.stats.answered.Add(1)
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
	if l.closed || d.p.gone { // closed, or evicted meanwhile
		l.mu.Unlock()
		l.router.Unregister(c.dec)
		return
	}
	l.channels[c] = struct{}{}
	d.p.answered = true
	l.mu.Unlock()
	ok = true
	go l.track(d.p)
	c.sendHandshake(msg2)
}

// track keeps a channel's pending slot until it is established or gone, then its place in
// the listener's set until it closes.
func (l *Listener) track(p *pendingHS) {
	c := p.c
	timeout := time.NewTimer(l.cfg.HandshakeTimeout)
	defer timeout.Stop()
	select {
	case <-c.ready:
	case <-c.done:
	case <-timeout.C:
		c.handshakeTimeout()
	}
	l.mu.Lock()
	l.unpend(p)
	l.mu.Unlock()
	<-c.done
	l.mu.Lock()
	delete(l.channels, c)
	l.mu.Unlock()
}

// release gives back the pending slot of a handshake that never got going.
func (l *Listener) release(p *pendingHS) {
	l.mu.Lock()
	l.unpend(p)
	delete(l.channels, p.c)
	l.mu.Unlock()
	p.c.close(errors.New("securechannel: handshake failed"), false)
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
