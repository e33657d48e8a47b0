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
)

// eventRefusals counts, and logs at most once per interval, control events a member dropped
// and messages of revoked members a node refused; it also holds the member's budget of event
// signature checks.
type eventRefusals struct {
	verifyMu     sync.Mutex
	tokens       float64   // signature checks allowed now
	tokensFilled time.Time // when tokens was last topped up

	once       sync.Once
	events     atomic.Uint64
	revoked    atomic.Uint64
	eventLog   *ratelog.Logger
	revokedLog *ratelog.Logger
}

func (n *Node) refusalLogs() *eventRefusals {
	r := &n.eventRefusals
	r.once.Do(func() {
		log := n.log.With("component", "node")
		r.eventLog = ratelog.New(log, slog.LevelWarn, "dropped control events that the project's authority did not sign", refusalLogInterval)
		r.revokedLog = ratelog.New(log, slog.LevelWarn, "refused messages of revoked members", refusalLogInterval)
	})
	return r
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
func (n *Node) mayVerifyEvent() bool {
	r := &n.eventRefusals
	r.verifyMu.Lock()
	defer r.verifyMu.Unlock()
	now := time.Now()
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
func (n *Node) dropEvent(m *routing.Message, err error) {
	r := n.refusalLogs()
	r.events.Add(1)
	from := "(none)"
	if m.Local.Peer != nil {
		from = m.Local.Peer.Identifier()
	}
	r.eventLog.Note(slog.String("last_hop", from), slog.String("reason", err.Error()))
}

// revokedSender reports whether m comes from a peer whose membership was revoked, and if so
// counts and logs the refusal at resource.
func (n *Node) revokedSender(m *routing.Message, resource string) bool {
	if m.Local.Peer == nil || !n.isRevoked(identity.Identifier(m.Local.Peer.Identifier())) {
		return false
	}
	r := n.refusalLogs()
	r.revoked.Add(1)
	r.revokedLog.Note(slog.String("resource", resource), slog.String("peer", m.Local.Peer.Identifier()))
	return true
}

// handleEvent acts on an event the project's authority signed, whatever way it came: the
// last hop proves nothing, since relays deliver other members' messages on the channel to
// the hub. Anything else is dropped and counted.
func (n *Node) handleEvent(m *routing.Message) {
	defer m.Release()
	p := n.project.Load()
	if p == nil || p.hub {
		n.dropEvent(m, errNotMember)
		return
	}
	if relayed(m) {
		// The authority never speaks through a relay: a cheap check before the signature,
		// so that a relay client's forgeries cannot spend the budget of checks the hub's
		// own events need.
		n.dropEvent(m, errRelayedEvent)
		return
	}
	s, err := event.Decode(m.Payload())
	if err != nil {
		n.dropEvent(m, err)
		return
	}
	if !n.mayVerifyEvent() {
		n.dropEvent(m, errEventRate)
		return
	}
	ev, err := s.VerifyWithin(p.authorityHistory(), p.name, n.cfg.Now(), n.retiredKeyGrace())
	if err != nil {
		n.dropEvent(m, err)
		return
	}
	if ev.Kind == event.KindAttributes {
		if ev.Subject == n.self.history.Identifier() {
			go n.refreshNow(p)
		}
		return
	}
	if ev.Kind != event.KindRevoked || ev.Subject == n.self.history.Identifier() || ev.Subject == p.authority.Identifier() {
		return // the authority does not revoke itself: such an event is a stolen key's
	}
	if until, ok := p.revoked.Load(ev.Subject); ok && !until.(time.Time).Before(ev.Until) {
		return // known already: a replay, or the answer to fetchRevocations came first
	}
	n.log.Info("the authority revoked a member", "member", ev.Subject, "until", ev.Until)
	go n.revoke(p, ev.Subject, ev.Until)
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
		Known:     n.knownHistory,
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

func (r hubRevoked) Enforce(id identity.Identifier, until time.Time) { r.n.revoke(r.p, id, until) }

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
		h.n.sendEvent(c.Address(), b)
	}
}

func (h hubMembers) Tell(id identity.Identifier, b []byte) {
	for _, c := range h.n.channels.list() {
		if c.Initiator() || c.Peer() == nil || c.Peer().Identifier() != string(id) {
			continue
		}
		h.n.sendEvent(c.Address(), b)
	}
}

// sendEvent sends the control event b to the events worker of the peer of channel ch.
func (n *Node) sendEvent(ch routing.Address, b []byte) {
	m := routing.NewMessage()
	m.Onward = routing.MustRoute(ch, routing.LocalAddress(eventsWorker))
	m.SetPayload(b)
	n.router.Send(m)
}

// fetchRevocations asks the hub, on the member's own channel to it, for the revocations in
// force, and acts on those the authority signed.
func (n *Node) fetchRevocations(ctx context.Context, p *project) {
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
		n.log.Warn("could not read the revoked members from the hub; the hub refuses them anyway", "err", err, "read", len(events))
		if len(events) == 0 {
			return
		}
	}
	ans := hub.RevocationsAnswer{Events: events}
	now := n.cfg.Now()
	for _, raw := range ans.Events {
		s, err := event.Decode(raw)
		if err == nil {
			var ev event.Event
			if ev, err = s.VerifyWithin(p.authorityHistory(), p.name, now, n.retiredKeyGrace()); err == nil && ev.Kind == event.KindRevoked && ev.Subject != n.self.history.Identifier() {
				n.revoke(p, ev.Subject, ev.Until)
				continue
			}
		}
		if err != nil {
			n.eventRefusals.events.Add(1)
			n.log.Warn("dropped a revocation from the hub that the authority did not sign", "err", err)
		}
	}
	if len(ans.Events) > 0 {
		n.log.Info("the hub told this node of revoked members", "count", len(ans.Events))
	}
}
