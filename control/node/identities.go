package node

import (
	"context"
	"encoding/hex"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/state"
)

// list lists the home's identities.
func (ids *identityStore) list(ctx context.Context, full bool) ([]api.Identity, error) {
	recs, err := ids.state.Identities(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Identity, 0, len(recs))
	for _, r := range recs {
		out = append(out, ids.info(r, full))
	}
	return out, nil
}

// show describes the identity called name, the node's own if name is empty.
func (ids *identityStore) show(ctx context.Context, name string, full bool) (api.Identity, error) {
	if name == "" {
		name = ids.self
	}
	r, err := ids.state.Identity(ctx, name)
	if err != nil {
		return api.Identity{}, notFound(err)
	}
	return ids.info(r, full), nil
}

func (ids *identityStore) info(r state.Identity, full bool) api.Identity {
	info := api.Identity{Name: r.Name, Identifier: r.Identifier, Default: r.Name == ids.self}
	if h, err := identity.DecodeHistory(r.History); err == nil {
		info.Changes = h.Len()
		info.PrimaryKey = hex.EncodeToString(h.PrimaryKey())
	}
	if full {
		info.History = hex.EncodeToString(r.History)
	}
	return info
}
