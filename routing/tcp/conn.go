package tcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/internal/signals"
	"github.com/adjacentnet/adjacent/internal/sockio"
	"github.com/adjacentnet/adjacent/routing"
)

// Conn is one TCP connection, a worker at its local address. Local workers send through it by
// routing to that address; messages that arrive on it enter the router with its flow.
type Conn struct {
	t        *Transport
	name     string
	flow     routing.FlowID
	dialed   string    // host:port this side dialed, "" for an accepted connection
	listener *Listener // that accepted it, nil for a dialed connection

	ready   chan struct{} // closed once nc is usable or the dial has failed
	dialErr error         // set before ready is closed
	done    chan struct{} // closed by Close
	wake    chan struct{} // the right to write is handed to the writer goroutine

	authenticated atomic.Bool
	preAuth       atomic.Bool // counted in the listener's pre-authentication slots
	closeOnce     sync.Once

	wrote atomic.Bool // a frame went out since the last heartbeat tick

	// q holds the frames waiting to be written, the first maybe partly written. Its right to
	// write is the writer goroutine's until the preamble is out.
	q sockio.Queue[*routing.Buffer]
	// sock writes without waiting, for whoever holds the right to write; nil if nc is not a
	// socket: the writer goroutine writes everything. Set before the right is first given up.
	sock *sockio.Writer

	mu       sync.Mutex
	nc       net.Conn
	source   netip.Addr  // sourceOf the peer's address, once nc is set
	authWait *time.Timer // an accepted connection's PreAuthTimeout, until it authenticates
	closed   bool
}

// Address returns the local address through which workers send on this connection.
func (c *Conn) Address() routing.Address { return routing.LocalAddress(c.name) }

// Flow returns the flow of the messages that arrive on this connection.
func (c *Conn) Flow() routing.FlowID { return c.flow }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Guarantees implements routing.Link: those of the transport.
func (c *Conn) Guarantees() routing.Guarantees { return c.t.Guarantees() }

// Backlog implements routing.Backlogged: the bytes queued to be written to the socket.
func (c *Conn) Backlog() int { return c.q.Len() }

// Authenticated raises the frame cap: a secure channel completed a handshake over c.
func (c *Conn) Authenticated() {
	c.authenticated.Store(true)
	c.uncountPreAuth()
}

func (c *Conn) uncountPreAuth() {
	if c.listener != nil && c.preAuth.CompareAndSwap(true, false) {
		c.mu.Lock()
		if c.authWait != nil {
			c.authWait.Stop()
		}
		src := c.source
		c.mu.Unlock()
		c.listener.unadmit(src, c)
	}
}

// Source returns the address the peer connects from, as admission counts it: its IPv4
// address, or the /64 network of its IPv6 address. It is the zero Addr while dialing.
// Listeners above the transport (secure-channel handshakes) cap their own work per source
// with it.
func (c *Conn) Source() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.source
}

// RemoteAddr returns the peer's address, or nil while dialing.
func (c *Conn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc == nil {
		return nil
	}
	return c.nc.RemoteAddr()
}

// HandleMessage sends m, addressed to this connection, to the peer.
func (c *Conn) HandleMessage(m *routing.Message) {
	m.Onward.Pop()
	c.enqueue(m)
}

// enqueue frames m in place and queues it. It never blocks.
//
// Frames go out without a goroutine hop when the socket has room: the sender that finds no one
// writing takes the right to write and writes everything queued itself, without waiting
// (sockio.Queue). When the socket is full it hands the right, with what is left, to the writer
// goroutine, which waits for the socket; senders meanwhile only queue, so order is kept.
func (c *Conn) enqueue(m *routing.Message) {
	m.PutHeader()
	b := m.TakeBody()
	m.Release()
	n := b.Len()
	if n > c.t.cfg.MaxFrame {
		c.t.stats.dropped.Add(1)
		c.t.log.Warn("dropped message over the frame limit", "conn", c.name, "bytes", n, "limit", c.t.cfg.MaxFrame)
		b.Release()
		return
	}
	binary.BigEndian.PutUint32(b.Prepend(frameHeaderLen), uint32(n))
	write, queued, err := c.q.Push(b)
	if err != nil { // closed
		c.t.stats.dropped.Add(1)
		return
	}
	if queued > c.t.cfg.MaxQueue {
		c.t.log.Warn("closing connection: peer is not reading", "conn", c.name, "queued_bytes", c.t.cfg.MaxQueue)
		c.Close()
		return
	}
	if write {
		c.flushNow()
	}
}

