package portal

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/routing"
)

// seg builds an IPv4 TCP segment with complete checksums.
func seg(src, dst netip.AddrPort, flags header.TCPFlags, seq uint32) []byte {
	b := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize)
	header.IPv4(b).Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
		SrcAddr: tcpip.AddrFromSlice(src.Addr().AsSlice()), DstAddr: tcpip.AddrFromSlice(dst.Addr().AsSlice())})
	header.TCP(b[header.IPv4MinimumSize:]).Encode(&header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(),
		SeqNum: seq, AckNum: 1, DataOffset: header.TCPMinimumSize, Flags: flags, WindowSize: 65535})
	p, _ := packet.Parse(b)
	p.SetChecksums()
	return b
}

// fakeDev is a TUN device whose reads never come and whose writes are kept.
type fakeDev struct {
	mu      sync.Mutex
	written []packet.Packet
	closed  chan struct{}
}

func (d *fakeDev) Read([][]byte, []int) (int, error) { <-d.closed; return 0, net.ErrClosed }
func (d *fakeDev) Write(h, b []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(h) != packet.VirtioHdrLen {
		return net.ErrWriteToConnected
	}
	p, err := packet.Parse(append([]byte(nil), b...))
	if err == nil {
		d.written = append(d.written, p)
	}
	return nil
}
func (d *fakeDev) take() []packet.Packet {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.written
	d.written = nil
	return w
}

type fakePath struct{ pr dataplane.PathRoute }

func (p fakePath) Open(context.Context) (dataplane.PathRoute, error) { return p.pr, nil }

var (
	virtual = netip.MustParseAddrPort("100.127.0.1:5432")
	client  = netip.MustParseAddrPort("10.0.0.5:51000")
)

