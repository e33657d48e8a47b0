package packet

import (
	"encoding/binary"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// Rewrite sets the packet's source to src and destination to dst, updating the IPv4 header
// checksum and the TCP checksum incrementally (RFC 1624): the cost does not depend on the
// payload. kind says what the TCP checksum field holds and is kept: a Complete checksum
// stays complete and valid if it was; a Partial one stays the pseudo-header sum of the new
// addresses (ports are not in the pseudo-header, so they leave it alone). The addresses
// must be of the packet's family (IPv4-mapped IPv6 addresses count as IPv4), else
// ErrFamily and the packet is unchanged. It allocates nothing.
func (p *Packet) Rewrite(src, dst netip.AddrPort, kind Checksum) error {
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	v6 := p.b[0]>>4 == 6
	if sa.Is6() != v6 || da.Is6() != v6 || !sa.IsValid() || !da.IsValid() {
		return ErrFamily
	}
	t := p.b[p.ihl:]
	tcsum := binary.BigEndian.Uint16(t[16:])

	// Addresses: both in the TCP pseudo-header, and in the IPv4 header checksum.
	n := p.addrLen()
	addrs := p.b[p.srcOff() : p.srcOff()+2*n]
	oldSum := checksum.Checksum(addrs, 0)
	if v6 {
		s16, d16 := sa.As16(), da.As16()
		copy(addrs, s16[:])
		copy(addrs[16:], d16[:])
	} else {
		s4, d4 := sa.As4(), da.As4()
		copy(addrs, s4[:])
		copy(addrs[4:], d4[:])
	}
	newSum := checksum.Checksum(addrs, 0)
	tcsum = update(tcsum, kind, oldSum, newSum)
	if !v6 {
		h := p.b[10:12]
		binary.BigEndian.PutUint16(h, update(binary.BigEndian.Uint16(h), Complete, oldSum, newSum))
	}

	// Ports: in the TCP header only, so only a Complete checksum covers them yet.
	if kind == Complete {
		oldPorts := checksum.Combine(binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:]))
		newPorts := checksum.Combine(src.Port(), dst.Port())
		tcsum = update(tcsum, Complete, oldPorts, newPorts)
	}
	binary.BigEndian.PutUint16(t, src.Port())
	binary.BigEndian.PutUint16(t[2:], dst.Port())
	binary.BigEndian.PutUint16(t[16:], tcsum)
	return nil
}
