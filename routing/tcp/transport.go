package tcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/internal/backoff"
	"github.com/adjacentnet/adjacent/internal/fairshare"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
)

// Config configures a Transport. Zero values take the documented defaults.
type Config struct {
	Logger *slog.Logger // default slog.Default()

	// PreambleTimeout bounds the wait for a new connection's preamble. Default 5s.
	PreambleTimeout time.Duration
	// FrameTimeout bounds the wait for the rest of a frame whose header has arrived on a
	// connection that is not yet authenticated (a peer that stalls mid-frame). Default 5s.
	FrameTimeout time.Duration
	// HeartbeatInterval is how long a connection may stay silent before it sends a
	// heartbeat. Default 5s.
	HeartbeatInterval time.Duration
	// DeadAfter is how long without any frame (heartbeats included) makes a peer dead.
	// It also bounds a blocked write. Default 20s.
	DeadAfter time.Duration
	// MaxFramePreAuth caps frames before a secure channel has authenticated the peer.
	// Default 16 KiB: room for a handshake message with identity and credentials.
	MaxFramePreAuth int
	// MaxFrame caps frames after authentication. Default and upper bound:
	// routing.MaxBufferData.
	MaxFrame int
	// MaxQueue is how many bytes may wait to be written to one connection; a peer that
	// does not read them is cut off. Default 64 MiB.
	MaxQueue int
	// MaxPreAuthConns caps accepted connections that have not yet authenticated, per
	// listener. Beyond it, a connection from a source holding fewer than another takes the
	// place of the oldest of the source holding the most; any other is closed at once.
	// Default 1024.
	MaxPreAuthConns int
	// MaxPreAuthPerSource caps those from one source address (Conn.Source), so that one
	// host cannot take the whole MaxPreAuthConns. Default 32.
	//
	// The trade-off is NAT: honest clients behind one public address share its 32. Each
	// holds a slot only from connect until its first handshake completes (one or two round
	// trips), so 32 at once is far more than a NAT of honest nodes needs, and far fewer
	// than the 1024 a flood from that address could otherwise hold.
	MaxPreAuthPerSource int
	// PreAuthTimeout bounds how long an accepted connection may stay unauthenticated: one
	// over which no secure channel has completed a handshake by then is closed, heartbeats
	// or not, so pre-authentication slots cannot be held forever. Default 30s.
	PreAuthTimeout time.Duration
	// LocalAddr, when valid, is the source address of dialed connections (a multi-homed
	// host; tests dialing from another loopback address). Default: the system's choice.
	LocalAddr netip.Addr
	// BackoffMin and BackoffMax space dials to an address that keeps failing.
	// Defaults 100ms and 5s.
	BackoffMin, BackoffMax time.Duration
	// DialTimeout bounds one dial. Default 10s.
	DialTimeout time.Duration
	// MaxPendingDials caps the dials in progress (backoff waits included); a Connect or
	// Send that would start one more fails at once. Default 256.
	MaxPendingDials int
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PreambleTimeout, 5*time.Second)
	def(&c.FrameTimeout, 5*time.Second)
	def(&c.HeartbeatInterval, 5*time.Second)
	def(&c.DeadAfter, 20*time.Second)
	def(&c.BackoffMin, 100*time.Millisecond)
	def(&c.BackoffMax, 5*time.Second)
	def(&c.DialTimeout, 10*time.Second)
	def(&c.PreAuthTimeout, 30*time.Second)
	if c.MaxFramePreAuth <= 0 {
		c.MaxFramePreAuth = 16 << 10
	}
	if c.MaxFrame <= 0 || c.MaxFrame > routing.MaxBufferData {
		c.MaxFrame = routing.MaxBufferData
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 64 << 20
	}
	if c.MaxPreAuthConns <= 0 {
		c.MaxPreAuthConns = 1024
	}
	if c.MaxPreAuthPerSource <= 0 {
		c.MaxPreAuthPerSource = 32
	}
	if c.MaxPendingDials <= 0 {
		c.MaxPendingDials = 256
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Transport carries messages over TCP for one router.
type Transport struct {
	router *routing.Router
	cfg    Config
	log    *slog.Logger
	ids    atomic.Uint64

	mu        sync.Mutex
	closed    bool
	conns     map[*Conn]struct{}
	outgoing  map[string]*Conn // by the host:port they were dialed at
	failures  map[string]failure
	listeners map[*Listener]struct{}
	dialing   int // dials in progress

	dialRefusals *ratelog.Logger
	stats        counters
}

type failure struct {
	count int
	next  time.Time // no dial before
}

type counters struct {
	framesIn, framesOut, bytesIn, bytesOut, refused, dropped, dialsRefused atomic.Uint64
}

// Stats are a transport's counters.
type Stats = routing.TransportStats

var _ routing.Transport = (*Transport)(nil)

// New returns a transport that serves r's TCP addresses. It installs itself in r and starts
// nothing: Listen and Connect do.
func New(r *routing.Router, cfg Config) *Transport {
	cfg.setDefaults()
	t := &Transport{
		router:    r,
		cfg:       cfg,
		log:       cfg.Logger.With("component", "tcp"),
		conns:     make(map[*Conn]struct{}),
		outgoing:  make(map[string]*Conn),
		failures:  make(map[string]failure),
		listeners: make(map[*Listener]struct{}),
	}
	t.dialRefusals = ratelog.New(t.log, slog.LevelWarn, "refused dials: too many in progress", refusalLogInterval)
	r.SetTransport(routing.TypeTCP, t)
	return t
}

// Listener accepts connections for a transport.
type Listener struct {
	t        *Transport
	ln       net.Listener
	done     chan struct{}
	refusals *ratelog.Logger

	mu      sync.Mutex
	preAuth *fairshare.Table[netip.Addr, *Conn] // accepted connections not yet authenticated, by Conn.Source (admission.go)
}

// Addr returns the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting; connections already accepted live on.
func (l *Listener) Close() error {
	l.t.mu.Lock()
	delete(l.t.listeners, l)
	l.t.mu.Unlock()
	err := l.ln.Close()
	<-l.done
	l.refusals.Stop()
	return err
}

// Type implements routing.Transport: the transport serves TCP addresses.
func (t *Transport) Type() routing.Type { return routing.TypeTCP }

// Guarantees implements routing.Transport: TCP delivers every frame, in order, up to
// MaxFrame, or the connection fails.
func (t *Transport) Guarantees() routing.Guarantees {
	return routing.Guarantees{Reliable: true, Ordered: true, MaxMessage: t.cfg.MaxFrame}
}

// Listen implements routing.Transport: it accepts connections on addr (host:port) until the
// listener or transport is closed.
func (t *Transport) Listen(addr string) (routing.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen on %s: %w", addr, err)
	}
	l := &Listener{
		t:        t,
		ln:       ln,
		done:     make(chan struct{}),
		refusals: ratelog.New(t.log, slog.LevelWarn, "refused unauthenticated connections", refusalLogInterval),
		preAuth:  fairshare.New[netip.Addr, *Conn](t.cfg.MaxPreAuthPerSource, t.cfg.MaxPreAuthConns),
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		ln.Close()
		return nil, fmt.Errorf("tcp: listen: %w", net.ErrClosed)
	}
	t.listeners[l] = struct{}{}
	t.mu.Unlock()
	go l.accept()
	return l, nil
}

