package portal

import (
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/adjacentnet/adjacent/dataplane/packet"
)

// BenchmarkInletSegment is the inlet's own work per client segment of a live flow (parse,
// flow table, gather into the message; one message sent per 64 segments, to a worker that
// drops it): what the packet path adds to the kernels' and the channel's work.
func BenchmarkInletSegment(b *testing.B) {
	in, _, sent, _ := newInlet(b, 0)
	fromClients(in, seg(client, virtual, header.TCPFlagSyn, 1))
	s := seg(client, virtual, header.TCPFlagAck|header.TCPFlagPsh, 2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p, _ := packet.Parse(s)
		in.fromClient(&p, packet.Offload{Checksum: packet.Partial}, nil)
		if i%64 == 63 {
			in.flush()
			sent()
		}
	}
}

// BenchmarkInletAnswer is the inlet's work per segment the outlet sends back (check against
// the flow table, its virtio-net header, the device's write), 64 segments to a message.
func BenchmarkInletAnswer(b *testing.B) {
	in, dev, _, _ := newInlet(b, 0)
	fromClients(in, seg(client, virtual, header.TCPFlagSyn, 1))
	body := []byte{}
	for range 64 {
		body = appendPacket(body, seg(virtual, client, header.TCPFlagAck|header.TCPFlagPsh, 7), packet.Offload{Checksum: packet.Partial})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N / 64 {
		in.toClients(body)
		dev.take()
	}
}