// newInlet is an inlet whose path leads to a worker that keeps the packets it is sent.
func newInlet(t testing.TB, maxFlows int) (*Inlet, *fakeDev, func() []packet.Packet, chan struct{}) {
	r := routing.New(routing.Config{})
	dev := &fakeDev{closed: make(chan struct{})}
	t.Cleanup(func() { close(dev.closed) })
	var mu sync.Mutex
	var sent []packet.Packet
	r.Register("outlet", routing.WorkerFunc(func(m *routing.Message) {
		mu.Lock()
		defer mu.Unlock()
		if p := m.Payload(); len(p) > 0 && p[0] == msgPackets {
			eachPacket(p[1:], func(b []byte, _ packet.Offload) {
				q, _ := packet.Parse(append([]byte(nil), b...))
				sent = append(sent, q)
			})
		}
		m.Release()
	}))
	done := make(chan struct{})
	in, err := NewInlet(InletConfig{Router: r, Virtual: virtual, Device: NewDevice(dev, nil), MaxFlows: maxFlows,
		Path: fakePath{dataplane.PathRoute{To: routing.MustRoute(routing.LocalAddress("outlet")), Flow: r.NewFlow(), Done: done}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	if _, err := in.usePath(context.Background()); err != nil {
		t.Fatal(err)
	}
	taken := func() []packet.Packet {
		mu.Lock()
		defer mu.Unlock()
		s := sent
		sent = nil
		return s
	}
	return in, dev, taken, done
}

// fromClients hands segments to the inlet as its device's reader would.
func fromClients(in *Inlet, segs ...[]byte) {
	for _, b := range segs {
		p, _ := packet.Parse(b)
		in.fromClient(&p, packet.Offload{}, nil)
	}
	in.flush()
}

// fromOutlet hands the inlet one message of segments from its outlet.
func fromOutlet(in *Inlet, segs ...[]byte) {
	body := []byte{msgPackets}
	for _, s := range segs {
		body = appendPacket(body, s, packet.Offload{})
	}
	m := routing.NewMessage()
	m.SetPayload(body)
	in.HandleMessage(m)
}

// The outlet's node reaches no socket of the inlet's host but its clients' own connections:
// only segments from the virtual address to a live flow reach the device, never a SYN that
// would open a connection to a listener on the host.
func TestInletPassesOnlyItsClientsFlows(t *testing.T) {
	in, dev, sent, _ := newInlet(t, 0)
	syn, ack := header.TCPFlagSyn, header.TCPFlagAck
	fromClients(in, seg(client, virtual, syn, 100))
	if s := sent(); len(s) != 1 || !s[0].SYNOnly() {
		t.Fatalf("the client's SYN: the outlet got %d segments, want the SYN", len(s))
	}
	sshd := netip.AddrPortFrom(client.Addr(), 22)
	fromOutlet(in,
		seg(virtual, sshd, syn, 1),                                          // a SYN to a listener of the host
		seg(virtual, sshd, syn|ack, 1),                                      // an answer to no flow
		seg(netip.MustParseAddrPort("10.9.9.9:5432"), client, syn|ack, 1),   // from another address
		seg(virtual, netip.MustParseAddrPort("10.0.0.6:51000"), syn|ack, 1), // to another client, same port
		seg(virtual, client, syn, 1),                                        // a SYN on the client's own flow
	)
	if w := dev.take(); len(w) != 0 {
		t.Fatalf("%d segments the outlet forged reached the device, the first %v -> %v", len(w), w[0].Src(), w[0].Dst())
	}
	fromOutlet(in, seg(virtual, client, syn|ack, 7000))
	if w := dev.take(); len(w) != 1 || w[0].Dst() != client {
		t.Fatalf("the target's SYN-ACK on the client's flow: %d segments reached the device, want 1", len(w))
	}
	m := routing.NewMessage()
	m.SetPayload([]byte{msgPackets, 0, 40, 1}) // a record longer than the message
	in.HandleMessage(m)
	if w := dev.take(); len(w) != 0 {
		t.Fatalf("a malformed message wrote %d segments", len(w))
	}
}

// A segment of no flow is answered with a RST at once; a flood of SYNs fills the inlet's cap
// and no more, each refused SYN answered with a RST and counted; a path that closes resets
// its flows at the clients.
func TestInletCapsAndResets(t *testing.T) {
	in, dev, sent, done := newInlet(t, 4)
	fromClients(in, seg(netip.AddrPortFrom(client.Addr(), 40000), virtual, header.TCPFlagAck, 5))
	if w := dev.take(); len(w) != 1 || w[0].Flags() != header.TCPFlagRst || w[0].Dst().Port() != 40000 {
		t.Fatalf("an ACK of no flow: %d segments to the client, want its RST", len(w))
	}
	var flood [][]byte
	for i := range 10 {
		flood = append(flood, seg(netip.AddrPortFrom(client.Addr(), uint16(50000+i)), virtual, header.TCPFlagSyn, 1))
	}
	fromClients(in, flood...)
	if s := sent(); len(s) != 4 {
		t.Errorf("10 SYNs into a cap of 4: the outlet got %d", len(s))
	}
	if w := dev.take(); len(w) != 6 {
		t.Errorf("10 SYNs into a cap of 4: %d RSTs, want 6", len(w))
	}
	if st := in.Stats(); st.Refused.Load() != 6 || st.Active.Load() != 4 {
		t.Errorf("refused %d, active %d; want 6, 4", st.Refused.Load(), st.Active.Load())
	}
	close(done)
	deadline := time.Now().Add(5 * time.Second)
	var resets []packet.Packet
	for len(resets) < 4 && time.Now().Before(deadline) {
		resets = append(resets, dev.take()...)
		time.Sleep(10 * time.Millisecond)
	}
	if len(resets) != 4 || in.Stats().Active.Load() != 0 {
		t.Fatalf("the path closed: %d RSTs to the clients, %d flows left; want 4, 0", len(resets), in.Stats().Active.Load())
	}
	for _, r := range resets {
		if r.Flags() != header.TCPFlagRst || r.Src() != virtual {
			t.Errorf("reset %v -> %v flags %v, want a RST from the virtual address", r.Src(), r.Dst(), r.Flags())
		}
	}
}

// backlogged is a link that holds more than a packet path may queue behind.
type backlogged struct{ routing.Link }

func (backlogged) Backlog() int { return maxBacklog + 1 }

// Under back-pressure the inlet drops the clients' segments (their TCP sends them again)
// rather than queue them without bound.
func TestInletDropsWhenBacklogged(t *testing.T) {
	in, _, sent, _ := newInlet(t, 0)
	cur := *in.cur.Load()
	cur.Link = backlogged{}
	in.cur.Store(&cur)
	fromClients(in, seg(client, virtual, header.TCPFlagSyn, 1))
	if s := sent(); len(s) != 0 || in.Stats().Dropped.Load() != 1 {
		t.Fatalf("a backlogged path: %d segments sent, %d batches dropped; want 0, 1", len(s), in.Stats().Dropped.Load())
	}
}

// A large segment goes as a message of its own, in the buffer the device read it into
// (behind its virtio-net header), after the segments gathered before it; a small one is
// copied into the batch.
func TestLargeSegmentGoesInItsReadBuffer(t *testing.T) {
	in, _, sent, _ := newInlet(t, 0)
	fromClients(in, seg(client, virtual, header.TCPFlagSyn, 1))
	sent()
	small, _ := packet.Parse(seg(client, virtual, header.TCPFlagAck, 2))
	if gathered, taken := in.fromClient(&small, packet.Offload{}, nil); !gathered || taken {
		t.Fatalf("a small segment: gathered %v, taken %v", gathered, taken)
	}
	big := append(seg(client, virtual, header.TCPFlagAck|header.TCPFlagPsh, 3), make([]byte, wholeMin)...)
	big[2], big[3] = byte(len(big)>>8), byte(len(big)) // the IPv4 total length
	frame := routing.NewBuffer(frameSize)
	copy(frame.Extend(packet.VirtioHdrLen + len(big))[packet.VirtioHdrLen:], big)
	p, err := packet.Parse(frame.Bytes()[packet.VirtioHdrLen:])
	if err != nil {
		t.Fatal(err)
	}
	if gathered, taken := in.fromClient(&p, packet.Offload{Checksum: packet.Partial}, frame); gathered || !taken {
		t.Fatalf("a segment of %d bytes: gathered %v, taken %v, want it taken", len(big), gathered, taken)
	}
	got := sent()
	if len(got) != 2 || len(got[0].Bytes()) != len(small.Bytes()) || len(got[1].Bytes()) != len(big) {
		var sizes []int
		for _, g := range got {
			sizes = append(sizes, len(g.Bytes()))
		}
		t.Fatalf("sent segments of %v bytes, want the small one gathered before, then the large one (%d)", sizes, len(big))
	}
}

// A super-packet from the outlet whose segments would be smaller than minSegment is not
// written: the client's kernel would cut it into that many packets.
func TestInletRefusesTinySegments(t *testing.T) {
	in, dev, _, _ := newInlet(t, 0)
	fromClients(in, seg(client, virtual, header.TCPFlagSyn, 1))
	fromOutlet(in, seg(virtual, client, header.TCPFlagSyn|header.TCPFlagAck, 500))
	dev.take()
	data := append(seg(virtual, client, header.TCPFlagAck, 501), make([]byte, 4000)...)
	data[2], data[3] = byte(len(data)>>8), byte(len(data))
	for _, tc := range []struct {
		segment uint16
		written int
	}{{1, 0}, {minSegment - 1, 0}, {minSegment, 1}, {0, 1}} {
		body := appendPacket([]byte{msgPackets}, data, packet.Offload{Checksum: packet.Partial, Segment: tc.segment})
		m := routing.NewMessage()
		m.SetPayload(body)
		in.HandleMessage(m)
		if w := dev.take(); len(w) != tc.written {
			t.Errorf("segments of %d bytes: %d packets written, want %d", tc.segment, len(w), tc.written)
		}
	}
}
