package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// FuzzRewrite: whatever Parse accepts, a packet given complete checksums still verifies after
// Rewrite and ClampMSS, and a partial one completes to the same bytes; every shorter prefix
// of an accepted packet is refused; Parse never reads past its input.
func FuzzRewrite(f *testing.F) {
	f.Add(build(client4, virt4, header.TCPFlagSyn, mss1460, nil), []byte{192, 168, 7, 2, 127, 0, 0, 1}, uint16(40001), uint16(5432), uint16(1200))
	f.Add(build(client6, virt6, header.TCPFlagSyn|header.TCPFlagAck, nopMSS, nil), []byte(netip.MustParseAddr("2001:db8::2").AsSlice()), uint16(1), uint16(65535), uint16(1380))
	f.Add(build(client4, virt4, header.TCPFlagAck, nil, payload), []byte{0, 0, 0, 0, 255, 255, 255, 255}, uint16(0), uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, b, addrs []byte, sport, dport, mss uint16) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		n := len(p.Bytes())
		for i := range n {
			if _, err := Parse(p.Bytes()[:i]); err == nil {
				t.Fatalf("Parse accepted a %d-byte prefix of a %d-byte packet", i, n)
			}
		}
		src, dst := fuzzAddrs(p.Version(), addrs, sport, dport)
		p.SetChecksums()
		if err := p.Verify(); err != nil {
			t.Fatalf("Verify() after SetChecksums = %v", err)
		}
		partial := bytes.Clone(p.Bytes())
		if err := p.Rewrite(src, dst, Complete); err != nil {
			t.Fatalf("Rewrite(%v, %v) = %v", src, dst, err)
		}
		if p.Src() != src || p.Dst() != dst {
			t.Fatalf("after Rewrite(%v, %v): Src, Dst = %v, %v", src, dst, p.Src(), p.Dst())
		}
		p.ClampMSS(mss, Complete)
		if err := p.Verify(); err != nil {
			t.Fatalf("Verify() after Rewrite and ClampMSS = %v", err)
		}

		q, err := Parse(partial)
		if err != nil {
			t.Fatalf("Parse of the same packet = %v", err)
		}
		binary.BigEndian.PutUint16(q.TCP()[16:], q.PseudoHeaderSum())
		q.Rewrite(src, dst, Partial)
		q.ClampMSS(mss, Partial)
		if got, want := q.TCP().Checksum(), q.PseudoHeaderSum(); !sameSum(got, want) {
			t.Fatalf("partial checksum after Rewrite and ClampMSS = %#04x, want %#04x", got, want)
		}
		q.SetChecksums()
		if err := q.Verify(); err != nil {
			t.Fatalf("Verify() after partial Rewrite, ClampMSS and SetChecksums = %v", err)
		}
		// The two paths differ at most in how they write a zero checksum (0 or 0xffff).
		x, y := p.Bytes(), q.Bytes()
		tc := len(x) - len(p.TCP()) + 16
		if !bytes.Equal(x[:tc], y[:tc]) || !bytes.Equal(x[tc+2:], y[tc+2:]) {
			t.Fatalf("complete and partial paths differ:\n%x\n%x", x, y)
		}
	})
}

func fuzzAddrs(version int, b []byte, sport, dport uint16) (netip.AddrPort, netip.AddrPort) {
	if version == 6 {
		var s, d [16]byte
		copy(s[:], b)
		if len(b) > 16 {
			copy(d[:], b[16:])
		}
		return netip.AddrPortFrom(netip.AddrFrom16(s), sport), netip.AddrPortFrom(netip.AddrFrom16(d), dport)
	}
	var s, d [4]byte
	copy(s[:], b)
	if len(b) > 4 {
		copy(d[:], b[4:])
	}
	return netip.AddrPortFrom(netip.AddrFrom4(s), sport), netip.AddrPortFrom(netip.AddrFrom4(d), dport)
}