func (l *Listener) accept() {
	defer close(l.done)
	failures := 0
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			failures++
			delay := backoff.Accept.Delay(failures)
			l.t.log.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		failures = 0
		src := sourceOf(nc.RemoteAddr())
		victim, why, limit := l.admit(src)
		if why != "" {
			l.refuse(nc.RemoteAddr(), why, limit)
			nc.Close()
			continue
		}
		if victim != nil {
			l.refuse(victim.RemoteAddr(), "unauthenticated connection closed for another source's", l.t.cfg.MaxPreAuthConns)
			victim.Close()
		}
		c, err := l.t.newConn(nc, "", l)
		if err != nil {
			nc.Close()
			continue
		}
		l.track(c)
		c.start()
	}
}

// Dial implements routing.Transport with Connect.
func (t *Transport) Dial(ctx context.Context, hostport string) (routing.Connection, error) {
	c, err := t.Connect(ctx, hostport)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Connect returns the connection to hostport, dialing it if there is none. Dials to an
// address whose last attempts failed wait out a jittered exponential backoff first.
func (t *Transport) Connect(ctx context.Context, hostport string) (*Conn, error) {
	c, err := t.outgoingConn(hostport)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.ready:
		if c.dialErr != nil {
			return nil, c.dialErr
		}
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("tcp: connect to %s: %w", hostport, ctx.Err())
	}
}

