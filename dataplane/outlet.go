package dataplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// OutletConfig configures an Outlet. Zero values take the documented defaults.
type OutletConfig struct {
	SessionConfig
	Target string // host:port the outlet dials for each portal session
	// Admit decides whether the sender of a connect may open a session, and says why not.
	// Nil admits everyone who reached the worker.
	Admit       func(m *routing.Message) (bool, string)
	DialTimeout time.Duration // default 10s
	// Dial connects to Target; default net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Allow decides whether the peer node of a live session may still hold it; Recheck
	// resets the sessions it refuses. Nil: sessions are never re-checked.
	Allow Allow
}

// Outlet is the worker that receives connects from inlets, checks them, dials the target and
// runs the outlet side of each portal session.
type Outlet struct {
	cfg    OutletConfig
	stats  Counters
	groups groups
	policy rechecker
	ctx    context.Context
	cancel context.CancelFunc
}

// NewOutlet returns an outlet; register it on the router under its name.
func NewOutlet(cfg OutletConfig) *Outlet {
	cfg.SessionConfig = cfg.SessionConfig.withDefaults()
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Dial == nil {
		// No TCP keepalive to a local target (the portal has its own liveness), which saves
		// four system calls per connect; Go turns Nagle off by itself.
		d := net.Dialer{KeepAlive: -1}
		cfg.Dial = d.DialContext
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &Outlet{cfg: cfg, ctx: ctx, cancel: cancel}
	o.policy = newRechecker(cfg.Allow, "the outlet's policy", cfg.Logger)
	return o
}

// Recheck resets, at both ends, the live sessions whose peer Allow now refuses (a tightened
// policy, a peer whose refreshed credential lost an attribute), and returns how many.
func (o *Outlet) Recheck() int { return o.policy.run(&o.groups, &o.stats) }

// Stats returns the outlet's counters.
func (o *Outlet) Stats() *Counters { return &o.stats }

// HandleMessage takes a connect from an inlet; it runs on the transport's goroutine, so the
// dial happens on its own.
func (o *Outlet) HandleMessage(m *routing.Message) {
	c, err := parse(m.Payload())
	if err != nil || c.kind != msgConnect {
		m.Release()
		return
	}
	if _, err := m.ReplyRoute(); err != nil {
		m.Release() // the session could not talk back the way the connect came
		return
	}
	if o.cfg.Admit != nil {
		if ok, why := o.cfg.Admit(m); !ok {
			peer := "(none)"
			if m.Local.Peer != nil {
				peer = m.Local.Peer.Identifier()
			}
			o.cfg.Logger.Warn("portal connection denied", "target", o.cfg.Target, "peer", peer, "reason", why)
			o.refuse(m, "denied by the outlet's policy")
			return
		}
	}
	go o.connect(m, c.n)
}

// refuse answers a connect (whose ReplyRoute was checked) with a refusal.
func (o *Outlet) refuse(m *routing.Message, reason string) {
	m.Onward = m.Return
	m.Return.Reset()
	m.Local = routing.Local{}
	m.SetPayload(withReason(msgRefused, reason))
	o.cfg.Router.Send(m)
}

// connect dials the target and answers the inlet.
func (o *Outlet) connect(m *routing.Message, window uint32) {
	ctx, cancel := context.WithTimeout(o.ctx, o.cfg.DialTimeout)
	defer cancel()
	conn, err := o.cfg.Dial(ctx, "tcp", o.cfg.Target)
	if err != nil {
		o.cfg.Logger.Info("portal target unreachable", "target", o.cfg.Target, "err", err)
		o.refuse(m, "the outlet cannot reach its target: "+err.Error())
		return
	}
	name := "portal." + randomID()
	s := newSession(o.cfg.SessionConfig, &o.stats, name, func() { o.cfg.Router.Unregister(name) })
	s.attach(conn)
	var flows []routing.FlowID
	if m.Local.Flow != routing.FlowLocal {
		flows = append(flows, m.Local.Flow)
	}
	if err := o.cfg.Router.Register(name, s, flows...); err != nil {
		conn.Close()
		o.refuse(m, "internal error")
		return
	}
	s.peer = m.Return
	s.subject = m.Local.Peer
	// A session from this node's own inlet has no link under it; it joins the outlet's own
	// group, so that Close resets it too.
	done := o.ctx.Done()
	if m.Local.Link != nil {
		done = m.Local.Link.Done()
	}
	m.Release()
	if !o.groups.add(done, s) {
		s.reset(errPathDown, false)
		return
	}
	s.sendRaw(bufferOf(withU32(msgConnected, uint32(o.cfg.Window))))
	s.start(s.peer, window)
}

// Close resets every session of the outlet.
func (o *Outlet) Close() error {
	o.cancel()
	o.groups.resetAll(errors.New("outlet deleted"))
	o.policy.log.Stop()
	return nil
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// bufferOf copies p into a pooled buffer.
func bufferOf(p []byte) *routing.Buffer {
	b := routing.NewBuffer(len(p))
	copy(b.Extend(len(p)), p)
	return b
}
