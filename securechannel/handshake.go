package securechannel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flynn/noise"

	"github.com/adjacentnet/adjacent/internal/signals"
	"github.com/adjacentnet/adjacent/routing"
)

// ErrRefused wraps the reason a responder gave for refusing this side.
var ErrRefused = errors.New("refused by the peer")

// Initiate opens a secure channel to the listener at the end of to.Route (for example
// [tcp-3, api] or [sc.x, forward_to_db, api] for a channel nested in another). Replies arrive
// on to.Flow, the flow of the route's first hop; to.Link is what carries them (the
// connection or outer channel), and the channel closes with it. Initiate returns once the responder has
// authenticated this side and answered, or fails with the reason.
func Initiate(ctx context.Context, r *routing.Router, to routing.Destination, cfg Config) (*Channel, error) {
	cfg.setDefaults()
	route := to.Route
	c := newChannel(r, cfg, true, to.Link, routing.FlowLocal)
	if err := r.Register(c.dec, decryptor{c}, to.Flow); err != nil {
		return nil, err
	}
	hs, err := newHandshakeState(true, cfg.Static, cfg.Rand, prologue, nil)
	if err != nil {
		r.Unregister(c.dec)
		return nil, fmt.Errorf("securechannel: %w", err)
	}
	msg1, _, _, err := hs.WriteMessage([]byte{typeHandshake}, nil)
	if err != nil {
		r.Unregister(c.dec)
		return nil, fmt.Errorf("securechannel: write message 1: %w", err)
	}
	c.mu.Lock()
	c.hs = hs
	c.first = &firstMessage{msg1: msg1[1:], route: route}
	c.mu.Unlock()

	m := routing.NewMessage()
	m.Onward = route
	if err := m.Return.Push(routing.LocalAddress(c.dec)); err != nil {
		m.Release()
		r.Unregister(c.dec)
		return nil, err
	}
	m.SetPayload(msg1)
	r.Send(m)

	ctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	var linkDone <-chan struct{}
	if to.Link != nil {
		linkDone = to.Link.Done()
	}
	select {
	case <-linkDone:
		c.close(nil, false)
		return nil, fmt.Errorf("securechannel: the connection to %s closed during the handshake", &route)
	case <-c.ready:
		c.watch()
		return c, nil
	case <-c.done:
		return nil, c.closeErr
	case <-ctx.Done():
		// Told, a responder that took message 3 closes its end now rather than at
		// DeadAfter; before message 3 there are no keys and nothing is sent.
		c.close(nil, true)
		c.mu.Lock()
		refused := c.refused
		c.mu.Unlock()
		if refused != nil {
			return nil, refused
		}
		return nil, fmt.Errorf("securechannel: no handshake answer from %s: %w", &route, ctx.Err())
	}
}

// firstMessage is what an initiator keeps to send its first message again with a cookie.
type firstMessage struct {
	msg1  []byte // the Noise message, without the type byte
	route routing.Route
	tries int // cookie replies answered
}

// cookieMessage answers a listener under load: the initiator sends its first message again,
// with the cookie, while it waits for message 2, and at most maxCookieTries times a
// handshake, so that forged cookie replies cannot keep it sending. Anything else is dropped.
func (c *Channel) cookieMessage(m *routing.Message) {
	defer m.Release()
	cookie, ok := parseCookieReply(m.Payload())
	c.mu.Lock()
	f := c.first
	ok = ok && c.initiator && c.hs != nil && f != nil && f.tries < maxCookieTries
	var out *routing.Message
	if ok {
		f.tries++
		out = routing.NewMessage()
		out.Onward = f.route
		out.SetPayload(appendFirst(make([]byte, 0, 1+xxMessage1Len+cookieLen), f.msg1, cookie))
	}
	c.mu.Unlock()
	if !ok {
		c.stats.dropped.Add(1)
		return
	}
	out.Return.Push(routing.LocalAddress(c.dec))
	c.router.Send(out)
}