// flushNow writes the queue while the socket takes it; the caller holds the right to write.
// It gives the right up when the queue is empty, or hands it to the writer goroutine.
func (c *Conn) flushNow() {
	if c.sock == nil {
		c.wakeWriter()
		return
	}
	n, frames, st, err := c.q.Flush(c.sock)
	c.sent(n, frames)
	if err != nil {
		if !c.isClosed() {
			c.t.log.Debug("write failed", "conn", c.name, "err", err)
		}
		c.Close()
		return
	}
	if st == sockio.Held { // the socket is full: the writer goroutine waits for it
		c.wakeWriter()
	}
}

// wakeWriter hands the right to write to the writer goroutine. Only its holder calls it, so
// the channel is empty unless the writer has gone.
func (c *Conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sent counts n bytes in frames written whole.
func (c *Conn) sent(n, frames int) {
	if n > 0 {
		c.wrote.Store(true)
		c.t.stats.bytesOut.Add(uint64(n))
	}
	c.t.stats.framesOut.Add(uint64(frames))
}

// dial connects an outgoing Conn after waiting out any backoff.
func (c *Conn) dial(hostport string, wait time.Duration) {
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-c.done:
		}
	}
	d := net.Dialer{Timeout: c.t.cfg.DialTimeout}
	if la := c.t.cfg.LocalAddr; la.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(la, 0))
	}
	nc, err := d.Dial("tcp", hostport)
	c.t.dialed(hostport, err)
	if err != nil {
		c.dialErr = fmt.Errorf("tcp: connect to %s: %w", hostport, err)
		c.Close() // first: a Connect woken by ready must not find this dead dial still listed
		close(c.ready)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		nc.Close()
		c.dialErr = fmt.Errorf("tcp: connect to %s: %w", hostport, net.ErrClosed)
		close(c.ready)
		return
	}
	c.nc = nc
	c.source = sourceOf(nc.RemoteAddr())
	c.mu.Unlock()
	c.start()
}

// start runs the reader and writer of a connected Conn.
func (c *Conn) start() {
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if c.listener != nil {
		c.mu.Lock()
		if !c.closed && c.preAuth.Load() {
			c.authWait = time.AfterFunc(c.t.cfg.PreAuthTimeout, c.preAuthExpired)
		}
		c.mu.Unlock()
	}
	close(c.ready)
	go c.writeLoop(nc)
	go c.readLoop(nc)
}

// maxBatchBytes bounds one write of the writer goroutine: with DeadAfter's 20 s, a peer
// reading slower than 50 KB/s is taken for dead.
const maxBatchBytes = 1 << 20

