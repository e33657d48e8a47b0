package dataplane

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/internal/randid"
	"github.com/adjacentnet/adjacent/internal/ratelog"
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
	// MaxSessionsPerPeer caps the sessions one peer identity holds at once, dials in
	// progress included (each is a dial, a connection to the target and goroutines); a
	// connect over it is refused with "refused: capacity". Default 16384: a site behind one
	// inlet node may hold thousands of pooled connections (an idle session costs about 8 KiB
	// at each node), and the cap is there to bound a flood, not to ration honest clients.
	MaxSessionsPerPeer int
	// Packets takes the messages of packet-mode portals to this outlet (kinds from
	// FirstPacketKind), which carry the clients' own TCP segments; nil drops them.
	Packets routing.Worker
}

// refusalLogInterval spaces an outlet's log lines about refused connects.
const refusalLogInterval = 10 * time.Second

// Outlet is the worker that receives connects from inlets, checks them, dials the target and
// runs the outlet side of each portal session.
type Outlet struct {
	cfg    OutletConfig
	stats  Counters
	groups groups
	policy rechecker
	ctx    context.Context
	cancel context.CancelFunc

	denials     *ratelog.Logger // connects the policy refused
	refusals    *ratelog.Logger // connects over MaxSessionsPerPeer
	unreachable *ratelog.Logger // dials to the target that failed

	mu      sync.Mutex
	perPeer map[string]int // sessions (and dials) by peer identifier, "" for this node's own
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
	if cfg.MaxSessionsPerPeer <= 0 {
		cfg.MaxSessionsPerPeer = 16384
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &Outlet{
		cfg: cfg, ctx: ctx, cancel: cancel,
		denials:     ratelog.New(cfg.Logger, slog.LevelWarn, "portal connection denied", refusalLogInterval),
		refusals:    ratelog.New(cfg.Logger, slog.LevelWarn, "portal connections refused: the peer holds too many sessions", refusalLogInterval),
		unreachable: ratelog.New(cfg.Logger, slog.LevelInfo, "portal target unreachable", refusalLogInterval),
		perPeer:     make(map[string]int),
	}
	o.policy = newRechecker(cfg.Allow, "the outlet's policy", cfg.Logger)
	return o
}

// Recheck resets, at both ends, the live sessions whose peer Allow now refuses (a tightened
// policy, a peer whose refreshed credential lost an attribute), and returns how many.
func (o *Outlet) Recheck() int { return o.policy.run(&o.groups, &o.stats) }

// Stats returns the outlet's counters.
func (o *Outlet) Stats() *Counters { return &o.stats }

// HandleMessage takes a connect from an inlet; it runs on the transport's goroutine, so the
// dial happens on its own. A check is answered as the connect would be, without the dial.
func (o *Outlet) HandleMessage(m *routing.Message) {
	if p := m.Payload(); len(p) > 0 && p[0] >= FirstPacketKind {
		if o.cfg.Packets == nil {
			m.Release()
			return
		}
		o.cfg.Packets.HandleMessage(m)
		return
	}
	c, err := parse(m.Payload())
	if err != nil || c.kind != msgConnect && c.kind != msgCheck {
		m.Release()
		return
	}
	if _, err := m.ReplyRoute(); err != nil {
		m.Release() // the session could not talk back the way the connect came
		return
	}
	if err := checkPath(m.Local.Link); err != nil {
		o.cfg.Logger.Debug("portal connection refused", "target", o.cfg.Target, "err", err) // the inlet hears why
		o.refuse(m, err.Error())
		return
	}
	peer := ""
	if m.Local.Peer != nil {
		peer = m.Local.Peer.Identifier()
	}
	if o.cfg.Admit != nil {
		if ok, why := o.cfg.Admit(m); !ok {
			o.stats.Denied.Add(1)
			o.denials.Note(slog.String("target", o.cfg.Target), slog.String("last_peer", peer), slog.String("reason", why))
			o.refuse(m, "denied by the outlet's policy")
			return
		}
	}
	if c.kind == msgCheck {
		if o.full(peer) {
			o.stats.Refused.Add(1)
			o.refuse(m, refusedCapacity)
			return
		}
		o.answer(m, []byte{msgChecked})
		return
	}
	if !o.take(peer) {
		o.stats.Refused.Add(1)
		o.refusals.Note(slog.String("target", o.cfg.Target), slog.String("last_peer", peer), slog.Int("limit", o.cfg.MaxSessionsPerPeer))
		o.refuse(m, refusedCapacity)
		return
	}
	var early *routing.Buffer
	if len(c.body) > 0 {
		// Copied out, so that the dial (up to DialTimeout) holds a buffer of the early data's
		// size, not the frame's it arrived in.
		early = bufferOf(c.body)
		m.SetBody(routing.NewBuffer(0))
	}
	go o.connect(m, c.n, early, func() { o.give(peer) })
}

// take counts a session of peer, or reports that peer holds MaxSessionsPerPeer already.
func (o *Outlet) take(peer string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.perPeer[peer] >= o.cfg.MaxSessionsPerPeer {
		return false
	}
	o.perPeer[peer]++
	return true
}

// full reports whether peer holds MaxSessionsPerPeer sessions already.
func (o *Outlet) full(peer string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.perPeer[peer] >= o.cfg.MaxSessionsPerPeer
}

const refusedCapacity = "refused: capacity: this peer holds too many sessions to the outlet"

// give gives back a session of peer.
func (o *Outlet) give(peer string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.perPeer[peer]--; o.perPeer[peer] <= 0 {
		delete(o.perPeer, peer)
	}
}

// refuse answers a connect or check (whose ReplyRoute was checked) with a refusal.
func (o *Outlet) refuse(m *routing.Message, reason string) {
	o.answer(m, withReason(msgRefused, reason))
}

// answer sends payload back to the sender of m, whose ReplyRoute was checked.
func (o *Outlet) answer(m *routing.Message, payload []byte) {
	m.Onward = m.Return
	m.Return.Reset()
	m.Local = routing.Local{}
	m.SetPayload(payload)
	o.cfg.Router.Send(m)
}

// connect dials the target, writes the connect's early data (nil: none) first, and answers
// the inlet; ended is called once when the session is over, or at once if there is none.
func (o *Outlet) connect(m *routing.Message, window uint32, early *routing.Buffer, ended func()) {
	ctx, cancel := context.WithTimeout(o.ctx, o.cfg.DialTimeout)
	defer cancel()
	conn, err := o.cfg.Dial(ctx, "tcp", o.cfg.Target)
	if err != nil {
		early.Release()
		ended()
		o.unreachable.Note(slog.String("target", o.cfg.Target), slog.String("err", err.Error()))
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
		early.Release()
		conn.Close()
		ended()
		o.refuse(m, "internal error")
		return
	}
	s.onEnd = ended
	s.peer = m.Return
	s.subject = m.Local.Peer
	if early != nil { // queued before start, which writes it first; its credit goes back as any data's
		s.q.Push(early)
	}
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
	o.denials.Stop()
	o.refusals.Stop()
	o.unreachable.Stop()
	return nil
}

func randomID() string { return randid.New() }

// bufferOf copies p into a pooled buffer.
func bufferOf(p []byte) *routing.Buffer {
	b := routing.NewBuffer(len(p))
	copy(b.Extend(len(p)), p)
	return b
}
