package flowtable

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

const (
	syn    = header.TCPFlagSyn
	synAck = header.TCPFlagSyn | header.TCPFlagAck
	ack    = header.TCPFlagAck
	finAck = header.TCPFlagFin | header.TCPFlagAck
	rst    = header.TCPFlagRst
)

var (
	virtual = netip.MustParseAddrPort("100.64.0.1:5432")
	target  = netip.MustParseAddrPort("127.0.0.1:5432")
)

func client(n int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(n >> 16), byte(n >> 8)}), uint16(1024+n%60000))
}

// clock is a fake Config.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTable(t testing.TB, cfg Config) (*Table, *clock) {
	t.Helper()
	c := &clock{time.Unix(1_700_000_000, 0)}
	cfg.Now = c.now
	cfg.Rand = bytes.NewReader(make([]byte, 32))
	tab, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tab, c
}

func TestOpensOnlyOnSYNOnly(t *testing.T) {
	tab, _ := newTable(t, Config{})
	for _, f := range []header.TCPFlags{ack, synAck, rst, finAck, header.TCPFlagSyn | header.TCPFlagFin, 0} {
		if _, err := tab.Forward(1, client(1), virtual, target, f, 0); !errors.Is(err, ErrNoFlow) {
			t.Errorf("Forward(unknown flow, %v) = %v, want %v", f, err, ErrNoFlow)
		}
	}
	if _, err := tab.Reply(target, 40000, synAck, 0); !errors.Is(err, ErrNoFlow) {
		t.Errorf("Reply(unknown flow) = %v, want %v", err, ErrNoFlow)
	}
	f, err := tab.Forward(1, client(1), virtual, target, syn, 0)
	if err != nil {
		t.Fatalf("Forward(SYN) = %v", err)
	}
	want := Flow{Peer: 1, Client: client(1), Virtual: virtual, Target: target, Port: f.Port, State: SynSent}
	if f != want || f.Port < 40000 || f.Port > 40999 {
		t.Errorf("Forward(SYN) = %+v, want %+v with a port in 40000-40999", f, want)
	}
	if got, want := tab.Stats(), (Stats{Flows: 1, Opened: 1, NoFlow: 7}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestStates(t *testing.T) {
	type step struct {
		reply bool
		flags header.TCPFlags
		want  State
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"handshake", []step{{false, syn, SynSent}, {false, syn, SynSent}, {true, synAck, SynRecv}, {false, ack, Established}}},
		{"client closes first", []step{{false, syn, SynSent}, {true, synAck, SynRecv}, {false, ack, Established},
			{false, finAck, FinWait}, {true, ack, FinWait}, {true, finAck, TimeWait}, {false, ack, TimeWait}}},
		{"target closes first", []step{{false, syn, SynSent}, {true, synAck, SynRecv}, {false, ack, Established},
			{true, finAck, FinWait}, {false, finAck, TimeWait}}},
		{"reset by target", []step{{false, syn, SynSent}, {true, synAck, SynRecv}, {false, ack, Established}, {true, rst, Close}, {false, ack, Close}}},
		{"refused by target", []step{{false, syn, SynSent}, {true, rst | ack, Close}}},
		{"reset by client", []step{{false, syn, SynSent}, {true, synAck, SynRecv}, {false, rst, Close}}},
		{"reopened after close", []step{{false, syn, SynSent}, {true, rst | ack, Close}, {false, syn, SynSent}, {true, synAck, SynRecv}}},
		{"reopened in time wait", []step{{false, syn, SynSent}, {true, synAck, SynRecv}, {false, ack, Established},
			{false, finAck, FinWait}, {true, finAck, TimeWait}, {false, syn, SynSent}}},
		{"syn does not reset a live flow", []step{{false, syn, SynSent}, {true, synAck, SynRecv}, {false, ack, Established}, {false, syn, Established}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tab, _ := newTable(t, Config{})
			var port uint16
			for n, s := range tt.steps {
				var f Flow
				var err error
				if s.reply {
					f, err = tab.Reply(target, port, s.flags, 0)
				} else {
					f, err = tab.Forward(7, client(1), virtual, target, s.flags, 0)
				}
				if err != nil {
					t.Fatalf("step %d (%v): %v", n, s.flags, err)
				}
				if n == 0 {
					port = f.Port
				} else if f.Port != port {
					t.Fatalf("step %d (%v): port %d, want %d", n, s.flags, f.Port, port)
				}
				if f.State != s.want {
					t.Fatalf("step %d (reply %v, %v): state %v, want %v", n, s.reply, s.flags, f.State, s.want)
				}
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	to := Timeouts{SynSent: 3 * time.Second, SynRecv: 4 * time.Second, Established: 50 * time.Second,
		FinWait: 6 * time.Second, TimeWait: 7 * time.Second, Close: 2 * time.Second}
	reach := map[State][]struct {
		reply bool
		flags header.TCPFlags
	}{
		SynSent:     {{false, syn}},
		SynRecv:     {{false, syn}, {true, synAck}},
		Established: {{false, syn}, {true, synAck}, {false, ack}},
		FinWait:     {{false, syn}, {true, synAck}, {false, ack}, {false, finAck}},
		TimeWait:    {{false, syn}, {true, synAck}, {false, ack}, {false, finAck}, {true, finAck}},
		Close:       {{false, syn}, {true, rst}},
	}
	timeout := map[State]time.Duration{SynSent: to.SynSent, SynRecv: to.SynRecv, Established: to.Established,
		FinWait: to.FinWait, TimeWait: to.TimeWait, Close: to.Close}
	for state, steps := range reach {
		t.Run(state.String(), func(t *testing.T) {
			tab, clk := newTable(t, Config{Timeouts: to})
			var f Flow
			for _, s := range steps {
				clk.add(time.Second) // each packet refreshes the flow
				var err error
				if s.reply {
					f, err = tab.Reply(target, f.Port, s.flags, 0)
				} else {
					f, err = tab.Forward(1, client(1), virtual, target, s.flags, 0)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if f.State != state {
				t.Fatalf("state %v, want %v", f.State, state)
			}
			clk.add(timeout[state] - time.Nanosecond)
			if n := tab.Expire(); n != 0 || tab.Len() != 1 {
				t.Fatalf("just before %v: Expire() = %d, Len() = %d, want 0, 1", timeout[state], n, tab.Len())
			}
			clk.add(time.Nanosecond)
			if n := tab.Expire(); n != 1 || tab.Len() != 0 {
				t.Fatalf("at %v: Expire() = %d, Len() = %d, want 1, 0", timeout[state], n, tab.Len())
			}
			if _, err := tab.Reply(target, f.Port, ack, 0); !errors.Is(err, ErrNoFlow) {
				t.Errorf("Reply after expiry = %v, want %v", err, ErrNoFlow)
			}
		})
	}
}

// TestExpiryOrder: packets keep an idle flow alive, expiry removes only the idle ones, and a
// lookup that meets an expired flow removes it without waiting for Expire.
func TestExpiryOrder(t *testing.T) {
	tab, clk := newTable(t, Config{Timeouts: Timeouts{Established: time.Minute}})
	ports := make([]uint16, 4)
	for i := range ports {
		f, _ := tab.Forward(1, client(i), virtual, target, syn, 0)
		tab.Reply(target, f.Port, synAck, 0)
		tab.Forward(1, client(i), virtual, target, ack, 0)
		ports[i] = f.Port
	}
	for range 3 {
		clk.add(30 * time.Second)
		tab.Reply(target, ports[2], ack, 0) // flow 2 stays busy
	}
	if n := tab.Expire(); n != 3 {
		t.Errorf("Expire() = %d, want 3 (all but the busy flow)", n)
	}
	if f, err := tab.Forward(1, client(2), virtual, target, ack, 0); err != nil || f.State != Established {
		t.Errorf("busy flow: Forward = %+v, %v, want it established", f, err)
	}
	clk.add(time.Minute)
	if _, err := tab.Forward(1, client(2), virtual, target, ack, 0); !errors.Is(err, ErrNoFlow) {
		t.Errorf("Forward on an expired flow = %v, want %v", err, ErrNoFlow)
	}
	if got := tab.Stats(); got.Expired != 4 || got.Flows != 0 {
		t.Errorf("Stats() = %+v, want 4 expired, 0 flows", got)
	}
}

// TestSYNFloodFillsOnlyItsShare: a peer's flood of SYNs ends at its share; another peer still
// opens flows; the table's total cap holds; expired half-open flows make room again.
func TestSYNFloodFillsOnlyItsShare(t *testing.T) {
	tab, clk := newTable(t, Config{MaxFlows: 350, MaxPerPeer: 100, Ports: PortRange{40000, 49999}})
	refused := 0
	for i := range 1000 {
		if _, err := tab.Forward(1, client(i), virtual, target, syn, 0); errors.Is(err, ErrPeerFull) {
			refused++
		} else if err != nil {
			t.Fatalf("flood SYN %d: %v", i, err)
		}
	}
	if refused != 900 || tab.Len() != 100 {
		t.Errorf("flood of 1000 SYNs: %d refused, %d flows; want 900, 100", refused, tab.Len())
	}
	for p := uint64(2); p <= 3; p++ {
		for i := range 100 {
			if _, err := tab.Forward(p, client(i), virtual, target, syn, 0); err != nil {
				t.Fatalf("peer %d SYN %d beside the flood: %v", p, i, err)
			}
		}
	}
	for p := uint64(4); p <= 5; p++ { // 100 flows want in; 50 fit
		for i := range 50 {
			_, err := tab.Forward(p, client(i), virtual, target, syn, 0)
			if p == 4 && err != nil || p == 5 && !errors.Is(err, ErrFull) {
				t.Fatalf("peer %d SYN %d with %d flows: %v", p, i, tab.Len(), err)
			}
		}
	}
	if got := tab.Stats(); got.Full != 50 || got.PeerFull != 900 || got.Flows != 350 {
		t.Errorf("Stats() = %+v, want 50 full, 900 peer full, 350 flows", got)
	}
	clk.add(30 * time.Second) // the SYN_SENT timeout
	if _, err := tab.Forward(1, client(5000), virtual, target, syn, 0); err != nil {
		t.Errorf("SYN after the flood's flows expired: %v", err)
	}
	if tab.Len() != 1 {
		t.Errorf("after expiry: %d flows, want 1", tab.Len())
	}
}

func TestPorts(t *testing.T) {
	tab, clk := newTable(t, Config{Ports: PortRange{50000, 50002}})
	other := netip.MustParseAddrPort("127.0.0.2:5432")
	seen := map[uint16]int{}
	for i := range 3 {
		f, err := tab.Forward(1, client(i), virtual, target, syn, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen[f.Port] = i
	}
	if len(seen) != 3 {
		t.Errorf("3 flows to one target got ports %v, want 3 distinct", seen)
	}
	if _, err := tab.Forward(1, client(3), virtual, target, syn, 0); !errors.Is(err, ErrNoPort) {
		t.Errorf("4th flow to a target over a 3-port range: %v, want %v", err, ErrNoPort)
	}
	if _, err := tab.Forward(1, client(3), virtual, other, syn, 0); err != nil {
		t.Errorf("flow to another target: %v, want a port", err)
	}
	for port, i := range seen {
		f, err := tab.Reply(target, port, synAck, 0)
		if err != nil || f.Client != client(i) {
			t.Errorf("Reply(%v, %d) = %+v, %v; want the flow of %v", target, port, f, err, client(i))
		}
	}
	clk.add(30 * time.Second) // the SYN_SENT timeout frees the ports
	if _, err := tab.Forward(1, client(4), virtual, target, syn, 0); err != nil {
		t.Errorf("flow to the target after its ports' flows expired: %v", err)
	}
	if _, err := New(Config{Ports: PortRange{5, 4}}); err == nil {
		t.Errorf("New with port range 5-4: nil error")
	}
}

func TestPeersAndFamilies(t *testing.T) {
	tab, _ := newTable(t, Config{})
	// Two inlets may have clients at the same address: their flows are distinct.
	a, _ := tab.Forward(1, client(1), virtual, target, syn, 0)
	b, err := tab.Forward(2, client(1), virtual, target, syn, 0)
	if err != nil || a.Port == b.Port {
		t.Errorf("same client behind two peers: ports %d and %d (%v), want two flows", a.Port, b.Port, err)
	}
	v6 := netip.MustParseAddrPort("[fd00::1]:40000")
	if _, err := tab.Forward(1, v6, virtual, target, syn, 0); !errors.Is(err, ErrAddresses) {
		t.Errorf("Forward(ipv6 client, ipv4 virtual) = %v, want %v", err, ErrAddresses)
	}
	if _, err := tab.Forward(1, client(1), virtual, netip.MustParseAddrPort("[::1]:5432"), syn, 0); !errors.Is(err, ErrAddresses) {
		t.Errorf("Forward(ipv4 flow, ipv6 target) = %v, want %v", err, ErrAddresses)
	}
	f, err := tab.Forward(1, v6, netip.MustParseAddrPort("[fd7a::1]:5432"), netip.MustParseAddrPort("[::1]:5432"), syn, 0)
	if err != nil || f.Client != v6 || !f.Target.Addr().Is6() {
		t.Errorf("ipv6 flow: %+v, %v", f, err)
	}
	if got := tab.RemovePeer(1); len(got) != 2 || tab.Len() != 1 {
		t.Errorf("RemovePeer(1) removed %d flows, %d left; want 2, 1", len(got), tab.Len())
	}
	if _, err := tab.Reply(target, a.Port, synAck, 0); !errors.Is(err, ErrNoFlow) {
		t.Errorf("Reply to a removed flow: %v, want %v", err, ErrNoFlow)
	}
}

// BenchmarkIdleFlows reports the memory an idle flow costs with 100,000 flows (the goal is
// at most 2 KiB), over 10 targets so the ports suffice.
func BenchmarkIdleFlows(b *testing.B) {
	const flows = 100_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tab, _ := newTable(b, Config{MaxFlows: flows, MaxPerPeer: flows, Ports: PortRange{40000, 59999}})
		for i := range flows {
			tgt := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i % 10)}), 5432)
			f, err := tab.Forward(uint64(i%8), client(i), virtual, tgt, syn, 0)
			if err != nil {
				b.Fatal(err)
			}
			tab.Reply(tgt, f.Port, synAck, 0)
			tab.Forward(uint64(i%8), client(i), virtual, tgt, ack, 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/flows, "bytes/flow")
		runtime.KeepAlive(tab)
	}
}

// BenchmarkPacket is the table's cost per packet of an established flow, and per new flow.
func BenchmarkPacket(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		tab, _ := newTable(b, Config{MaxFlows: n, MaxPerPeer: n, Ports: PortRange{1024, 65535}})
		tgt := func(i int) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i % 10)}), 5432)
		}
		for i := range n {
			if _, err := tab.Forward(1, client(i), virtual, tgt(i), syn, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("flows=%d/op=forward", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tab.Forward(1, client(i%n), virtual, tgt(i%n), ack, 0)
				i++
			}
		})
	}
	b.Run("op=open+expire", func(b *testing.B) {
		b.ReportAllocs()
		tab, clk := newTable(b, Config{MaxFlows: 1 << 20, MaxPerPeer: 1 << 20, Ports: PortRange{1024, 65535},
			Timeouts: Timeouts{SynSent: time.Millisecond}})
		i := 0
		for b.Loop() {
			if _, err := tab.Forward(1, client(i), virtual, target, syn, 0); err != nil {
				b.Fatal(err)
			}
			clk.add(time.Microsecond) // flows live about 1000 opens
			if i++; i%1000 == 0 {
				tab.Expire()
			}
		}
	})
}

