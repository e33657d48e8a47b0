package packet

import (
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// A partial super-packet's header tells the kernel where the checksum goes and how to cut
// it, and reads back as the same offload; a complete packet's header is all zeros, which the
// kernel verifies; headers of other kinds of super-packets are refused.
func TestVirtioHdr(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		p := tcpPacket(t, v6, make([]byte, 3000))
		h := make([]byte, VirtioHdrLen)
		for _, tc := range []struct {
			o       Offload
			gso     byte
			segment uint16
		}{
			{Offload{}, 0, 0},
			{Offload{Checksum: Partial}, virtioGSONone, 0},
			{Offload{Checksum: Partial, Segment: 4000}, virtioGSONone, 0}, // one segment holds it all
			{Offload{Checksum: Partial, Segment: 1448}, map[bool]byte{false: virtioGSOTCPv4, true: virtioGSOTCPv6}[v6], 1448},
		} {
			PutVirtioHdr(h, &p, tc.o, 14)
			if tc.o.Checksum == Complete {
				if h[0] != 0 || binary.NativeEndian.Uint16(h[6:]) != 0 {
					t.Errorf("v6 %v: a complete packet's header %x, want zeros", v6, h)
				}
				continue
			}
			if h[0] != virtioNeedsCsum || h[1] != tc.gso || binary.NativeEndian.Uint16(h[4:]) != tc.segment ||
				int(binary.NativeEndian.Uint16(h[6:])) != 14+p.ihl || binary.NativeEndian.Uint16(h[8:]) != 16 ||
				int(binary.NativeEndian.Uint16(h[2:])) != 14+p.ihl+p.thl {
				t.Errorf("v6 %v, %+v: header %x", v6, tc.o, h)
			}
			o, err := ParseVirtioHdr(h)
			want := Offload{Checksum: Partial, Segment: tc.segment}
			if err != nil || o != want {
				t.Errorf("v6 %v: ParseVirtioHdr(%x) = %+v, %v, want %+v", v6, h, o, err, want)
			}
		}
	}
	if _, err := ParseVirtioHdr(make([]byte, VirtioHdrLen-1)); err == nil {
		t.Error("a short header parsed")
	}
	udp := []byte{virtioNeedsCsum, 5, 0, 0, 0x80, 5, 0, 0, 0, 0}
	if _, err := ParseVirtioHdr(udp); err == nil {
		t.Error("a UDP super-packet's header parsed")
	}
}

// SetPartial leaves the pseudo-header sum in the checksum field, which a partial checksum
// completes to the one SetChecksums computes.
func TestSetPartial(t *testing.T) {
	p := tcpPacket(t, false, []byte("payload"))
	p.SetChecksums()
	want := p.TCP().Checksum()
	p.SetPartial()
	if p.TCP().Checksum() != p.PseudoHeaderSum() {
		t.Fatalf("partial field %#04x, want %#04x", p.TCP().Checksum(), p.PseudoHeaderSum())
	}
	p.SetChecksums()
	if p.TCP().Checksum() != want {
		t.Fatal("completing the partial checksum changed it")
	}
}

// tcpPacket is a parsed ACK carrying payload, IPv4 or IPv6, with complete checksums.
func tcpPacket(t *testing.T, v6 bool, payload []byte) Packet {
	t.Helper()
	src, dst := client4, virt4
	if v6 {
		src, dst = client6, virt6
	}
	p, err := Parse(build(src, dst, header.TCPFlagAck, nil, payload))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
