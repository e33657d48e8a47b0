package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/event"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/rpc"
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
	s, err := event.Decode(m.Payload())
	if err != nil {
		n.dropEvent(m, err)
		return
	}
	if !n.mayVerifyEvent() {
		n.dropEvent(m, errEventRate)
		return
	}
	ev, err := s.Verify(p.authorityHistory(), p.name, n.cfg.Now())
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
	if ev.Kind != event.KindRevoked || ev.Subject == n.self.history.Identifier() {
		return
	}
	if until, ok := p.revoked.Load(ev.Subject); ok && !until.(time.Time).Before(ev.Until) {
		return // known already: a replay, or the answer to fetchRevocations came first
	}
	n.log.Info("the authority revoked a member", "member", ev.Subject, "until", ev.Until)
	go n.revoke(p, ev.Subject, ev.Until)
}

// loadRevocations makes a hub refuse, from its start, the members its authority revoked.
func (n *Node) loadRevocations(ctx context.Context, p *project) error {
	rs, err := p.auth.Revocations(ctx)
	if err != nil {
		return fmt.Errorf("node: project %s: read the revoked members: %w; the hub does not start without them", p.name, err)
	}
	for _, r := range rs {
		p.revoked.Store(r.Identifier, r.Until)
	}
	return nil
}

// announce sends the signed revocation r to the members connected to this hub: the peers
// of accepted channels that hold a valid credential of the project. Strangers with a channel
// (to enroll, say) learn nothing.
func (n *Node) announce(p *project, r authority.Revocation) {
	s, err := p.auth.Announce(r)
	if err != nil {
		n.log.Error("revocation not announced to members; they refuse the member when its credential expires", "member", r.Identifier, "err", err)
		return
	}
	b := s.Encode()
	now := n.cfg.Now()
	for _, c := range n.channels.list() {
		peer, ok := c.Peer().(*trust.Peer)
		if c.Initiator() || !ok || !projectMember(peer, p.name, now) || peer.Identifier() == string(r.Identifier) {
			continue
		}
		m := routing.NewMessage()
		m.Onward = routing.MustRoute(c.Address(), routing.LocalAddress(eventsWorker))
		m.SetPayload(b)
		n.router.Send(m)
	}
}

// projectMember reports whether peer holds a valid credential of project. A peer's
// attributes come only from credentials the project's authority signed.
func projectMember(peer *trust.Peer, project string, now time.Time) bool {
	a := peer.Attributes()
	exp := peer.Expires()
	return a[authority.AttrMember] == "true" && a[authority.AttrProject] == project && !exp.IsZero() && now.Before(exp)
}

// revocationReload is how often a hub reads the revocations again: another hub sharing its
// PostgreSQL member store may have deleted members.
const revocationReload = 10 * time.Second

// reloadRevocations makes the hub's revocations the stored ones again: it enforces and
// announces those this hub did not know, and forgets those that ended or were lifted (the
// member was added back). A store that fails or hangs changes nothing: what the hub knows
// stays refused.
func (n *Node) reloadRevocations(ctx context.Context, p *project) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p.membership.Lock()
	defer p.membership.Unlock()
	rs, err := p.auth.Revocations(ctx)
	if err != nil {
		n.log.Warn("could not read the revoked members again; those known stay refused", "err", err)
		return
	}
	stored := make(map[identity.Identifier]bool, len(rs))
	for _, r := range rs {
		stored[r.Identifier] = true
		if old, ok := p.revoked.Load(r.Identifier); ok && !old.(time.Time).Before(r.Until) {
			continue
		}
		n.log.Info("a member was revoked through the shared member store", "member", r.Identifier, "until", r.Until)
		n.revoke(p, r.Identifier, r.Until)
		n.announce(p, r)
	}
	p.revoked.Range(func(id, _ any) bool {
		if !stored[id.(identity.Identifier)] {
			p.revoked.Delete(id)
			p.signed.Delete(id)
		}
		return true
	})
}

// maxRevocationsAnswer bounds the revocations a hub hands a member in one answer, within
// rpc.MaxMessage; the latest to end go first. The hub refuses all of them itself anyway.
const maxRevocationsAnswer = 128

// revocationsAnswer is the hub's answer to "revocations": signed events, one per revoked
// member.
type revocationsAnswer struct {
	Events [][]byte `json:"events"`
}

// revocationsFor answers a member that (re)connected with the revocations in force, each
// signed, so that it refuses them too without having heard the announcements. Only members
// are told.
func (n *Node) revocationsFor(p *project, peer *trust.Peer) (revocationsAnswer, error) {
	now := n.cfg.Now()
	if !projectMember(peer, p.name, now) || n.isRevoked(identity.Identifier(peer.Identifier())) {
		return revocationsAnswer{}, fmt.Errorf("%s is not a member of project %s", peer.Identifier(), p.name)
	}
	var rs []authority.Revocation
	p.revoked.Range(func(id, until any) bool {
		if u := until.(time.Time); now.Before(u) {
			rs = append(rs, authority.Revocation{Identifier: id.(identity.Identifier), Until: u})
		}
		return true
	})
	slices.SortFunc(rs, func(a, b authority.Revocation) int { return b.Until.Compare(a.Until) })
	ans := revocationsAnswer{Events: [][]byte{}}
	for _, r := range rs[:min(len(rs), maxRevocationsAnswer)] {
		s, err := p.signedRevocation(r, now)
		if err != nil {
			return revocationsAnswer{}, err
		}
		ans.Events = append(ans.Events, s)
	}
	return ans, nil
}

// signedRevocation returns r signed, reusing a signature made less than half of
// event.MaxAge ago: members asking again and again cost the hub no signing.
func (p *project) signedRevocation(r authority.Revocation, now time.Time) ([]byte, error) {
	type signed struct {
		until time.Time
		at    time.Time
		b     []byte
	}
	if v, ok := p.signed.Load(r.Identifier); ok {
		if s := v.(signed); s.until.Equal(r.Until) && now.Sub(s.at) < event.MaxAge/2 {
			return s.b, nil
		}
	}
	s, err := p.auth.Announce(r)
	if err != nil {
		return nil, err
	}
	b := s.Encode()
	p.signed.Store(r.Identifier, signed{until: r.Until, at: now, b: b})
	return b, nil
}

// fetchRevocations asks the hub, on the member's own channel to it, for the revocations in
// force, and acts on those the authority signed.
func (n *Node) fetchRevocations(ctx context.Context, p *project) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ch := n.hubChannel()
	if ch == nil {
		return
	}
	var ans revocationsAnswer
	if err := rpc.Call(ctx, n.router, routing.Through(ch).Worker(authorityWorker), authorityRequest{Op: "revocations"}, &ans); err != nil {
		n.log.Warn("could not read the revoked members from the hub; the hub refuses them anyway", "err", err)
		return
	}
	now := n.cfg.Now()
	for _, raw := range ans.Events {
		s, err := event.Decode(raw)
		if err == nil {
			var ev event.Event
			if ev, err = s.Verify(p.authorityHistory(), p.name, now); err == nil && ev.Kind == event.KindRevoked && ev.Subject != n.self.history.Identifier() {
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
