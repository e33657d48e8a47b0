package sockfilter

import (
	"bytes"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// build makes an IPv4 or IPv6 packet of protocol proto (TCP header if 6) from src to dst.
func build(src, dst netip.AddrPort, proto uint8) []byte {
	saddr, daddr := tcpip.AddrFromSlice(src.Addr().AsSlice()), tcpip.AddrFromSlice(dst.Addr().AsSlice())
	ihl := header.IPv4MinimumSize
	if src.Addr().Is6() {
		ihl = header.IPv6MinimumSize
	}
	b := make([]byte, ihl+header.TCPMinimumSize+10)
	if src.Addr().Is6() {
		header.IPv6(b).Encode(&header.IPv6Fields{PayloadLength: uint16(len(b) - ihl),
			TransportProtocol: tcpip.TransportProtocolNumber(proto), HopLimit: 64, SrcAddr: saddr, DstAddr: daddr})
	} else {
		header.IPv4(b).Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64,
			Protocol: proto, SrcAddr: saddr, DstAddr: daddr})
	}
	header.TCP(b[ihl:]).Encode(&header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(),
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagSyn | header.TCPFlagAck})
	return b
}

// withOptions inserts 4 bytes of IPv4 options (NOP NOP NOP EOL) after the fixed header.
func withOptions(b []byte) []byte {
	out := append(append(bytes.Clone(b[:20]), 1, 1, 1, 0), b[20:]...)
	out[0] = 0x46
	header.IPv4(out).SetTotalLength(uint16(len(out)))
	return out
}

type tc struct {
	name string
	b    []byte
	keep bool
}

func TestProgram(t *testing.T) {
	target4 := netip.MustParseAddrPort("127.0.0.1:5432")
	target6 := netip.MustParseAddrPort("[fd00::7]:5432")
	to := func(a netip.AddrPort, port uint16) netip.AddrPort {
		if a.Addr().Is6() {
			return netip.AddrPortFrom(netip.MustParseAddr("fd00::2"), port)
		}
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)
	}
	mod := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }
	for _, target := range []netip.AddrPort{target4, target6} {
		m := Match{Src: target, First: 40000, Last: 40999}
		insns, err := Program(m)
		if err != nil {
			t.Fatal(err)
		}
		vm, err := bpf.NewVM(insns)
		if err != nil {
			t.Fatalf("NewVM(%v): %v", insns, err)
		}
		other := netip.MustParseAddrPort("127.0.0.9:5432")
		otherFam := target6
		if target.Addr().Is6() {
			other, otherFam = netip.MustParseAddrPort("[fd00::8]:5432"), target4
		}
		ok := build(target, to(target, 40000), 6)
		cases := []tc{
			{"first port", ok, true},
			{"last port", build(target, to(target, 40999), 6), true},
			{"middle port", build(target, to(target, 40500), 6), true},
			{"below range", build(target, to(target, 39999), 6), false},
			{"above range", build(target, to(target, 41000), 6), false},
			{"other source address", build(other, to(target, 40000), 6), false},
			{"other source port", build(netip.AddrPortFrom(target.Addr(), 5433), to(target, 40000), 6), false},
			{"udp", build(target, to(target, 40000), 17), false},
			{"other family", build(otherFam, to(otherFam, 40000), 6), false},
			{"truncated", ok[:len(ok)-32], false},
			{"empty", nil, false},
		}
		if target.Addr().Is4() {
			cases = append(cases,
				tc{"ip options", withOptions(ok), true},
				tc{"fragment", mod(ok, func(b []byte) { b[7] = 8 }), false},
				tc{"more fragments", mod(ok, func(b []byte) { b[6] = 0x20 }), false},
				tc{"dont fragment", mod(ok, func(b []byte) { b[6] = 0x40 }), true},
			)
		} else {
			cases = append(cases, tc{"extension header", mod(ok, func(b []byte) { b[6] = 0 }), false})
		}
		for _, c := range cases {
			t.Run(target.String()+"/"+c.name, func(t *testing.T) {
				n, err := vm.Run(c.b)
				if err != nil {
					t.Fatal(err)
				}
				if got := n > 0; got != c.keep {
					t.Errorf("filter(%v to ports 40000-40999) on %x = %d, want keep %v", target, c.b, n, c.keep)
				}
				if c.keep && n < len(c.b) {
					t.Errorf("kept %d of %d bytes, want all", n, len(c.b))
				}
			})
		}
		if _, err := Assemble(m); err != nil {
			t.Errorf("Assemble(%+v) = %v", m, err)
		}
	}
	if _, err := Program(Match{First: 1, Last: 2}); err == nil {
		t.Errorf("Program with no source address: nil error")
	}
	if _, err := Program(Match{Src: target4, First: 2, Last: 1}); err == nil {
		t.Errorf("Program with ports 2-1: nil error")
	}
}
