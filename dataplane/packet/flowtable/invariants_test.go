package flowtable

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// check verifies the table's internal bookkeeping: both indexes, the per-peer and
// per-target counts and the state lists all describe the same live entries, and every list
// is ordered by last packet.
func (t *Table) check(tb testing.TB) {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fwd) != len(t.rev) || len(t.fwd)+len(t.free) != len(t.entries) {
		tb.Fatalf("fwd %d, rev %d, free %d, entries %d", len(t.fwd), len(t.rev), len(t.free), len(t.entries))
	}
	peers, tgts := map[uint64]int32{}, map[revKey]int32{}
	for k, i := range t.fwd {
		e := &t.entries[i]
		if e.key != k || t.rev[e.rev] != i || e.state != e.listed || e.state == 0 {
			tb.Fatalf("entry %d: %+v under key %+v", i, e, k)
		}
		peers[k.peer]++
		tgts[revKey{target: e.rev.target, tport: e.rev.tport}]++
	}
	if len(peers) != len(t.perPeer) || len(tgts) != len(t.perTgt) {
		tb.Fatalf("per-peer %v vs %v, per-target %d vs %d", peers, t.perPeer, len(tgts), len(t.perTgt))
	}
	for p, n := range peers {
		if t.perPeer[p] != n {
			tb.Fatalf("peer %d: count %d, want %d", p, t.perPeer[p], n)
		}
	}
	for k, n := range tgts {
		if t.perTgt[k] != n {
			tb.Fatalf("target %v: count %d, want %d", k, t.perTgt[k], n)
		}
	}
	listed := 0
	for s := SynSent; s < numStates; s++ {
		prev, last := int32(-1), int64(-1<<63)
		for i := t.lists[s].head; i >= 0; i = t.entries[i].next {
			e := &t.entries[i]
			if e.prev != prev || e.listed != s || e.seen < last {
				tb.Fatalf("list %v: entry %d out of order or linked wrong: %+v", s, i, e)
			}
			prev, last = i, e.seen
			listed++
		}
		if t.lists[s].tail != prev {
			tb.Fatalf("list %v: tail %d, want %d", s, t.lists[s].tail, prev)
		}
	}
	if listed != len(t.fwd) {
		tb.Fatalf("%d entries on lists, %d flows", listed, len(t.fwd))
	}
}

// TestRandomOps drives a small table with random segments, clock steps, expiry and peer
// removal, and checks its bookkeeping after every step.
func TestRandomOps(t *testing.T) {
	tab, clk := newTable(t, Config{MaxFlows: 25, MaxPerPeer: 8, Ports: PortRange{1000, 1009},
		Timeouts: Timeouts{SynSent: 3 * time.Second, Established: 10 * time.Second, Close: time.Second}})
	rng := rand.New(rand.NewPCG(1, 2))
	flags := []header.TCPFlags{syn, synAck, ack, finAck, rst, rst | ack, header.TCPFlagAck | header.TCPFlagPsh}
	targets := []netip.AddrPort{target, netip.MustParseAddrPort("127.0.0.2:80"), netip.MustParseAddrPort("127.0.0.3:80")}
	var ports []uint16
	for range 20000 {
		switch op := rng.IntN(100); {
		case op < 50:
			fl := syn // half the segments open flows, so the caps are met
			if rng.IntN(2) == 0 {
				fl = flags[rng.IntN(len(flags))]
			}
			f, err := tab.Forward(uint64(rng.IntN(4)), client(rng.IntN(30)), virtual, targets[rng.IntN(3)], fl, 0)
			if err == nil {
				ports = append(ports, f.Port)
			}
		case op < 85 && len(ports) > 0:
			tab.Reply(targets[rng.IntN(3)], ports[rng.IntN(len(ports))], flags[rng.IntN(len(flags))], 0)
		case op < 95:
			clk.add(time.Duration(rng.IntN(200)) * time.Millisecond)
		case op < 99:
			tab.Expire()
		default:
			tab.RemovePeer(uint64(rng.IntN(4)))
		}
		tab.check(t)
	}
	s := tab.Stats()
	t.Logf("%+v", s)
	if s.Opened == 0 || s.Expired == 0 || s.Full+s.PeerFull+s.NoPort == 0 {
		t.Errorf("the random run did not reach every path: %+v", s)
	}
}
