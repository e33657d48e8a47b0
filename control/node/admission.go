package node

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
)

// Caps bound what remote peers can make a node hold. Zero values take the defaults.
type Caps struct {
	// ChannelsPerMember caps the channels one identity holds to a member's listener (any
	// peer the listener accepts), HubChannelsPerMember to a hub's (members with a valid
	// credential of the project). Defaults 256 and 16: a member needs one channel to its
	// hub, and each channel at the hub is a separate origin of handshakes relayed to other
	// members (handshakeOrigin), so the hub's cap bounds how many origins one member can
	// pose as at a relay owner's listener.
	ChannelsPerMember, HubChannelsPerMember int
	// StrangerChannelsPerIdentity and StrangerChannels cap, at a hub, the channels of
	// identities without a valid credential of the project (nodes come to enroll, members
	// come to renew a lapsed credential): per identity, and in all. Such channels reach only
	// the authority worker. Defaults 4 and 64.
	StrangerChannelsPerIdentity, StrangerChannels int
	// StrangerTimeout closes a stranger's channel whose identity has not presented a valid
	// credential over it by then. Default 30s.
	StrangerTimeout time.Duration
	// OutletSessionsPerPeer caps the sessions of each outlet per peer identity. Default 1024.
	OutletSessionsPerPeer int
	// RelaysPerIdentity caps, at a hub, the relays one identity holds. Default 16.
	RelaysPerIdentity int
}

func (c *Caps) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.ChannelsPerMember, 256)
	def(&c.HubChannelsPerMember, 16)
	def(&c.StrangerChannelsPerIdentity, 4)
	def(&c.StrangerChannels, 64)
	def(&c.OutletSessionsPerPeer, 1024)
	def(&c.RelaysPerIdentity, 16)
	if c.StrangerTimeout <= 0 {
		c.StrangerTimeout = 30 * time.Second
	}
}

// refusalLogInterval spaces the node's log lines about refusals: channels, relays, dropped
// control events, messages of revoked members.
const refusalLogInterval = 10 * time.Second

// admission is the listener's securechannel.Admitter: it counts the channels each identity
// holds, as a member or as a stranger, and refuses those over the caps.
type admission struct {
	n    *Node
	caps *Caps

	mu        sync.Mutex
	members   map[string]int // channels by identifier
	strangers map[string]int
	inAll     int // strangers' channels in all

	refused  atomic.Uint64
	refusals *ratelog.Logger
}

func newAdmission(n *Node) *admission {
	return &admission{
		n: n, caps: &n.cfg.Caps,
		members:   make(map[string]int),
		strangers: make(map[string]int),
		refusals:  ratelog.New(n.log.With("component", "node"), slog.LevelWarn, "refused channels or relays over the caps per identity", refusalLogInterval),
	}
}

// Admit implements securechannel.Admitter.
func (a *admission) Admit(peer routing.Peer) (bool, func(), error) {
	id := peer.Identifier()
	member := a.n.vouched(peer)
	limit := a.caps.ChannelsPerMember
	if p := a.n.project.Load(); p != nil && p.hub {
		limit = a.caps.HubChannelsPerMember
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var err error
	switch {
	case member && a.members[id] >= limit:
		err = fmt.Errorf("refused: capacity: %s holds %d secure channels to this node, the most one identity may; close some (adjacent secure-channel list)", id, limit)
	case member:
		a.members[id]++
		return true, a.release(a.members, id, false), nil
	case a.strangers[id] >= a.caps.StrangerChannelsPerIdentity:
		err = fmt.Errorf("refused: capacity: %s holds %d secure channels to this hub without a valid credential of the project, the most it may; enroll with a ticket, or renew the credential, over one of them", id, a.caps.StrangerChannelsPerIdentity)
	case a.inAll >= a.caps.StrangerChannels:
		err = fmt.Errorf("refused: capacity: this hub holds %d secure channels of identities without a valid credential of the project, the most it may; try again in a minute", a.caps.StrangerChannels)
	default:
		a.strangers[id]++
		a.inAll++
		return false, a.release(a.strangers, id, true), nil
	}
	a.refused.Add(1)
	a.refusals.Note(slog.String("last_peer", id), slog.Bool("member", member), slog.String("reason", err.Error()))
	return false, nil, err
}

// release returns the function that gives back one channel of id in table, once.
func (a *admission) release(table map[string]int, id string, stranger bool) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if table[id]--; table[id] <= 0 {
				delete(table, id)
			}
			if stranger {
				a.inAll--
			}
		})
	}
}

// counts returns the channels held by members and by strangers, and the refusals so far.
func (a *admission) counts() (members, strangers int, refused uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.members {
		members += n
	}
	return members, a.inAll, a.refused.Load()
}

// vouched reports whether peer holds its channels to this node's listener as a member. At
// a hub that takes a valid credential of the project: the hub's listener also accepts
// strangers, who come to enroll. Elsewhere every peer the listener accepted is a member: a
// member's listener requires a valid credential, and a node outside any project has no
// notion of strangers.
func (n *Node) vouched(peer routing.Peer) bool {
	p := n.project.Load()
	if p == nil || !p.hub {
		return true
	}
	tp, ok := peer.(*trust.Peer)
	if !ok {
		return false
	}
	exp := tp.Expires()
	return !exp.IsZero() && n.cfg.Now().Before(exp) &&
		tp.Attributes()[authority.AttrMember] == "true" &&
		!n.isRevoked(identity.Identifier(tp.Identifier()))
}

// relaysOverCap counts and logs a relay refused to owner for holding limit already.
func (n *Node) relaysOverCap(owner string, limit int) {
	n.admit.refused.Add(1)
	n.admit.refusals.Note(slog.String("last_peer", owner), slog.String("reason", "too many relays"), slog.Int("limit", limit))
}

// handshakeOrigin names the origin of a first handshake message at this node's listener
// (securechannel.Config.Origin), for the listener's fairness and cookies. Every handshake
// relayed to this node comes out of its one channel to the hub, with the return route
// [that channel, forward_to_NAME, the client's channel at the hub, ...hops the client
// chose]: this node's decryptor pushed the first hop, the hub's relay the second and the
// hub's end of the client's channel the third. So those three name the relay client, and a
// client cannot pose as many by varying the rest. Anything else gets the listener's
// default: the source address over TCP, the link otherwise.
func (n *Node) handshakeOrigin(m *routing.Message) string {
	hub := n.hubChannel()
	if hub == nil || m.Local.Link != routing.Link(hub) || m.Return.Len() < 3 {
		return ""
	}
	r := m.Return
	own := r.NextAddress()
	r.Pop()
	relay := r.NextAddress()
	r.Pop()
	client := r.NextAddress()
	if relay.Type != routing.TypeLocal || !strings.HasPrefix(relay.Value, relayPrefix) || client.Type != routing.TypeLocal {
		return ""
	}
	return own.Value + " " + relay.Value + " " + client.Value
}
