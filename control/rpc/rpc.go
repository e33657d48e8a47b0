package rpc

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/internal/randid"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
)

// MaxMessage bounds a request or an answer.
const MaxMessage = 64 << 10

// Exchange sends payload along to.Route and returns the payload of the first message that
// comes back. Replies are accepted from to.Flow (the flow of the route's first hop) and from
// local senders. A router's refusal (no such service) is an error wrapping
// routing.ErrNoService, with its reason.
func Exchange(ctx context.Context, r *routing.Router, to routing.Destination, payload []byte) ([]byte, error) {
	replies := make(chan *routing.Message, 1)
	name := "reply." + randid.New()
	inbox := routing.WorkerFunc(func(m *routing.Message) {
		select {
		case replies <- m:
		default:
			m.Release() // one answer is all we wait for
		}
	})
	var flows []routing.FlowID
	if to.Flow != routing.FlowLocal {
		flows = append(flows, to.Flow)
	}
	if err := r.Register(name, inbox, flows...); err != nil {
		return nil, err
	}
	defer r.Unregister(name)
	m := routing.NewMessage()
	m.Onward = to.Route
	m.Return = routing.MustRoute(routing.LocalAddress(name))
	m.SetPayload(payload)
	r.Send(m)
	select {
	case a := <-replies:
		defer a.Release()
		if why, ok := routing.Refusal(a); ok {
			return nil, routing.RefusalError(why)
		}
		return append([]byte(nil), a.Payload()...), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// envelope wraps every answer.
type envelope struct {
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Call sends req as JSON to to and decodes the answer into resp (if not nil).
func Call(ctx context.Context, r *routing.Router, to routing.Destination, req, resp any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		return fmt.Errorf("rpc: request of %d bytes, at most %d", len(b), MaxMessage)
	}
	a, err := Exchange(ctx, r, to, b)
	if err != nil {
		return err
	}
	var env envelope
	if err := json.Unmarshal(a, &env); err != nil {
		return fmt.Errorf("rpc: malformed answer: %w", err)
	}
	if env.Error != "" {
		return errors.New(env.Error)
	}
	if resp != nil {
		if err := json.Unmarshal(env.Result, resp); err != nil {
			return fmt.Errorf("rpc: malformed answer: %w", err)
		}
	}
	return nil
}

// Request is one request as a handler sees it.
type Request struct {
	Peer routing.Peer // the authenticated caller, nil if it did not come through a channel
	Flow routing.FlowID
	body []byte
	msg  *routing.Message // for its return route
}

// Decode decodes the request's JSON body into v, refusing unknown fields.
func (q *Request) Decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(q.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed request: %w", err)
	}
	return nil
}

// ReturnRoute is the route back to the caller.
func (q *Request) ReturnRoute() routing.Route { return q.msg.Return }

// Handler answers one request: its result is sent back as JSON, an error as its text.
type Handler func(ctx context.Context, q *Request) (any, error)

// Server is a worker that runs its handler for each message, at most Concurrency at a time;
// requests beyond that are dropped (the caller times out), which bounds what a flood costs.
// Limits keep one caller, or callers of a lesser kind, from taking every slot.
type Server struct {
	router  *routing.Router
	handle  Handler
	log     *slog.Logger
	sem     chan struct{}
	ctx     context.Context
	self    routing.Address
	maxBody int

	limits   Limits
	guests   chan struct{} // the guests' slots, with Limits.Guest
	mu       sync.Mutex
	inFlight map[string]int // requests in flight by caller, with Limits.PerCaller; no zero entries
	dropped  atomic.Uint64
	drops    *ratelog.Logger
}

// Limits bound what one caller, and callers of a lesser kind, can take of a Server's slots.
type Limits struct {
	// PerCaller caps the requests of one caller in flight (by Peer.Identifier; requests
	// without a peer are one caller). Zero: no cap.
	PerCaller int
	// Guest, if set, tells the callers whose requests take their slots from a pool of
	// GuestSlots (default 2) of their own, never from the server's: callers that must not
	// starve the others, such as non-members at a hub's authority.
	Guest      func(peer routing.Peer) bool
	GuestSlots int
}

// NewServer returns a server worker answering from the local address name.
func NewServer(ctx context.Context, r *routing.Router, name string, concurrency int, log *slog.Logger, h Handler) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{
		router: r, handle: h, log: log, sem: make(chan struct{}, concurrency), ctx: ctx, self: routing.LocalAddress(name), maxBody: MaxMessage,
		inFlight: make(map[string]int),
		drops:    ratelog.New(log.With("component", "rpc", "service", name), slog.LevelWarn, "dropped requests over the service's limits", 10*time.Second),
	}
}

// Limit sets s's limits and returns s. Call it before s receives messages.
func (s *Server) Limit(l Limits) *Server {
	s.limits = l
	if l.Guest != nil {
		s.guests = make(chan struct{}, cmp.Or(l.GuestSlots, 2))
	}
	return s
}

// Dropped counts the requests dropped for want of a slot or over Limits.PerCaller.
func (s *Server) Dropped() uint64 { return s.dropped.Load() }

// take takes a slot for a request of peer, or says why there is none. It gives back the
// function that returns the slot.
func (s *Server) take(peer routing.Peer) (func(), string) {
	sem, kind := s.sem, "member"
	if s.limits.Guest != nil && s.limits.Guest(peer) {
		sem, kind = s.guests, "guest"
	}
	var id string
	if peer != nil {
		id = peer.Identifier()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits.PerCaller > 0 && s.inFlight[id] >= s.limits.PerCaller {
		return nil, "the caller's requests in flight"
	}
	select {
	case sem <- struct{}{}:
	default:
		return nil, "every " + kind + " slot busy"
	}
	s.inFlight[id]++
	return func() {
		<-sem
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.inFlight[id]--; s.inFlight[id] <= 0 {
			delete(s.inFlight, id)
		}
	}, ""
}

// HandleMessage starts the handler on its own goroutine.
func (s *Server) HandleMessage(m *routing.Message) {
	if _, refusal := routing.Refusal(m); refusal { // a late answer of ours found no one
		m.Release()
		return
	}
	if _, err := m.ReplyRoute(); err != nil || len(m.Payload()) > s.maxBody {
		m.Release() // no answer could go back the way m came, or too large
		return
	}
	done, why := s.take(m.Local.Peer)
	if done == nil {
		s.dropped.Add(1)
		var last string
		if m.Local.Peer != nil {
			last = m.Local.Peer.Identifier()
		}
		s.drops.Note(slog.String("reason", why), slog.String("last_peer", last))
		m.Release()
		return
	}
	go func() {
		defer done()
		q := &Request{Peer: m.Local.Peer, Flow: m.Local.Flow, body: m.Payload(), msg: m}
		result, err := s.handle(s.ctx, q)
		var env envelope
		if err != nil {
			env.Error = err.Error()
		} else if result != nil {
			env.Result, err = json.Marshal(result)
			if err != nil {
				env.Error = "rpc: cannot encode the answer"
			}
		}
		b, _ := json.Marshal(env)
		if len(b) > MaxMessage {
			b, _ = json.Marshal(envelope{Error: "rpc: answer too large"})
		}
		m.SetPayload(b)
		s.router.Reply(m, s.self)
	}()
}
