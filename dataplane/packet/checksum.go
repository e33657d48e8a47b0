package packet

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Checksum says what a packet's TCP checksum field holds.
type Checksum uint8

const (
	// Complete: the checksum as on the wire, over pseudo-header, header and payload.
	Complete Checksum = iota
	// Partial: the folded pseudo-header sum, not inverted, which the kernel or a NIC
	// completes on output (virtio-net NEEDS_CSUM; TP_STATUS_CSUMNOTREADY on capture).
	Partial
)

func (c Checksum) String() string {
	if c == Partial {
		return "partial"
	}
	return "complete"
}

// PseudoHeaderSum returns the folded, not inverted, sum of the TCP pseudo-header: what the
// checksum field of a Partial packet holds.
func (p *Packet) PseudoHeaderSum() uint16 {
	n := p.addrLen()
	s := checksum.Checksum(p.b[p.srcOff():p.srcOff()+2*n], 0) // source and destination are adjacent
	s = checksum.Combine(s, uint16(header.TCPProtocolNumber))
	return checksum.Combine(s, uint16(len(p.b)-p.ihl))
}

// SetChecksums computes the IPv4 header checksum and the TCP checksum from scratch, so the
// packet leaves with complete checksums whatever it held (a Partial packet becomes
// Complete). It costs one pass over the payload.
func (p *Packet) SetChecksums() {
	if p.b[0]>>4 == 4 {
		h := p.b[:p.ihl]
		h[10], h[11] = 0, 0
		binary.BigEndian.PutUint16(h[10:], ^checksum.Checksum(h, 0))
	}
	t := p.b[p.ihl:]
	t[16], t[17] = 0, 0
	binary.BigEndian.PutUint16(t[16:], ^checksum.Checksum(t, p.PseudoHeaderSum()))
}

// Verify checks the IPv4 header checksum and the complete TCP checksum; it returns
// ErrChecksum if either is wrong. It costs one pass over the payload.
func (p *Packet) Verify() error {
	if p.b[0]>>4 == 4 && checksum.Checksum(p.b[:p.ihl], 0) != 0xffff {
		return ErrChecksum
	}
	if checksum.Checksum(p.b[p.ihl:], p.PseudoHeaderSum()) != 0xffff {
		return ErrChecksum
	}
	return nil
}

// update returns checksum field hc after 16-bit words summing to old change to words
// summing to new (RFC 1624 eqn 3, HC' = ~(~HC + ~m + m'), for a Complete field); a Partial
// field holds a sum, not its inverse, so it is updated as S' = S + ~m + m'.
func update(hc uint16, kind Checksum, old, new uint16) uint16 {
	if kind == Partial {
		return checksum.Combine(checksum.Combine(hc, ^old), new)
	}
	return ^checksum.Combine(checksum.Combine(^hc, ^old), new)
}
