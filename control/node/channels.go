package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/adjacentnet/adjacent/control/access"
	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// listenerName is the node's secure-channel listener, the one worker remote peers may reach
// straight off a transport.
const listenerName = "api"

// channels is the node's registry of secure channels, by encryptor address, for listing,
// resolving routes through them, and closing them.
type channels struct {
	mu sync.Mutex
	m  map[string]*securechannel.Channel
}

func (cs *channels) add(c *securechannel.Channel) {
	cs.mu.Lock()
	if cs.m == nil {
		cs.m = make(map[string]*securechannel.Channel)
	}
	cs.m[c.Address().Value] = c
	cs.mu.Unlock()
	go func() {
		<-c.Done()
		cs.mu.Lock()
		delete(cs.m, c.Address().Value)
		cs.mu.Unlock()
	}()
}

func (cs *channels) get(addr string) *securechannel.Channel {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.m[addr]
}

func (cs *channels) list() []*securechannel.Channel {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]*securechannel.Channel, 0, len(cs.m))
	for _, c := range cs.m {
		out = append(out, c)
	}
	return out
}

// channelConfig is the secure-channel configuration of this node, accepting only the given
// identifiers as peers if any are given, and only project members if require is set.
func (n *Node) channelConfig(authorized []identity.Identifier, require bool) securechannel.Config {
	return n.channelConfigTo(authorized, require, false)
}

// channelConfigTo is channelConfig; toHub marks the member's channel to its hub, the only
// one that teaches the node the authority's rotation.
func (n *Node) channelConfigTo(authorized []identity.Identifier, require, toHub bool) securechannel.Config {
	k := n.self.keys() // one set of keys: the static key and the attestation must match
	tc := n.trustConfig(authorized, require)
	tc.Self = k.trust()
	tc.AuthorityChannel = toHub
	return securechannel.Config{
		Static: k.static.DH(),
		Auth:   &countingAuth{inner: trust.New(tc), c: &n.counts, role: responder},
		Logger: n.log,
		Now:    n.cfg.Now,

		RehandshakeAfter: n.cfg.Rehandshake,
	}
}

// startListenerLocked starts the node's secure-channel listener, reachable from every
// transport, and the workers behind it: echo, and on a hub the authority and relay
// service. A member's listener accepts only project members; a hub's accepts anyone, since
// new members enroll through it, and its workers' policies decide the rest.
func (n *Node) startListenerLocked() error {
	p := n.project.Load()
	cfg := n.channelConfig(nil, p != nil && !p.hub)
	cfg.Accepted = n.accepted
	cfg.Admitter, cfg.StrangerTimeout = countingAdmitter{n.admit, &n.counts}, n.cfg.Caps.StrangerTimeout
	cfg.Origin = n.project.handshakeOrigin
	l, err := securechannel.Listen(n.router, listenerName, cfg, routing.FlowTransports)
	if err != nil {
		return err
	}
	n.listener = l
	echo := &access.Gate{Resource: "echo", Policy: n.policies.policyFunc("echo", "echo"), Inner: routing.NewEcho(n.router, "echo"), Log: n.log}
	if err := n.router.Register("echo", echo, l.Flow()); err != nil {
		return err
	}
	n.portals.reopenOutlets(l.Flow())
	if p != nil && p.hub {
		if err := n.registerHubWorkers(l.Flow()); err != nil {
			return err
		}
		// Strangers (no valid credential) come to enroll or renew: the authority is all
		// they reach.
		return n.router.Open(authorityWorker, l.StrangerFlow())
	}
	if hub := n.project.hubChannel(); hub != nil {
		n.router.Open(listenerName, hub.Flow())
	}
	return nil
}

// resolved is a route made usable: the route itself, the flow its replies come back on and the
// link under it, and the channels created on the way, which the caller owns.
type resolved struct {
	routing.Destination
	channels []*securechannel.Channel
}

// close closes the channels created for a route, innermost first.
func (r *resolved) close() {
	for i := len(r.channels) - 1; i >= 0; i-- {
		r.channels[i].Close()
	}
}

