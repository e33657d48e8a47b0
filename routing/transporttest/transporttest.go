package transporttest

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/adjacentnet/adjacent/routing"
)

// Type is the address type of in-memory listeners, and Kind its route text form:
// /mem/NAME dials the listener NAME.
const Type routing.Type = 200

// Kind is the address kind of the in-memory transport, registered with routing on import.
var Kind = routing.Kind{Name: "mem", Type: Type}

func init() {
	if err := routing.RegisterKind(Kind); err != nil {
		panic(err)
	}
}

// Address returns the routing address of the listener name.
func Address(name string) routing.Address { return routing.Address{Type: Type, Value: name} }

// Network joins transports: a listener's name is unique on its network.
type Network struct {
	mu        sync.Mutex
	listeners map[string]*Transport
}

// NewNetwork returns an empty network.
func NewNetwork() *Network { return &Network{listeners: make(map[string]*Transport)} }

// Config configures a Transport.
type Config struct {
	// Guarantees is what the transport states; the zero value means routing.Stream with
	// messages up to routing.MaxBufferData. The fake delivers everything in order whatever
	// it states: it is for testing who refuses what.
	Guarantees routing.Guarantees
}

// Transport is an in-memory transport for one router.
type Transport struct {
	r   *routing.Router
	net *Network
	g   routing.Guarantees
	ids atomic.Uint64

	dialMu   sync.Mutex // one dial at a time, so a name has one outgoing connection
	mu       sync.Mutex
	closed   bool
	outgoing map[string]*Conn
	conns    map[*Conn]struct{}

	framesIn, framesOut, bytesIn, bytesOut, dropped atomic.Uint64
}

var _ routing.Transport = (*Transport)(nil)

// New returns a transport on network n for router r and installs it in r.
func New(r *routing.Router, n *Network, cfg Config) *Transport {
	g := cfg.Guarantees
	if g == (routing.Guarantees{}) {
		g = routing.InNode()
	}
	t := &Transport{r: r, net: n, g: g, outgoing: map[string]*Conn{}, conns: map[*Conn]struct{}{}}
	r.SetTransport(Type, t)
	return t
}

// Type implements routing.Transport.
func (t *Transport) Type() routing.Type { return Type }

// Guarantees implements routing.Transport.
func (t *Transport) Guarantees() routing.Guarantees { return t.g }

type addr string

func (a addr) Network() string { return "mem" }
func (a addr) String() string  { return string(a) }

type listener struct {
	t    *Transport
	name string
}

func (l listener) Addr() net.Addr { return addr(l.name) }

func (l listener) Close() error {
	l.t.net.mu.Lock()
	if l.t.net.listeners[l.name] == l.t {
		delete(l.t.net.listeners, l.name)
	}
	l.t.net.mu.Unlock()
	return nil
}

// Listen implements routing.Transport: name becomes reachable on the network.
func (t *Transport) Listen(name string) (routing.Listener, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("mem: listen on %s: %w", name, net.ErrClosed)
	}
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	if t.net.listeners[name] != nil {
		return nil, fmt.Errorf("mem: listen on %s: %w", name, routing.ErrExists)
	}
	t.net.listeners[name] = t
	return listener{t, name}, nil
}

// Dial implements routing.Transport: the connection to the listener name, made if there is
// none.
func (t *Transport) Dial(ctx context.Context, name string) (routing.Connection, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mem: connect to %s: %w", name, err)
	}
	return t.dial(name)
}

func (t *Transport) dial(name string) (*Conn, error) {
	t.dialMu.Lock()
	defer t.dialMu.Unlock()
	t.mu.Lock()
	if c := t.outgoing[name]; c != nil {
		t.mu.Unlock()
		return c, nil
	}
	t.mu.Unlock()
	t.net.mu.Lock()
	far := t.net.listeners[name]
	t.net.mu.Unlock()
	if far == nil {
		return nil, fmt.Errorf("mem: connect to %s: %w", name, routing.ErrNoRoute)
	}
	c, err := t.newConn(name)
	if err != nil {
		return nil, err
	}
	fc, err := far.newConn("")
	if err != nil {
		c.Close()
		return nil, err
	}
	c.setPeer(fc)
	fc.setPeer(c)
	go c.deliver()
	go fc.deliver()
	return c, nil
}

func (t *Transport) newConn(dialed string) (*Conn, error) {
	c := &Conn{
		t:      t,
		name:   "mem-" + strconv.FormatUint(t.ids.Add(1), 10),
		flow:   t.r.NewFlow(),
		dialed: dialed,
		done:   make(chan struct{}),
	}
	c.cond = sync.NewCond(&c.mu)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, net.ErrClosed
	}
	if err := t.r.Register(c.name, c); err != nil {
		return nil, err
	}
	t.conns[c] = struct{}{}
	if dialed != "" {
		t.outgoing[dialed] = c
	}
	return c, nil
}

