package securechannel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/adjacentnet/adjacent/internal/randid"
	"github.com/adjacentnet/adjacent/routing"
)

// Channel is one end of an established (or establishing) secure channel. Local workers send
// through it by routing to Address(); what the peer sends comes out of it into the router
// with the channel's flow and the authenticated peer in the message's Local metadata.
type Channel struct {
	cfg       Config
	router    *routing.Router
	log       *slog.Logger
	initiator bool
	enc, dec  string // local addresses: the encryptor (local senders) and decryptor (the peer)
	flow      routing.FlowID
	spawner   atomic.Uint64  // a routing.FlowID: the listener's Flow, or StrangerFlow
	members   routing.FlowID // the spawner given at creation: a listener's Flow
	strangers routing.FlowID // a responder's listener's StrangerFlow
	link      routing.Link   // what the channel's bytes travel over
	born      time.Time

	// Set once when the handshake completes, read freely after ready is closed (or, on the
	// hot path, after send/recv are non-nil, which is published after them).
	remote routing.Route // to the peer's decryptor
	peer   routing.Peer

	send atomic.Pointer[sendKeys]
	recv atomic.Pointer[recvKeys]

	mu         sync.Mutex // guards hs, first, rehs, rehandshook, refused, the timers, closing, admitted
	closing    bool       // set before close unregisters, so no worker is registered after it
	hs         *noise.HandshakeState
	first      *firstMessage         // the initiator's first message, until message 2
	rehs       *noise.HandshakeState // a re-handshake in progress
	rehsSince  time.Time
	rekeyed    time.Time // when the current keys were made
	refused    error     // the responder's reason, for Initiate
	timer      *time.Timer
	silent     int // keepalive ticks without a message from the peer
	lastAskRHS time.Time
	pongs      []chan struct{} // Ping calls waiting for the next pong
	admitted   func()          // the Admitter's release, called when the channel closes
	origin     string          // a responder's: its first message's origin (Listener.originOf)
	stranger   *time.Timer     // closes a stranger's channel at StrangerTimeout; nil for a member's

	ready     chan struct{} // closed when the channel carries data both ways
	readyOnce sync.Once
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	sentSome, gotSome atomic.Bool // activity since the last keepalive tick
	rehsWanted        atomic.Bool // a re-handshake was asked for and has not completed
	stats             struct{ msgsIn, msgsOut, bytesIn, bytesOut, dropped atomic.Uint64 }
}

// sendKeys and recvKeys are the keys of one handshake generation (and, for receiving, the
// previous one, so messages sealed just before a re-handshake still open).
type sendKeys struct {
	s   *sender
	gen byte
}

type recvKeys struct {
	cur, prev *receiver
	gen       byte // of cur; prev is gen-1
}

func (k *recvKeys) pick(gen byte) *receiver {
	switch gen {
	case k.gen:
		return k.cur
	case k.gen - 1:
		return k.prev
	}
	return nil
}

func newChannel(r *routing.Router, cfg Config, initiator bool, link routing.Link, spawner routing.FlowID) *Channel {
	id := randid.New()
	c := &Channel{
		cfg:       cfg,
		router:    r,
		initiator: initiator,
		enc:       "sc." + id,
		dec:       "sc." + id + ".in",
		flow:      r.NewFlow(),
		link:      link,
		born:      cfg.Now(),
		ready:     make(chan struct{}),
		done:      make(chan struct{}),
	}
	role := "responder"
	if initiator {
		role = "initiator"
	}
	c.spawner.Store(uint64(spawner))
	c.members = spawner
	c.log = cfg.Logger.With("component", "securechannel", "channel", c.enc, "role", role)
	return c
}

// Address is the local address that workers send through: a message routed to
// [Address, rest...] reaches rest... on the peer's node.
func (c *Channel) Address() routing.Address { return routing.LocalAddress(c.enc) }

// Flow is the flow of the messages that come out of the channel; open workers to it (or to
// the listener's flow) to let the peer reach them.
func (c *Channel) Flow() routing.FlowID { return c.flow }

