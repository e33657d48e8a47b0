package node

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/event"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/member"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// revocations is the node's handling of revoked members: it acts on the control events the
// project's authority signs (a member revoked, a member's attributes changed), whatever way
// they came, fetches the revocations in force when a member's session to its hub comes up,
// enforces a revocation (closes the member's channels, drops the relays it holds at a hub),
// and refuses, counts and logs messages of revoked members. Its data: the project
// (membership), the channels, and events from the events worker and the hub's session.
type revocations struct {
	cfg revocationsConfig

	verifyMu     sync.Mutex
	tokens       float64          // signature checks allowed now
	tokensFilled time.Time        // when tokens was last topped up
	clock        func() time.Time // the budget's: time.Now, as the node's Now may be a test's

	events     atomic.Uint64 // control events dropped
	revoked    atomic.Uint64 // messages of revoked members refused
	eventLog   *ratelog.Logger
	revokedLog *ratelog.Logger
}

// revocationsConfig is what revocations needs of the node.
type revocationsConfig struct {
	Project  *membership
	Self     identity.Identifier             // the node's own: never revoked here
	Channels func() []*securechannel.Channel // the node's open channels
	Send     func(*routing.Message)          // the router's
	Refresh  func(*project)                  // fetch a fresh credential now (attributes changed)
	Logger   *slog.Logger
	Now      func() time.Time
}

func newRevocations(cfg revocationsConfig) *revocations {
	log := cfg.Logger.With("component", "node")
	return &revocations{
		cfg:        cfg,
		clock:      time.Now,
		eventLog:   ratelog.New(log, slog.LevelWarn, "dropped control events that the project's authority did not sign", refusalLogInterval),
		revokedLog: ratelog.New(log, slog.LevelWarn, "refused messages of revoked members", refusalLogInterval),
	}
}

// stop stops the refusal logs.
func (r *revocations) stop() {
	r.eventLog.Stop()
	r.revokedLog.Stop()
}

// Signature checks of events a member does per second, and in a burst. The authority sends
// one event per deleted member; a flood of forged events through a relay costs the member at
// most this many pairs of Ed25519 verifications a second. Past it, events are dropped unread:
// the hub refuses revoked members itself, so a member that misses an event stays safe.
const (
	eventVerifyRate  = 100
	eventVerifyBurst = 200
)

var errNotMember = errors.New("this node is not a member of a project: it takes no events")

var errRelayedEvent = errors.New("the event came through a relay; the authority sends its own on the member's channel to the hub")

// relayed reports whether m came through a relay at the hub: its return route's second hop
// is the relay's address, which the hub's relay pushed (handshakeOrigin reads the same).
func relayed(m *routing.Message) bool {
	if m.Return.Len() < 2 {
		return false
	}
	r := m.Return
	r.Pop()
	a := r.NextAddress()
	return a.Type == routing.TypeLocal && strings.HasPrefix(a.Value, relayPrefix)
}

var errEventRate = errors.New("more events than the member checks a second; dropped unverified")