// Send implements routing.Transport.
func (t *Transport) Send(m *routing.Message) {
	_, v, _ := m.Onward.Next()
	c, err := t.dial(string(v))
	if err != nil {
		t.dropped.Add(1)
		m.Release()
		return
	}
	c.HandleMessage(m)
}

// Stats implements routing.Transport.
func (t *Transport) Stats() routing.TransportStats {
	t.mu.Lock()
	n := len(t.conns)
	t.mu.Unlock()
	return routing.TransportStats{
		Connections: n,
		FramesIn:    t.framesIn.Load(), FramesOut: t.framesOut.Load(),
		BytesIn: t.bytesIn.Load(), BytesOut: t.bytesOut.Load(),
		Dropped: t.dropped.Load(),
	}
}

// Close implements routing.Transport.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	cs := slices.Collect(maps.Keys(t.conns))
	t.mu.Unlock()
	t.net.mu.Lock()
	for name, lt := range t.net.listeners {
		if lt == t {
			delete(t.net.listeners, name)
		}
	}
	t.net.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	return nil
}

// Conn is one end of an in-memory connection, a worker at its local address (mem-N).
type Conn struct {
	t      *Transport
	name   string
	flow   routing.FlowID
	dialed string
	done   chan struct{}
	once   sync.Once

	mu     sync.Mutex
	peer   *Conn // the other end, set once by dial
	cond   *sync.Cond
	queue  [][]byte // encoded messages on their way to peer
	closed bool
	auth   atomic.Bool
}

var _ routing.Connection = (*Conn)(nil)

// Address implements routing.Link.
func (c *Conn) Address() routing.Address { return routing.LocalAddress(c.name) }

// Flow implements routing.Connection.
func (c *Conn) Flow() routing.FlowID { return c.flow }

// Done implements routing.Link.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Authenticated implements routing.Link.
func (c *Conn) Authenticated() { c.auth.Store(true) }

// WasAuthenticated reports whether a secure channel completed a handshake over c.
func (c *Conn) WasAuthenticated() bool { return c.auth.Load() }

// Guarantees implements routing.Link.
func (c *Conn) Guarantees() routing.Guarantees { return c.t.g }

func (c *Conn) setPeer(p *Conn) {
	c.mu.Lock()
	c.peer = p
	c.mu.Unlock()
}

// HandleMessage queues m, addressed to this connection, for the peer. It never blocks.
func (c *Conn) HandleMessage(m *routing.Message) {
	m.Onward.Pop()
	b := m.AppendTo(nil)
	m.Release()
	if len(b) > c.t.g.MaxMessage {
		c.t.dropped.Add(1)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.t.dropped.Add(1)
		return
	}
	c.queue = append(c.queue, b)
	c.mu.Unlock()
	c.cond.Signal()
	c.t.framesOut.Add(1)
	c.t.bytesOut.Add(uint64(len(b)))
}

// deliver moves what is queued to the peer's router, in order, until c is closed.
func (c *Conn) deliver() {
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closed {
			c.cond.Wait()
		}
		if c.closed {
			c.mu.Unlock()
			return
		}
		q, peer := c.queue, c.peer
		c.queue = nil
		c.mu.Unlock()
		for _, b := range q {
			peer.receive(b)
		}
	}
}

// receive enters one encoded message into c's router as if it arrived over the wire.
func (c *Conn) receive(b []byte) {
	c.t.framesIn.Add(1)
	c.t.bytesIn.Add(uint64(len(b)))
	m := routing.NewMessage()
	if err := m.Decode(b); err != nil || m.Return.Push(c.Address()) != nil {
		m.Release()
		c.t.dropped.Add(1)
		return
	}
	m.Local = routing.Local{Flow: c.flow, Spawner: routing.FlowTransports, Link: c}
	c.t.r.Send(m)
}

// Close closes both ends of the connection. It is idempotent.
func (c *Conn) Close() error {
	first := false
	c.once.Do(func() {
		first = true
		c.mu.Lock()
		c.closed = true
		c.queue = nil
		c.mu.Unlock()
		c.cond.Broadcast()
		close(c.done)
		c.t.mu.Lock()
		delete(c.t.conns, c)
		if c.dialed != "" && c.t.outgoing[c.dialed] == c {
			delete(c.t.outgoing, c.dialed)
		}
		c.t.mu.Unlock()
		c.t.r.Unregister(c.name)
	})
	c.mu.Lock()
	peer := c.peer
	c.mu.Unlock()
	if first && peer != nil {
		peer.Close()
	}
	return nil
}
