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
	"github.com/adjacentnet/adjacent/internal/fairshare"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
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
	// StrangerChannelsPerIdentity, StrangerChannelsPerOrigin and StrangerChannels cap, at a
	// hub, the channels of identities without a valid credential of the project (nodes come
	// to enroll, members come to renew a lapsed credential): per identity, per origin of the
	// handshake (securechannel.Admission.Origin: the source address over TCP), and in all.
	// Such channels reach only the authority worker. Defaults 4, 8 and 64. Over the cap per
	// identity a channel is refused; over the others the oldest stranger's channel of its
	// origin, or of the origin holding the most, is closed for it: identities are free to
	// make, so a new origin always gets in and a flooding origin competes with itself.
	StrangerChannelsPerIdentity, StrangerChannelsPerOrigin, StrangerChannels int
	// StrangerTimeout closes a stranger's channel whose identity has not presented a valid
	// credential over it by then. Default 30s.
	StrangerTimeout time.Duration
	// OutletSessionsPerPeer caps the sessions of each outlet per peer identity. Default
	// 16384 (dataplane.OutletConfig.MaxSessionsPerPeer says why).
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
	def(&c.StrangerChannelsPerOrigin, 8)
	def(&c.StrangerChannels, 64)
	def(&c.OutletSessionsPerPeer, 16384)
	def(&c.RelaysPerIdentity, 16)
	if c.StrangerTimeout <= 0 {
		c.StrangerTimeout = 30 * time.Second
	}
}

// refusalLogInterval spaces the node's log lines about refusals: channels, relays, dropped
// control events, messages of revoked members.
const refusalLogInterval = 10 * time.Second

// admission is the listener's securechannel.Admitter: it counts the channels each identity
// holds, as a member or as a stranger, and each origin as a stranger, and refuses or evicts
// those over the caps.
type admission struct {
	n    *Node
	caps *Caps

	mu        sync.Mutex
	members   map[string]int // channels by identifier
	strangers map[string]int
	// origins holds the strangers' channels by origin, under the caps per origin and in all.
	origins *fairshare.Table[string, *strangerChannel]

	refused  atomic.Uint64
	evicted  atomic.Uint64 // strangers' channels closed for another's
	refusals *ratelog.Logger
}

// strangerChannel is one stranger's channel admitted at the listener. gone is set, under the
// admission's mutex, when its place was given back.
type strangerChannel struct {
	id, origin string
	close      func()
	gone       bool
}

func newAdmission(n *Node) *admission {
	return &admission{
		n: n, caps: &n.cfg.Caps,
		members:   make(map[string]int),
		strangers: make(map[string]int),
		origins:   fairshare.New[string, *strangerChannel](n.cfg.Caps.StrangerChannelsPerOrigin, n.cfg.Caps.StrangerChannels),
		refusals:  ratelog.New(n.log.With("component", "node"), slog.LevelWarn, "refused channels or relays over the caps per identity", refusalLogInterval),
	}
}