// The inlet's table keeps its clients' ports and tracks where each side's next segment
// starts, so that a flow it cuts can be reset at both ends.
func TestKeepPortAndNext(t *testing.T) {
	tab, err := New(Config{KeepPort: true})
	if err != nil {
		t.Fatal(err)
	}
	c := netip.MustParseAddrPort("10.0.0.1:51000")
	f, err := tab.Forward(0, c, virtual, virtual, syn, 101)
	if err != nil || f.Port != c.Port() || f.ClientNext != 101 {
		t.Fatalf("Forward(SYN) = %+v, %v; want port %d and ClientNext 101", f, err, c.Port())
	}
	if f, err = tab.Reply(virtual, c.Port(), synAck, 7001); err != nil || f.Client != c || f.TargetNext != 7001 {
		t.Fatalf("Reply(SYN-ACK) = %+v, %v; want the flow of %v with TargetNext 7001", f, err, c)
	}
	other := netip.MustParseAddrPort("10.0.0.2:51000")
	if _, err := tab.Forward(0, other, virtual, virtual, syn, 1); !errors.Is(err, ErrNoPort) {
		t.Errorf("Forward(second client, same port) = %v, want %v", err, ErrNoPort)
	}
	if f, err = tab.Forward(0, c, virtual, virtual, ack, 102); err != nil || f.ClientNext != 102 || f.TargetNext != 7001 {
		t.Errorf("Forward(ACK) = %+v, %v; want ClientNext 102, TargetNext 7001", f, err)
	}
}

