package stack

import (
	"errors"
	"net"
	"os"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/adjacentnet/adjacent/tun"
)

// readDevice reads batches of packets from the device and injects them into the stack. A
// large packet is read straight into a pooled gVisor view whose ownership passes to the
// stack, so it is copied once, by the device (from its offload buffer); a small one is
// copied into a view of its own size, since a fresh 64 KiB view costs a 64 KiB clear.
// smallPacket is the size up to which a packet from the device is copied rather than handed
// over in its 64 KiB view.
const smallPacket = 4096

func (s *Stack) readDevice() {
	defer s.wg.Done()
	n := max(s.cfg.Device.BatchSize(), 1)
	size := tun.Offset + s.mtu
	views := make([]*buffer.View, n)
	bufs := make([][]byte, n)
	sizes := make([]int, n)
	defer func() {
		for _, v := range views {
			if v != nil {
				v.Release()
			}
		}
	}()
	for {
		for i := range views {
			if views[i] == nil {
				views[i] = buffer.NewViewSize(size)
				bufs[i] = views[i].AsSlice()
			}
		}
		got, err := s.cfg.Device.Read(bufs, sizes, tun.Offset)
		for i := 0; i < got; i++ {
			if sizes[i] == 0 {
				continue
			}
			var proto tcpip.NetworkProtocolNumber
			switch bufs[i][tun.Offset] >> 4 {
			case 4:
				proto = header.IPv4ProtocolNumber
			case 6:
				proto = header.IPv6ProtocolNumber
			default:
				continue
			}
			var payload buffer.Buffer
			if sizes[i] <= smallPacket {
				s.reopen(proto, bufs[i][tun.Offset:tun.Offset+sizes[i]])
				// An ACK or a small segment: copied into a view of its size, so the big
				// view is kept and need not be allocated (and cleared) again.
				payload = buffer.MakeWithData(bufs[i][tun.Offset : tun.Offset+sizes[i]])
			} else {
				v := views[i]
				views[i] = nil
				v.CapLength(tun.Offset + sizes[i])
				v.TrimFront(tun.Offset)
				payload = buffer.MakeWithView(v)
			}
			pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: payload})
			s.ep.InjectInbound(proto, pkt)
			pkt.DecRef()
		}
		if err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
				return
			}
			if got == 0 {
				// wireguard-go reports malformed offload packets per read; one bad
				// packet must not stop the device.
				s.log.Debug("tun read", "err", err)
			}
		}
	}
}
