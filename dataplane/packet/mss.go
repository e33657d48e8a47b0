package packet

import (
	"encoding/binary"
	"math/bits"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// ClampMSS lowers the MSS option of a SYN or SYN-ACK to max if it is larger, updating the
// TCP checksum of kind incrementally, and reports whether it changed the packet. Like the
// kernel's `tcp option maxseg size set`, it never adds a missing option (the peer then
// assumes 536 bytes), and it leaves segments without SYN and malformed option lists alone.
// It allocates nothing.
func (p *Packet) ClampMSS(max uint16, kind Checksum) bool {
	if p.Flags()&header.TCPFlagSyn == 0 {
		return false
	}
	t := p.b[p.ihl : p.ihl+p.thl]
	for i := header.TCPMinimumSize; i < len(t); {
		switch t[i] {
		case header.TCPOptionEOL:
			return false
		case header.TCPOptionNOP:
			i++
			continue
		}
		if i+1 >= len(t) || t[i+1] < 2 || i+int(t[i+1]) > len(t) {
			return false
		}
		if t[i] == header.TCPOptionMSS && t[i+1] == header.TCPOptionMSSLength {
			old := binary.BigEndian.Uint16(t[i+2:])
			if old <= max {
				return false
			}
			binary.BigEndian.PutUint16(t[i+2:], max)
			if kind == Complete { // options are not in a Partial checksum's pseudo-header sum
				o, n := old, max
				if (i+2)%2 == 1 { // the value straddles two 16-bit words: its bytes sum swapped
					o, n = bits.ReverseBytes16(o), bits.ReverseBytes16(n)
				}
				binary.BigEndian.PutUint16(t[16:], update(binary.BigEndian.Uint16(t[16:]), Complete, o, n))
			}
			return true
		}
		i += int(t[i+1])
	}
	return false
}