// A full range toward a target takes the port of an ended flow (TIME_WAIT first to go after
// CLOSE), never one of a live flow: a busy target's ports need not wait out TIME_WAIT.
func TestReclaimEndedFlows(t *testing.T) {
	tab, _ := newTable(t, Config{Ports: PortRange{50000, 50001}})
	fin := header.TCPFlagFin | header.TCPFlagAck
	live, err := tab.Forward(1, client(0), virtual, target, syn, 0)
	if err != nil {
		t.Fatal(err)
	}
	ended, _ := tab.Forward(1, client(1), virtual, target, syn, 0)
	tab.Reply(target, ended.Port, synAck, 0)
	tab.Forward(1, client(1), virtual, target, ack, 0)
	tab.Forward(1, client(1), virtual, target, fin, 0)
	if f, _ := tab.Reply(target, ended.Port, fin, 0); f.State != TimeWait {
		t.Fatalf("after FIN both ways: %v, want TIME_WAIT", f.State)
	}
	f, err := tab.Forward(1, client(2), virtual, target, syn, 0)
	if err != nil || f.Port != ended.Port {
		t.Fatalf("a new flow over a full range = %+v, %v; want the ended flow's port %d", f, err, ended.Port)
	}
	if _, err := tab.Forward(1, client(1), virtual, target, ack, 0); !errors.Is(err, ErrNoFlow) {
		t.Errorf("the reclaimed flow still forwards: %v", err)
	}
	if _, err := tab.Forward(1, client(3), virtual, target, syn, 0); !errors.Is(err, ErrNoPort) {
		t.Errorf("a flow over a range of live flows: %v, want %v", err, ErrNoPort)
	}
	if g, _ := tab.Reply(target, live.Port, ack, 0); g.Client != client(0) {
		t.Errorf("the live flow lost its port: %+v", g)
	}
	if s := tab.Stats(); s.Reclaimed != 1 {
		t.Errorf("Reclaimed = %d, want 1", s.Reclaimed)
	}
}

