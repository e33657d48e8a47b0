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
	res, err := n.resolve(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	defer res.close() // channels made for this message only
	route, flow := res.route, res.flow
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

func randomName() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