// handshakeMessage handles a first-handshake message addressed to the channel: message 2
// at the initiator, message 3 at the responder. A message that fails ends the handshake:
// nothing of it is kept, and the initiator may simply try again.
func (c *Channel) handshakeMessage(m *routing.Message) {
	defer m.Release()
	c.mu.Lock()
	hs := c.hs
	c.hs = nil // one shot: success or failure, this handshake is over
	c.first = nil
	c.mu.Unlock()
	if hs == nil {
		c.stats.dropped.Add(1)
		return
	}
	msg := m.Payload()[1:]
	if c.initiator {
		c.remote = m.Return // where message 3, or a refusal, goes
		c.initiatorMessage2(hs, msg)
	} else {
		c.responderMessage3(hs, msg)
	}
}

func (c *Channel) initiatorMessage2(hs *noise.HandshakeState, msg []byte) {
	payload, _, _, err := hs.ReadMessage(nil, msg)
	if err != nil {
		err = fmt.Errorf("securechannel: read message 2: %w", err)
		c.refuse(err) // frees the responder's pending slot now rather than at its timeout
		c.fail(err)
		return
	}
	peer, err := c.cfg.Auth.Authenticate(payload, hs.PeerStatic())
	if err != nil {
		err = fmt.Errorf("securechannel: responder not accepted: %w", err)
		c.refuse(err)
		c.fail(err)
		return
	}
	own, err := c.cfg.Auth.Payload()
	if err != nil {
		c.fail(fmt.Errorf("securechannel: own payload: %w", err))
		return
	}
	msg3, cs1, cs2, err := hs.WriteMessage([]byte{typeHandshake}, own)
	if err != nil {
		c.fail(fmt.Errorf("securechannel: write message 3: %w", err))
		return
	}
	c.peer = peer
	if err := c.registerEncryptor(); err != nil {
		c.fail(err)
		return
	}
	c.sendHandshake(msg3)
	c.mu.Lock()
	c.install(cs1, cs2, 0)
	gaveUp := c.closing
	c.mu.Unlock()
	if gaveUp {
		// Initiate gave up between message 3 and the keys, too early to tell the
		// responder, which would keep its end until DeadAfter: tell it now.
		c.sendControl(kindClose, nil)
		return
	}
	if c.link != nil {
		c.link.Authenticated()
	}
	// Ready once the responder's first transport message shows it accepted us.
}

func (c *Channel) responderMessage3(hs *noise.HandshakeState, msg []byte) {
	payload, cs1, cs2, err := hs.ReadMessage(nil, msg)
	if err != nil {
		err = fmt.Errorf("securechannel: read message 3: %w", err)
		c.refuse(err)
		c.fail(err)
		return
	}
	peer, err := c.cfg.Auth.Authenticate(payload, hs.PeerStatic())
	if err != nil {
		c.refuse(err)
		c.fail(fmt.Errorf("securechannel: initiator not accepted: %w", err))
		return
	}
	c.peer = peer
	member, err := c.admit(peer)
	if err != nil {
		c.refuse(err)
		c.fail(fmt.Errorf("securechannel: initiator not admitted: %w", err))
		return
	}
	if !member { // before install: messages out of the channel carry the stranger's flow
		c.spawner.Store(uint64(c.strangers))
		c.mu.Lock()
		c.stranger = time.AfterFunc(c.cfg.StrangerTimeout, c.strangerExpired)
		c.mu.Unlock()
	}
	if err := c.registerEncryptor(); err != nil {
		c.fail(err)
		return
	}
	c.mu.Lock()
	c.install(cs1, cs2, 0)
	c.mu.Unlock()
	if c.link != nil && member { // a stranger's link keeps the caps of unauthenticated peers
		c.link.Authenticated()
	}
	c.markReady()
	c.sendControl(kindPing, nil) // tells the initiator it was accepted
	c.watch()
	c.log.Debug("channel established", "peer", peer.Identifier())
	if c.cfg.Accepted != nil {
		c.cfg.Accepted(c)
	}
}

// sendHandshake sends a first-handshake message (its type byte included) to the peer.
func (c *Channel) sendHandshake(msg []byte) {
	m := routing.NewMessage()
	m.Onward = c.remote
	m.Return.Push(routing.LocalAddress(c.dec))
	m.SetPayload(msg)
	c.router.Send(m)
}

// refuse tells the peer why its handshake message was not accepted.
func (c *Channel) refuse(why error) {
	reason := why.Error()
	if len(reason) > maxRefusalLen {
		reason = reason[:maxRefusalLen]
	}
	c.sendHandshake(append([]byte{typeRefused}, reason...))
}

