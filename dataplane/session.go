package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/adjacentnet/adjacent/routing"
)

// Window sizes of a session's receive side, in bytes. The window starts small and doubles,
// up to the cap, each time the receiver finds it has written everything it was sent (the
// application keeps up, so the path's bandwidth-delay product is the limit); a receiver whose
// application stops reading never grows it. The cap bounds what one session can hold in
// memory at each node on its path.
const (
	DefaultWindow    = 256 << 10
	DefaultWindowCap = 8 << 20
)

// chunk is the most a session reads from its socket into one frame.
const chunk = 64 << 10

// Counters are the byte and connection counts of an inlet or outlet.
type Counters struct {
	Active, Total     atomic.Int64
	BytesIn, BytesOut atomic.Int64 // in: from the local socket into the portal; out: the reverse
}

// session joins one local TCP connection to its peer session across the portal. Its worker
// (at self) receives the peer's messages on the transport's goroutine and never blocks; a
// reader goroutine moves socket bytes into data messages as the peer's credit allows; a
// writer goroutine, started while there is something to write, moves received data to the
// socket and returns credit.
type session struct {
	router *routing.Router
	log    *slog.Logger
	conn   net.Conn
	self   routing.Route // [self]: the return route of everything it sends
	peer   routing.Route // to the peer session, through the end-to-end channel
	name   string
	stats  *Counters
	ready  *readiness

	group    *groups // that resets the session if its path goes
	groupKey <-chan struct{}

	credit  atomic.Int64  // bytes the peer will still accept
	wake    chan struct{} // credit arrived, or the session ended
	done    chan struct{} // closed when the session is over
	endOnce sync.Once

	answer chan *routing.Message // while connecting: the outlet's connected or refused
	// The writer's reusable state, so that starting it allocates nothing.
	writeFn func()
	iov     net.Buffers       // backing array of the vectors
	wv      net.Buffers       // the vectors being written, consumed by WriteTo
	spare   []*routing.Buffer // a drained queue's array, for the queue to reuse

	mu        sync.Mutex
	started   bool              // a local connection is attached and the session runs
	queue     []*routing.Buffer // received data not yet written; nil entry: the peer's FIN
	queued    int
	writing   bool
	window    int // current receive window
	capWindow int
	consumed  int // written since the last window update
	finSent   bool
	finDone   bool // the peer's FIN reached the socket (CloseWrite)
}

func newSession(r *routing.Router, log *slog.Logger, conn net.Conn, name string, stats *Counters, window, capWindow int) *session {
	s := &session{
		router: r,
		log:    log,
		conn:   conn,
		name:   name,
		self:   routing.MustRoute(routing.LocalAddress(name)),
		stats:  stats,

		wake:      make(chan struct{}, 1),
		answer:    make(chan *routing.Message, 1),
		done:      make(chan struct{}),
		window:    window,
		capWindow: capWindow,
	}
	if conn != nil {
		s.ready = newReadiness(conn)
	}
	s.writeFn = s.writeLoop
	return s
}

// start runs the session once its connection, peer route and initial credit are known.
func (s *session) start(peer routing.Route, credit uint32) {
	s.peer = peer
	s.credit.Store(int64(credit))
	s.stats.Active.Add(1)
	s.stats.Total.Add(1)
	s.mu.Lock()
	s.started = true
	write := len(s.queue) > 0 && !s.writing // data that arrived before the connection
	s.writing = s.writing || write
	s.mu.Unlock()
	if write {
		go s.writeFn()
	}
	go s.readLoop()
}

// HandleMessage takes a message from the peer session. It runs on the transport's goroutine.
func (s *session) HandleMessage(m *routing.Message) {
	p := m.Payload()
	if len(p) == 0 {
		m.Release()
		return
	}
	switch p[0] {
	case msgConnected, msgRefused:
		select {
		case s.answer <- m:
		default:
			m.Release()
		}
	case msgData:
		b := m.TakeBody()
		m.Release()
		b.Advance(1)
		s.receive(b)
	case msgWindow:
		n, err := u32(p)
		m.Release()
		if err == nil {
			s.credit.Add(int64(n))
			s.signal()
		}
	case msgFin:
		m.Release()
		s.receive(nil)
	case msgReset:
		reason := string(p[1:])
		m.Release()
		s.reset(fmt.Errorf("reset by the other side: %s", reason), false)
	default:
		m.Release()
	}
}

