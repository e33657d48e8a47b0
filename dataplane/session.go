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
// application keeps up) and it wrote the last whole window within maxWindowDelay (so the
// window, not the path's rate, is the limit); a receiver whose application stops reading
// never grows it. The cap bounds what one session can hold in memory at each node on its
// path.
const (
	DefaultWindow    = 256 << 10
	DefaultWindowCap = 8 << 20
)

// maxWindowDelay is how long a whole window may take to arrive and still grow. On a slow path
// a window that takes longer already holds more than the path carries in that time; a larger
// one would only queue bytes in the link to the hub that every session and channel of the
// node shares, ahead of their keepalives and credential refreshes (TestImpairedHub found
// channels dying of that). A window that grows stops at about twice what the path carries in
// maxWindowDelay, so one session queues at most two seconds of the path's rate, well within
// a channel's DeadAfter (20 s). It must exceed the round trips of real paths, and
// the stalls that losses add to them, or a window never grows on a long path: at 200 ms, a
// path through the hub of 100 ms each way, 1% loss (TestImpairedHub) took 0.8 s per window
// of 256 KiB and stayed at 0.3 MB/s, a third of a plain TCP connection.
const maxWindowDelay = time.Second

// chunk is the most a session reads from its socket into one frame.
const chunk = 64 << 10

// sockCheck is how often a session waiting for credit, so not reading its socket, checks that
// the socket was not reset: an application that stops reading and then goes away must not
// leave its session, and its peer, waiting for the credit that never comes.
const sockCheck = time.Second

// Counters are the byte and connection counts of an inlet or outlet.
type Counters struct {
	Active, Total     atomic.Int64
	BytesIn, BytesOut atomic.Int64 // in: from the local socket into the portal; out: the reverse
	PolicyResets      atomic.Int64 // live sessions reset because their peer no longer passed the policy
	Denied            atomic.Int64 // outlets: connects the policy refused
	Refused           atomic.Int64 // outlets: connects over the cap of sessions per peer; inlets: connects refused, by the outlet or on the path
	Dropped           atomic.Int64 // packet portals: batches of packets dropped under back-pressure
}

// SessionConfig is what inlets and outlets configure alike for their portal sessions. Zero
// values take the documented defaults.
type SessionConfig struct {
	Router    *routing.Router
	Logger    *slog.Logger // default slog.Default()
	Window    int          // initial receive window, default DefaultWindow
	WindowCap int          // default DefaultWindowCap
}

func (c SessionConfig) withDefaults() SessionConfig {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.WindowCap < c.Window {
		c.WindowCap = max(DefaultWindowCap, c.Window)
	}
	return c
}

// session joins one local TCP connection to its peer session across the portal, once
// connected: it knows nothing of how it was opened (an inlet's connect step, connect.go, or
// an outlet's dial). Its worker receives the peer's messages on the transport's goroutine
// and never blocks: it queues received data on the socket's write queue (internal/sockio)
// and writes it itself as far as the socket takes it without waiting, starting a writer
// goroutine only for the rest. A reader goroutine moves socket bytes into data messages as
// the peer's credit allows; it seals and writes them to the transport on its own goroutine
// (routing/tcp does the same), so a frame crosses a node without a hop.
type session struct {
	router *routing.Router
	log    *slog.Logger
	conn   net.Conn
	self   routing.Route // [self]: the return route of everything it sends
	peer   routing.Route // to the peer session, through the end-to-end channel
	name   string
	stats  *Counters
	sockR  *sockio.Reader // nil if conn is not a socket
	tw     sockio.TryWriter
	rb     *routing.Buffer // the read in progress
	want   int
	idle   *time.Timer // the reader's sockCheck while it waits for credit
	// ended, run once when the session ends, takes care of its name on the router (the
	// inlet's connect step may keep it a while to answer a late outlet).
	ended func()

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

	// onEnd, if set, is called once when the session ends (an outlet's count per peer).
	onEnd func()
	// q is the socket's write queue: data received from the peer, then its FIN. Its right to
	// write is the session's creator's until start.
	q       sockio.Queue[*routing.Buffer]
	writeFn func() // writeLoop, bound once so that starting it allocates nothing

	mu        sync.Mutex
	started   bool // a local connection is attached and the session runs
	window    int  // current receive window
	capWindow int
	consumed  int // written since the last window update
	// The pace of the last whole window: grow only after one written within maxWindowDelay.
	markAt    time.Time // when the last whole window had been written
	sinceMark int       // written since markAt
	fast      bool      // that window took at most maxWindowDelay
	now       func() time.Time
	finSent   bool
	finDone   bool // the peer's FIN reached the socket (CloseWrite)
}

// newSession returns a session registered (by its caller) as name; ended runs when it ends.
func newSession(cfg SessionConfig, stats *Counters, name string, ended func()) *session {
	s := &session{
		router: cfg.Router,
		log:    cfg.Logger,
		name:   name,
		self:   routing.MustRoute(routing.LocalAddress(name)),
		stats:  stats,
		ended:  ended,

		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		window:    cfg.Window,
		capWindow: cfg.WindowCap,
		now:       time.Now,
	}
	s.writeFn = s.writeLoop
	return s
}

// cannotTry is the TryWriter of a connection that cannot be written without waiting: it
// takes nothing, so everything goes to the writer goroutine.
type cannotTry struct{}

func (cannotTry) TryWrite([][]byte) (int, error) { return 0, nil }

