package routing

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/internal/ratelog"
)

// DefaultRelayClients bounds the client channels one relay keeps open to its owner's answers.
const DefaultRelayClients = 1024

// Relay forwards messages between the owner that registered it and the peers allowed to use
// it (Ockam's forwarder), and nowhere else. A message from anyone else (a client) is sent
// along the stored route to the owner, with the relay's address pushed onto its return route.
// A message from the owner's flow continues along its own onward route, and the stored route
// at the front of its return route (the way back to the owner) is replaced by the relay's
// address. So every route through the relay names the relay, in both directions, and the hops
// behind it stay private to the relay's node.
//
// What the relay forwards stays remote: it keeps its sender's Peer and Link and carries the
// relay's own flow, which is opened only to the first hop of the stored route (the owner's
// channel) and to the first hop of each client's return route (the client's channel, pushed
// there by the channel the client's message came out of) once a client's message has passed.
// So flow control, not the relay, decides where a forwarded message may go: to the owner's
// channel, and back along the channels that clients used, never to a service of this node or
// to a transport. admit decides who may be a client.
type Relay struct {
	router *Router
	self   Address
	flow   FlowID // what the relay forwards carries
	admit  func(m *Message) bool

	maxClients int
	refusals   *ratelog.Logger
	refused    atomic.Uint64 // over the client cap
	dropped    atomic.Uint64 // malformed for its direction, or the relay closed

	mu      sync.RWMutex
	to      Route
	owner   FlowID
	ownerAt string                   // the worker of to's first hop, opened to flow
	clients map[string]*registration // client channels opened to flow, by worker name
	pruned  uint64                   // the router's unregistration count when clients was last pruned
}

// NewRelay returns a relay at the local address name that forwards to the route to, whose
// first hop is the owner's channel, and treats messages of flow owner as the owner's. admit
// (nil admits all) is asked about every message from a non-owner. The relay has a flow of its
// own, which it opens at to's first hop; register it under name.
func NewRelay(r *Router, name string, to Route, owner FlowID, admit func(m *Message) bool) *Relay {
	rl := &Relay{
		router:     r,
		self:       LocalAddress(name),
		flow:       r.NewFlow(),
		admit:      admit,
		maxClients: DefaultRelayClients,
		refusals: ratelog.New(r.log.With("relay", name), slog.LevelWarn,
			"relay refused a client: it holds the most client channels it may", 10*time.Second),
		clients: make(map[string]*registration),
	}
	rl.Update(to, owner)
	return rl
}

// Flow returns the flow of the messages the relay forwards.
func (r *Relay) Flow() FlowID { return r.flow }

// Update points the relay at a new route and owner flow: the owner reconnected. A new owner
// channel starts with no clients: the channels of the old one's clients must send again
// before the owner's answers may reach them.
func (r *Relay) Update(to Route, owner FlowID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if owner == r.owner && to.Equal(&r.to) && r.ownerAt != "" {
		return // the same channel registered again: keep its clients
	}
	r.shutLocked()
	r.to, r.owner = to, owner
	if t, v, ok := to.Next(); ok && t == TypeLocal {
		r.ownerAt = string(v)
		if err := r.router.Open(r.ownerAt, r.flow); err != nil {
			r.router.log.Warn("relay cannot reach its owner", "relay", r.self.Value, "err", err)
		}
	}
}

// Close shuts the relay's flow everywhere it was opened; unregister the relay first.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.shutLocked()
	r.to, r.owner = Route{}, FlowLocal
	r.mu.Unlock()
	r.refusals.Stop()
	return nil
}

func (r *Relay) shutLocked() {
	if r.ownerAt != "" {
		r.router.Shut(r.ownerAt, r.flow)
		r.ownerAt = ""
	}
	for _, reg := range r.clients {
		reg.shut(r.flow)
	}
	clear(r.clients)
}

// Owner returns the owner's flow.
func (r *Relay) Owner() FlowID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.owner
}