// mayVerifyEvent takes one signature check from the member's budget.
func (r *revocations) mayVerifyEvent() bool {
	r.verifyMu.Lock()
	defer r.verifyMu.Unlock()
	now := r.clock()
	if r.tokensFilled.IsZero() {
		r.tokens = eventVerifyBurst
	} else {
		r.tokens = min(eventVerifyBurst, r.tokens+now.Sub(r.tokensFilled).Seconds()*eventVerifyRate)
	}
	r.tokensFilled = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// dropEvent counts and logs an event that is not acted on.
func (r *revocations) dropEvent(m *routing.Message, err error) {
	r.events.Add(1)
	from := "(none)"
	if m.Local.Peer != nil {
		from = m.Local.Peer.Identifier()
	}
	r.eventLog.Note(slog.String("last_hop", from), slog.String("reason", err.Error()))
}

// revokedSender reports whether m comes from a peer whose membership was revoked, and if so
// counts and logs the refusal at resource.
func (r *revocations) revokedSender(m *routing.Message, resource string) bool {
	if m.Local.Peer == nil || !r.cfg.Project.isRevoked(identity.Identifier(m.Local.Peer.Identifier())) {
		return false
	}
	r.revoked.Add(1)
	r.revokedLog.Note(slog.String("resource", resource), slog.String("peer", m.Local.Peer.Identifier()))
	return true
}

// handleEvent acts on an event the project's authority signed, whatever way it came: the
// last hop proves nothing, since relays deliver other members' messages on the channel to
// the hub. Anything else is dropped and counted.
func (r *revocations) handleEvent(m *routing.Message) {
	defer m.Release()
	p := r.cfg.Project.Load()
	if p == nil || p.hub {
		r.dropEvent(m, errNotMember)
		return
	}
	if relayed(m) {
		// The authority never speaks through a relay: a cheap check before the signature,
		// so that a relay client's forgeries cannot spend the budget of checks the hub's
		// own events need.
		r.dropEvent(m, errRelayedEvent)
		return
	}
	s, err := event.Decode(m.Payload())
	if err != nil {
		r.dropEvent(m, err)
		return
	}
	if !r.mayVerifyEvent() {
		r.dropEvent(m, errEventRate)
		return
	}
	ev, err := s.VerifyWithin(p.authorityHistory(), p.name, r.cfg.Now(), r.cfg.Project.retiredKeyGrace())
	if err != nil {
		r.dropEvent(m, err)
		return
	}
	if ev.Kind == event.KindAttributes {
		if ev.Subject == r.cfg.Self {
			go r.cfg.Refresh(p)
		}
		return
	}
	if ev.Kind != event.KindRevoked || ev.Subject == r.cfg.Self || ev.Subject == p.authority.Identifier() {
		return // the authority does not revoke itself: such an event is a stolen key's
	}
	if until, ok := p.revoked.Load(ev.Subject); ok && !until.(time.Time).Before(ev.Until) {
		return // known already: a replay, or the answer to fetchRevocations came first
	}
	r.cfg.Logger.Info("the authority revoked a member", "member", ev.Subject, "until", ev.Until)
	go r.enforce(p, ev.Subject, ev.Until)
}

// revocationReload is how often a hub reads the revocations again: another hub sharing its
// PostgreSQL member store may have deleted members.
const revocationReload = 10 * time.Second

// authorityService returns the authority service of hub project p, wired to this node.
func (n *Node) authorityService(p *project) *hub.AuthorityService {
	return hub.NewAuthorityService(hub.AuthorityConfig{
		Project:   p.name,
		Public:    p.public,
		Authority: p.auth,
		History:   p.authorityHistory,
		Known:     n.histories.get,
		Revoked:   hubRevoked{n, p},
		Members:   hubMembers{n, p},
		Logger:    n.log,
		Now:       n.cfg.Now,
	})
}

// hubRevoked is the project's table of revoked members, as the authority service sees it.
type hubRevoked struct {
	n *Node
	p *project
}

func (r hubRevoked) Until(id identity.Identifier) (time.Time, bool) {
	v, ok := r.p.revoked.Load(id)
	if !ok {
		return time.Time{}, false
	}
	return v.(time.Time), true
}

func (r hubRevoked) Range(f func(identity.Identifier, time.Time) bool) {
	r.p.revoked.Range(func(id, until any) bool { return f(id.(identity.Identifier), until.(time.Time)) })
}

func (r hubRevoked) Enforce(id identity.Identifier, until time.Time) {
	r.n.revocations.enforce(r.p, id, until)
}

func (r hubRevoked) Lift(id identity.Identifier) { r.p.revoked.Delete(id) }

// hubMembers sends control events to the members connected to this hub: the peers of
// accepted channels. Strangers with a channel (to enroll, say) learn nothing.
type hubMembers struct {
	n *Node
	p *project
}

func (h hubMembers) Announce(b []byte, except identity.Identifier) {
	now := h.n.cfg.Now()
	for _, c := range h.n.channels.list() {
		peer, ok := c.Peer().(*trust.Peer)
		if c.Initiator() || !ok || !hub.IsMember(peer, h.p.name, now) || peer.Identifier() == string(except) {
			continue
		}
		h.n.revocations.send(c.Address(), b)
	}
}

func (h hubMembers) Tell(id identity.Identifier, b []byte) {
	for _, c := range h.n.channels.list() {
		if c.Initiator() || c.Peer() == nil || c.Peer().Identifier() != string(id) {
			continue
		}
		h.n.revocations.send(c.Address(), b)
	}
}

// send sends the control event b to the events worker of the peer of channel ch.
func (r *revocations) send(ch routing.Address, b []byte) {
	m := routing.NewMessage()
	m.Onward = routing.MustRoute(ch, routing.LocalAddress(eventsWorker))
	m.SetPayload(b)
	r.cfg.Send(m)
}

// fetchRevocations asks the hub, on the member's own channel to it, for the revocations in
// force, and acts on those the authority signed.
func (r *revocations) fetchRevocations(ctx context.Context, p *project) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s := p.session.Load()
	if s == nil {
		return
	}
	events, err := s.Revocations(ctx)
	if errors.Is(err, member.ErrNotConnected) {
		return
	}
	if err != nil {
		r.cfg.Logger.Warn("could not read the revoked members from the hub; the hub refuses them anyway", "err", err, "read", len(events))
		if len(events) == 0 {
			return
		}
	}
	ans := hub.RevocationsAnswer{Events: events}
	now := r.cfg.Now()
	for _, raw := range ans.Events {
		s, err := event.Decode(raw)
		if err == nil {
			var ev event.Event
			if ev, err = s.VerifyWithin(p.authorityHistory(), p.name, now, r.cfg.Project.retiredKeyGrace()); err == nil && ev.Kind == event.KindRevoked && ev.Subject != r.cfg.Self {
				r.enforce(p, ev.Subject, ev.Until)
				continue
			}
		}
		if err != nil {
			r.events.Add(1)
			r.cfg.Logger.Warn("dropped a revocation from the hub that the authority did not sign", "err", err)
		}
	}
	if len(ans.Events) > 0 {
		r.cfg.Logger.Info("the hub told this node of revoked members", "count", len(ans.Events))
	}
}

// enforce refuses id until then (when its credentials have expired anyway), closes its
// channels and, on a hub, drops the relays it holds.
func (r *revocations) enforce(p *project, id identity.Identifier, until time.Time) {
	if old, ok := p.revoked.Load(id); !ok || old.(time.Time).Before(until) {
		p.revoked.Store(id, until)
	}
	for _, c := range r.cfg.Channels() {
		if peer := c.Peer(); peer != nil && peer.Identifier() == string(id) {
			r.cfg.Logger.Info("closing channel of a revoked member", "peer", id, "channel", c.Address().Value)
			c.Close()
		}
	}
	if p.relays != nil {
		p.relays.DropOwnedBy(id)
	}
}
