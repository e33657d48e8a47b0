package routing

import "sync"

// Relay forwards messages between the owner that registered it and the peers allowed to use
// it (Ockam's forwarder). A message from anyone else is sent along the stored route to the
// owner, with the relay's address pushed onto its return route. A message from the owner's
// flow continues along its own onward route, and the stored route at the front of its return
// route (the way back to the owner) is replaced by the relay's address. So every route
// through the relay names the relay, in both directions, and the hops behind it stay private
// to the relay's node. In both directions the relay sends as a local worker, so the rest of
// the path is its responsibility: admit decides who may use it.
type Relay struct {
	router *Router
	self   Address
	admit  func(m *Message) bool

	mu    sync.RWMutex
	to    Route
	owner FlowID
}

// NewRelay returns a relay at the local address name that forwards to the route to, whose
// first hop is the owner's channel, and treats messages of flow owner as the owner's. admit
// (nil admits all) is asked about every message from a non-owner.
func NewRelay(r *Router, name string, to Route, owner FlowID, admit func(m *Message) bool) *Relay {
	return &Relay{router: r, self: LocalAddress(name), to: to, owner: owner, admit: admit}
}

// Update points the relay at a new route and owner flow: the owner reconnected.
func (r *Relay) Update(to Route, owner FlowID) {
	r.mu.Lock()
	r.to, r.owner = to, owner
	r.mu.Unlock()
}

// Owner returns the owner's flow.
func (r *Relay) Owner() FlowID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.owner
}

// HandleMessage forwards m.
func (r *Relay) HandleMessage(m *Message) {
	m.Onward.Pop()
	r.mu.RLock()
	ok := r.forward(m)
	r.mu.RUnlock()
	if !ok {
		m.Release()
		return
	}
	m.Local = Local{}
	r.router.Send(m)
}

// forward rewrites m's routes for its direction; r.mu is held.
func (r *Relay) forward(m *Message) bool {
	if m.Local.Flow == r.owner {
		if !m.Return.HasPrefix(&r.to) {
			return false // not from the owner's end of the stored route
		}
		m.Return.TrimPrefix(&r.to)
		return m.Return.Push(r.self) == nil
	}
	if r.admit != nil && !r.admit(m) {
		return false
	}
	return m.Onward.Prepend(&r.to) == nil && m.Return.Push(r.self) == nil
}
