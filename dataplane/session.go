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
	"syscall"
	"time"

	"github.com/adjacentnet/adjacent/internal/signals"
	"github.com/adjacentnet/adjacent/internal/sockio"
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

// sockCheck is how often a session waiting for credit, so not reading its socket, checks that
// the socket was not reset: an application that stops reading and then goes away must not
// leave its session, and its peer, waiting for the credit that never comes.
const sockCheck = time.Second

// lateAnswerWait is how long an inlet session that stopped waiting for its outlet's answer
// stays listed to reset a late one: longer than the outlet's dial timeout (10 s by default).
const lateAnswerWait = 15 * time.Second

// Counters are the byte and connection counts of an inlet or outlet.
type Counters struct {
	Active, Total     atomic.Int64
	BytesIn, BytesOut atomic.Int64 // in: from the local socket into the portal; out: the reverse
	PolicyResets      atomic.Int64 // live sessions reset because their peer no longer passed the policy
	Denied            atomic.Int64 // outlets: connects the policy refused
	Refused           atomic.Int64 // outlets: connects over the cap of sessions per peer
}

// session joins one local TCP connection to its peer session across the portal. Its worker
// (at self) receives the peer's messages on the transport's goroutine and never blocks: it
// writes received data to the socket itself as far as the socket takes it without waiting,
// and starts a writer goroutine only for the rest. A reader goroutine moves socket bytes into
// data messages as the peer's credit allows; it seals and writes them to the transport on its
// own goroutine (routing/tcp does the same), so a frame crosses a node without a hop.
type session struct {
	router *routing.Router
	log    *slog.Logger
	conn   net.Conn
	self   routing.Route // [self]: the return route of everything it sends
	peer   routing.Route // to the peer session, through the end-to-end channel
	name   string
	stats  *Counters
	sockR  *sockio.Reader // nil if conn is not a socket
	sockW  *sockio.Writer
	rb     *routing.Buffer // the read in progress
	want   int
	idle   *time.Timer // the reader's sockCheck while it waits for credit

	group    *groups // that resets the session if its path goes
	groupKey <-chan struct{}
	// subject is the peer node whose identity and attributes the portal's policy judges (the
	// inlet's node at an outlet, the outlet's node at an inlet), set before the session joins
	// its group; nil for a session with this node's own inlet.
	subject routing.Peer

	credit  atomic.Int64  // bytes the peer will still accept
	wake    chan struct{} // credit arrived, or the session ended
	done    chan struct{} // closed when the session is over
	endOnce sync.Once

	answer   chan *routing.Message // while connecting: the outlet's connected or refused
	answered atomic.Bool           // the outlet's answer arrived
	// onAnswer, if set, takes the answer instead, on the transport's goroutine.
	onAnswer func(*routing.Message)
	// onEnd, if set, is called once when the session ends (an outlet's count per peer).
	onEnd func()
	// The writer's reusable state, so that writing allocates nothing.
	writeFn func()
	iov     net.Buffers       // backing array of the vectors
	wv      net.Buffers       // the vectors being written, consumed by WriteTo
	spare   []*routing.Buffer // a drained queue's array, for the queue to reuse

	mu        sync.Mutex
	started   bool              // a local connection is attached and the session runs
	queue     []*routing.Buffer // received data not yet written, the first maybe partly
	queued    int
	finQueued bool // the peer's FIN comes after the queue
	writing   bool // someone holds the right to write to conn
	window    int  // current receive window
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
	s.writeFn = s.writeLoop
	s.attach(conn)
	return s
}

// attach sets the session's local connection.
func (s *session) attach(conn net.Conn) {
	if conn == nil {
		return
	}
	s.conn = conn
	s.sockR = sockio.NewReader(conn, s.getReadBuffer, s.putReadBuffer)
	s.sockW = sockio.NewWriter(conn)
}

func (s *session) getReadBuffer() []byte {
	s.rb = routing.NewBuffer(s.want)
	return s.rb.Available()[:s.want]
}

func (s *session) putReadBuffer() {
	s.rb.Release()
	s.rb = nil
}

