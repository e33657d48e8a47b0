package node

import (
	"context"
	"fmt"
	"time"

	"github.com/adjacentnet/adjacent/control/rpc"
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
	res, err := n.resolve(ctx, path, nil, n.member())
	if err != nil {
		return nil, err
	}
	defer res.close() // channels made for this message only
	reply, err := rpc.Exchange(ctx, n.router, res.Destination, payload)
	if err != nil {
		return nil, fmt.Errorf("message send: no reply from %s within %v: %w", to, timeout, err)
	}
	return reply, nil
}
