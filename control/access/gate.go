package access

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/policy"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// Subject is a peer that can say what its attributes are (the control plane's trust.Peer).
type Subject interface {
	routing.Peer
	Attributes() map[string]string
}

// Attributes returns the policy attributes of m's sender, or nil if it is not an
// authenticated subject.
func Attributes(m *routing.Message) map[string]string {
	if s, ok := m.Local.Peer.(Subject); ok {
		return s.Attributes()
	}
	return nil
}

// Allowed evaluates p for m's sender. Local messages are always allowed; remote messages
// without an authenticated subject never are.
func Allowed(p *policy.Policy, m *routing.Message) (bool, string) {
	if m.Local.Flow == routing.FlowLocal {
		return true, ""
	}
	attrs := Attributes(m)
	if attrs == nil {
		return false, "the message did not come through a secure channel"
	}
	return evaluate(p, attrs)
}

// AllowedPeer evaluates p for an authenticated peer (an outlet's node, for an inlet's policy).
func AllowedPeer(p *policy.Policy, peer routing.Peer) (bool, string) {
	s, ok := peer.(Subject)
	if !ok {
		return false, "the peer has no attributes"
	}
	return evaluate(p, s.Attributes())
}

// evaluate runs p over attrs and says why it refuses.
func evaluate(p *policy.Policy, attrs map[string]string) (bool, string) {
	ok, err := p.Evaluate(attrs)
	if err != nil {
		return false, err.Error()
	}
	if !ok {
		return false, p.Explain(attrs)
	}
	return true, ""
}

// Gate is a worker that passes messages to Inner when Allowed.
type Gate struct {
	Resource string                // for logs: "echo", "relay postgres"...
	Policy   func() *policy.Policy // the current policy
	Inner    routing.Worker
	Log      *slog.Logger
	Router   *routing.Router // to answer denied handshakes; nil: drop silently

	denied  atomic.Uint64
	limiter logLimiter
}

// HandleMessage passes m to Inner if Admit, else drops it.
func (g *Gate) HandleMessage(m *routing.Message) {
	if !g.Admit(m) {
		m.Release()
		return
	}
	g.Inner.HandleMessage(m)
}

// Admit reports whether m's sender satisfies the policy, and logs a denial (at most about
// once a second per gate). A denied first handshake message is answered with a refusal, so
// the initiator learns why at once.
func (g *Gate) Admit(m *routing.Message) bool {
	ok, why := Allowed(g.Policy(), m)
	if !ok {
		if securechannel.IsFirstHandshake(m.Payload()) && g.Router != nil {
			g.refuse(m, why)
		}
		g.denied.Add(1)
		if g.limiter.allow() {
			peer := "(none)"
			if m.Local.Peer != nil {
				peer = m.Local.Peer.Identifier()
			}
			g.Log.Warn("access denied", "resource", g.Resource, "peer", peer, "reason", why, "policy", g.Policy().String())
		}
	}
	return ok
}

// Denied counts dropped messages.
func (g *Gate) Denied() uint64 { return g.denied.Load() }

// logLimiter lets through about one log line per second, so a flood of denied messages
// cannot flood the log.
type logLimiter struct {
	mu   sync.Mutex
	last time.Time
}

func (l *logLimiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.last) >= time.Second {
		l.last = now
		return true
	}
	return false
}

// refuse answers a denied first handshake message along its return route.
func (g *Gate) refuse(m *routing.Message, why string) {
	back, err := m.ReplyRoute()
	if err != nil {
		return
	}
	r := routing.NewMessage()
	r.Onward = back
	r.SetPayload(securechannel.Refusal("access to " + g.Resource + " denied: " + why))
	g.Router.Send(r)
}