// attach sets the session's local connection.
func (s *session) attach(conn net.Conn) {
	s.conn = conn
	s.sockR = sockio.NewReader(conn, s.getReadBuffer, s.putReadBuffer)
	if w := sockio.NewWriter(conn); w != nil {
		s.tw = w
	} else if tw, ok := conn.(sockio.TryWriter); ok { // the transparent stack's connections
		s.tw = tw
	} else {
		s.tw = cannotTry{}
	}
}

func (s *session) getReadBuffer() []byte {
	s.rb = routing.NewBuffer(s.want)
	return s.rb.Available()[:s.want]
}

func (s *session) putReadBuffer() {
	s.rb.Release()
	s.rb = nil
}

// setPeer sets the route to the peer session, once it is known.
func (s *session) setPeer(peer routing.Route) {
	s.mu.Lock()
	s.peer = peer
	s.mu.Unlock()
}

// start runs the session once its connection, peer route and initial credit are known. A
// session that ended first, or started already, does not start; one that ended resets its
// peer, which connected for nothing.
func (s *session) start(peer routing.Route, credit uint32) {
	s.mu.Lock()
	if s.isDone() || s.started {
		late := !s.started
		s.mu.Unlock()
		if late {
			s.resetPeer(peer, "the session ended before it started")
		}
		return
	}
	s.peer = peer
	s.credit.Store(int64(credit))
	s.stats.Active.Add(1)
	s.stats.Total.Add(1)
	s.started = true
	s.mu.Unlock()
	s.flush() // what arrived before the connection; gives up the creator's right to write
	go s.readLoop()
}

// HandleMessage takes a message from the peer session. It runs on the transport's goroutine.
// A malformed message resets the session: what the peer meant by it (a credit, an end of
// stream) is lost, and the session could wait for it forever.
func (s *session) HandleMessage(m *routing.Message) {
	pm, err := parse(m.Payload())
	if err != nil {
		if reason, ok := routing.Refusal(m); ok { // the other side's session is gone
			m.Release()
			s.reset(fmt.Errorf("the other side is gone: %s", reason), false)
			return
		}
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
	var write bool
	if b == nil {
		write = s.q.End()
	} else {
		var queued int
		var err error
		if write, queued, err = s.q.Push(b); err != nil {
			return // the session ended
		}
		if queued > s.capWindow+chunk { // the peer ignores our window
			s.reset(errors.New("the other side sent more than its credit"), true)
			return
		}
	}
	if write {
		s.flush()
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

// flush writes the queue to the socket as far as it takes it now, the caller holding the
// right to write; a full socket (or a connection that cannot be written without waiting) gets
// the writer goroutine, which waits for it.
func (s *session) flush() {
	n, _, st, err := s.q.Flush(s.tw)
	if s.wrote(n, st, err) && st == sockio.Held {
		go s.writeFn()
	}
}

// writeLoop is the writer goroutine: it holds the right to write and waits for the socket.
func (s *session) writeLoop() {
	for {
		n, _, st, err := s.q.FlushWait(s.conn, 0)
		if !s.wrote(n, st, err) || st != sockio.Held {
			return
		}
	}
}

// wrote accounts for n bytes written to the socket, returning credit, and passes the peer's
// FIN on when the queue reached it; it reports false if the write failed.
func (s *session) wrote(n int, st sockio.State, err error) bool {
	if n > 0 {
		s.stats.BytesOut.Add(int64(n))
		s.returnCredit(n)
	}
	if err != nil {
		s.reset(fmt.Errorf("write: %w", err), true)
		return false
	}
	if st == sockio.Ended {
		s.mu.Lock()
		s.finDone = true
		both := s.finSent
		s.mu.Unlock()
		s.closeWrite(both)
	}
	return true
}

// returnCredit tells the peer about consumed bytes once a quarter window has gathered, and
// grows the window when everything sent has been written.
func (s *session) returnCredit(n int) {
	s.mu.Lock()
	s.consumed += n
	if s.sinceMark += n; s.sinceMark >= s.window {
		t := s.now()
		s.fast = !s.markAt.IsZero() && t.Sub(s.markAt) <= maxWindowDelay
		s.markAt, s.sinceMark = t, 0
	}
	grant := 0
	if s.consumed >= s.window/4 {
		grant = s.consumed
		s.consumed = 0
		if s.fast && s.q.Len() == 0 && s.window < s.capWindow {
			grant += s.window // double
			s.window *= 2
			s.fast = false // the doubled window must show its own pace
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

// resetPeer resets the session at peer, which will have no one to serve; this session's
// state is not touched.
func (s *session) resetPeer(peer routing.Route, reason string) {
	m := routing.NewMessage()
	m.SetBody(bufferOf(withReason(msgReset, reason)))
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
	var peer routing.Route
	s.endOnce.Do(func() {
		ended = true
		s.mu.Lock()
		close(s.done)
		conn, started := s.conn, s.started
		peer = s.peer
		s.mu.Unlock()
		s.q.Close()
		if conn != nil {
			if abortive {
				abort(conn)
			} else {
				conn.Close()
			}
		}
		if s.ended != nil {
			s.ended()
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
	// on this goroutine and may be ending itself, telling us, at the same moment. A session
	// that never learned its peer has no one to tell.
	if ended && tell != nil && peer.Len() > 0 {
		s.resetPeer(peer, tell.Error())
	}
	return ended
}
