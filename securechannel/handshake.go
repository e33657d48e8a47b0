package securechannel

import (
	"context"
	"errors"
	"fmt"

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
		c.close(nil, false)
		c.mu.Lock()
		refused := c.refused
		c.mu.Unlock()
		if refused != nil {
			return nil, refused
		}
		return nil, fmt.Errorf("securechannel: no handshake answer from %s: %w", &route, ctx.Err())
	}
}

// handshakeMessage handles a first-handshake message addressed to the channel: message 2
// at the initiator, message 3 at the responder. A message that fails ends the handshake:
// nothing of it is kept, and the initiator may simply try again.
func (c *Channel) handshakeMessage(m *routing.Message) {
	defer m.Release()
	c.mu.Lock()
	hs := c.hs
	c.hs = nil // one shot: success or failure, this handshake is over
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
	c.mu.Unlock()
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
	if err := c.registerEncryptor(); err != nil {
		c.fail(err)
		return
	}
	c.mu.Lock()
	c.install(cs1, cs2, 0)
	c.mu.Unlock()
	if c.link != nil {
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

// refusedMessage ends a handshake the peer refused; at the initiator, the waiting Initiate
// returns the reason. Once the channel is established refusals are ignored: they are not
// authenticated.
func (c *Channel) refusedMessage(m *routing.Message) {
	defer m.Release()
	if c.isReady() || c.send.Load() != nil && !c.initiator {
		c.stats.dropped.Add(1)
		return
	}
	reason := m.Payload()[1:]
	if len(reason) > maxRefusalLen {
		reason = reason[:maxRefusalLen]
	}
	err := fmt.Errorf("securechannel: %w: %s", ErrRefused, reason)
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
// the one a listener (or a relay in front of one) receives.
func IsFirstHandshake(payload []byte) bool {
	return len(payload) == 1+xxMessage1Len && payload[0] == typeHandshake
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
