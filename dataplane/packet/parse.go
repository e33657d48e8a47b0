package packet

import (
	"encoding/binary"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Packet is one IPv4 or IPv6 TCP packet, a view of the caller's buffer: its methods read and
// write that buffer in place. The zero Packet is not valid; make one with Parse.
type Packet struct {
	b   []byte // the IP packet, cut to the length its header gives
	ihl int    // IP header length: 20..60 (IPv4) or 40 (IPv6)
	thl int    // TCP header length: 20..60
}

// Parse checks that b begins with a whole IPv4 or IPv6 packet carrying a whole TCP header
// and returns a view of it. Bytes after the length the IP header gives (link padding) are
// not part of the packet. It refuses IPv4 fragments, IPv4 headers shorter than 20 bytes,
// IPv6 extension headers (the next header must be TCP), and TCP data offsets below 5 or past
// the packet. It does not check checksums (see Verify). It allocates nothing.
func Parse(b []byte) (Packet, error) {
	if len(b) < 1 {
		return Packet{}, ErrTruncated
	}
	var p Packet
	switch b[0] >> 4 {
	case 4:
		if len(b) < header.IPv4MinimumSize {
			return Packet{}, ErrTruncated
		}
		p.ihl = int(b[0]&0xf) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if p.ihl < header.IPv4MinimumSize || total < p.ihl {
			return Packet{}, ErrHeader
		}
		if total > len(b) {
			return Packet{}, ErrTruncated
		}
		if binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 { // MF or a fragment offset
			return Packet{}, ErrFragment
		}
		if b[9] != uint8(header.TCPProtocolNumber) {
			return Packet{}, ErrNotTCP
		}
		p.b = b[:total]
	case 6:
		if len(b) < header.IPv6MinimumSize {
			return Packet{}, ErrTruncated
		}
		p.ihl = header.IPv6MinimumSize
		total := p.ihl + int(binary.BigEndian.Uint16(b[4:6]))
		if total > len(b) {
			return Packet{}, ErrTruncated
		}
		if b[6] != uint8(header.TCPProtocolNumber) {
			return Packet{}, ErrNotTCP
		}
		p.b = b[:total]
	default:
		return Packet{}, ErrVersion
	}
	if len(p.b)-p.ihl < header.TCPMinimumSize {
		return Packet{}, ErrTruncated
	}
	p.thl = int(p.b[p.ihl+12]>>4) * 4
	if p.thl < header.TCPMinimumSize {
		return Packet{}, ErrHeader
	}
	if p.thl > len(p.b)-p.ihl {
		return Packet{}, ErrTruncated
	}
	return p, nil
}

// Bytes returns the whole IP packet.
func (p *Packet) Bytes() []byte { return p.b }

// Version returns 4 or 6.
func (p *Packet) Version() int { return int(p.b[0] >> 4) }

// TCP returns the TCP header and payload.
func (p *Packet) TCP() header.TCP { return header.TCP(p.b[p.ihl:]) }

// Payload returns the TCP payload.
func (p *Packet) Payload() []byte { return p.b[p.ihl+p.thl:] }

// Flags returns the TCP flags.
func (p *Packet) Flags() header.TCPFlags { return header.TCPFlags(p.b[p.ihl+13]) }

// SYNOnly reports whether the segment opens a connection: SYN set, and none of ACK, RST or
// FIN.
func (p *Packet) SYNOnly() bool {
	return p.Flags()&(header.TCPFlagSyn|header.TCPFlagAck|header.TCPFlagRst|header.TCPFlagFin) == header.TCPFlagSyn
}

// Src returns the source address and port.
func (p *Packet) Src() netip.AddrPort {
	return netip.AddrPortFrom(p.addr(p.srcOff()), binary.BigEndian.Uint16(p.b[p.ihl:]))
}

// Dst returns the destination address and port.
func (p *Packet) Dst() netip.AddrPort {
	return netip.AddrPortFrom(p.addr(p.dstOff()), binary.BigEndian.Uint16(p.b[p.ihl+2:]))
}

func (p *Packet) addr(off int) netip.Addr {
	if p.b[0]>>4 == 6 {
		return netip.AddrFrom16([16]byte(p.b[off : off+16]))
	}
	return netip.AddrFrom4([4]byte(p.b[off : off+4]))
}

func (p *Packet) addrLen() int {
	if p.b[0]>>4 == 6 {
		return 16
	}
	return 4
}

func (p *Packet) srcOff() int {
	if p.b[0]>>4 == 6 {
		return 8
	}
	return 12
}

func (p *Packet) dstOff() int {
	if p.b[0]>>4 == 6 {
		return 24
	}
	return 16
}
