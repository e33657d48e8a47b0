package routing

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
)

// This file is the contract between the router and its transports, in the manner of
// wireguard-go's conn.Bind: what a transport does, and what it promises about the messages
// it carries, stated here for whoever writes the next one (a batched UDP transport, an
// in-memory one for tests: routing/transporttest).

// Sender is the one thing the router needs of a transport: Send takes ownership of m, whose
// first onward hop is an address of the transport's type, and must not block. A message it
// cannot deliver it releases and counts.
type Sender interface {
	Send(m *Message)
}

// Transport carries routed messages to addresses of one Type, for one Router: the
// constructor installs it (Router.SetTransport), and Router.Transport finds it by type.
//
//   - Dial returns the connection to addr (the value of an address of the transport's
//     type), opening one if there is none; a message routed to the connection's Address
//     reaches the worker at the rest of its route on the peer's node. ctx bounds the wait.
//   - Listen accepts connections at addr until the listener or the transport is closed.
//     Messages that arrive on an accepted connection enter the router under the
//     connection's flow, spawned by FlowTransports, so they reach only workers opened to it.
//   - Send is Sender: to addr's connection, dialing it if need be.
//   - Guarantees states what every connection of the transport gives (Connection.Guarantees
//     may only be the same).
//   - Close closes every listener and connection and makes Dial and Listen fail with
//     net.ErrClosed; it is idempotent.
//
// Every transport pushes its connection's Address onto the return route of each message that
// arrives, and sets Local.Flow, Local.Spawner and Local.Link, so that replies find their way
// back (Message.ReplyRoute) and flow control knows where the message came from. It checks
// lengths before it allocates, and caps messages of a peer that has not authenticated
// (Link.Authenticated) lower than those of one that has.
type Transport interface {
	Sender
	Type() Type
	Dial(ctx context.Context, addr string) (Connection, error)
	Listen(addr string) (Listener, error)
	Guarantees() Guarantees
	Stats() TransportStats
	Close() error
}

// Connection is one connection of a transport, a Link that local workers send through by
// routing to its Address.
type Connection interface {
	Link
	// Flow is the flow of the messages that arrive on the connection.
	Flow() FlowID
	// Close closes the connection; Done is closed, and what was queued is dropped.
	Close() error
}

// Listener accepts connections for a transport.
type Listener interface {
	// Addr is the address the listener is bound to.
	Addr() net.Addr
	// Close stops accepting; connections already accepted live on.
	Close() error
}

// TransportStats are a transport's counters.
type TransportStats struct {
	Connections         int
	FramesIn, FramesOut uint64
	BytesIn, BytesOut   uint64
	Refused             uint64 // connections closed for a protocol violation
	Dropped             uint64 // messages that could not be sent
	DialsRefused        uint64 // dials not started: too many were in progress
}

// Guarantees is what a link promises about the messages sent over it, from one end to the
// other, while it lives (while Done is open). A link that fails closes Done: no promise
// covers what was in flight then.
type Guarantees struct {
	// Reliable: every message sent arrives, once (a lost one is sent again, a duplicate
	// dropped), or the link fails.
	Reliable bool
	// Ordered: messages arrive in the order they were sent.
	Ordered bool
	// MaxMessage is the largest encoded message (version, routes and payload) the link
	// carries; a larger one is dropped.
	MaxMessage int
}

// Covers reports whether g gives at least what need asks for.
func (g Guarantees) Covers(need Guarantees) bool {
	return (g.Reliable || !need.Reliable) && (g.Ordered || !need.Ordered) && g.MaxMessage >= need.MaxMessage
}

// String describes g, as in "reliable, ordered, messages up to 262144 bytes".
func (g Guarantees) String() string {
	rel, ord := "unreliable", "unordered"
	if g.Reliable {
		rel = "reliable"
	}
	if g.Ordered {
		ord = "ordered"
	}
	return fmt.Sprintf("%s, %s, messages up to %d bytes", rel, ord, g.MaxMessage)
}

// Stream is what a byte-stream protocol over routed messages (a portal session) needs:
// every message, in order. It says nothing of size.
var Stream = Guarantees{Reliable: true, Ordered: true}

