package stack

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// A connection that the stack closed first (the server ended it) waits in TIME_WAIT here,
// while the client's kernel, which closed second, forgets it at once and may connect again
// from the same port. gVisor gives a new SYN on a TIME_WAIT pair only to a listening
// endpoint (RFC 1122 4.2.2.13); the forwarder is none, so the SYN was dropped and the client
// waited for its retransmission, until the TIME_WAIT ended: a second with ours, a minute
// with gVisor's default, and an i/o timeout for a client that gives up sooner.
//
// reopen does what gVisor does for a listener: a SYN from the device whose pair is in
// TIME_WAIT ends that TIME_WAIT first, so the SYN reaches the forwarder like any other.
// On a TUN device inside one host there are no old duplicate segments in flight that the
// TIME_WAIT would have to absorb, so every such SYN is the client's new connection. Only
// SYNs are looked at: a lookup per connection, none per data segment.
func (s *Stack) reopen(proto tcpip.NetworkProtocolNumber, pkt []byte) {
	id, ok := synID(proto, pkt)
	if !ok {
		return
	}
	ep, ok := s.ns.FindTransportEndpoint(proto, tcp.ProtocolNumber, id, nic).(*tcp.Endpoint)
	if !ok || ep.EndpointState() != tcp.StateTimeWait {
		return
	}
	// Abort leaves TIME_WAIT and the demuxer at once. Its reset carries the old
	// connection's numbers, which the client's new connection does not accept (a kernel
	// in SYN-SENT drops it and sends its SYN again soon).
	ep.Abort()
	s.reopened.Add(1)
}

// synID is the endpoint ID (local = destination) of pkt, an IPv4 or IPv6 packet from the
// device, when it is a TCP SYN without ACK; IPv6 extension headers and IPv4 fragments are
// not followed (such a SYN is left to gVisor).
func synID(proto tcpip.NetworkProtocolNumber, pkt []byte) (gstack.TransportEndpointID, bool) {
	var src, dst tcpip.Address
	var t []byte
	switch proto {
	case header.IPv4ProtocolNumber:
		ip := header.IPv4(pkt)
		if !ip.IsValid(len(pkt)) || ip.TransportProtocol() != header.TCPProtocolNumber || ip.More() || ip.FragmentOffset() != 0 {
			return gstack.TransportEndpointID{}, false
		}
		src, dst, t = ip.SourceAddress(), ip.DestinationAddress(), pkt[ip.HeaderLength():]
	case header.IPv6ProtocolNumber:
		ip := header.IPv6(pkt)
		if !ip.IsValid(len(pkt)) || ip.TransportProtocol() != header.TCPProtocolNumber {
			return gstack.TransportEndpointID{}, false
		}
		src, dst, t = ip.SourceAddress(), ip.DestinationAddress(), pkt[header.IPv6MinimumSize:]
	default:
		return gstack.TransportEndpointID{}, false
	}
	if len(t) < header.TCPMinimumSize {
		return gstack.TransportEndpointID{}, false
	}
	if f := header.TCP(t).Flags(); !f.Contains(header.TCPFlagSyn) || f.Intersects(header.TCPFlagAck|header.TCPFlagRst) {
		return gstack.TransportEndpointID{}, false
	}
	return gstack.TransportEndpointID{
		LocalPort:     binary.BigEndian.Uint16(t[2:4]),
		LocalAddress:  dst,
		RemotePort:    binary.BigEndian.Uint16(t[0:2]),
		RemoteAddress: src,
	}, true
}
