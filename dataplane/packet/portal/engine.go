package portal

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/dataplane/packet/flowtable"
	"github.com/adjacentnet/adjacent/dataplane/packet/rawsock"
	"github.com/adjacentnet/adjacent/dataplane/packet/rstguard"
	"github.com/adjacentnet/adjacent/dataplane/packet/sockfilter"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
)

// EngineConfig configures an Engine. Zero values take the defaults in brackets.
type EngineConfig struct {
	Router *routing.Router
	Logger *slog.Logger // [slog.Default()]
	// Ports are the local ports of the flows [those above the kernel's ip_local_port_range,
	// 61000-65535 by default]: no local socket takes one by itself. Widen them by lowering
	// the end of net.ipv4.ip_local_port_range.
	Ports      flowtable.PortRange
	MaxFlows   int // [65536] flows of all peers
	MaxPerPeer int // [16384] flows of one peer (an inlet's path)
	MaxPeers   int // [4096] peers: inlets' paths that sent packets
}

// Mark is the SO_MARK of the engine's injected packets: the clients' own RSTs, and the
// engine's, carry it past rstguard's RST backstop.
const Mark = 0x61646a // "adj"

// retryAfter is how long an engine that could not start waits before it tries again.
const retryAfter = 10 * time.Second

// expireEvery is how often the flow table drops flows whose state timed out.
const expireEvery = 5 * time.Second

// Engine is a node's packet-mode outlet machinery, shared by its outlets: the flow table,
// the raw socket that injects the clients' segments, the nftables rules that keep the
// kernel out of the flows' ports, and one capture per target for the answers. It starts on
// the first packet message, and says why it cannot (no CAP_NET_RAW) to every inlet that asks.
type Engine struct {
	cfg EngineConfig

	mu      sync.Mutex
	started bool
	err     error     // why the engine cannot run, until retry
	retry   time.Time // when to try to start again after err
	closed  bool
	table   *flowtable.Table
	inj     *rawsock.Injector
	guard   *rstguard.Guard
	caps    map[netip.AddrPort]*capture
	links   map[int]*rawsock.LinkInjector // by loopback interface
	peers   map[peerKey][]*peer           // by outlet and flow; the reply routes tell them apart
	npeers  int
	byID    map[uint64]*peer
	nextID  uint64
	stop    chan struct{}

	refusals *ratelog.Logger // flows refused: policy, capacity
	noFlow   *ratelog.Logger // segments of no flow, answered with a RST
	dropped  *ratelog.Logger // answers dropped under back-pressure
}

// peer is one inlet's path as the engine knows it: where its answers go, who it is, and
// which outlet its flows reach.
type peer struct {
	id      uint64
	key     peerKey
	outlet  *Outlet
	reply   routing.Route
	subject routing.Peer
	link    routing.Link    // what the peer's messages arrive over
	gone    chan struct{}   // closed when the engine forgets the peer
	batch   *routing.Buffer // answers gathered during one capture read, sent after it
}

type peerKey struct {
	outlet *Outlet
	flow   routing.FlowID
}

// NewEngine returns an engine; it opens nothing until an outlet needs it.
func NewEngine(cfg EngineConfig) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxPerPeer <= 0 {
		cfg.MaxPerPeer = 16384
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 4096
	}
	return &Engine{
		cfg:      cfg,
		caps:     map[netip.AddrPort]*capture{},
		links:    map[int]*rawsock.LinkInjector{},
		peers:    map[peerKey][]*peer{},
		byID:     map[uint64]*peer{},
		stop:     make(chan struct{}),
		refusals: ratelog.New(cfg.Logger, slog.LevelWarn, "packet flows refused", 10*time.Second),
		noFlow:   ratelog.New(cfg.Logger, slog.LevelDebug, "segments of no packet flow answered with a reset", 10*time.Second),
		dropped:  ratelog.New(cfg.Logger, slog.LevelInfo, "packets dropped under back-pressure", 10*time.Second),
	}
}