// refusedMessage ends a handshake the peer refused (or a router on the way refused, why);
// at the initiator, the waiting Initiate returns the reason. Once the channel is established
// refusals are ignored: they are not authenticated.
func (c *Channel) refusedMessage(m *routing.Message, why error) {
	defer m.Release()
	if c.isReady() || c.send.Load() != nil && !c.initiator {
		c.stats.dropped.Add(1)
		return
	}
	var err error
	if why != nil {
		err = fmt.Errorf("securechannel: %w: %w", ErrRefused, why)
	} else {
		reason := m.Payload()[1:]
		if len(reason) > maxRefusalLen {
			reason = reason[:maxRefusalLen]
		}
		err = fmt.Errorf("securechannel: %w: %s", ErrRefused, reason)
	}
	c.mu.Lock()
	c.refused = err
	c.mu.Unlock()
	c.fail(err)
}

func (c *Channel) isReady() bool { return signals.Closed(c.ready) }

// fail ends a channel whose handshake failed.
func (c *Channel) fail(err error) {
	c.log.Debug("handshake failed", "err", err)
	go c.close(err, false)
}

// Rehandshake replaces the channel's keys with a fresh handshake now instead of at
// RehandshakeAfter, presenting this side's payload again: a node whose identity rotated
// shows its peers the new history on the channels it already has.
func (c *Channel) Rehandshake() { c.wantRehandshake() }

// wantRehandshake starts a re-handshake at the initiator, or asks the initiator for one.
func (c *Channel) wantRehandshake() {
	if c.initiator {
		c.startRehandshake()
		return
	}
	c.mu.Lock()
	now := c.cfg.Now()
	ask := now.Sub(c.lastAskRHS) > c.cfg.HandshakeTimeout
	if ask {
		c.lastAskRHS = now
	}
	c.mu.Unlock()
	if ask {
		c.sendControl(kindRehandshakeRequest, nil)
	}
}

// startRehandshake begins a new Noise XX handshake inside the channel. Its messages travel
// sealed under the current keys; when it completes both sides move to the new keys, and the
// old receiving keys stay for messages already in flight.
func (c *Channel) startRehandshake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rehs != nil || c.send.Load() == nil {
		return
	}
	hs, err := newHandshakeState(true, c.cfg.Static, c.cfg.Rand, prologue, nil)
	if err != nil {
		return
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return
	}
	c.rehs, c.rehsSince = hs, c.cfg.Now()
	c.sendControl(kindRehandshake, msg1)
}

// rehandshakeMessage advances a re-handshake. A failure abandons it and keeps the current
// keys; the channel stays up.
func (c *Channel) rehandshakeMessage(msg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := c.send.Load().gen + 1
	hs := c.rehs
	switch {
	case hs == nil && !c.initiator: // message 1
		var err error
		hs, err = newHandshakeState(false, c.cfg.Static, c.cfg.Rand, prologue, nil)
		if err != nil {
			return
		}
		if _, _, _, err := hs.ReadMessage(nil, msg); err != nil {
			return
		}
		own, err := c.cfg.Auth.Payload()
		if err != nil {
			return
		}
		msg2, _, _, err := hs.WriteMessage(nil, own)
		if err != nil {
			return
		}
		c.rehs, c.rehsSince = hs, c.cfg.Now()
		c.sendControl(kindRehandshake, msg2)
	case hs != nil && c.initiator: // message 2
		c.rehs = nil
		payload, _, _, err := hs.ReadMessage(nil, msg)
		if err != nil || !c.samePeer(payload, hs.PeerStatic()) {
			return
		}
		own, err := c.cfg.Auth.Payload()
		if err != nil {
			return
		}
		msg3, cs1, cs2, err := hs.WriteMessage(nil, own)
		if err != nil {
			return
		}
		c.sendControl(kindRehandshake, msg3) // under the old keys, before switching
		c.install(cs1, cs2, gen)
		c.rehsWanted.Store(false)
		c.log.Debug("re-handshake done", "generation", gen)
	case hs != nil && !c.initiator: // message 3
		c.rehs = nil
		payload, cs1, cs2, err := hs.ReadMessage(nil, msg)
		if err != nil || !c.samePeer(payload, hs.PeerStatic()) {
			return
		}
		c.install(cs1, cs2, gen)
		c.rehsWanted.Store(false)
		c.log.Debug("re-handshake done", "generation", gen)
	}
}

