package packet

import (
	"encoding/binary"
	"errors"
)

// Offload is what travels with a packet besides its bytes, so that no host on the way
// computes or verifies a checksum the kernels on both ends would skip: whether its TCP
// checksum is complete or partial, and, for a super-packet (the kernel's GSO), the payload
// size of its segments. A Partial packet's receiving kernel trusts it as it trusts its own
// locally made packets; its segments, if any, are cut where a device needs them.
type Offload struct {
	Checksum Checksum
	Segment  uint16 // payload bytes per segment of a super-packet; 0: one packet
}

// The virtio-net header (struct virtio_net_hdr, linux/virtio_net.h) that TUN devices with
// IFF_VNET_HDR and packet sockets with PACKET_VNET_HDR put before each packet, in the host's
// byte order (the legacy layout both use).
const (
	VirtioHdrLen = 10

	virtioNeedsCsum = 1 // flags: the checksum field holds the pseudo-header sum
	virtioGSONone   = 0
	virtioGSOTCPv4  = 1
	virtioGSOTCPv6  = 4
	virtioGSOECN    = 0x80
)

// ErrVirtioHdr is a virtio-net header this package does not take: too short, or a
// super-packet that is not TCP.
var ErrVirtioHdr = errors.New("packet: unsupported virtio-net header")

// ParseVirtioHdr reads the offload of the packet behind virtio-net header h, as a TUN device
// hands it out.
func ParseVirtioHdr(h []byte) (o Offload, err error) {
	if len(h) < VirtioHdrLen {
		return Offload{}, ErrVirtioHdr
	}
	flags, gso := h[0], h[1]&^virtioGSOECN
	switch gso {
	case virtioGSONone:
	case virtioGSOTCPv4, virtioGSOTCPv6:
		o.Segment = binary.NativeEndian.Uint16(h[4:])
		if o.Segment == 0 {
			return Offload{}, ErrVirtioHdr
		}
	default:
		return Offload{}, ErrVirtioHdr
	}
	if flags&virtioNeedsCsum != 0 {
		o.Checksum = Partial
	}
	return o, nil
}

// PutVirtioHdr writes into h the virtio-net header that hands p, behind a link-layer header
// of link bytes, to a kernel with offload o: a Partial checksum for the kernel to complete
// (or trust), and a super-packet's segment size when its payload is longer than one
// segment. A Complete packet gets a header of zeros: the kernel verifies it.
func PutVirtioHdr(h []byte, p *Packet, o Offload, link int) {
	clear(h[:VirtioHdrLen])
	if o.Checksum != Partial {
		return
	}
	h[0] = virtioNeedsCsum
	binary.NativeEndian.PutUint16(h[6:], uint16(link+p.ihl))       // csum_start: the TCP header
	binary.NativeEndian.PutUint16(h[8:], 16)                       // csum_offset: its checksum field
	binary.NativeEndian.PutUint16(h[2:], uint16(link+p.ihl+p.thl)) // hdr_len: the headers
	if o.Segment == 0 || len(p.Payload()) <= int(o.Segment) {
		return
	}
	h[1] = virtioGSOTCPv4
	if p.b[0]>>4 == 6 {
		h[1] = virtioGSOTCPv6
	}
	binary.NativeEndian.PutUint16(h[4:], o.Segment)
}

// SetPartial makes the TCP checksum Partial: the field gets the pseudo-header sum, whatever
// it held. It reads the headers only.
func (p *Packet) SetPartial() {
	binary.BigEndian.PutUint16(p.b[p.ihl+16:], p.PseudoHeaderSum())
}