// ready starts the engine if it has not started, and returns why it cannot run, or nil.
func (e *Engine) ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return nil
	}
	if e.closed {
		return errors.New("the outlet's node is stopping")
	}
	if e.err != nil && time.Now().Before(e.retry) {
		return e.err
	}
	if err := e.start(); err != nil {
		e.err, e.retry = fmt.Errorf("the outlet's node cannot carry packet flows: %w", err), time.Now().Add(retryAfter)
		e.cfg.Logger.Warn("packet portals unavailable", "err", err)
		return e.err
	}
	e.started, e.err = true, nil
	go e.expireLoop()
	e.cfg.Logger.Info("packet portals ready", "ports", fmt.Sprintf("%d-%d", e.cfg.Ports.First, e.cfg.Ports.Last))
	return nil
}

// start opens the injector, installs the rules and makes the table; e.mu is held.
func (e *Engine) start() error {
	if e.cfg.Ports == (flowtable.PortRange{}) {
		r, err := flowPorts("/proc")
		if err != nil {
			return err
		}
		e.cfg.Ports = r
	}
	t, err := flowtable.New(flowtable.Config{MaxFlows: e.cfg.MaxFlows, MaxPerPeer: e.cfg.MaxPerPeer, Ports: e.cfg.Ports})
	if err != nil {
		return err
	}
	inj, err := rawsock.NewInjector(rawsock.InjectorConfig{Mark: Mark})
	if err != nil {
		return err
	}
	g, err := rstguard.Install(rstguard.Config{First: e.cfg.Ports.First, Last: e.cfg.Ports.Last, Mark: Mark})
	if err != nil {
		inj.Close()
		return err
	}
	e.table, e.inj, e.guard = t, inj, g
	return nil
}

func (e *Engine) expireLoop() {
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.table.Expire()
		case <-e.stop:
			return
		}
	}
}

// Stats returns the flow table's counters, and the rules' (packets kept from the kernel, RSTs
// it sent anyway, which must stay 0); zero before the engine started.
func (e *Engine) Stats() (flowtable.Stats, rstguard.Counters) {
	e.mu.Lock()
	t, g := e.table, e.guard
	e.mu.Unlock()
	if t == nil {
		return flowtable.Stats{}, rstguard.Counters{}
	}
	c, _ := g.Counters()
	return t.Stats(), c
}

// Close resets every flow at both ends, and removes the rules, sockets and captures.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var peers []*peer
	for _, ps := range e.peers {
		peers = append(peers, ps...)
	}
	e.mu.Unlock()
	for _, p := range peers {
		e.dropPeer(p, "the outlet's node is stopping")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.caps {
		c.c.Close()
	}
	for _, l := range e.links {
		l.Close()
	}
	if e.started {
		close(e.stop)
		e.inj.Close()
		e.guard.Close()
	}
	e.refusals.Stop()
	e.noFlow.Stop()
	e.dropped.Stop()
	return nil
}

// peerOf returns the peer that sent m to o, adding it if it is new; nil if the engine holds
// MaxPeers already. It allocates nothing for a known peer: it runs for every message.
func (e *Engine) peerOf(o *Outlet, m *routing.Message, reply routing.Route) *peer {
	k := peerKey{outlet: o, flow: m.Local.Flow}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.peers[k] {
		if p.reply.Equal(&reply) {
			return p
		}
	}
	if e.npeers >= e.cfg.MaxPeers || e.closed {
		return nil
	}
	e.nextID++
	p := &peer{id: e.nextID, key: k, outlet: o, reply: reply, subject: m.Local.Peer, gone: make(chan struct{})}
	e.peers[k] = append(e.peers[k], p)
	e.byID[p.id] = p
	e.npeers++
	if l := m.Local.Link; l != nil {
		p.link = l
		go func() { // ends with the peer, however it goes
			select {
			case <-l.Done():
				e.dropPeer(p, "the secure channel under the portal closed")
			case <-p.gone:
			}
		}()
	}
	return p
}

