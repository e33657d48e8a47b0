package portal

import (
	"encoding/binary"
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/routing"
)

// The first byte of a packet portal's message, after the classic portal's kinds (an outlet
// hands these to its packet worker).
const (
	// msgPackets carries one or more IP packets, each as [length u16][packet].
	msgPackets = dataplane.FirstPacketKind + iota
	msgCheck   // inlet -> outlet: would packets from this sender be carried?
	msgChecked // outlet -> inlet: they would
	msgRefused // outlet -> inlet: [reason]: the check, or a flow's SYN, was refused
)

// maxReason bounds a refusal's reason.
const maxReason = 256

// maxBatch is the most packet bytes a msgPackets message carries, when it holds more than
// one packet: one packet of the largest IP size always fits alone.
const maxBatch = 64 << 10

var errMalformed = errors.New("malformed packet portal message")

// eachPacket calls fn with each packet of a msgPackets body (the bytes after the kind), in
// order; fn may change the packet's bytes in place. A body that does not split exactly into
// [length][packet] records, or has an empty record, is malformed, and fn has then seen the
// records before the fault.
func eachPacket(body []byte, fn func(p []byte)) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: no packets", errMalformed)
	}
	for len(body) > 0 {
		if len(body) < 2 {
			return fmt.Errorf("%w: %d bytes left, no room for a length", errMalformed, len(body))
		}
		n := int(binary.BigEndian.Uint16(body))
		if n == 0 || n > len(body)-2 {
			return fmt.Errorf("%w: a packet of %d bytes with %d left", errMalformed, n, len(body)-2)
		}
		fn(body[2 : 2+n])
		body = body[2+n:]
	}
	return nil
}

// appendPacket appends one record to a msgPackets body.
func appendPacket(b, p []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(p))), p...)
}

// refusal returns the payload of a msgRefused with reason.
func refusal(reason string) []byte {
	return append([]byte{msgRefused}, reason[:min(len(reason), maxReason)]...)
}

// maxMessage is the most a msgPackets payload holds: the kind and one record of the largest
// IP packet, or more records of smaller ones. It fits a pooled buffer of 65 KiB.
const maxMessage = 1 + 2 + 65535

// maxBacklog is how many bytes may wait in the link under a path before its packets are
// dropped instead of sent: about 20 ms of a 1 Gbit/s link's worth, enough to ride out a
// burst, far below the transport's limit, where it would cut the connection.
const maxBacklog = 4 << 20

// gather appends packet p as a record to the msgPackets message *b, making the message if
// *b is nil, and reports whether it fitted; if not, *b is unchanged and the caller sends it
// and gathers p into a new one.
func gather(b **routing.Buffer, p []byte) bool {
	if *b == nil {
		*b = routing.NewBuffer(maxMessage)
		(*b).Extend(1)[0] = msgPackets
	}
	if (*b).Len()+2+len(p) > maxMessage {
		return false
	}
	rec := (*b).Extend(2 + len(p))
	binary.BigEndian.PutUint16(rec, uint16(len(p)))
	copy(rec[2:], p)
	return true
}

const (
	synFlag = header.TCPFlagSyn
	synAck  = header.TCPFlagSyn | header.TCPFlagAck
)
