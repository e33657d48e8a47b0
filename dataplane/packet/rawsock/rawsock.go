package rawsock

import (
	"errors"

	"github.com/adjacentnet/adjacent/dataplane/packet"
)

// ErrNotSupported is returned by the constructors on systems other than Linux.
var ErrNotSupported = errors.New("rawsock: raw packet sockets are not supported on this platform (packet-mode portals need Linux)")

// Info describes one packet a Capturer read.
type Info struct {
	Size     int             // the packet's length; more than its buffer held if it was cut
	Checksum packet.Checksum // Partial if the kernel had not yet computed the TCP checksum (TP_STATUS_CSUMNOTREADY)
	// Verified: the kernel or a device checked the TCP checksum (TP_STATUS_CSUM_VALID; of
	// each segment, for a super-packet that GRO made: its field then holds the first
	// segment's, not its own).
	Verified bool
	Ifindex  int // the interface it came in on
}

// Truncated reports whether the packet was longer than the buffer it was read into.
func (i Info) Truncated(buf []byte, offset int) bool { return i.Size > len(buf)-offset }