// resolve turns a route's text form into a route: it connects for a TCP hop and creates a
// secure channel for each /secure/NAME hop, over the route so far, to the listener NAME.
// authorized restricts the peer of the last channel.
// require asks every channel's peer for a valid project credential.
func (n *Node) resolve(ctx context.Context, path routing.Path, authorized []identity.Identifier, require bool) (*resolved, error) {
	res := &resolved{}
	lastSecure := -1
	for i, h := range path {
		if h.Proto == routing.ProtoSecure {
			lastSecure = i
		}
	}
	fail := func(err error) (*resolved, error) {
		res.close()
		return nil, err
	}
	for i, h := range path {
		switch {
		case h.IsTransport():
			if i != 0 {
				return fail(fmt.Errorf("route %s: a transport hop must come first; later hops are reached through a secure channel", path))
			}
			a, err := h.Address()
			if err != nil {
				return fail(err)
			}
			tr := n.router.Transport(a.Type)
			if tr == nil {
				return fail(fmt.Errorf("route %s: this node has no transport for %s", path, a))
			}
			c, err := tr.Dial(ctx, a.Value)
			if err != nil {
				return fail(err)
			}
			res.Destination = routing.Through(c)
		case h.Proto == routing.ProtoService:
			if i == 0 {
				if ch := n.channels.get(h.Value); ch != nil { // through an existing channel
					res.Flow, res.Link = ch.Flow(), ch
				}
			}
			if err := res.Route.Append(routing.LocalAddress(h.Value)); err != nil {
				return fail(err)
			}
		case h.Proto == routing.ProtoProject:
			if i != 0 {
				return fail(fmt.Errorf("route %s: /project must come first", path))
			}
			hub, err := n.project.projectHop(ctx, h.Value)
			if err != nil {
				return fail(err)
			}
			if hub != nil { // on the hub itself the project is local
				res.Destination = routing.Through(hub)
			}
		case h.Proto == routing.ProtoSecure:
			to := res.Destination
			if err := to.Route.Append(routing.LocalAddress(h.Value)); err != nil {
				return fail(err)
			}
			var auth []identity.Identifier
			if i == lastSecure {
				auth = authorized
			}
			ch, err := n.initiate(ctx, to, n.channelConfigTo(auth, require, i == lastSecure && isHubChannel(ctx)))
			if err != nil {
				return fail(fmt.Errorf("secure channel to %s: %w", routing.Path(path[:i+1]), err))
			}
			n.channels.add(ch)
			res.channels = append(res.channels, ch)
			res.Destination = routing.Through(ch)
		default:
			return fail(fmt.Errorf("route %s: /%s is not supported by this node", path, h.Proto))
		}
	}
	return res, nil
}

// channelInfo describes a channel for the API.
func channelInfo(c *securechannel.Channel) api.Channel {
	info := api.Channel{Address: "/service/" + c.Address().Value, Initiator: c.Initiator(), Created: c.Born()}
	if p := c.Peer(); p != nil {
		info.Peer = p.Identifier()
	}
	s := c.Stats()
	info.MessagesIn, info.MessagesOut, info.BytesIn, info.BytesOut = s.MessagesIn, s.MessagesOut, s.BytesIn, s.BytesOut
	info.Generation = int(s.Generation)
	return info
}

// createChannel opens a secure channel that stays until deleted or its peer goes away.
func (n *Node) createChannel(ctx context.Context, req api.CreateChannel) (api.Channel, error) {
	path, err := routing.ParsePath(req.To)
	if err != nil {
		return api.Channel{}, err
	}
	if len(path) == 0 || path[len(path)-1].Proto != routing.ProtoService {
		return api.Channel{}, fmt.Errorf("secure-channel create: --to must end at a listener, as in /ip4/10.0.0.1/tcp/4000/service/api")
	}
	var authorized []identity.Identifier
	for _, a := range req.Authorized {
		id, err := identity.ParseIdentifier(a)
		if err != nil {
			return api.Channel{}, fmt.Errorf("--authorized %q: %w", a, err)
		}
		authorized = append(authorized, id)
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	// The last hop names the listener: resolve the route to it with a /secure hop.
	last := path[len(path)-1]
	path = append(path[:len(path)-1:len(path)-1], routing.Hop{Proto: routing.ProtoSecure, Value: last.Value})
	res, err := n.resolve(ctx, path, authorized, n.member())
	if err != nil {
		return api.Channel{}, err
	}
	return channelInfo(res.channels[len(res.channels)-1]), nil
}
