package stack

import (
	"context"
	"errors"
	"net"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/adjacentnet/adjacent/internal/sockio"
)

// forward runs, on its own goroutine, for each SYN handlePacket let through: it opens the far
// side and only then answers the client, with a SYN-ACK or, on failure, a reset.
func (s *Stack) forward(r *tcp.ForwarderRequest) {
	id := r.ID()
	defer s.done(id)
	flow := Flow{Client: addrPort(id.RemoteAddress, id.RemotePort), Target: addrPort(id.LocalAddress, id.LocalPort)}
	s.mu.Lock()
	h := s.handlers[flow.Target]
	s.mu.Unlock()
	if h == nil {
		r.Complete(true)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ConnectTimeout)
	sess, err := h(ctx, flow)
	cancel()
	if err != nil {
		s.log.Info("transparent connection refused", "client", flow.Client.String(), "target", flow.Target.String(), "err", err)
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, e := r.CreateEndpoint(&wq)
	if e != nil { // the client gave up, or the stack is closing
		sess.Abort()
		r.Complete(true)
		return
	}
	r.Complete(false)
	sess.Attach(&conn{TCPConn: gonet.NewTCPConn(&wq, ep), ep: ep})
}

// conn is an accepted connection. SetLinger(0) makes Close send a reset, as on a kernel
// socket: the data plane resets the client that way when the portal fails.
type conn struct {
	*gonet.TCPConn
	ep tcpip.Endpoint
	p  payload // TryWrite's, kept so that a write allocates nothing
}

func (c *conn) SetLinger(sec int) error {
	c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: sec >= 0, Timeout: time.Duration(sec) * time.Second})
	return nil
}

// TryWrite writes as much of bufs as the send buffer takes now, in order, without waiting,
// and returns the bytes written; the error is the connection's failure, never "would
// block". It is sockio.TryWriter, as the data plane's writer of kernel sockets is, so a
// portal writes to the stack from the goroutine that delivers, without a hop. It changes
// bufs' elements, and is not safe for concurrent use (the portal's write queue makes one
// writer at a time).
func (c *conn) TryWrite(bufs [][]byte) (int, error) {
	p := &c.p
	p.Buffers = bufs
	defer func() { p.Buffers = nil }() // keep no buffer reachable from here
	total := 0
	for len(p.Buffers) > 0 {
		n, e := c.ep.Write(p, tcpip.WriteOptions{})
		total += int(n)
		switch e.(type) {
		case nil:
			if n == 0 {
				return total, nil
			}
		case *tcpip.ErrWouldBlock:
			return total, nil
		default:
			return total, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errors.New(e.String())}
		}
	}
	return total, nil
}

// payload is bufs as gVisor's Payloader: a reader that knows its length.
type payload struct{ net.Buffers }

func (p *payload) Len() int {
	n := 0
	for _, b := range p.Buffers {
		n += len(b)
	}
	return n
}

var (
	_ net.Conn         = (*conn)(nil)
	_ sockio.TryWriter = (*conn)(nil)
)
