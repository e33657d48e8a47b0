package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	if errors.Is(err, routing.ErrNoService) {
		last := path[len(path)-1]
		if last.Proto == routing.ProtoService && len(path) > 1 && strings.Contains(err.Error(), strconv.Quote(last.Value)) {
			at := path[:len(path)-1]
			hint := ""
			if !slices.ContainsFunc(at, func(h routing.Hop) bool { return h.Proto == routing.ProtoSecure }) {
				hint = fmt.Sprintf("; a node's services answer inside a secure channel: try %s/secure/%s/service/%s", at, listenerName, last.Value)
			}
			return nil, fmt.Errorf("message send: no service %q at %s open to this node (the node refused it at once)%s", last.Value, at, hint)
		}
		return nil, fmt.Errorf("message send: refused on the way to %s: %w", to, err)
	}
	if err != nil {
		return nil, fmt.Errorf("message send: no reply from %s within %v: %w", to, timeout, err)
	}
	return reply, nil
}