func (s *session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// receive queues data (or the FIN, as nil) for the writer, starting it if idle.
func (s *session) receive(b *routing.Buffer) {
	s.mu.Lock()
	if s.isDone() {
		s.mu.Unlock()
		b.Release()
		return
	}
	s.queue = append(s.queue, b)
	if b != nil {
		s.queued += b.Len()
	}
	over := s.queued > s.capWindow+chunk // the peer ignores our window
	start := !s.writing && s.started
	s.writing = s.writing || start
	s.mu.Unlock()
	if over {
		s.reset(errors.New("the other side sent more than its credit"), true)
		return
	}
	if start {
		go s.writeFn()
	}
}

// readLoop moves bytes from the socket into data messages while the peer gives credit.
func (s *session) readLoop() {
	full := false // the last read filled its buffer: more is probably waiting
	for {
		for s.credit.Load() <= 0 {
			select {
			case <-s.wake:
			case <-s.done:
				return
			}
		}
		if s.ready != nil && !full {
			if err := s.ready.wait(); err != nil {
				s.readFailed(err)
				return
			}
		}
		want := min(int(s.credit.Load()), chunk)
		b := routing.NewBuffer(want)
		n, err := s.conn.Read(b.Available()[:want])
		if n > 0 {
			full = n == want
			b.Extend(n)
			s.credit.Add(int64(-n))
			s.stats.BytesIn.Add(int64(n))
			s.send(msgData, b)
		} else {
			b.Release()
		}
		if err != nil {
			s.readFailed(err)
			return
		}
	}
}

// readFailed ends the reading direction: a clean end of stream becomes a FIN, anything
// else a reset.
func (s *session) readFailed(err error) {
	if s.isDone() {
		return
	}
	if errors.Is(err, io.EOF) {
		s.send(msgFin, nil)
		s.mu.Lock()
		s.finSent = true
		both := s.finDone
		s.mu.Unlock()
		if both {
			s.finish()
		}
		return
	}
	s.reset(fmt.Errorf("read: %w", err), true)
}

// writeLoop writes queued data to the socket until the queue is empty, returning credit as
// it goes.
func (s *session) writeLoop() {
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue, s.spare = s.spare[:0], nil
		if len(batch) == 0 || s.isDone() {
			s.spare = batch[:0]
			s.writing = false
			s.mu.Unlock()
			for _, b := range batch {
				b.Release()
			}
			return
		}
		s.mu.Unlock()
		fin := batch[len(batch)-1] == nil
		if fin {
			batch = batch[:len(batch)-1]
		}
		s.iov = s.iov[:0]
		n := 0
		for _, b := range batch {
			s.iov = append(s.iov, b.Bytes())
			n += b.Len()
		}
		s.wv = s.iov
		_, err := s.wv.WriteTo(s.conn)
		for i, b := range batch {
			b.Release()
			batch[i] = nil
		}
		s.mu.Lock()
		s.spare = batch[:0]
		s.mu.Unlock()
		if err != nil {
			s.reset(fmt.Errorf("write: %w", err), true)
			return
		}
		s.stats.BytesOut.Add(int64(n))
		s.returnCredit(n)
		if fin {
			s.closeWrite()
		}
	}
}

// returnCredit tells the peer about consumed bytes once a quarter window has gathered, and
// grows the window when everything sent has been written.
func (s *session) returnCredit(n int) {
	s.mu.Lock()
	s.queued -= n
	s.consumed += n
	grant := 0
	if s.consumed >= s.window/4 {
		grant = s.consumed
		s.consumed = 0
		if s.queued == 0 && s.window < s.capWindow {
			grant += s.window // double
			s.window *= 2
		}
	}
	s.mu.Unlock()
	if grant > 0 {
		b := routing.NewBuffer(5)
		w := b.Extend(5)
		w[0] = msgWindow
		binary.BigEndian.PutUint32(w[1:], uint32(grant))
		s.sendRaw(b)
	}
}

// closeWrite passes the peer's FIN on to the socket.
func (s *session) closeWrite() {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	s.mu.Lock()
	s.finDone = true
	both := s.finSent
	s.mu.Unlock()
	if both {
		s.finish()
	}
}

// send frames body (nil: empty) as a message of kind and routes it to the peer.
func (s *session) send(kind byte, body *routing.Buffer) {
	if body == nil {
		body = routing.NewBuffer(1)
	}
	body.Prepend(1)[0] = kind
	s.sendRaw(body)
}

func (s *session) sendRaw(body *routing.Buffer) {
	m := routing.NewMessage()
	m.SetBody(body)
	m.Onward = s.peer
	m.Return = s.self
	s.router.Send(m)
}

func (s *session) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// finish ends a session whose both directions closed cleanly.
func (s *session) finish() { s.end(false, nil) }

// reset ends the session on a failure: the socket is closed with a reset, never a clean
// end of stream, and the peer is told if tell is set.
func (s *session) reset(why error, tell bool) {
	var told error
	if tell {
		told = why
	}
	if s.end(true, told) {
		s.log.Debug("portal session reset", "session", s.name, "reason", why)
	}
}

// abort closes c so that its peer sees a reset.
func abort(c net.Conn) {
	if tc, ok := c.(interface{ SetLinger(int) error }); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// end closes the session once: the socket (with a reset if abortive), the worker, the
// counters; tell, if set, goes to the peer as the reason of a reset. It reports whether this
// call ended the session.
func (s *session) end(abortive bool, tell error) bool {
	ended := false
	s.endOnce.Do(func() {
		ended = true
		s.mu.Lock()
		close(s.done)
		q, conn, started := s.queue, s.conn, s.started
		s.queue = nil
		s.mu.Unlock()
		for _, b := range q {
			b.Release()
		}
		if tell != nil {
			s.sendRaw(bufferOf(withReason(msgReset, tell.Error())))
		}
		if conn != nil {
			if abortive {
				abort(conn)
			} else {
				conn.Close()
			}
		}
		s.router.Unregister(s.name)
		if s.group != nil {
			s.group.remove(s)
		}
		if started {
			s.stats.Active.Add(-1)
		}
	})
	return ended
}
