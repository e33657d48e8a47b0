package routing

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/adjacentnet/adjacent/internal/ratelog"
)

// Worker handles messages delivered to its address. HandleMessage runs on the sender's
// goroutine: it must not block, and it takes ownership of m (it forwards it, or Releases it).
// The worker's own address is still the first hop of m.Onward.
type Worker interface {
	HandleMessage(m *Message)
}

// WorkerFunc adapts a function to Worker.
type WorkerFunc func(m *Message)

// HandleMessage calls f(m).
func (f WorkerFunc) HandleMessage(m *Message) { f(m) }

// maxDepth bounds the synchronous hops one message may take on one node, so that a routing
// loop (a relay pointing at itself) drops a message instead of overflowing the stack.
const maxDepth = 32

// Config configures a Router. The zero value is usable.
type Config struct {
	Logger *slog.Logger // default slog.Default()
}

// Router delivers messages to local workers and hands the rest to transports.
type Router struct {
	log *slog.Logger

	mu         sync.RWMutex
	workers    map[string]*registration
	transports map[Type]Sender

	nextFlow     atomic.Uint64
	unregistered atomic.Uint64 // workers removed so far: tables of worker names prune on change
	stats        struct{ delivered, denied, unroutable, refused atomic.Uint64 }
	refusal      refusals
}

type registration struct {
	worker Worker
	flows  atomic.Pointer[[]FlowID] // copy on write: read per message without a lock
}

// Stats counts what a router did with messages.
type Stats struct {
	Delivered  uint64 // to a local worker or a transport
	Denied     uint64 // remote messages stopped by flow control
	Unroutable uint64 // empty route, unknown address or type, routing loop
	Refused    uint64 // of those, remote messages answered with a refusal (refusal.go)
}

// New returns a router with no workers and no transports.
func New(cfg Config) *Router {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Router{
		log:        log.With("component", "router"),
		workers:    make(map[string]*registration),
		transports: make(map[Type]Sender),
	}
	r.refusal.log = ratelog.New(r.log, slog.LevelInfo, "refused messages for no service", refusalLogInterval)
	r.nextFlow.Store(uint64(FlowTransports))
	return r
}

// NewFlow returns a fresh flow identifier.
func (r *Router) NewFlow() FlowID { return FlowID(r.nextFlow.Add(1)) }

// Register makes w reachable at the local address name, from local senders and from the
// given flows.
func (r *Router) Register(name string, w Worker, flows ...FlowID) error {
	if err := LocalAddress(name).validate(); err != nil {
		return err
	}
	if name == RefusalName {
		return fmt.Errorf("routing: register %q: the name is reserved for the router's refusals: %w", name, ErrExists)
	}
	reg := &registration{worker: w}
	fl := slices.Clone(flows)
	reg.flows.Store(&fl)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.workers[name]; ok {
		return fmt.Errorf("routing: register %q: %w", name, ErrExists)
	}
	r.workers[name] = reg
	return nil
}

// Unregister removes the worker at name, if any.
func (r *Router) Unregister(name string) {
	r.mu.Lock()
	if _, ok := r.workers[name]; ok {
		delete(r.workers, name)
		r.unregistered.Add(1)
	}
	r.mu.Unlock()
}

// Open lets messages of flow reach the worker at name.
func (r *Router) Open(name string, flow FlowID) error {
	reg := r.lookup(name)
	if reg == nil {
		return fmt.Errorf("routing: open %q to flow %d: %w", name, flow, ErrNoRoute)
	}
	reg.open(flow)
	return nil
}

func (reg *registration) open(flow FlowID) {
	for {
		old := reg.flows.Load()
		if slices.Contains(*old, flow) {
			return
		}
		nw := append(slices.Clone(*old), flow)
		if reg.flows.CompareAndSwap(old, &nw) {
			return
		}
	}
}

// Shut undoes Open: messages of flow no longer reach the worker at name (unless it was
// registered with flow). It does nothing if there is no such worker.
func (r *Router) Shut(name string, flow FlowID) {
	if reg := r.lookup(name); reg != nil {
		reg.shut(flow)
	}
}