// dropPeer forgets p and resets its flows at both ends: the targets get a RST from the
// flow's port, p's clients one from the virtual address (if the path still carries it).
func (e *Engine) dropPeer(p *peer, why string) int {
	e.mu.Lock()
	if e.byID[p.id] != p {
		e.mu.Unlock()
		return 0
	}
	e.peers[p.key] = slices.DeleteFunc(e.peers[p.key], func(q *peer) bool { return q == p })
	if len(e.peers[p.key]) == 0 {
		delete(e.peers, p.key)
	}
	delete(e.byID, p.id)
	e.npeers--
	close(p.gone)
	t := e.table
	e.mu.Unlock()
	if t == nil {
		return 0
	}
	flows := t.RemovePeer(p.id)
	if len(flows) == 0 {
		return 0
	}
	local := p.outlet.local
	var toTargets [][]byte
	var toClients []byte
	for _, f := range flows {
		toTargets = append(toTargets, packet.AppendReset(nil, netip.AddrPortFrom(local, f.Port), f.Target, f.ClientNext))
		toClients = appendPacket(toClients, packet.AppendReset(nil, f.Virtual, f.Client, f.TargetNext), packet.Offload{})
	}
	e.inj.Write(toTargets, 0)
	e.send(p.reply, append([]byte{msgPackets}, toClients...))
	e.cfg.Logger.Info("packet flows reset", "outlet", p.outlet.cfg.Name, "flows", len(flows), "reason", why)
	return len(flows)
}

// send routes payload to reply.
func (e *Engine) send(reply routing.Route, payload []byte) {
	m := routing.NewMessage()
	m.Onward = reply
	m.SetPayload(payload)
	e.cfg.Router.Send(m)
}

// capture is the capture of one target's answers, shared by the outlets that reach it.
type capture struct {
	c    *rawsock.Capturer
	refs int
}

// capture starts capturing target's answers to the flow ports, unless it is captured
// already, on the interface the route to it takes.
func (e *Engine) capture(target netip.AddrPort, ifindex int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.caps[target]; c != nil {
		c.refs++
		return nil
	}
	prog, err := sockfilter.Assemble(sockfilter.Match{Src: target, First: e.cfg.Ports.First, Last: e.cfg.Ports.Last})
	if err != nil {
		return err
	}
	c, err := rawsock.NewCapturer(rawsock.CaptureConfig{Filter: prog, Ifindex: ifindex})
	if err != nil {
		return err
	}
	e.caps[target] = &capture{c: c, refs: 1}
	go e.answers(c)
	return nil
}

// linkInjector returns the injector onto loopback interface ifindex for a target of IPv4
// (v4) or IPv6, opening it the first time; it stays open with the engine, a node having one
// loopback interface. Nil, said in the log, when it cannot serve the target: the outlet then
// injects through the raw IP sockets, completing checksums.
func (e *Engine) linkInjector(ifindex int, v4 bool) *rawsock.LinkInjector {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.links[ifindex]
	if l == nil {
		var err error
		if l, err = rawsock.NewLinkInjector(ifindex, Mark); err != nil {
			e.cfg.Logger.Warn("packet portals cannot inject onto loopback; raw IP sockets instead", "err", err)
			return nil
		}
		e.links[ifindex] = l
		if err := l.IPv4(); err != nil {
			e.cfg.Logger.Warn("packet portals inject IPv4 through raw IP sockets, completing checksums", "err", err)
		} else {
			e.cfg.Logger.Info("packet portals inject onto loopback; its accept_local and route_localnet are on, and stay on")
		}
	}
	if v4 && l.IPv4() != nil {
		return nil
	}
	return l
}

func (e *Engine) release(target netip.AddrPort) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.caps[target]; c != nil {
		if c.refs--; c.refs == 0 {
			c.c.Close()
			delete(e.caps, target)
		}
	}
}

// captureBatch is how many packets one capture read takes.
const captureBatch = 64

// maxIPPacket is the largest IP packet (without jumbograms).
const maxIPPacket = 65535

