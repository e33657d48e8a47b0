package packet

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Next returns the sequence number after the segment: its sequence number plus its payload,
// SYN and FIN each counting one.
func (p *Packet) Next() uint32 {
	t := p.TCP()
	n := t.SequenceNumber() + uint32(len(p.Payload()))
	f := p.Flags()
	if f&header.TCPFlagSyn != 0 {
		n++
	}
	if f&header.TCPFlagFin != 0 {
		n++
	}
	return n
}

// AppendReset appends to b a RST from src to dst starting at seq, with complete checksums:
// what cuts a flow at one end. A receiver takes it at once if seq is the next it expects
// (RFC 5961); within its window it answers with an ACK, whose reset (AppendResetFor) then
// is exact. The addresses must be of one family.
func AppendReset(b []byte, src, dst netip.AddrPort, seq uint32) []byte {
	return appendReset(b, src, dst, seq, 0, header.TCPFlagRst)
}

// AppendResetFor appends to b the RST that answers the segment p of a connection that does
// not exist, as a TCP stack would (RFC 793 "Reset Generation"): from p's destination to its
// source, at p's acknowledgment number if it has one, else acknowledging p. It appends
// nothing for a RST.
func AppendResetFor(b []byte, p *Packet) []byte {
	f := p.Flags()
	switch {
	case f&header.TCPFlagRst != 0:
		return b
	case f&header.TCPFlagAck != 0:
		return appendReset(b, p.Dst(), p.Src(), p.TCP().AckNumber(), 0, header.TCPFlagRst)
	}
	return appendReset(b, p.Dst(), p.Src(), 0, p.Next(), header.TCPFlagRst|header.TCPFlagAck)
}

func appendReset(b []byte, src, dst netip.AddrPort, seq, ack uint32, flags header.TCPFlags) []byte {
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	start := len(b)
	if sa.Is4() {
		h := make([]byte, header.IPv4MinimumSize)
		header.IPv4(h).Encode(&header.IPv4Fields{
			TotalLength: header.IPv4MinimumSize + header.TCPMinimumSize, TTL: 64,
			Protocol: uint8(header.TCPProtocolNumber), SrcAddr: asAddr(sa), DstAddr: asAddr(da),
		})
		b = append(b, h...)
	} else {
		h := make([]byte, header.IPv6MinimumSize)
		header.IPv6(h).Encode(&header.IPv6Fields{
			PayloadLength: header.TCPMinimumSize, TransportProtocol: header.TCPProtocolNumber,
			HopLimit: 64, SrcAddr: asAddr(sa), DstAddr: asAddr(da),
		})
		b = append(b, h...)
	}
	t := make([]byte, header.TCPMinimumSize)
	header.TCP(t).Encode(&header.TCPFields{
		SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: seq, AckNum: ack,
		DataOffset: header.TCPMinimumSize, Flags: flags,
	})
	b = append(b, t...)
	p, err := Parse(b[start:])
	if err != nil {
		panic("packet: a reset we built does not parse: " + err.Error())
	}
	p.SetChecksums()
	return b
}

func asAddr(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.AsSlice()) }
