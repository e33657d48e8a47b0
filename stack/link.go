package stack

import (
	"errors"
	"net"
	"os"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/adjacentnet/adjacent/tun"
)

// link is the stack's NIC. Inbound packets are injected by readDevice through the embedded
// channel endpoint; outbound packets are written to the device by the goroutine that sends
// them, in the batches the stack hands over, with no queue and no goroutine hop (which is
// what a reply's latency would otherwise pay twice per round trip).
type link struct {
	*channel.Endpoint
	dev tun.Packets
	log func(err error)

	mu     sync.Mutex
	bufs   [][]byte // scratch, one packet each, with tun.Offset headroom
	out    [][]byte
	closed bool
}

// maxBatch bounds the packets of one device write.
const maxBatch = 64

// WritePackets implements stack.LinkEndpoint: it copies each packet after tun.Offset bytes
// of headroom and writes them to the device. The caller keeps the packets.
func (l *link) WritePackets(pkts gstack.PacketBufferList) (int, tcpip.Error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, &tcpip.ErrClosedForSend{}
	}
	ps := pkts.AsSlice()
	l.out = l.out[:0]
	for _, pkt := range ps {
		if len(l.out) == maxBatch {
			if err := l.flush(); err != nil {
				return 0, err
			}
		}
		i := len(l.out)
		if i == len(l.bufs) {
			l.bufs = append(l.bufs, make([]byte, 0, tun.Offset+int(l.MTU())))
		}
		b := l.bufs[i][:tun.Offset]
		for _, s := range pkt.AsSlices() {
			b = append(b, s...)
		}
		l.out = append(l.out, b)
	}
	if err := l.flush(); err != nil {
		return 0, err
	}
	return len(ps), nil
}

// flush writes l.out; l.mu is held. A packet the device refuses is dropped, as a wire
// would: TCP sends it again.
func (l *link) flush() tcpip.Error {
	if len(l.out) == 0 {
		return nil
	}
	_, err := l.dev.Write(l.out, tun.Offset)
	l.out = l.out[:0]
	if err != nil {
		if errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
			l.closed = true
			return &tcpip.ErrClosedForSend{}
		}
		l.log(err)
	}
	return nil
}

func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	l.bufs, l.out = nil, nil
	l.mu.Unlock()
}