// Admit implements securechannel.Admitter.
func (a *admission) Admit(ad securechannel.Admission) (bool, func(), error) {
	peer := ad.Peer
	id := peer.Identifier()
	member := a.n.project.vouched(peer)
	limit := a.caps.ChannelsPerMember
	if p := a.n.project.Load(); p != nil && p.hub {
		limit = a.caps.HubChannelsPerMember
	}
	if !member && ad.Again {
		return false, func() {}, nil // a stranger still: the channel keeps its place
	}
	var evict *strangerChannel
	defer func() {
		if evict != nil { // outside a.mu: closing the channel releases its place
			evict.close()
		}
	}()
	a.mu.Lock()
	defer a.mu.Unlock()
	var err error
	switch {
	case member && a.members[id] >= limit:
		err = fmt.Errorf("refused: capacity: %s holds %d secure channels to this node, the most one identity may; close some (adjacent secure-channel list)", id, limit)
	case member:
		a.members[id]++
		return true, a.release(id), nil
	case a.strangers[id] >= a.caps.StrangerChannelsPerIdentity:
		err = fmt.Errorf("refused: capacity: %s holds %d secure channels to this hub without a valid credential of the project, the most it may; enroll with a ticket, or renew the credential, over one of them", id, a.caps.StrangerChannelsPerIdentity)
	default:
		if evict = a.strangerVictim(ad.Origin); evict != nil {
			a.unhold(evict)
			a.evicted.Add(1)
			a.refusals.Note(slog.String("last_peer", evict.id), slog.String("reason", "a stranger's channel of the origin holding the most closed for a newer one"), slog.String("last_origin", ad.Origin))
		}
		s := &strangerChannel{id: id, origin: ad.Origin, close: ad.Close}
		if s.close == nil {
			s.close = func() {}
		}
		a.strangers[id]++
		a.origins.Add(ad.Origin, s)
		var once sync.Once
		return false, func() {
			once.Do(func() {
				a.mu.Lock()
				defer a.mu.Unlock()
				a.unhold(s)
			})
		}, nil
	}
	a.refused.Add(1)
	a.refusals.Note(slog.String("last_peer", id), slog.Bool("member", member), slog.String("reason", err.Error()))
	return false, nil, err
}

// release returns the function that gives back one member's channel of id, once.
func (a *admission) release(id string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.members[id]--; a.members[id] <= 0 {
				delete(a.members, id)
			}
		})
	}
}

// strangerVictim picks the stranger's channel that gives up its place for a new one from
// origin, if one must (fairshare.Table.Giver): the oldest of the giving origin's. a.mu is
// held.
func (a *admission) strangerVictim(origin string) *strangerChannel {
	from, ok := a.origins.Giver(origin)
	if !ok {
		return nil
	}
	return a.origins.Held(from)[0]
}

// unhold gives back s's place; it does nothing the second time. a.mu is held.
func (a *admission) unhold(s *strangerChannel) {
	if s.gone {
		return
	}
	s.gone = true
	if a.strangers[s.id]--; a.strangers[s.id] <= 0 {
		delete(a.strangers, s.id)
	}
	a.origins.Remove(s.origin, s)
}

// counts returns the channels held by members and by strangers, and the refusals so far.
func (a *admission) counts() (members, strangers int, refused uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.members {
		members += n
	}
	return members, a.origins.Len(), a.refused.Load()
}

// vouched reports whether peer holds its channels to this node's listener as a member. At
// a hub that takes a valid credential of the project: the hub's listener also accepts
// strangers, who come to enroll. Elsewhere every peer the listener accepted is a member: a
// member's listener requires a valid credential, and a node outside any project has no
// notion of strangers.
func (m *membership) vouched(peer routing.Peer) bool {
	p := m.Load()
	if p == nil || !p.hub {
		return true
	}
	tp, ok := peer.(*trust.Peer)
	if !ok {
		return false
	}
	exp := tp.Expires()
	return !exp.IsZero() && m.now().Before(exp) &&
		tp.Attributes()[authority.AttrMember] == "true" &&
		!m.isRevoked(identity.Identifier(tp.Identifier()))
}

// relaysOverCap counts and logs a relay refused to owner for holding limit already.
func (a *admission) relaysOverCap(owner string, limit int) {
	a.refused.Add(1)
	a.refusals.Note(slog.String("last_peer", owner), slog.String("reason", "too many relays"), slog.Int("limit", limit))
}

// handshakeOrigin names the origin of a first handshake message at this node's listener
// (securechannel.Config.Origin), for the listener's fairness and cookies. Every handshake
// relayed to this node comes out of its one channel to the hub, with the return route
// [that channel, forward_to_NAME, the client's channel at the hub, ...hops the client
// chose]: this node's decryptor pushed the first hop, the hub's relay the second and the
// hub's end of the client's channel the third. So those three name the relay client, and a
// client cannot pose as many by varying the rest. Anything else gets the listener's
// default: the source address over TCP, the link otherwise.
func (ms *membership) handshakeOrigin(m *routing.Message) string {
	hub := ms.hubChannel()
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
