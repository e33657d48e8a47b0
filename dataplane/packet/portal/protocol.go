package portal

import (
	"encoding/binary"
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/routing"
)

// The first byte of a packet portal's message, after the classic portal's kinds (an outlet
// hands these to its packet worker).
const (
	// msgPackets carries one or more IP packets, each as [length u16][offload u16][packet]
	// (see putRecordHeader).
	msgPackets = dataplane.FirstPacketKind + iota
	msgCheck   // inlet -> outlet: would packets from this sender be carried?
	msgChecked // outlet -> inlet: they would
	msgRefused // outlet -> inlet: [reason]: the check, or a flow's SYN, was refused
)

// maxReason bounds a refusal's reason.
const maxReason = 256

var errMalformed = errors.New("malformed packet portal message")

// recordHeader is the length and offload in front of each packet of a msgPackets body.
const recordHeader = 4

// A record's offload field says what the packet's TCP checksum holds and whether it is a
// super-packet (packet.Offload): 0, a complete checksum; onePartial, a partial one; any other
// value, a partial checksum and the payload size of the super-packet's segments. The
// kernels at both ends then skip the checksum passes no one needs: the client's TCP trusts
// a partial checksum as it trusts its own, and a super-packet is cut into segments only where
// a device needs it.
const onePartial = 0xffff

// putRecordHeader writes the header of a record of an n-byte packet with offload o.
func putRecordHeader(h []byte, n int, o packet.Offload) {
	v := uint16(0)
	if o.Checksum == packet.Partial {
		v = onePartial
		if o.Segment != 0 {
			v = o.Segment
		}
	}
	binary.BigEndian.PutUint16(h, uint16(n))
	binary.BigEndian.PutUint16(h[2:], v)
}

func offloadOf(v uint16) packet.Offload {
	switch v {
	case 0:
		return packet.Offload{}
	case onePartial:
		return packet.Offload{Checksum: packet.Partial}
	}
	return packet.Offload{Checksum: packet.Partial, Segment: v}
}

// eachPacket calls fn with each packet of a msgPackets body (the bytes after the kind) and
// its offload, in order; fn may change the packet's bytes in place. A body that does not
// split exactly into records, or has an empty record or one whose segments would be under
// minSegment, is malformed, and fn has then seen the records before the fault.
func eachPacket(body []byte, fn func(p []byte, o packet.Offload)) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: no packets", errMalformed)
	}
	for len(body) > 0 {
		if len(body) < recordHeader {
			return fmt.Errorf("%w: %d bytes left, no room for a record's header", errMalformed, len(body))
		}
		n := int(binary.BigEndian.Uint16(body))
		if n == 0 || n > len(body)-recordHeader {
			return fmt.Errorf("%w: a packet of %d bytes with %d left", errMalformed, n, len(body)-recordHeader)
		}
		v := binary.BigEndian.Uint16(body[2:])
		if v != 0 && v < minSegment {
			return fmt.Errorf("%w: segments of %d bytes", errMalformed, v)
		}
		fn(body[recordHeader:recordHeader+n], offloadOf(v))
		body = body[recordHeader+n:]
	}
	return nil
}

// appendPacket appends one record to a msgPackets body.
func appendPacket(b, p []byte, o packet.Offload) []byte {
	b = append(b, 0, 0, 0, 0)
	putRecordHeader(b[len(b)-recordHeader:], len(p), o)
	return append(b, p...)
}

// refusal returns the payload of a msgRefused with reason.
func refusal(reason string) []byte {
	return append([]byte{msgRefused}, reason[:min(len(reason), maxReason)]...)
}

// maxMessage is the most a msgPackets payload holds: the kind and one record of the largest
// IP packet, or more records of smaller ones. It fits a pooled buffer of 65 KiB.
const maxMessage = 1 + recordHeader + 65535

// maxBacklog is how many bytes may wait in the link under a path before its packets are
// dropped instead of sent: about 20 ms of a 1 Gbit/s link's worth, enough to ride out a
// burst, far below the transport's limit, where it would cut the connection.
const maxBacklog = 4 << 20

// minSegment is the smallest segment size of a super-packet either end takes: a kernel
// cuts a packet into segments of any size it is told, so a hostile peer could make one
// message into thousands of packets, toward a client behind the inlet's host or a target.
// 536 is the MSS every IPv4 host accepts.
const minSegment = 536

// wholeMin is the size from which a packet goes as a message of its own, in the buffer it
// was read into, instead of being copied among others into a batch.
const wholeMin = 16 << 10

// asMessage makes b, whose data is one packet, a msgPackets message of that one record, in
// place: the kind and the record header go in its headroom.
func asMessage(b *routing.Buffer, o packet.Offload) {
	n := b.Len()
	h := b.Prepend(1 + recordHeader)
	h[0] = msgPackets
	putRecordHeader(h[1:], n, o)
}

// gather appends packet p with offload o as a record to the msgPackets message *b, making
// the message if *b is nil, and reports whether it fitted; if not, *b is unchanged and the
// caller sends it and gathers p into a new one.
func gather(b **routing.Buffer, p []byte, o packet.Offload) bool {
	if *b == nil {
		*b = routing.NewBuffer(maxMessage)
		(*b).Extend(1)[0] = msgPackets
	}
	if (*b).Len()+recordHeader+len(p) > maxMessage {
		return false
	}
	rec := (*b).Extend(recordHeader + len(p))
	putRecordHeader(rec, len(p), o)
	copy(rec[recordHeader:], p)
	return true
}

const (
	synFlag = header.TCPFlagSyn
	synAck  = header.TCPFlagSyn | header.TCPFlagAck
)
