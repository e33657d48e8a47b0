package flowtable

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Errors of Forward and Reply. The caller drops the packet that met one.
var (
	ErrNoFlow    = errors.New("flowtable: no flow, and the segment is not a SYN that opens one")
	ErrFull      = errors.New("flowtable: table full")
	ErrPeerFull  = errors.New("flowtable: peer's share of the table full")
	ErrNoPort    = errors.New("flowtable: no free local port toward the target")
	ErrAddresses = errors.New("flowtable: invalid or mixed-family addresses")
)

// State is a flow's TCP state as the table sees it from both directions.
type State uint8

const (
	SynSent     State = iota + 1 // the client's SYN went out
	SynRecv                      // the target answered SYN-ACK
	Established                  // the client acknowledged it
	FinWait                      // one side sent FIN
	TimeWait                     // both sides sent FIN
	Close                        // a RST was seen
	numStates
)

var stateNames = [numStates]string{"", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "TIME_WAIT", "CLOSE"}

func (s State) String() string {
	if s < numStates && s > 0 {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// Timeouts say how long a flow lives in a state without a packet. Zero fields take the
// defaults in brackets.
type Timeouts struct {
	SynSent     time.Duration // [30s]
	SynRecv     time.Duration // [30s]
	Established time.Duration // [10m] idle; TCP keepalives shorter than this keep a flow
	FinWait     time.Duration // [60s]
	TimeWait    time.Duration // [60s]
	Close       time.Duration // [10s]
}

// PortRange is an inclusive range of local ports.
type PortRange struct{ First, Last uint16 }

// Config configures a Table. Zero fields take the defaults in brackets.
type Config struct {
	MaxFlows   int       // [65536] flows in all
	MaxPerPeer int       // [4096] flows of one peer
	Ports      PortRange // [40000-40999] local ports; First must not exceed Last
	// KeepPort makes a flow's port its client's port, with no translation (Ports unused):
	// the inlet's table, which only tracks its clients' flows. A second client address
	// with the same port toward the same virtual address gets ErrNoPort.
	KeepPort bool
	Timeouts Timeouts
	Now      func() time.Time // [time.Now]
	Rand     io.Reader        // [crypto/rand.Reader] seeds the port choice
}

// Flow is a flow as the table knows it.
type Flow struct {
	Peer    uint64         // the inlet node it came from, as the caller numbers peers
	Client  netip.AddrPort // the client's address and port, as the inlet sent them
	Virtual netip.AddrPort // the address and port the client connected to
	Target  netip.AddrPort // where the outlet sends it
	Port    uint16         // the outlet's local port toward Target
	State   State
	// ClientNext and TargetNext are the sequence numbers each side sends next, as the
	// table last saw them (the next arguments of Forward and Reply): where a RST that
	// cuts the flow must start to be accepted.
	ClientNext, TargetNext uint32
}

// Stats counts what the table did since it was made.
type Stats struct {
	Flows    int    // flows now
	Opened   uint64 // flows opened
	Expired  uint64 // flows removed by a timeout
	NoFlow   uint64 // segments refused with ErrNoFlow
	Full     uint64 // opens refused with ErrFull
	PeerFull uint64 // opens refused with ErrPeerFull
	NoPort   uint64 // opens refused with ErrNoPort
	Removed  uint64 // flows removed by RemovePeer
	// Dropped counts ended flows (TIME_WAIT, CLOSE) removed before their timeout for a new
	// flow, the table, the peer's share or (Reclaimed, counted in both) the ports toward
	// their target being full.
	Dropped   uint64
	Reclaimed uint64
}

// fwdKey finds a flow by what the peer sends. Addresses are 16 bytes, IPv4 as IPv4-mapped;
// the key holds no pointers, so a large table costs the garbage collector nothing to scan.
type fwdKey struct {
	peer            uint64
	client, virtual [16]byte
	cport, vport    uint16
}

// revKey finds a flow by what the target sends back.
type revKey struct {
	target [16]byte
	tport  uint16
	port   uint16
}

type entry struct {
	key        fwdKey
	rev        revKey
	seen       int64 // nanoseconds since the table's base
	prev, next int32 // the state's list, oldest first; -1 ends it
	state      State
	listed     State // the state whose list holds the entry
	fins       uint8 // finFwd | finRev
	fwdNext    uint32
	revNext    uint32
}

const (
	finFwd = 1 << iota
	finRev
)

type list struct{ head, tail int32 }

// Table is the outlet's flow table. Make one with New.
type Table struct {
	cfg  Config
	base time.Time
	rnd  *mrand.ChaCha8

	mu      sync.Mutex
	entries []entry
	free    []int32
	fwd     map[fwdKey]int32
	rev     map[revKey]int32
	perPeer map[uint64]int32
	perTgt  map[revKey]int32 // flows per target (port 0): a full range refuses in O(1)
	lists   [numStates]list
	timeout [numStates]int64
	stats   Stats
}

// New makes a table. It starts nothing: expiry runs when the caller calls Expire and when
// packets meet expired flows.
func New(cfg Config) (*Table, error) {
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = 65536
	}
	if cfg.MaxPerPeer <= 0 {
		cfg.MaxPerPeer = 4096
	}
	if cfg.Ports == (PortRange{}) {
		cfg.Ports = PortRange{40000, 40999}
	}
	if cfg.Ports.First > cfg.Ports.Last || cfg.Ports.First == 0 {
		return nil, fmt.Errorf("flowtable: port range %d-%d: want 0 < first <= last", cfg.Ports.First, cfg.Ports.Last)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	var seed [32]byte
	if _, err := io.ReadFull(cfg.Rand, seed[:]); err != nil {
		return nil, fmt.Errorf("flowtable: seed port choice: %w", err)
	}
	t := &Table{
		cfg:     cfg,
		base:    cfg.Now(),
		rnd:     mrand.NewChaCha8(seed),
		fwd:     make(map[fwdKey]int32),
		rev:     make(map[revKey]int32),
		perPeer: make(map[uint64]int32),
		perTgt:  make(map[revKey]int32),
	}
	to := cfg.Timeouts
	for s, d := range map[State]struct{ v, def time.Duration }{
		SynSent: {to.SynSent, 30 * time.Second}, SynRecv: {to.SynRecv, 30 * time.Second},
		Established: {to.Established, 10 * time.Minute}, FinWait: {to.FinWait, time.Minute},
		TimeWait: {to.TimeWait, time.Minute}, Close: {to.Close, 10 * time.Second},
	} {
		if d.v <= 0 {
			d.v = d.def
		}
		t.timeout[s] = int64(d.v)
	}
	for i := range t.lists {
		t.lists[i] = list{-1, -1}
	}
	return t, nil
}

// Forward steps the flow of a segment the peer sent from client to virtual, and returns it.
// An unknown (or expired) flow opens for a SYN-only segment, toward target from a free
// local port, if the table and the peer's share have room; any other segment of an unknown
// flow gets ErrNoFlow. A SYN-only segment of a flow in TIME_WAIT or CLOSE starts it anew on
// the same port. Callers authorize the peer before a SYN reaches Forward. next is the
// sequence number after the segment (Flow.ClientNext).
func (t *Table) Forward(peer uint64, client, virtual, target netip.AddrPort, flags header.TCPFlags, next uint32) (Flow, error) {
	k, ok := makeFwdKey(peer, client, virtual)
	if ta := target.Addr().Unmap(); !ok || !ta.IsValid() || ta.Is4() != client.Addr().Unmap().Is4() {
		return Flow{}, ErrAddresses
	}
	synOnly := flags&(header.TCPFlagSyn|header.TCPFlagAck|header.TCPFlagRst|header.TCPFlagFin) == header.TCPFlagSyn
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	i, found := t.fwd[k]
	found = t.live(i, found, now)
	if !found {
		if !synOnly {
			t.stats.NoFlow++
			return Flow{}, ErrNoFlow
		}
		var err error
		if i, err = t.open(k, target, now); err != nil {
			return Flow{}, err
		}
		t.entries[i].fwdNext = next
		return t.flow(i), nil
	}
	e := &t.entries[i]
	switch {
	case synOnly && (e.state == TimeWait || e.state == Close):
		e.state, e.fins = SynSent, 0
	case flags&header.TCPFlagRst != 0:
		e.state = Close
	case e.state == SynRecv && flags&header.TCPFlagAck != 0 && flags&header.TCPFlagSyn == 0:
		e.state = Established
	}
	if flags&header.TCPFlagFin != 0 && e.state != Close {
		e.fins |= finFwd
	}
	e.fwdNext = next
	t.touch(i, now)
	return t.flow(i), nil
}

// live reports whether the flow at i, found by a lookup, is still live at now; one that
// expired is removed and counted. t.mu is held.
func (t *Table) live(i int32, found bool, now int64) bool {
	if found && t.expired(i, now) {
		t.remove(i)
		t.stats.Expired++
		return false
	}
	return found
}

// Reply steps the flow of a segment the target sent to the local port, and returns it. A
// segment of no flow gets ErrNoFlow: the target's side never opens one. next is the
// sequence number after the segment (Flow.TargetNext).
func (t *Table) Reply(target netip.AddrPort, port uint16, flags header.TCPFlags, next uint32) (Flow, error) {
	k := revKey{target: target.Addr().Unmap().As16(), tport: target.Port(), port: port}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	i, found := t.rev[k]
	found = t.live(i, found, now)
	if !found {
		t.stats.NoFlow++
		return Flow{}, ErrNoFlow
	}
	e := &t.entries[i]
	switch {
	case flags&header.TCPFlagRst != 0:
		e.state = Close
	case e.state == SynSent && flags&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn|header.TCPFlagAck:
		e.state = SynRecv
	}
	if flags&header.TCPFlagFin != 0 && e.state != Close {
		e.fins |= finRev
	}
	e.revNext = next
	t.touch(i, now)
	return t.flow(i), nil
}

// Expire removes the flows whose state's timeout has passed since their last packet, and
// returns how many it removed. Its cost is proportional to that number.
func (t *Table) Expire() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expire(t.now())
}

// RemovePeer removes every flow of peer (its credential was revoked, or its channel is
// gone) and returns them, so the caller can reset both ends.
func (t *Table) RemovePeer(peer uint64) []Flow {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Flow
	for k, i := range t.fwd {
		if k.peer == peer {
			out = append(out, t.flow(i))
			t.remove(i)
			t.stats.Removed++
		}
	}
	return out
}

// Len returns the number of flows, expired ones not yet removed included.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.fwd)
}

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Flows = len(t.fwd)
	return s
}

