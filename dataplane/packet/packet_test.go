package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// build makes a TCP packet from src to dst with gVisor's encoders and checksum helpers, an
// implementation independent of this package's, so tests compare against it.
func build(src, dst netip.AddrPort, flags header.TCPFlags, opts, payload []byte) []byte {
	ihl := header.IPv4MinimumSize
	if src.Addr().Is6() {
		ihl = header.IPv6MinimumSize
	}
	tl := header.TCPMinimumSize + len(opts)
	b := make([]byte, ihl+tl+len(payload))
	saddr, daddr := tcpip.AddrFromSlice(src.Addr().AsSlice()), tcpip.AddrFromSlice(dst.Addr().AsSlice())
	if src.Addr().Is6() {
		header.IPv6(b).Encode(&header.IPv6Fields{
			PayloadLength: uint16(tl + len(payload)), TransportProtocol: header.TCPProtocolNumber,
			HopLimit: 64, SrcAddr: saddr, DstAddr: daddr,
		})
	} else {
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(b)), ID: 0x1234, Flags: header.IPv4FlagDontFragment, TTL: 64,
			Protocol: uint8(header.TCPProtocolNumber), SrcAddr: saddr, DstAddr: daddr,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	tcp := header.TCP(b[ihl:])
	tcp.Encode(&header.TCPFields{
		SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: 1000, AckNum: 2000,
		DataOffset: uint8(tl), Flags: flags, WindowSize: 65535,
	})
	copy(tcp[header.TCPMinimumSize:], opts)
	copy(tcp[tl:], payload)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, saddr, daddr, uint16(tl+len(payload)))
	xsum = checksum.Checksum(payload, xsum)
	tcp.SetChecksum(^tcp.CalculateChecksum(xsum))
	return b
}

var (
	client4 = netip.MustParseAddrPort("10.0.0.5:51000")
	virt4   = netip.MustParseAddrPort("100.64.0.1:5432")
	local4  = netip.MustParseAddrPort("192.168.7.2:40001")
	target4 = netip.MustParseAddrPort("127.0.0.1:5432")
	client6 = netip.MustParseAddrPort("[fd00::5]:51000")
	virt6   = netip.MustParseAddrPort("[fd7a::1]:5432")
	local6  = netip.MustParseAddrPort("[2001:db8::2]:40001")
	target6 = netip.MustParseAddrPort("[::1]:5432")

	mss1460 = []byte{2, 4, 0x05, 0xb4, 1, 1, 4, 2} // MSS at an even offset, NOP NOP SACK-permitted
	nopMSS  = []byte{1, 2, 4, 0xff, 0xd7, 1, 1, 0} // NOP, MSS 65495 at an odd offset (lo's)
	payload = []byte("SELECT 1; -- a payload of odd length")
)

func TestParse(t *testing.T) {
	syn4 := build(client4, virt4, header.TCPFlagSyn, mss1460, nil)
	syn6 := build(client6, virt6, header.TCPFlagSyn, mss1460, nil)
	data4 := build(client4, virt4, header.TCPFlagAck|header.TCPFlagPsh, nil, payload)
	padded := append(bytes.Clone(data4), 0, 0, 0, 0)
	mod := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }
	for _, tt := range []struct {
		name    string
		b       []byte
		wantErr error
		src     netip.AddrPort
		payload int
	}{
		{"ipv4 syn", syn4, nil, client4, 0},
		{"ipv6 syn", syn6, nil, client6, 0},
		{"ipv4 data", data4, nil, client4, len(payload)},
		{"link padding cut", padded, nil, client4, len(payload)},
		{"empty", nil, ErrTruncated, netip.AddrPort{}, 0},
		{"version 5", mod(syn4, func(b []byte) { b[0] = 0x55 }), ErrVersion, netip.AddrPort{}, 0},
		{"ihl 4", mod(syn4, func(b []byte) { b[0] = 0x44 }), ErrHeader, netip.AddrPort{}, 0},
		{"total length past buffer", mod(syn4, func(b []byte) { b[3]++ }), ErrTruncated, netip.AddrPort{}, 0},
		{"total length below header", mod(syn4, func(b []byte) { b[2], b[3] = 0, 19 }), ErrHeader, netip.AddrPort{}, 0},
		{"more fragments", mod(syn4, func(b []byte) { b[6] |= 0x20 }), ErrFragment, netip.AddrPort{}, 0},
		{"fragment offset", mod(syn4, func(b []byte) { b[7] = 1 }), ErrFragment, netip.AddrPort{}, 0},
		{"udp", mod(syn4, func(b []byte) { b[9] = 17 }), ErrNotTCP, netip.AddrPort{}, 0},
		{"ipv6 hop-by-hop", mod(syn6, func(b []byte) { b[6] = 0 }), ErrNotTCP, netip.AddrPort{}, 0},
		{"ipv6 payload past buffer", mod(syn6, func(b []byte) { b[5]++ }), ErrTruncated, netip.AddrPort{}, 0},
		{"data offset 4", mod(syn4, func(b []byte) { b[20+12] = 4 << 4 }), ErrHeader, netip.AddrPort{}, 0},
		{"data offset past packet", mod(syn4, func(b []byte) { b[20+12] = 15 << 4 }), ErrTruncated, netip.AddrPort{}, 0},
		{"no tcp header", mod(syn4[:20], func(b []byte) { b[2], b[3] = 0, 20 }), ErrTruncated, netip.AddrPort{}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.b)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse(%x) = %v, want %v", tt.b, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := p.Src(); got != tt.src {
				t.Errorf("Src() = %v, want %v", got, tt.src)
			}
			if got := len(p.Payload()); got != tt.payload {
				t.Errorf("len(Payload()) = %d, want %d", got, tt.payload)
			}
			if err := p.Verify(); err != nil {
				t.Errorf("Verify() = %v, want nil", err)
			}
		})
	}
}