// writeLoop writes the preamble, then whatever is handed to it while the socket is full, and
// heartbeats while nothing else is written. A Conn is born with the right to write held for
// the writer goroutine, so no frame overtakes the preamble.
func (c *Conn) writeLoop(nc net.Conn) {
	defer c.Close()
	cfg := &c.t.cfg
	nc.SetWriteDeadline(time.Now().Add(cfg.DeadAfter))
	if _, err := nc.Write(preamble[:]); err != nil {
		return
	}
	c.sock = sockio.NewWriter(nc) // once the right is given up, senders write themselves
	heartbeat := time.NewTicker(cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	for held := true; ; {
		// Holding the right to write: write until the queue is empty, waiting for the socket.
		for held {
			// The write deadline bounds a peer that makes no progress, so each write is small
			// enough to go through well within it at any reasonable pace, and gets a fresh one.
			nc.SetWriteDeadline(time.Now().Add(cfg.DeadAfter))
			n, frames, st, err := c.q.FlushWait(nc, maxBatchBytes)
			c.sent(n, frames)
			if err != nil {
				if !c.isClosed() {
					c.t.log.Debug("write failed", "conn", c.name, "err", err)
				}
				return
			}
			held = st == sockio.Held
		}
		select {
		case <-c.wake: // a sender found the socket full
			held = true
		case <-heartbeat.C:
			// The write deadline is the socket's, so it also applies to the senders'
			// non-blocking writes (sockio's RawConn.Write fails at once with "i/o timeout"
			// once it has passed, even with room in the socket). While senders write
			// everything themselves, this goroutine writes nothing and would never move
			// it: the connection died DeadAfter after its last refresh, under steady
			// traffic. Refresh it on every tick; a write blocked here still runs into it,
			// as no tick is taken meanwhile.
			nc.SetWriteDeadline(time.Now().Add(cfg.DeadAfter))
			if c.wrote.Swap(false) || !c.q.Acquire() {
				continue // traffic went out, or a sender is writing
			}
			held = true
			if _, err := nc.Write([]byte{0, 0, 0, 0}); err != nil {
				return
			}
		case <-c.done:
			return
		}
	}
}

func (c *Conn) readLoop(nc net.Conn) {
	defer c.Close()
	cfg := &c.t.cfg
	var pre [4]byte
	nc.SetReadDeadline(time.Now().Add(cfg.PreambleTimeout))
	if _, err := io.ReadFull(nc, pre[:]); err != nil {
		c.refuse(nc, fmt.Errorf("no preamble: %w", err))
		return
	}
	if err := checkPreamble(pre); err != nil {
		c.refuse(nc, err)
		return
	}
	fr := frameReader{r: bufio.NewReaderSize(nc, 32<<10)}
	var deadlined time.Time
	for {
		// The dead-peer deadline is refreshed at most four times per DeadAfter, not per
		// frame; heartbeats arrive far more often, so a live peer never hits it.
		if now := time.Now(); now.Sub(deadlined) > cfg.DeadAfter/4 {
			nc.SetReadDeadline(now.Add(cfg.DeadAfter))
			deadlined = now
		}
		hdr, err := fr.header()
		if err != nil {
			c.readFailed(err)
			return
		}
		if hdr == 0 {
			continue // heartbeat
		}
		authed := c.authenticated.Load()
		limit := cfg.MaxFrame
		if !authed {
			limit = cfg.MaxFramePreAuth
		}
		n, err := checkLength(hdr, limit)
		if err != nil {
			c.refuse(nc, fmt.Errorf("%w (authenticated: %v)", err, authed))
			return
		}
		if !authed { // an unauthenticated peer must not hold a frame open
			nc.SetReadDeadline(time.Now().Add(cfg.FrameTimeout))
			deadlined = time.Time{}
		}
		b, err := fr.body(n)
		if err != nil {
			if !authed {
				c.refuse(nc, err)
			} else {
				c.readFailed(err)
			}
			return
		}
		c.t.stats.framesIn.Add(1)
		c.t.stats.bytesIn.Add(uint64(n + frameHeaderLen))
		m := routing.NewMessage()
		m.SetBody(b)
		if err := m.DecodeBody(); err != nil {
			m.Release()
			c.refuse(nc, err)
			return
		}
		if err := m.Return.Push(c.Address()); err != nil {
			m.Release()
			continue
		}
		m.Local = routing.Local{Flow: c.flow, Spawner: routing.FlowTransports, Link: c}
		c.t.router.Send(m)
	}
}

// refuse logs why a peer broke the protocol; the caller then closes the connection.
func (c *Conn) refuse(nc net.Conn, why error) {
	if c.isClosed() {
		return
	}
	if c.listener != nil && !c.authenticated.Load() { // perhaps one of a flood
		c.listener.refuse(nc.RemoteAddr(), "protocol violation: "+why.Error(), 0)
		return
	}
	c.t.stats.refused.Add(1)
	c.t.log.Warn("closing connection: protocol violation", "conn", c.name, "remote", nc.RemoteAddr().String(), "reason", why.Error())
}

func (c *Conn) readFailed(err error) {
	if c.isClosed() || errors.Is(err, io.EOF) {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.log.Info("closing connection: peer silent", "conn", c.name, "err", err)
		return
	}
	c.t.log.Debug("read failed", "conn", c.name, "err", err)
}

func (c *Conn) isClosed() bool { return signals.Closed(c.done) }

// Close closes the connection and drops what is still queued. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		nc := c.nc
		c.mu.Unlock()
		c.q.Close()
		close(c.done)
		if nc != nil {
			nc.Close()
		}
		c.uncountPreAuth()
		c.t.forget(c)
	})
	return nil
}