// What a datagram transport (the batched UDP transport to come, wireguard-go's conn.Bind
// over UDP) would change, so that it has a place to go:
//   - its Guarantees are neither Reliable nor Ordered, and MaxMessage is the path's MTU less
//     the headers, so a message never spans datagrams;
//   - the stream portals refuse to run over it (dataplane checks Stream against the links
//     of a path); the packet portals, which carry the client's own TCP segments end to end,
//     need neither and ride it, their loss and order handled by the two kernels' TCP
//     (dataplane/packet/portal). Two things change for them: a batch must fit one
//     datagram, so the inlet's TUN MTU and the MSS it clamps SYNs to come from the path's
//     MaxMessage instead of 64 KiB; and the backlog they drop at (Backlogged) becomes
//     the socket's send buffer, which UDP fills without blocking;
//   - the secure channel needs nothing more: every message has its own counter and the
//     replay window takes reordering and loss; only its handshake, a few messages, must
//     retry on a timer instead of trusting the link to deliver;
//   - a Connection is a remote address with keys, not a socket: heartbeats and the dead
//     peer rule stay, the write queue becomes a batch per send (SendBatch of wireguard-go).

// Kind describes an address type to the route text form: /ip4/ADDR/NAME/PORT for a kind
// whose addresses are host:port (tcp), /NAME/VALUE for one whose addresses are opaque (a
// test's in-memory network).
type Kind struct {
	Name     string // the word in the text form, e.g. "tcp"
	Type     Type
	HostPort bool
}

var kinds = struct {
	sync.RWMutex
	byName map[string]Kind
	byType map[Type]Kind
}{
	byName: map[string]Kind{"tcp": {Name: "tcp", Type: TypeTCP, HostPort: true}},
	byType: map[Type]Kind{TypeTCP: {Name: "tcp", Type: TypeTCP, HostPort: true}},
}

// RegisterKind makes route text parse addresses of kind k. A transport package registers its
// kind once (TCP's is built in); registering the same kind again does nothing, and a name or
// type already taken by another kind is an error.
func RegisterKind(k Kind) error {
	if k.Type == TypeLocal || !validKindName(k.Name) {
		return fmt.Errorf("routing: register address kind %q (type %d): want a lower-case name that is no protocol of the route text and a type other than %d", k.Name, k.Type, TypeLocal)
	}
	kinds.Lock()
	defer kinds.Unlock()
	if old, ok := kinds.byName[k.Name]; ok && old == k {
		return nil
	}
	if _, ok := kinds.byName[k.Name]; ok {
		return fmt.Errorf("routing: register address kind %q: %w", k.Name, ErrExists)
	}
	if old, ok := kinds.byType[k.Type]; ok {
		return fmt.Errorf("routing: register address kind %q: type %d is %q's: %w", k.Name, k.Type, old.Name, ErrExists)
	}
	kinds.byName[k.Name] = k
	kinds.byType[k.Type] = k
	return nil
}

func validKindName(s string) bool {
	switch s {
	case "", ProtoIP4, ProtoIP6, ProtoDNS, ProtoService, ProtoSecure, ProtoProject:
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// kindNamed returns the registered kind called name.
func kindNamed(name string) (Kind, bool) {
	kinds.RLock()
	defer kinds.RUnlock()
	k, ok := kinds.byName[name]
	return k, ok
}

// kindNames lists the registered kinds whose addresses are host:port (or are not), sorted,
// for error messages.
func kindNames(hostPort bool) string {
	kinds.RLock()
	defer kinds.RUnlock()
	var names []string
	for n, k := range kinds.byName {
		if k.HostPort == hostPort {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// InNode is what a message gets that never leaves the node (a link of nil): delivery is a
// synchronous call.
func InNode() Guarantees { return Guarantees{Reliable: true, Ordered: true, MaxMessage: MaxBufferData} }

// Backlogged is what a link that queues may implement as well: how many bytes wait in it to
// be written. A sender with no window of its own (a packet portal, which carries its
// clients' own TCP) drops rather than queue past a bound, and lets the clients' TCP recover.
type Backlogged interface{ Backlog() int }

// BacklogOf returns the bytes waiting in l, or 0 if l does not say.
func BacklogOf(l Link) int {
	if b, ok := l.(Backlogged); ok {
		return b.Backlog()
	}
	return 0
}
