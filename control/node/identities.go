package node

import (
	"context"
	"encoding/hex"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/state"
)

// identities lists the home's identities.
func (n *Node) identities(ctx context.Context, full bool) ([]api.Identity, error) {
	recs, err := n.state.Identities(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Identity, 0, len(recs))
	for _, r := range recs {
		out = append(out, n.identityInfo(r, full))
	}
	return out, nil
}

// identity describes the identity called name, the node's own if name is empty.
func (n *Node) identity(ctx context.Context, name string, full bool) (api.Identity, error) {
	if name == "" {
		name = n.self.name
	}
	r, err := n.state.Identity(ctx, name)
	if err != nil {
		return api.Identity{}, notFound(err)
	}
	return n.identityInfo(r, full), nil
}

func (n *Node) identityInfo(r state.Identity, full bool) api.Identity {
	info := api.Identity{Name: r.Name, Identifier: r.Identifier, Default: r.Name == n.self.name}
	if h, err := identity.DecodeHistory(r.History); err == nil {
		info.Changes = h.Len()
		info.PrimaryKey = hex.EncodeToString(h.PrimaryKey())
	}
	if full {
		info.History = hex.EncodeToString(r.History)
	}
	return info
}
