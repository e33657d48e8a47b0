package portal

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/dataplane/packet/rawsock"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
)

// OutletConfig configures an Outlet.
type OutletConfig struct {
	Name   string // the outlet's, for logs
	Target string // host:port; its address must be of the clients' virtual address's family
	// Admit decides whether the sender of a flow's SYN may open it, and says why not.
	Admit  func(m *routing.Message) (bool, string)
	Allow  dataplane.Allow // may a peer still hold its flows (Recheck); nil: yes
	Engine *Engine
	Logger *slog.Logger
}

// Outlet is the packet side of one outlet: it opens flows toward its target for the SYNs its
// policy admits, translates and injects their segments, and answers a check. Its dataplane
// outlet hands it the packet portal's messages (dataplane.OutletConfig.Packets).
type Outlet struct {
	cfg     OutletConfig
	e       *Engine
	stats   dataplane.Counters
	denials *ratelog.Logger

	ok     atomic.Bool // ready once: the engine started and the target resolved
	mu     sync.Mutex
	err    error     // why the target could not be resolved, until retry
	retry  time.Time // when to resolve again
	target netip.AddrPort
	local  netip.Addr // the outlet's address toward the target: the flows' source
	mss    uint16     // the most a segment toward the target may carry
	// link injects onto the loopback interface when the target is this host, keeping the
	// clients' partial checksums; nil: the engine's raw IP sockets, with checksums completed.
	link *rawsock.LinkInjector
}

// NewOutlet returns the packet side of an outlet.
func NewOutlet(cfg OutletConfig) *Outlet {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Outlet{cfg: cfg, e: cfg.Engine,
		denials: ratelog.New(cfg.Logger, slog.LevelWarn, "packet flows denied", 10*time.Second)}
}

// Stats returns the outlet's counters: Total flows opened, Denied and Refused SYNs, bytes of
// payload both ways, and batches Dropped under back-pressure.
func (o *Outlet) Stats() *dataplane.Counters { return &o.stats }

// ready starts the engine and resolves the target; it returns why packet flows cannot run.
func (o *Outlet) ready() error {
	if o.ok.Load() { // every message asks: no lock once ready
		return nil
	}
	if err := o.e.ready(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.target.IsValid() {
		return nil
	}
	if o.err != nil && time.Now().Before(o.retry) {
		return o.err
	}
	if err := o.resolve(); err != nil {
		o.err, o.retry = fmt.Errorf("the outlet cannot carry packet flows to %s: %w", o.cfg.Target, err), time.Now().Add(retryAfter)
		return o.err
	}
	o.err = nil
	o.ok.Store(true)
	return nil
}

// resolve finds the target's address, the outlet's own address toward it, the MSS its path
// allows, and starts capturing its answers; o.mu is held.
func (o *Outlet) resolve() error {
	a, err := net.ResolveTCPAddr("tcp", o.cfg.Target)
	if err != nil {
		return err
	}
	target := a.AddrPort()
	target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	routes, err := netlink.RouteGet(net.IP(target.Addr().AsSlice()))
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("no route to %s: %v", target.Addr(), err)
	}
	local, ok := netip.AddrFromSlice(routes[0].Src)
	if !ok {
		return fmt.Errorf("the route to %s has no source address", target.Addr())
	}
	link, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return fmt.Errorf("the interface toward %s: %w", target.Addr(), err)
	}
	hdr := 40
	if target.Addr().Is6() {
		hdr = 60
	}
	if err := o.e.capture(target, routes[0].LinkIndex); err != nil {
		return err
	}
	if link.Attrs().Flags&net.FlagLoopback != 0 {
		o.link = o.e.linkInjector(routes[0].LinkIndex, target.Addr().Is4())
	}
	o.target, o.local, o.mss = target, local.Unmap(), uint16(min(link.Attrs().MTU-hdr, 65535-hdr))
	inject := "raw IP socket, checksums completed"
	if o.link != nil {
		inject = "loopback, partial checksums kept"
	}
	o.cfg.Logger.Info("packet outlet ready", "outlet", o.cfg.Name, "target", target.String(), "source", o.local.String(), "mss", o.mss, "inject", inject)
	return nil
}

// HandleMessage takes a packet portal's message from an inlet: a check, or a batch of its
// clients' segments. It runs on the transport's goroutine.
func (o *Outlet) HandleMessage(m *routing.Message) {
	defer m.Release()
	reply, err := m.ReplyRoute()
	if err != nil {
		return
	}
	p := m.Payload()
	switch p[0] {
	case msgCheck:
		if ok, why := o.admit(m); !ok {
			o.e.send(reply, refusal(why))
		} else if err := o.ready(); err != nil {
			o.e.send(reply, refusal(err.Error()))
		} else {
			o.e.send(reply, []byte{msgChecked})
		}
	case msgPackets:
		o.packets(m, reply, p[1:])
	}
}

func (o *Outlet) admit(m *routing.Message) (bool, string) {
	if o.cfg.Admit == nil {
		return true, ""
	}
	ok, why := o.cfg.Admit(m)
	if !ok {
		o.stats.Denied.Add(1)
		peer := ""
		if m.Local.Peer != nil {
			peer = m.Local.Peer.Identifier()
		}
		o.denials.Note(slog.String("outlet", o.cfg.Name), slog.String("last_peer", peer), slog.String("reason", why))
		return false, "denied by the outlet's policy"
	}
	return true, ""
}