func (t *Table) now() int64 { return int64(t.cfg.Now().Sub(t.base)) }

func (t *Table) expired(i int32, now int64) bool {
	e := &t.entries[i]
	return now-e.seen >= t.timeout[e.state]
}

func (t *Table) expire(now int64) int {
	n := 0
	for s := SynSent; s < numStates; s++ {
		for i := t.lists[s].head; i >= 0 && t.expired(i, now); i = t.lists[s].head {
			t.remove(i)
			n++
		}
	}
	t.stats.Expired += uint64(n)
	return n
}

// open makes a flow for k toward target, in state SynSent. The caller holds t.mu.
func (t *Table) open(k fwdKey, target netip.AddrPort, now int64) (int32, error) {
	if len(t.fwd) >= t.cfg.MaxFlows || t.perPeer[k.peer] >= int32(t.cfg.MaxPerPeer) {
		t.expire(now)
	}
	if len(t.fwd) >= t.cfg.MaxFlows && !t.dropEnded(func(e *entry) bool { return true }) {
		t.stats.Full++
		return -1, ErrFull
	}
	if t.perPeer[k.peer] >= int32(t.cfg.MaxPerPeer) && !t.dropEnded(func(e *entry) bool { return e.key.peer == k.peer }) {
		t.stats.PeerFull++
		return -1, ErrPeerFull
	}
	rk := revKey{target: target.Addr().Unmap().As16(), tport: target.Port()}
	if t.cfg.KeepPort {
		rk.port = k.cport
		if i, used := t.rev[rk]; used && t.live(i, true, now) {
			t.stats.NoPort++
			return -1, ErrNoPort
		}
	} else if !t.freePort(&rk) && (t.expire(now) == 0 || !t.freePort(&rk)) && !t.reclaim(&rk) {
		t.stats.NoPort++
		return -1, ErrNoPort
	}
	var i int32
	if l := len(t.free); l > 0 {
		i, t.free = t.free[l-1], t.free[:l-1]
	} else {
		i = int32(len(t.entries))
		t.entries = append(t.entries, entry{})
	}
	t.entries[i] = entry{key: k, rev: rk, state: SynSent, prev: -1, next: -1}
	t.fwd[k] = i
	t.rev[rk] = i
	t.perPeer[k.peer]++
	t.perTgt[revKey{target: rk.target, tport: rk.tport}]++
	t.link(i, now)
	t.stats.Opened++
	return i, nil
}