func TestParseTruncatedPrefixes(t *testing.T) {
	for _, b := range [][]byte{
		build(client4, virt4, header.TCPFlagSyn, mss1460, nil),
		build(client6, virt6, header.TCPFlagAck, nil, payload),
	} {
		for i := range len(b) {
			if _, err := Parse(b[:i]); !errors.Is(err, ErrTruncated) {
				t.Errorf("Parse(first %d of %d bytes) = %v, want %v", i, len(b), err, ErrTruncated)
			}
		}
	}
}

func TestSYNOnly(t *testing.T) {
	for _, tt := range []struct {
		flags header.TCPFlags
		want  bool
	}{
		{header.TCPFlagSyn, true},
		{header.TCPFlagSyn | header.TCPFlagEce | header.TCPFlagCwr, true},
		{header.TCPFlagSyn | header.TCPFlagAck, false},
		{header.TCPFlagSyn | header.TCPFlagRst, false},
		{header.TCPFlagSyn | header.TCPFlagFin, false},
		{header.TCPFlagAck, false},
	} {
		p, err := Parse(build(client4, virt4, tt.flags, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.SYNOnly(); got != tt.want {
			t.Errorf("SYNOnly() with flags %v = %v, want %v", tt.flags, got, tt.want)
		}
	}
}

// TestRewrite translates golden packets both ways and compares them byte for byte with the
// packets gVisor builds for the new addresses, for complete and partial checksums.
func TestRewrite(t *testing.T) {
	for _, tt := range []struct {
		name                 string
		src, dst, nsrc, ndst netip.AddrPort
		flags                header.TCPFlags
		opts, payload        []byte
	}{
		{"ipv4 syn to target", client4, virt4, local4, target4, header.TCPFlagSyn, mss1460, nil},
		{"ipv4 data to target", client4, virt4, local4, target4, header.TCPFlagAck | header.TCPFlagPsh, nil, payload},
		{"ipv4 reply to client", target4, local4, virt4, client4, header.TCPFlagAck, nil, payload},
		{"ipv6 syn to target", client6, virt6, local6, target6, header.TCPFlagSyn, mss1460, nil},
		{"ipv6 data to target", client6, virt6, local6, target6, header.TCPFlagAck, nil, payload},
		{"ipv6 reply to client", target6, local6, virt6, client6, header.TCPFlagAck | header.TCPFlagFin, nil, payload},
		{"same tuple", client4, virt4, client4, virt4, header.TCPFlagAck, nil, payload},
	} {
		want := build(tt.nsrc, tt.ndst, tt.flags, tt.opts, tt.payload)
		t.Run(tt.name+"/complete", func(t *testing.T) {
			b := build(tt.src, tt.dst, tt.flags, tt.opts, tt.payload)
			p, _ := Parse(b)
			if err := p.Rewrite(tt.nsrc, tt.ndst, Complete); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("Rewrite:\n got %x\nwant %x", b, want)
			}
			if err := p.Verify(); err != nil {
				t.Errorf("Verify() after Rewrite = %v", err)
			}
		})
		t.Run(tt.name+"/partial", func(t *testing.T) {
			b := build(tt.src, tt.dst, tt.flags, tt.opts, tt.payload)
			p, _ := Parse(b)
			binary.BigEndian.PutUint16(p.TCP()[16:], p.PseudoHeaderSum()) // as the kernel hands it out
			if err := p.Rewrite(tt.nsrc, tt.ndst, Partial); err != nil {
				t.Fatal(err)
			}
			if got, want := p.TCP().Checksum(), p.PseudoHeaderSum(); !sameSum(got, want) {
				t.Errorf("partial checksum after Rewrite = %#04x, want the new pseudo-header sum %#04x", got, want)
			}
			p.SetChecksums()
			if !bytes.Equal(b, want) {
				t.Errorf("Rewrite then SetChecksums:\n got %x\nwant %x", b, want)
			}
		})
	}
}

func TestRewriteFamily(t *testing.T) {
	b := build(client4, virt4, header.TCPFlagSyn, nil, nil)
	orig := bytes.Clone(b)
	p, _ := Parse(b)
	if err := p.Rewrite(local6, target6, Complete); !errors.Is(err, ErrFamily) {
		t.Errorf("Rewrite(ipv4 packet, ipv6 addresses) = %v, want %v", err, ErrFamily)
	}
	if err := p.Rewrite(local4, target6, Complete); !errors.Is(err, ErrFamily) {
		t.Errorf("Rewrite(ipv4 packet, mixed addresses) = %v, want %v", err, ErrFamily)
	}
	if !bytes.Equal(b, orig) {
		t.Errorf("refused Rewrite changed the packet")
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(local4.Addr().As16()), local4.Port())
	if err := p.Rewrite(mapped, target4, Complete); err != nil {
		t.Errorf("Rewrite(ipv4 packet, ipv4-mapped source) = %v, want nil", err)
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	for _, off := range []int{8, 12, 20, 20 + 4, 20 + 20 + 3} { // TTL, source, port, seq, payload
		b := build(client4, virt4, header.TCPFlagAck, nil, payload)
		b[off] ^= 0x40
		p, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(); !errors.Is(err, ErrChecksum) {
			t.Errorf("Verify() with byte %d flipped = %v, want %v", off, err, ErrChecksum)
		}
	}
}

func TestClampMSS(t *testing.T) {
	noMSS := []byte{1, 1, 4, 2}
	bad := []byte{2, 1, 0, 0} // option length 1
	for _, tt := range []struct {
		name    string
		flags   header.TCPFlags
		opts    []byte
		max     uint16
		changed bool
		wantMSS uint16 // 0: no MSS option expected
	}{
		{"syn even offset lowered", header.TCPFlagSyn, mss1460, 1360, true, 1360},
		{"syn-ack odd offset lowered", header.TCPFlagSyn | header.TCPFlagAck, nopMSS, 1400, true, 1400},
		{"syn already lower", header.TCPFlagSyn, mss1460, 1460, false, 1460},
		{"ack not touched", header.TCPFlagAck, mss1460, 536, false, 1460},
		{"no mss option not added", header.TCPFlagSyn, noMSS, 536, false, 0},
		{"malformed options left", header.TCPFlagSyn, bad, 536, false, 0},
	} {
		for _, kind := range []Checksum{Complete, Partial} {
			t.Run(tt.name+"/"+kind.String(), func(t *testing.T) {
				for _, ends := range [][2]netip.AddrPort{{client4, virt4}, {client6, virt6}} {
					b := build(ends[0], ends[1], tt.flags, tt.opts, nil)
					p, _ := Parse(b)
					if kind == Partial {
						binary.BigEndian.PutUint16(p.TCP()[16:], p.PseudoHeaderSum())
					}
					if got := p.ClampMSS(tt.max, kind); got != tt.changed {
						t.Errorf("ClampMSS(%d) = %v, want %v", tt.max, got, tt.changed)
					}
					if got := header.ParseSynOptions(p.TCP().Options(), false).MSS; tt.wantMSS != 0 && uint16(got) != tt.wantMSS {
						t.Errorf("MSS after ClampMSS(%d) = %d, want %d", tt.max, got, tt.wantMSS)
					}
					if kind == Partial {
						if got := p.TCP().Checksum(); !sameSum(got, p.PseudoHeaderSum()) {
							t.Errorf("partial checksum after ClampMSS = %#04x, want %#04x", got, p.PseudoHeaderSum())
						}
						p.SetChecksums()
					}
					if err := p.Verify(); err != nil {
						t.Errorf("Verify() after ClampMSS = %v", err)
					}
				}
			})
		}
	}
}

// TestZeroAllocs pins the per-packet path: parse, translate, clamp, verify.
func TestZeroAllocs(t *testing.T) {
	b4 := build(client4, virt4, header.TCPFlagSyn, mss1460, nil)
	b6 := build(client6, virt6, header.TCPFlagSyn, mss1460, nil)
	allocs := testing.AllocsPerRun(100, func() {
		for _, b := range [][]byte{b4, b6} {
			p, err := Parse(b)
			if err != nil {
				panic(err)
			}
			_, _ = p.Src(), p.Dst()
			if p.Version() == 4 {
				p.Rewrite(local4, target4, Complete)
			} else {
				p.Rewrite(local6, target6, Complete)
			}
			p.ClampMSS(1200, Complete)
			p.Verify()
			p.SetChecksums()
		}
	})
	if allocs != 0 {
		t.Errorf("parse+rewrite+clamp+verify: %v allocations per run, want 0", allocs)
	}
}

// sameSum reports whether two one's complement sums are equal (0 and 0xffff both stand for
// zero).
func sameSum(a, b uint16) bool { return a == b || a|b == 0xffff && a&b == 0 && (a == 0 || b == 0) }
