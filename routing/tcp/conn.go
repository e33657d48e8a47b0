package tcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

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
	wake    chan struct{} // a frame was queued

	authenticated atomic.Bool
	preAuth       atomic.Bool // counted in listener.preAuth
	closeOnce     sync.Once

	mu     sync.Mutex
	nc     net.Conn
	queue  []*routing.Buffer // frames waiting for the writer
	queued int               // their bytes
	closed bool
}

// Address returns the local address through which workers send on this connection.
func (c *Conn) Address() routing.Address { return routing.LocalAddress(c.name) }

// Flow returns the flow of the messages that arrive on this connection.
func (c *Conn) Flow() routing.FlowID { return c.flow }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Authenticated raises the frame cap: a secure channel completed a handshake over c.
func (c *Conn) Authenticated() {
	c.authenticated.Store(true)
	c.uncountPreAuth()
}

func (c *Conn) uncountPreAuth() {
	if c.listener != nil && c.preAuth.CompareAndSwap(true, false) {
		c.listener.preAuth.Add(-1)
	}
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

// enqueue frames m in place and queues it for the writer. It never blocks.
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
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.t.stats.dropped.Add(1)
		b.Release()
		return
	}
	c.queue = append(c.queue, b)
	c.queued += n + frameHeaderLen
	over := c.queued > c.t.cfg.MaxQueue
	c.mu.Unlock()
	if over {
		c.t.log.Warn("closing connection: peer is not reading", "conn", c.name, "queued_bytes", c.t.cfg.MaxQueue)
		c.Close()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
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
	nc, err := d.Dial("tcp", hostport)
	c.t.dialed(hostport, err)
	if err != nil {
		c.dialErr = fmt.Errorf("tcp: connect to %s: %w", hostport, err)
		close(c.ready)
		c.Close()
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
		c.preAuth.Store(true)
	}
	close(c.ready)
	go c.writeLoop(nc)
	go c.readLoop(nc)
}

// maxBatch bounds the frames in one writev (the kernel's IOV_MAX is 1024).
const maxBatch = 1024

func (c *Conn) writeLoop(nc net.Conn) {
	defer c.Close()
	cfg := &c.t.cfg
	nc.SetWriteDeadline(time.Now().Add(cfg.DeadAfter))
	if _, err := nc.Write(preamble[:]); err != nil {
		return
	}
	heartbeat := time.NewTicker(cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	var (
		spare     []*routing.Buffer
		iov       = make(net.Buffers, 0, maxBatch)
		wrote     bool
		deadlined = time.Now()
	)
	for {
		select {
		case <-c.wake:
		case <-heartbeat.C:
			if !wrote {
				nc.SetWriteDeadline(time.Now().Add(cfg.DeadAfter))
				if _, err := nc.Write([]byte{0, 0, 0, 0}); err != nil {
					return
				}
			}
			wrote = false
			continue
		case <-c.done:
			return
		}
		c.mu.Lock()
		batch := c.queue
		c.queue, c.queued = spare[:0], 0
		c.mu.Unlock()
		if len(batch) == 0 {
			spare = batch
			continue
		}
		// Refresh the write deadline a few times per DeadAfter, not per batch: it bounds a
		// peer that stopped reading, and need not be exact.
		if now := time.Now(); now.Sub(deadlined) > cfg.DeadAfter/4 {
			nc.SetWriteDeadline(now.Add(cfg.DeadAfter))
			deadlined = now
		}
		var err error
		for i := 0; i < len(batch) && err == nil; i += maxBatch {
			iov = iov[:0]
			var n int
			for _, b := range batch[i:min(i+maxBatch, len(batch))] {
				iov = append(iov, b.Bytes())
				n += b.Len()
			}
			_, err = iov.WriteTo(nc)
			c.t.stats.bytesOut.Add(uint64(n))
		}
		c.t.stats.framesOut.Add(uint64(len(batch)))
		for i, b := range batch {
			b.Release()
			batch[i] = nil
		}
		spare = batch
		wrote = true
		if err != nil {
			if !c.isClosed() {
				c.t.log.Debug("write failed", "conn", c.name, "err", err)
			}
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
		n, err := fr.header()
		if err != nil {
			c.readFailed(err)
			return
		}
		if n == 0 {
			continue // heartbeat
		}
		authed := c.authenticated.Load()
		limit := cfg.MaxFrame
		if !authed {
			limit = cfg.MaxFramePreAuth
		}
		if n > limit {
			c.refuse(nc, fmt.Errorf("frame of %d bytes over the limit of %d (authenticated: %v)", n, limit, authed))
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

func (c *Conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Close closes the connection and drops what is still queued. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		q := c.queue
		c.queue = nil
		nc := c.nc
		c.mu.Unlock()
		for _, b := range q {
			b.Release()
		}
		close(c.done)
		if nc != nil {
			nc.Close()
		}
		c.uncountPreAuth()
		c.t.forget(c)
	})
	return nil
}