// Peer returns the authenticated peer, or nil before the handshake completed.
func (c *Channel) Peer() routing.Peer {
	select {
	case <-c.ready:
		return c.peer
	default:
		return nil
	}
}

// Initiator reports whether this end started the channel.
func (c *Channel) Initiator() bool { return c.initiator }

// Born returns when the channel was created.
func (c *Channel) Born() time.Time { return c.born }

// Done is closed when the channel is closed.
func (c *Channel) Done() <-chan struct{} { return c.done }

// Err returns why the channel closed, or nil while it is open.
func (c *Channel) Err() error {
	select {
	case <-c.done:
		return c.closeErr
	default:
		return nil
	}
}

// Authenticated is part of routing.Link: a channel nested in this one authenticated, which
// changes nothing for this channel.
func (c *Channel) Authenticated() {}

// Guarantees is part of routing.Link: a channel keeps the guarantees of the link it runs over
// (what the link reorders, the replay window takes), for messages smaller by its overhead.
func (c *Channel) Guarantees() routing.Guarantees {
	g := routing.InNode()
	if c.link != nil {
		g = c.link.Guarantees()
	}
	g.MaxMessage = max(0, g.MaxMessage-channelOverhead)
	return g
}

// Backlog implements routing.Backlogged: what waits in the link the channel runs over.
func (c *Channel) Backlog() int { return routing.BacklogOf(c.link) }

// channelOverhead bounds what a channel adds to a message: its framing and tag, and the
// routes of the message that carries the ciphertext.
const channelOverhead = transportOverhead + 1 + 2*(1+routing.MaxRouteBytes)

// Stats are a channel's counters.
type Stats struct {
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
	Dropped                 uint64 // forged, replayed or malformed messages
	Generation              byte   // handshakes done over the channel's life, modulo 256
}

// Stats returns the channel's counters.
func (c *Channel) Stats() Stats {
	s := Stats{
		MessagesIn: c.stats.msgsIn.Load(), MessagesOut: c.stats.msgsOut.Load(),
		BytesIn: c.stats.bytesIn.Load(), BytesOut: c.stats.bytesOut.Load(),
		Dropped: c.stats.dropped.Load(),
	}
	if k := c.send.Load(); k != nil {
		s.Generation = k.gen
	}
	return s
}

// encryptor is the worker at Address: it seals messages for the peer.
type encryptor struct{ c *Channel }

func (e encryptor) HandleMessage(m *routing.Message) {
	m.Onward.Pop()
	e.c.sendData(m)
}

// decryptor is the worker the peer sends to.
type decryptor struct{ c *Channel }

func (d decryptor) HandleMessage(m *routing.Message) {
	c := d.c
	p := m.Payload()
	if len(p) == 0 {
		c.drop(m)
		return
	}
	if reason, ok := routing.Refusal(m); ok { // a router on the way has no such service
		c.refusedMessage(m, routing.RefusalError(reason))
		return
	}
	switch p[0] {
	case typeTransport:
		c.receive(m)
	case typeHandshake:
		c.handshakeMessage(m)
	case typeRefused:
		c.refusedMessage(m, nil)
	case typeCookie:
		c.cookieMessage(m)
	default:
		c.drop(m)
	}
}

func (c *Channel) drop(m *routing.Message) {
	c.stats.dropped.Add(1)
	m.Release()
}

// sendData seals an inner routing message (its own address already popped) for the peer.
func (c *Channel) sendData(m *routing.Message) {
	if c.send.Load() == nil {
		c.drop(m) // not established
		return
	}
	n := m.Body().Len()
	m.PutHeader()
	m.Body().Prepend(1)[0] = kindData
	if c.seal(m) {
		c.stats.msgsOut.Add(1)
		c.stats.bytesOut.Add(uint64(n))
	}
}

// sendControl sends a transport message of the given kind with body.
func (c *Channel) sendControl(kind byte, body []byte) {
	if c.send.Load() == nil {
		return
	}
	m := routing.NewMessage()
	b := routing.NewBuffer(1 + len(body))
	b.Extend(1)[0] = kind
	copy(b.Extend(len(body)), body)
	m.SetBody(b)
	c.seal(m)
}