// packets injects the segments of body toward the target. A SYN opens a flow if the policy
// admits the sender and the table has room; a segment of no flow is answered with a RST, so
// the client learns at once that its connection is gone.
func (o *Outlet) packets(m *routing.Message, reply routing.Route, body []byte) {
	if err := o.ready(); err != nil {
		o.e.send(reply, refusal(err.Error()))
		o.resetAll(reply, body)
		return
	}
	pr := o.e.peerOf(o, m, reply)
	if pr == nil {
		o.stats.Refused.Add(1)
		o.e.send(reply, refusal("refused: capacity: the outlet's node serves too many inlets' packet paths"))
		o.resetAll(reply, body)
		return
	}
	admitted, why := 0, ""
	outp := segments.Get().(*[][]byte)
	out := (*outp)[:0]
	var back []byte
	eachPacket(body, func(b []byte, off packet.Offload) {
		p, err := packet.Parse(b)
		if err != nil {
			return
		}
		syn := p.SYNOnly()
		if syn {
			if admitted == 0 {
				admitted = 1
				if ok, reason := o.admit(m); !ok {
					admitted, why = -1, reason
				}
			}
			if admitted < 0 {
				back = appendPacket(back, packet.AppendResetFor(nil, &p), packet.Offload{})
				return
			}
		}
		f, err := o.e.table.Forward(pr.id, p.Src(), p.Dst(), o.target, p.Flags(), p.Next())
		if err != nil {
			if syn {
				o.stats.Refused.Add(1)
				why = "refused: capacity: " + err.Error()
				o.e.refusals.Note(slog.String("outlet", o.cfg.Name), slog.String("reason", err.Error()))
			}
			if r := packet.AppendResetFor(nil, &p); len(r) > 0 {
				back = appendPacket(back, r, packet.Offload{})
			}
			return
		}
		if p.Rewrite(netip.AddrPortFrom(o.local, f.Port), o.target, off.Checksum) != nil {
			return
		}
		if syn {
			o.stats.Total.Add(1)
		}
		if p.Flags()&synFlag != 0 {
			p.ClampMSS(o.mss, off.Checksum)
		}
		o.stats.BytesOut.Add(int64(len(p.Payload()))) // to the target, as a classic outlet counts
		if o.link != nil {                            // every packet, in order; a partial checksum stays partial
			if o.link.Write(&p, off) != nil {
				o.stats.Dropped.Add(1)
			}
			return
		}
		if off.Checksum == packet.Partial {
			if off.Segment != 0 && len(p.Payload()) > int(off.Segment) {
				return // a raw IP socket cannot cut a super-packet; an inlet's device makes none
			}
			p.SetChecksums()
		}
		out = append(out, p.Bytes())
	})
	if len(out) > 0 {
		if _, err := o.e.inj.Write(out, 0); err != nil {
			o.stats.Dropped.Add(1)
		}
	}
	clear(out) // the segments are m's, released after
	*outp = out[:0]
	segments.Put(outp)
	if why != "" {
		o.e.send(reply, refusal(why))
	}
	if len(back) > 0 {
		o.e.send(reply, append([]byte{msgPackets}, back...))
	}
}

// segments holds the lists of segments a message's injection writes, so that a message
// allocates none.
var segments = sync.Pool{New: func() any { s := make([][]byte, 0, 64); return &s }}

// resetAll answers each segment of body with a RST: no flow of it can exist.
func (o *Outlet) resetAll(reply routing.Route, body []byte) {
	var back []byte
	eachPacket(body, func(b []byte, _ packet.Offload) {
		if p, err := packet.Parse(b); err == nil {
			if r := packet.AppendResetFor(nil, &p); len(r) > 0 {
				back = appendPacket(back, r, packet.Offload{})
			}
		}
	})
	if len(back) > 0 {
		o.e.send(reply, append([]byte{msgPackets}, back...))
	}
}

// Recheck resets, at both ends, the flows of the peers that Allow now refuses (a tightened
// policy, a revoked or expired credential), and returns how many.
func (o *Outlet) Recheck() int {
	if o.cfg.Allow == nil {
		return 0
	}
	n := 0
	for _, p := range o.e.peersOf(o) {
		if p.subject == nil {
			continue
		}
		if ok, why := o.cfg.Allow(p.subject); !ok {
			k := o.e.dropPeer(p, "denied by the outlet's policy: "+why)
			o.stats.PolicyResets.Add(int64(k))
			n += k
			if k > 0 {
				o.cfg.Logger.Warn("packet flows cut by policy", "outlet", o.cfg.Name, "peer", p.subject.Identifier(), "flows", k, "reason", "denied by the outlet's policy: "+why)
			}
		}
	}
	return n
}

// Close resets the outlet's flows at both ends and stops capturing its target's answers.
func (o *Outlet) Close() error {
	for _, p := range o.e.peersOf(o) {
		o.e.dropPeer(p, "outlet deleted")
	}
	o.mu.Lock()
	if o.target.IsValid() {
		o.e.release(o.target)
	}
	o.mu.Unlock()
	o.denials.Stop()
	return nil
}