// outgoingConn returns the live or dialing connection to hostport, starting a dial if needed.
func (t *Transport) outgoingConn(hostport string) (*Conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("tcp: connect to %s: %w", hostport, net.ErrClosed)
	}
	if c := t.outgoing[hostport]; c != nil {
		return c, nil
	}
	if t.dialing >= t.cfg.MaxPendingDials {
		t.stats.dialsRefused.Add(1)
		t.dialRefusals.Note(slog.String("last_address", hostport), slog.Int("limit", t.cfg.MaxPendingDials))
		return nil, fmt.Errorf("tcp: connect to %s: %d dials already in progress, the most this node makes at once; try again shortly", hostport, t.cfg.MaxPendingDials)
	}
	c, err := t.newConnLocked(nil, hostport, nil)
	if err != nil {
		return nil, err
	}
	t.outgoing[hostport] = c
	t.dialing++
	wait := time.Until(t.failures[hostport].next)
	go c.dial(hostport, wait)
	return c, nil
}

// Send implements routing.Transport: m's first hop is a TCP address.
func (t *Transport) Send(m *routing.Message) {
	_, v, _ := m.Onward.Next()
	t.mu.Lock()
	c := t.outgoing[string(v)] // no allocation for the lookup
	t.mu.Unlock()
	var err error
	if c == nil {
		c, err = t.outgoingConn(string(v))
	}
	if err != nil {
		t.stats.dropped.Add(1)
		m.Release()
		return
	}
	m.Onward.Pop()
	c.enqueue(m)
}

func (t *Transport) newConn(nc net.Conn, hostport string, l *Listener) (*Conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, net.ErrClosed
	}
	return t.newConnLocked(nc, hostport, l)
}

func (t *Transport) newConnLocked(nc net.Conn, hostport string, l *Listener) (*Conn, error) {
	c := &Conn{
		t:        t,
		nc:       nc,
		name:     "tcp-" + strconv.FormatUint(t.ids.Add(1), 10),
		flow:     t.router.NewFlow(),
		dialed:   hostport,
		listener: l,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		ready:    make(chan struct{}),
	}
	if nc != nil {
		c.source = sourceOf(nc.RemoteAddr())
	}
	if l != nil {
		c.preAuth.Store(true) // the listener admitted it
	}
	if err := t.router.Register(c.name, c); err != nil {
		return nil, err
	}
	t.conns[c] = struct{}{}
	return c, nil
}

// dialed reports the outcome of a dial, for backoff.
func (t *Transport) dialed(hostport string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dialing--
	if err == nil {
		delete(t.failures, hostport)
		return
	}
	f := t.failures[hostport]
	f.count++
	f.next = time.Now().Add(backoff.Exponential{Min: t.cfg.BackoffMin, Max: t.cfg.BackoffMax}.Delay(f.count))
	t.failures[hostport] = f
}

func (t *Transport) forget(c *Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	if c.dialed != "" && t.outgoing[c.dialed] == c {
		delete(t.outgoing, c.dialed)
	}
	t.mu.Unlock()
	t.router.Unregister(c.name)
}

// Stats returns the transport's counters.
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	n := len(t.conns)
	t.mu.Unlock()
	return Stats{
		Connections: n,
		FramesIn:    t.stats.framesIn.Load(), FramesOut: t.stats.framesOut.Load(),
		BytesIn: t.stats.bytesIn.Load(), BytesOut: t.stats.bytesOut.Load(),
		Refused: t.stats.refused.Load(), Dropped: t.stats.dropped.Load(),
		DialsRefused: t.stats.dialsRefused.Load(),
	}
}

// Close closes every listener and connection. It is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	already := t.closed
	t.closed = true
	ls, cs := slices.Collect(maps.Keys(t.listeners)), slices.Collect(maps.Keys(t.conns))
	t.mu.Unlock()
	if already {
		return nil
	}
	for _, l := range ls {
		l.Close()
	}
	for _, c := range cs {
		c.Close()
	}
	t.dialRefusals.Stop()
	return nil
}