// seal encrypts m's body ([kind][plaintext]) in place and routes it to the peer. It reports
// whether the message left.
func (c *Channel) seal(m *routing.Message) bool {
	k := c.send.Load()
	body := m.Body()
	body.Prepend(headerLen)
	if _, err := k.s.seal(body.Bytes()); err != nil {
		// Only at the reject limit, which a re-handshake long before keeps us from.
		c.log.Error("cannot seal: closing the channel", "err", err)
		m.Release()
		go c.close(fmt.Errorf("securechannel: %w", err), false)
		return false
	}
	body.Extend(tagLen)
	h := body.Prepend(2)
	h[0], h[1] = typeTransport, k.gen
	m.Onward = c.remote
	m.Return.Reset()
	m.Local = routing.Local{}
	c.sentSome.Store(true)
	c.router.Send(m)
	if k.s.needsRehandshake() && !c.rehsWanted.Swap(true) {
		go c.wantRehandshake() // not here: the caller may hold c.mu
	}
	return true
}

// receive opens a transport message and acts on its kind.
func (c *Channel) receive(m *routing.Message) {
	body := m.Body()
	p := body.Bytes()
	k := c.recv.Load()
	if k == nil || len(p) < transportOverhead {
		c.drop(m)
		return
	}
	r := k.pick(p[1])
	if r == nil {
		c.drop(m)
		return
	}
	pt, err := r.open(p[2:])
	if err != nil {
		c.drop(m)
		return
	}
	c.gotSome.Store(true)
	body.Advance(transportHeaderLen + 1)
	body.Truncate(len(pt) - 1)
	switch pt[0] {
	case kindData:
		c.stats.msgsIn.Add(1)
		if err := m.DecodeBody(); err != nil {
			c.drop(m)
			return
		}
		c.stats.bytesIn.Add(uint64(m.Body().Len()))
		if err := m.Return.Push(c.Address()); err != nil {
			c.drop(m)
			return
		}
		m.Local = routing.Local{Flow: c.flow, Spawner: routing.FlowID(c.spawner.Load()), Peer: c.peer, Link: c}
		c.markReady()
		if m.Local.Spawner == c.strangers && c.strangers != routing.FlowLocal && IsFirstHandshake(m.Payload()) && !c.router.Admits(m) {
			c.refuseStranger(m) // a handshake it may not make: say so at once
			return
		}
		c.router.Send(m)
		return
	case kindPing:
		c.markReady()
	case kindPingRequest:
		c.sendControl(kindPong, nil)
	case kindPong:
		c.mu.Lock()
		for _, w := range c.pongs {
			close(w)
		}
		c.pongs = nil
		c.mu.Unlock()
	case kindClose:
		go c.close(errors.New("securechannel: closed by the peer"), false)
	case kindRefresh:
		c.refresh(body.Bytes())
	case kindRehandshake:
		c.rehandshakeMessage(body.Bytes())
	case kindRehandshakeRequest:
		if c.initiator {
			c.startRehandshake()
		}
	default:
		c.stats.dropped.Add(1)
	}
	m.Release()
}

func (c *Channel) markReady() {
	c.readyOnce.Do(func() { close(c.ready) })
}

// refresh hands fresh authentication data from the peer to the authenticator.
func (c *Channel) refresh(data []byte) {
	rf, ok := c.cfg.Auth.(Refresher)
	if !ok {
		return
	}
	if err := rf.Refresh(c.peer, data); err != nil {
		c.log.Warn("peer's refreshed credentials refused: closing the channel", "peer", c.peer.Identifier(), "err", err)
		go c.close(fmt.Errorf("securechannel: refresh: %w", err), true)
		return
	}
	c.mu.Lock()
	stranger := c.stranger != nil
	c.mu.Unlock()
	if stranger {
		c.admitAgain()
	}
}