// answers carries what the target sends to the flows' ports back to their clients: each
// segment of a flow is translated (from the virtual address to the client) and gathered per
// peer, and each peer's gathered segments go as one message after the read. A segment of no
// flow is answered with a RST, as the kernel would if rstguard did not keep it out.
func (e *Engine) answers(c *rawsock.Capturer) {
	// Each packet is read into a pooled buffer with headroom: a large one leaves in it as
	// its own message, and a new buffer takes its place. A packet longer than an IP packet
	// can be (BIG TCP) is cut, and skipped.
	frames := make([]*routing.Buffer, captureBatch)
	bufs := make([][]byte, captureBatch)
	for i := range frames {
		frames[i] = routing.NewBuffer(maxIPPacket)
		bufs[i] = frames[i].Available()[:maxIPPacket]
	}
	infos := make([]rawsock.Info, captureBatch)
	var touched []*peer
	var resets [][]byte
	for {
		n, err := c.Read(bufs, infos, 0)
		if err != nil {
			return // closed
		}
		var pr *peer // the last segment's, looked up again only when the peer changes
		for i := range n {
			if infos[i].Truncated(bufs[i], 0) {
				continue
			}
			p, err := packet.Parse(bufs[i][:infos[i].Size])
			if err != nil {
				continue
			}
			f, err := e.table.Reply(p.Src(), p.Dst().Port(), p.Flags(), p.Next())
			if err != nil {
				if r := packet.AppendResetFor(nil, &p); r != nil {
					e.noFlow.Note(slog.String("from", p.Src().String()), slog.Int("port", int(p.Dst().Port())))
					resets = append(resets, r)
				}
				continue
			}
			if pr == nil || pr.id != f.Peer {
				e.mu.Lock()
				pr = e.byID[f.Peer]
				e.mu.Unlock()
			}
			off := packet.Offload{Checksum: infos[i].Checksum} // a super-packet's segment size is not known here
			if pr == nil || p.Rewrite(f.Virtual, f.Client, off.Checksum) != nil {
				continue
			}
			if p.Flags()&synAck == synAck {
				p.ClampMSS(pr.outlet.mss, off.Checksum)
			}
			// A checksum the kernel verified (that of each segment of a GRO super-packet,
			// whose field no longer holds) goes on partial: the client's kernel trusts it.
			if off.Checksum != packet.Partial && infos[i].Verified {
				p.SetPartial()
				off.Checksum = packet.Partial
			}
			pr.outlet.stats.BytesIn.Add(int64(len(p.Payload())))
			if len(p.Bytes()) >= wholeMin { // after what was gathered, in its own buffer
				e.flush(pr)
				frames[i].Reset()
				frames[i].Extend(len(p.Bytes()))
				asMessage(frames[i], off)
				pr.batch = frames[i]
				e.flush(pr)
				frames[i] = routing.NewBuffer(maxIPPacket)
				bufs[i] = frames[i].Available()[:maxIPPacket]
				continue
			}
			if pr.batch == nil {
				touched = append(touched, pr)
			}
			if !gather(&pr.batch, p.Bytes(), off) {
				e.flush(pr)
				gather(&pr.batch, p.Bytes(), off)
			}
		}
		for _, pr := range touched {
			e.flush(pr)
		}
		touched = touched[:0]
		if len(resets) > 0 {
			e.inj.Write(resets, 0)
			resets = resets[:0]
		}
	}
}

// flush sends pr's gathered answers, unless the link they would wait in holds too much
// already: the answers are dropped, and the clients' and targets' TCP send them again.
func (e *Engine) flush(pr *peer) {
	if pr.batch == nil {
		return
	}
	if routing.BacklogOf(pr.link) > maxBacklog {
		pr.outlet.stats.Dropped.Add(1)
		e.dropped.Note(slog.String("outlet", pr.outlet.cfg.Name))
		pr.batch.Release()
		pr.batch = nil
		return
	}
	m := routing.NewMessage()
	m.Onward = pr.reply
	m.SetBody(pr.batch)
	pr.batch = nil
	e.cfg.Router.Send(m)
}

// peersOf returns the peers whose flows reach o.
func (e *Engine) peersOf(o *Outlet) []*peer {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ps []*peer
	for k, kps := range e.peers {
		if k.outlet == o {
			ps = append(ps, kps...)
		}
	}
	return ps
}