// start runs the session once its connection, peer route and initial credit are known.
func (s *session) start(peer routing.Route, credit uint32) {
	s.mu.Lock()
	if s.isDone() || s.started { // reset while it was connecting, or answered twice
		answeredLate := !s.started
		s.mu.Unlock()
		if answeredLate {
			s.resetLate(peer)
		}
		return
	}
	s.peer = peer
	s.credit.Store(int64(credit))
	s.stats.Active.Add(1)
	s.stats.Total.Add(1)
	s.started = true
	write := (len(s.queue) > 0 || s.finQueued) && !s.writing // what arrived before the connection
	s.writing = s.writing || write
	s.mu.Unlock()
	if write {
		go s.writeFn()
	}
	go s.readLoop()
}

// HandleMessage takes a message from the peer session. It runs on the transport's goroutine.
// A malformed message resets the session: what the peer meant by it (a credit, an end of
// stream) is lost, and the session could wait for it forever.
func (s *session) HandleMessage(m *routing.Message) {
	p := m.Payload()
	if len(p) > 0 && (p[0] == msgConnected || p[0] == msgRefused) { // its waiter parses it
		s.answered.Store(true)
		if s.isDone() {
			s.lateAnswer(m)
			return
		}
		if s.onAnswer != nil {
			s.onAnswer(m)
			return
		}
		select {
		case s.answer <- m:
		default:
			m.Release()
		}
		return
	}
	pm, err := parse(p)
	if err != nil {
		m.Release()
		s.reset(fmt.Errorf("from the other side: %w", err), true)
		return
	}
	switch pm.kind {
	case msgData:
		b := m.TakeBody()
		m.Release()
		b.Advance(1)
		s.receive(b)
	case msgWindow:
		m.Release()
		s.credit.Add(int64(pm.n))
		s.signal()
	case msgFin:
		m.Release()
		s.receive(nil)
	case msgReset:
		reason := string(pm.body)
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

// receive queues data (or the FIN, as nil) and writes it if no one else is writing.
func (s *session) receive(b *routing.Buffer) {
	s.mu.Lock()
	if s.isDone() {
		s.mu.Unlock()
		b.Release()
		return
	}
	if b != nil {
		s.queue = append(s.queue, b)
		s.queued += b.Len()
	} else {
		s.finQueued = true
	}
	over := s.queued > s.capWindow+chunk // the peer ignores our window
	write := !s.writing && s.started
	s.writing = s.writing || write
	s.mu.Unlock()
	if over {
		s.reset(errors.New("the other side sent more than its credit"), true)
		return
	}
	switch {
	case !write:
	case s.sockW != nil:
		s.flush(false)
	default: // a connection that cannot be written without waiting
		go s.writeFn()
	}
}

// readLoop moves bytes from the socket into data messages while the peer gives credit.
func (s *session) readLoop() {
	for {
		for s.credit.Load() <= 0 {
			var check <-chan time.Time
			if s.sockR != nil {
				if s.idle == nil {
					s.idle = time.NewTimer(sockCheck)
				}
				s.idle.Reset(sockCheck)
				check = s.idle.C
			}
			select {
			case <-s.wake:
			case <-s.done:
				return
			case <-check:
				if err := s.sockFailed(); err != nil {
					s.reset(fmt.Errorf("socket: %w", err), true)
					return
				}
			}
		}
		s.want = int(min(s.credit.Load(), chunk)) // min first: credit may exceed a 32-bit int
		var n int
		var err error
		if s.sockR != nil {
			n, err = s.sockR.Read() // takes s.rb only once there is something to read
		} else {
			s.getReadBuffer()
			n, err = s.conn.Read(s.rb.Available()[:s.want])
		}
		b := s.rb
		s.rb = nil
		if n > 0 {
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
		err = s.sockFailed() // a reset whose error a write took reads as an end of stream
	}
	if err == nil {
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

// sockFailed looks at the socket, without reading, for a failure no read has reported: an
// error pending on it, or a connection closed though we never shut down our writing, which
// only a reset does. Connections that are not sockets are not looked at.
func (s *session) sockFailed() error {
	if s.sockR == nil {
		return nil
	}
	closed, err := s.sockR.Check()
	if err != nil {
		return err
	}
	s.mu.Lock()
	shut := s.finDone
	s.mu.Unlock()
	if closed && !shut {
		return syscall.ECONNRESET
	}
	return nil
}

// writeLoop is the writer goroutine: it holds the right to write and waits for the socket.
func (s *session) writeLoop() { s.flush(true) }

// flush writes the queue, then the peer's FIN, to the socket, returning credit as it goes;
// the caller holds the right to write and gives it up here. Unless block is set it writes
// only what the socket takes now and leaves the rest to a writer goroutine.
func (s *session) flush(block bool) {
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue, s.spare = s.spare[:0], nil
		if len(batch) == 0 || s.isDone() {
			fin := len(batch) == 0 && s.finQueued && !s.finDone && !s.isDone()
			s.finDone = s.finDone || fin
			both := fin && s.finSent
			s.spare = batch[:0]
			s.writing = false
			s.mu.Unlock()
			for _, b := range batch {
				b.Release()
			}
			if fin {
				s.closeWrite(both)
			}
			return
		}
		s.mu.Unlock()
		s.iov = s.iov[:0]
		for _, b := range batch {
			s.iov = append(s.iov, b.Bytes())
		}
		var n int
		var err error
		if block {
			s.wv = s.iov
			var n64 int64
			n64, err = s.wv.WriteTo(s.conn)
			n = int(n64)
		} else {
			n, err = s.sockW.TryWrite(s.iov)
		}
		i := s.requeue(batch, n)
		if n > 0 {
			s.stats.BytesOut.Add(int64(n))
			s.returnCredit(n)
		}
		if err != nil {
			s.reset(fmt.Errorf("write: %w", err), true)
			return
		}
		if i < len(batch) && !block { // the socket is full: a writer goroutine waits for it
			go s.writeFn()
			return
		}
	}
}

// requeue accounts for n bytes of batch written: it releases what was written whole,
// advances a partly written buffer and puts the rest back in front of the queue. It returns
// the index of the first buffer not written whole.
func (s *session) requeue(batch []*routing.Buffer, n int) int {
	i := 0
	for ; i < len(batch) && n >= batch[i].Len(); i++ {
		n -= batch[i].Len()
		batch[i].Release()
		batch[i] = nil
	}
	if i < len(batch) {
		batch[i].Advance(n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i == len(batch) {
		s.spare = batch[:0]
		return i
	}
	q := append(batch[:0], batch[i:]...)
	clear(batch[len(q):])
	q = append(q, s.queue...)
	clear(s.queue)
	s.spare, s.queue = s.queue[:0], q
	return i
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

// closeWrite passes the peer's FIN on to the socket; both tells that ours went already.
func (s *session) closeWrite(both bool) {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
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

func (s *session) isDone() bool { return signals.Closed(s.done) }

// lateAnswer takes the outlet's answer to a session that stopped waiting for it.
func (s *session) lateAnswer(m *routing.Message) {
	if back, err := m.ReplyRoute(); err == nil && m.Payload()[0] == msgConnected {
		s.resetLate(back)
	}
	m.Release()
}

// resetLate resets the outlet's session at peer, which connected after this one ended: it
// would otherwise hold its target connection with no inlet to serve.
func (s *session) resetLate(peer routing.Route) {
	m := routing.NewMessage()
	m.SetBody(bufferOf(withReason(msgReset, "the inlet stopped waiting for the outlet")))
	m.Onward = peer
	m.Return = s.self
	s.router.Send(m)
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
		if conn != nil {
			if abortive {
				abort(conn)
			} else {
				conn.Close()
			}
		}
		if started || s.answered.Load() {
			s.router.Unregister(s.name)
		} else {
			// Ended while waiting for the outlet: stay listed a while to answer it (lateAnswer).
			time.AfterFunc(lateAnswerWait, func() { s.router.Unregister(s.name) })
		}
		if s.group != nil {
			s.group.remove(s)
		}
		if started {
			s.stats.Active.Add(-1)
		}
		if s.onEnd != nil {
			s.onEnd()
		}
	})
	// Told after the Once, not inside it: a peer on this node's own router handles the reset
	// on this goroutine and may be ending itself, telling us, at the same moment.
	if ended && tell != nil {
		s.sendRaw(bufferOf(withReason(msgReset, tell.Error())))
	}
	return ended
}