func (reg *registration) shut(flow FlowID) {
	for {
		old := reg.flows.Load()
		i := slices.Index(*old, flow)
		if i < 0 {
			return
		}
		nw := slices.Delete(slices.Clone(*old), i, i+1)
		if reg.flows.CompareAndSwap(old, &nw) {
			return
		}
	}
}

// Workers returns how many workers are registered (for leak checks in tests and status).
func (r *Router) Workers() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.workers)
}

// Registered reports whether a worker is registered at name.
func (r *Router) Registered(name string) bool { return r.lookup(name) != nil }

func (r *Router) lookup(name string) *registration {
	r.mu.RLock()
	reg := r.workers[name]
	r.mu.RUnlock()
	return reg
}

func (r *Router) lookupBytes(name []byte) *registration {
	r.mu.RLock()
	reg := r.workers[string(name)] // no allocation: the compiler special-cases map[string(b)]
	r.mu.RUnlock()
	return reg
}

// SetTransport installs the transport for addresses of type t.
func (r *Router) SetTransport(t Type, tr Sender) {
	r.mu.Lock()
	r.transports[t] = tr
	r.mu.Unlock()
}

// Transport returns the transport installed for addresses of type t, or nil if there is
// none or it is only a Sender.
func (r *Router) Transport(t Type) Transport {
	r.mu.RLock()
	defer r.mu.RUnlock()
	tr, _ := r.transports[t].(Transport)
	return tr
}

// Send routes m by its first onward hop, taking ownership: to the local worker of that name
// if flow control admits m, else to the transport of the hop's type if m is local. Whatever
// cannot be routed is dropped and counted.
func (r *Router) Send(m *Message) {
	m.depth++
	t, v, ok := m.Onward.Next()
	switch {
	case !ok:
		r.drop(m, &r.stats.unroutable, "empty onward route")
	case m.depth > maxDepth:
		r.drop(m, &r.stats.unroutable, "routing loop")
	case t == TypeLocal:
		reg := r.lookupBytes(v)
		if reg == nil {
			r.refuse(m, string(v), &r.stats.unroutable, "no worker at address")
			return
		}
		if !admits(*reg.flows.Load(), &m.Local) {
			r.refuse(m, string(v), &r.stats.denied, "flow control: worker not opened to the message's flow")
			return
		}
		r.stats.delivered.Add(1)
		reg.worker.HandleMessage(m)
	case m.Local.Flow != FlowLocal:
		// A remote message may only leave through a transport after a local worker (a
		// channel, a relay) has taken responsibility for it.
		r.drop(m, &r.stats.denied, "flow control: remote message addressed to a transport")
	default:
		r.mu.RLock()
		tr := r.transports[t]
		r.mu.RUnlock()
		if tr == nil {
			r.drop(m, &r.stats.unroutable, "no transport for address type")
			return
		}
		r.stats.delivered.Add(1)
		tr.Send(m)
	}
}

// Reply sends m back to its sender as an answer from the worker at from, a local message
// (see Message.Reply). An answer that would not go back the way m came is dropped and counted
// as denied.
func (r *Router) Reply(m *Message, from Address) {
	if err := m.Reply(from); err != nil {
		r.drop(m, &r.stats.denied, err.Error())
		return
	}
	r.Send(m)
}

func (r *Router) drop(m *Message, counter *atomic.Uint64, why string) {
	if counter != nil {
		counter.Add(1)
	}
	if r.log.Enabled(context.Background(), slog.LevelDebug) {
		r.log.Debug("dropped message", "reason", why, "onward", m.Onward.String(), "flow", m.Local.Flow)
	}
	m.Release()
}

// Stats returns the router's counters.
func (r *Router) Stats() Stats {
	return Stats{
		Delivered:  r.stats.delivered.Load(),
		Denied:     r.stats.denied.Load(),
		Unroutable: r.stats.unroutable.Load(),
		Refused:    r.stats.refused.Load(),
	}
}

// Admits reports whether Send would hand m to a local worker now: its first onward hop is a
// worker registered here and opened to m's flow or its spawner. A layer that can answer the
// sender (a secure channel refusing a handshake it carries) asks before sending.
func (r *Router) Admits(m *Message) bool {
	t, v, ok := m.Onward.Next()
	if !ok || t != TypeLocal {
		return false
	}
	reg := r.lookupBytes(v)
	return reg != nil && admits(*reg.flows.Load(), &m.Local)
}