// freePort sets rk.port to a port of the range that no flow to rk's target holds, from a
// random start (RFC 6056's advice against predictable ports), and reports whether there was
// one. The caller holds t.mu.
func (t *Table) freePort(rk *revKey) bool {
	n := uint32(t.cfg.Ports.Last-t.cfg.Ports.First) + 1
	if uint32(t.perTgt[revKey{target: rk.target, tport: rk.tport}]) >= n {
		return false
	}
	start := uint32(t.rnd.Uint64() % uint64(n))
	for j := range n {
		rk.port = t.cfg.Ports.First + uint16((start+j)%n)
		if _, used := t.rev[*rk]; !used {
			return true
		}
	}
	return false
}

// reclaimScan bounds the flows reclaim looks at.
const reclaimScan = 64

// reclaim takes the port of the oldest flow toward rk's target that has ended (CLOSE, then
// TIME_WAIT), as the kernel's tcp_tw_reuse does: the target takes a new SYN on a 4-tuple it
// holds in TIME_WAIT when the SYN's timestamp is newer, and a client's timestamps grow from
// one connection to the next. Without it a busy target's ports would all wait out
// TIME_WAIT, and new flows be refused though few are open. The caller holds t.mu.
func (t *Table) reclaim(rk *revKey) bool {
	target := rk.target
	port := uint16(0)
	ok := t.dropEnded(func(e *entry) bool {
		if e.rev.target == target && e.rev.tport == rk.tport {
			port = e.rev.port
			return true
		}
		return false
	})
	if ok {
		rk.port = port
		t.stats.Reclaimed++
	}
	return ok
}

