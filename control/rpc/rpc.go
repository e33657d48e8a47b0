package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/adjacentnet/adjacent/internal/randid"
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
type Server struct {
	router  *routing.Router
	handle  Handler
	log     *slog.Logger
	sem     chan struct{}
	ctx     context.Context
	self    routing.Address
	maxBody int
}

// NewServer returns a server worker answering from the local address name.
func NewServer(ctx context.Context, r *routing.Router, name string, concurrency int, log *slog.Logger, h Handler) *Server {
	return &Server{router: r, handle: h, log: log, sem: make(chan struct{}, concurrency), ctx: ctx, self: routing.LocalAddress(name), maxBody: MaxMessage}
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
	select {
	case s.sem <- struct{}{}:
	default:
		m.Release()
		return
	}
	go func() {
		defer func() { <-s.sem }()
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