// A full table gives up its oldest ended flow for a new one, never a live one: flows that
// wait out TIME_WAIT do not lock out new connections, a SYN flood still fills only its cap.
func TestFullTableDropsEndedFlows(t *testing.T) {
	tab, _ := newTable(t, Config{MaxFlows: 2, KeepPort: true})
	rst := header.TCPFlagRst
	tab.Forward(1, client(0), virtual, virtual, syn, 0)
	tab.Forward(1, client(1), virtual, virtual, syn, 0)
	if _, err := tab.Forward(1, client(2), virtual, virtual, syn, 0); !errors.Is(err, ErrFull) {
		t.Fatalf("a third SYN into a table of two live flows: %v, want %v", err, ErrFull)
	}
	tab.Forward(1, client(1), virtual, virtual, rst, 0) // flow 1 ends
	if _, err := tab.Forward(1, client(2), virtual, virtual, syn, 0); err != nil {
		t.Fatalf("a SYN into a full table with an ended flow: %v", err)
	}
	if _, err := tab.Forward(1, client(0), virtual, virtual, ack, 0); err != nil {
		t.Errorf("the live flow was dropped: %v", err)
	}
	if s := tab.Stats(); s.Dropped != 1 || s.Full != 1 {
		t.Errorf("stats %+v, want Dropped 1, Full 1", s)
	}
}