// Clients returns how many client channels the relay holds open to its owner's answers.
func (r *Relay) Clients() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.clients)
}

// Refused counts client messages dropped because the relay held too many client channels.
func (r *Relay) Refused() uint64 { return r.refused.Load() }

// Dropped counts the other messages the relay did not forward (admit's refusals aside): from
// the owner's flow but not its end of the stored route, from a client whose return route does
// not start at its channel, too long once rewritten, or after Close. Refusals are in it too.
func (r *Relay) Dropped() uint64 { return r.dropped.Load() }

// HandleMessage forwards m, which stays remote: it keeps its Peer and Link, and carries the
// relay's flow.
func (r *Relay) HandleMessage(m *Message) {
	m.Onward.Pop()
	r.mu.RLock()
	fromOwner, live := r.fromOwnerLocked(m), r.ownerAt != ""
	r.mu.RUnlock()
	// admit may answer m (a refused handshake), so it runs without the lock.
	if !fromOwner && r.admit != nil && !r.admit(m) {
		m.Release() // admit counts and logs its refusals
		return
	}
	ok := live && (fromOwner || r.openClient(m))
	if ok {
		r.mu.RLock()
		ok = fromOwner == r.fromOwnerLocked(m) && r.forward(m, fromOwner)
		r.mu.RUnlock()
	}
	if !ok {
		r.dropped.Add(1)
		m.Release()
		return
	}
	m.Local = Local{Flow: r.flow, Peer: m.Local.Peer, Link: m.Local.Link}
	r.router.Send(m)
}

// fromOwnerLocked reports whether m came from the owner's channel; r.mu is held.
func (r *Relay) fromOwnerLocked(m *Message) bool {
	return r.owner != FlowLocal && m.Local.Flow == r.owner
}

// forward rewrites m's routes for its direction; r.mu is held.
func (r *Relay) forward(m *Message, fromOwner bool) bool {
	if fromOwner {
		if !m.Return.HasPrefix(&r.to) {
			return false // not from the owner's end of the stored route
		}
		m.Return.TrimPrefix(&r.to)
		return m.Return.Push(r.self) == nil
	}
	return r.ownerAt != "" && m.Onward.Prepend(&r.to) == nil && m.Return.Push(r.self) == nil
}

// openClient opens the client's channel, the first hop of m's return route, to the relay's
// flow, so that the owner's answers can go back that way. A remote client's channel is the
// link its message came over, which pushed its own address there; a local sender's return
// route is its own business.
func (r *Relay) openClient(m *Message) bool {
	t, v, ok := m.Return.Next()
	if !ok || t != TypeLocal {
		return false
	}
	if m.Local.Flow != FlowLocal && !m.Local.cameBy(t, v) {
		return false
	}
	reg := r.router.lookupBytes(v)
	if reg == nil {
		return false
	}
	r.mu.RLock()
	known := r.clients[string(v)] == reg
	r.mu.RUnlock()
	if known {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients[string(v)] == reg {
		return true
	}
	if _, stale := r.clients[string(v)]; !stale && len(r.clients) >= r.maxClients && !r.pruneLocked() {
		r.refused.Add(1)
		r.refusals.Note(slog.Int("clients", len(r.clients)), slog.String("client", string(v)))
		return false
	}
	reg.open(r.flow)
	r.clients[string(v)] = reg
	return true
}

// pruneLocked forgets the client channels that are gone (their registrations, with the
// relay's flow opened at them, vanished with them) and reports whether there is room for one more. It
// looks only when a worker was unregistered since it last looked.
func (r *Relay) pruneLocked() bool {
	if gen := r.router.unregistered.Load(); gen != r.pruned {
		r.pruned = gen
		for name, reg := range r.clients {
			if r.router.lookup(name) != reg {
				delete(r.clients, name)
			}
		}
	}
	return len(r.clients) < r.maxClients
}