// Ping asks the peer to answer and waits for the answer: it tells a live channel from one
// whose peer went away without a word (a restarted node behind a relay) sooner than the
// keepalive does.
func (c *Channel) Ping(ctx context.Context) error {
	w := make(chan struct{})
	c.mu.Lock()
	c.pongs = append(c.pongs, w)
	c.mu.Unlock()
	c.sendControl(kindPingRequest, nil)
	select {
	case <-w:
		return nil
	case <-c.done:
		return c.closeErr
	case <-ctx.Done():
		return fmt.Errorf("securechannel: no answer from the peer: %w", ctx.Err())
	}
}

// SendRefresh sends fresh authentication data (renewed credentials) to the peer.
func (c *Channel) SendRefresh(data []byte) { c.sendControl(kindRefresh, data) }

// install makes the keys of a finished handshake current.
func (c *Channel) install(cs1, cs2 *noise.CipherState, gen byte) {
	sendCS, recvCS := cs1, cs2
	if !c.initiator {
		sendCS, recvCS = cs2, cs1
	}
	rk := &recvKeys{cur: newReceiver(recvCS, c.cfg.rekey), gen: gen}
	if old := c.recv.Load(); old != nil {
		rk.prev = old.cur
	}
	c.recv.Store(rk)
	c.send.Store(&sendKeys{s: newSender(sendCS, c.cfg.rekey), gen: gen})
	c.rekeyed = c.cfg.Now()
}

// Close sends the peer a close message and removes the channel. It is idempotent.
func (c *Channel) Close() error {
	c.close(errors.New("securechannel: closed"), true)
	return nil
}

func (c *Channel) close(why error, tell bool) {
	c.closeOnce.Do(func() {
		if tell {
			c.sendControl(kindClose, nil)
		}
		c.closeErr = why
		c.mu.Lock()
		c.closing = true
		if c.timer != nil {
			c.timer.Stop()
		}
		if c.stranger != nil {
			c.stranger.Stop()
		}
		release := c.admitted
		c.admitted = nil
		c.mu.Unlock()
		if release != nil {
			release()
		}
		c.router.Unregister(c.enc)
		c.router.Unregister(c.dec)
		close(c.done)
		c.log.Debug("channel closed", "reason", why)
	})
}

// registerEncryptor opens the channel's sending address once the handshake is complete,
// unless the channel has closed meanwhile: a handshake timeout can race with the message
// that completes the handshake, and a worker registered after close would stay forever.
func (c *Channel) registerEncryptor() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return errClosed
	}
	return c.router.Register(c.enc, encryptor{c})
}

// watch closes the channel when its link goes, and runs the keepalive.
func (c *Channel) watch() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.timer = time.AfterFunc(c.cfg.KeepaliveInterval, c.tick)
	c.mu.Unlock()
	if c.link == nil {
		return
	}
	go func() {
		select {
		case <-c.link.Done():
			c.close(errors.New("securechannel: the connection under the channel closed"), false)
		case <-c.done:
		}
	}()
}

// tick is the keepalive: ping when idle, close when the peer is silent, re-handshake when old.
func (c *Channel) tick() {
	if c.Err() != nil {
		return
	}
	c.mu.Lock()
	if c.gotSome.Swap(false) {
		c.silent = 0
	} else {
		c.silent++
	}
	silentFor := time.Duration(c.silent) * c.cfg.KeepaliveInterval
	rehsStuck := c.rehs != nil && c.cfg.Now().Sub(c.rehsSince) > c.cfg.HandshakeTimeout
	if rehsStuck {
		c.rehs = nil // give up this attempt; the next tick may start another
		c.rehsWanted.Store(false)
	}
	old := c.cfg.Now().Sub(c.rekeyed) > c.cfg.RehandshakeAfter
	c.timer.Reset(c.cfg.KeepaliveInterval)
	c.mu.Unlock()

	if silentFor >= c.cfg.DeadAfter {
		c.log.Info("closing channel: peer silent", "for", silentFor)
		c.close(fmt.Errorf("securechannel: no message from the peer for %v", silentFor), false)
		return
	}
	if !c.sentSome.Swap(false) {
		c.sendControl(kindPing, nil)
	}
	if old {
		c.wantRehandshake()
	}
}