// samePeer authenticates a re-handshake payload and checks it is still the same peer.
func (c *Channel) samePeer(payload, static []byte) bool {
	p, err := c.cfg.Auth.Authenticate(payload, static)
	if err != nil || p.Identifier() != c.peer.Identifier() {
		c.log.Warn("re-handshake refused", "err", err)
		return false
	}
	return true
}

// handshakeTimeout ends a responder channel whose handshake did not finish in time.
func (c *Channel) handshakeTimeout() {
	if !c.isReady() {
		c.close(fmt.Errorf("securechannel: handshake not finished within %v", c.cfg.HandshakeTimeout), false)
	}
}

// IsFirstHandshake reports whether a message payload is the first message of a handshake,
// the one a listener (or a relay in front of one) receives, with or without a cookie.
func IsFirstHandshake(payload []byte) bool {
	_, _, ok := parseFirst(payload)
	return ok
}

// Refusal is the payload that tells an initiator why its handshake was refused, for a worker
// in front of a listener (a relay) that denies it: sent back along the first message's return
// route, it makes Initiate fail at once with the reason instead of timing out.
func Refusal(reason string) []byte {
	if len(reason) > maxRefusalLen {
		reason = reason[:maxRefusalLen]
	}
	return append([]byte{typeRefused}, reason...)
}

// admit asks the Admitter, if any, whether peer may hold this responder channel and as what;
// the channel keeps the admission until it closes.
func (c *Channel) admit(peer routing.Peer) (member bool, err error) {
	if c.cfg.Admitter == nil {
		return true, nil
	}
	member, release, err := c.cfg.Admitter.Admit(Admission{Peer: peer, Origin: c.origin, Close: c.evictStranger})
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		release()
		return false, errClosed
	}
	c.admitted = release
	c.mu.Unlock()
	return member, nil
}

// admitAgain asks the Admitter again about a stranger's peer that presented fresh
// authentication data: if it is now a member, the channel becomes a member's (the listener's
// Flow, its link's caps lifted) and is no longer closed at StrangerTimeout.
func (c *Channel) admitAgain() {
	if c.cfg.Admitter == nil {
		return
	}
	member, release, err := c.cfg.Admitter.Admit(Admission{Peer: c.peer, Origin: c.origin, Close: c.evictStranger, Again: true})
	if err != nil {
		return // a stranger still, until StrangerTimeout
	}
	if !member {
		release()
		return
	}
	c.mu.Lock()
	if c.closing || c.stranger == nil {
		c.mu.Unlock()
		release()
		return
	}
	c.stranger.Stop()
	c.stranger = nil
	old := c.admitted
	c.admitted = release
	c.spawner.Store(uint64(c.members))
	c.mu.Unlock()
	if old != nil {
		old()
	}
	if c.link != nil {
		c.link.Authenticated()
	}
	c.log.Debug("the stranger's channel now carries a member", "peer", c.peer.Identifier())
}

// strangerExpired closes a stranger's channel whose peer did not become a member within
// StrangerTimeout.
func (c *Channel) strangerExpired() {
	c.mu.Lock()
	still := c.stranger != nil
	c.mu.Unlock()
	if still {
		c.log.Debug("closing a stranger's channel", "peer", c.peer.Identifier(), "after", c.cfg.StrangerTimeout)
		c.close(fmt.Errorf("securechannel: %w (%v)", ErrStranger, c.cfg.StrangerTimeout), true)
	}
}

// evictStranger closes the channel for the Admitter, which ended it to make room for
// another origin's (Admission.Close).
func (c *Channel) evictStranger() {
	c.close(errStrangerEvicted, true)
}

// strangerRefusal is why a stranger's handshake through its channel is refused.
const strangerRefusal = "refused: this node does not count the peer as a member (no valid credential), and opens only enrollment to it"

// refuseStranger answers a first handshake message that came out of a stranger's channel
// to a worker not open to strangers: the initiator learns at once instead of timing out.
func (c *Channel) refuseStranger(m *routing.Message) {
	c.stats.dropped.Add(1)
	r := routing.NewMessage()
	r.Onward = m.Return
	r.SetPayload(Refusal(strangerRefusal))
	m.Release()
	c.router.Send(r)
}
