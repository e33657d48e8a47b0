package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// defaultMessageTimeout bounds the wait for a reply when the caller gives none.
const defaultMessageTimeout = 10 * time.Second

// SendMessage sends payload along the route text to and returns the reply's payload.
func (n *Node) SendMessage(ctx context.Context, to string, payload []byte, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		timeout = defaultMessageTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path, err := routing.ParsePath(to)
	if err != nil {
		return nil, err
	}
	route, flow, err := n.resolve(ctx, path)
	if err != nil {
		return nil, err
	}
	replies := make(chan *routing.Message, 1)
	name := "reply-" + randomName()
	inbox := routing.WorkerFunc(func(m *routing.Message) {
		select {
		case replies <- m:
		default:
			m.Release() // one reply is all we wait for
		}
	})
	var flows []routing.FlowID
	if flow != routing.FlowLocal {
		flows = append(flows, flow)
	}
	if err := n.router.Register(name, inbox, flows...); err != nil {
		return nil, err
	}
	defer n.router.Unregister(name)

	m := routing.NewMessage()
	m.Onward = route
	m.Return = routing.MustRoute(routing.LocalAddress(name))
	m.SetPayload(payload)
	n.router.Send(m)
	select {
	case r := <-replies:
		defer r.Release()
		return append([]byte(nil), r.Payload()...), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("message send: no reply from %s within %v: %w", to, timeout, ctx.Err())
	}
}

// resolve turns a route's text form into a route, connecting as needed, and returns the flow
// on which replies will arrive.
func (n *Node) resolve(ctx context.Context, path routing.Path) (routing.Route, routing.FlowID, error) {
	var r routing.Route
	flow := routing.FlowLocal
	for i, h := range path {
		switch {
		case h.IsTCP():
			if i != 0 {
				return routing.Route{}, 0, fmt.Errorf("route %s: a TCP hop after the first needs a secure channel to carry it", path)
			}
			c, err := n.tcp.Connect(ctx, h.HostPort())
			if err != nil {
				return routing.Route{}, 0, err
			}
			if err := r.Append(c.Address()); err != nil {
				return routing.Route{}, 0, err
			}
			flow = c.Flow()
		case h.Proto == routing.ProtoService:
			if err := r.Append(routing.LocalAddress(h.Value)); err != nil {
				return routing.Route{}, 0, err
			}
		default:
			return routing.Route{}, 0, fmt.Errorf("route %s: /%s is not supported yet", path, h.Proto)
		}
	}
	return r, flow, nil
}

func randomName() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