// dropEnded removes the oldest ended flow (CLOSE, then TIME_WAIT; among the first
// reclaimScan of each) that match accepts, and reports whether there was one: what a full
// table or share gives up for a new flow, as conntrack's early drop does. The caller holds
// t.mu.
func (t *Table) dropEnded(match func(e *entry) bool) bool {
	for _, s := range []State{Close, TimeWait} {
		n := 0
		for i := t.lists[s].head; i >= 0 && n < reclaimScan; i, n = t.entries[i].next, n+1 {
			if match(&t.entries[i]) {
				t.remove(i)
				t.stats.Dropped++
				return true
			}
		}
	}
	return false
}

// remove unlinks and frees entry i. The caller holds t.mu.
func (t *Table) remove(i int32) {
	e := &t.entries[i]
	t.unlink(i)
	delete(t.fwd, e.key)
	delete(t.rev, e.rev)
	if c := t.perPeer[e.key.peer] - 1; c > 0 {
		t.perPeer[e.key.peer] = c
	} else {
		delete(t.perPeer, e.key.peer)
	}
	tk := revKey{target: e.rev.target, tport: e.rev.tport}
	if c := t.perTgt[tk] - 1; c > 0 {
		t.perTgt[tk] = c
	} else {
		delete(t.perTgt, tk)
	}
	*e = entry{}
	t.free = append(t.free, i)
}

// touch records a packet at now and moves entry i to the tail of its (maybe new) state's
// list, so every list stays ordered by last packet and expiry pops from its head.
func (t *Table) touch(i int32, now int64) {
	e := &t.entries[i]
	if e.fins == finFwd|finRev && e.state != Close {
		e.state = TimeWait
	} else if e.fins != 0 && (e.state == Established || e.state == SynRecv) {
		e.state = FinWait
	}
	t.unlink(i)
	t.link(i, now)
}

func (t *Table) link(i int32, now int64) {
	e := &t.entries[i]
	e.seen, e.listed = now, e.state
	l := &t.lists[e.state]
	e.prev, e.next = l.tail, -1
	if l.tail >= 0 {
		t.entries[l.tail].next = i
	} else {
		l.head = i
	}
	l.tail = i
}

// unlink takes entry i out of the list it is on.
func (t *Table) unlink(i int32) {
	e := &t.entries[i]
	l := &t.lists[e.listed]
	if e.prev >= 0 {
		t.entries[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next >= 0 {
		t.entries[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (t *Table) flow(i int32) Flow {
	e := &t.entries[i]
	return Flow{
		Peer:    e.key.peer,
		Client:  netip.AddrPortFrom(netip.AddrFrom16(e.key.client).Unmap(), e.key.cport),
		Virtual: netip.AddrPortFrom(netip.AddrFrom16(e.key.virtual).Unmap(), e.key.vport),
		Target:  netip.AddrPortFrom(netip.AddrFrom16(e.rev.target).Unmap(), e.rev.tport),
		Port:    e.rev.port,
		State:   e.state,

		ClientNext: e.fwdNext,
		TargetNext: e.revNext,
	}
}

func makeFwdKey(peer uint64, client, virtual netip.AddrPort) (fwdKey, bool) {
	c, v := client.Addr().Unmap(), virtual.Addr().Unmap()
	if !c.IsValid() || !v.IsValid() || c.Is4() != v.Is4() {
		return fwdKey{}, false
	}
	return fwdKey{peer: peer, client: c.As16(), virtual: v.As16(), cport: client.Port(), vport: virtual.Port()}, true
}
