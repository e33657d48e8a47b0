package routing

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/internal/ratelog"
)

// A router answers a remote message it cannot deliver (no worker at its address, or a worker
// not opened to the message's flow) with a refusal, so that the sender learns within one round
// trip that there is no such service instead of waiting for an answer that never comes. The
// refusal is a message from the reserved local address RefusalName whose payload is the reason.
// It is generated only:
//   - for remote messages: a local sender's mistake is its own;
//   - back along the message's verified ReplyRoute (the way it came), never elsewhere, so it
//     reaches no one but the sender and cannot be reflected at a third party;
//   - never in answer to a refusal, nor to a message sent to RefusalName (a worker that
//     answered a refusal), so two nodes cannot answer each other forever;
//   - at most refusalBurst per refusalPeriod per link the messages came over (the rest are
//     dropped as before), so one flooding peer spends its own link's budget, not others';
//     the table of links is bounded (refusalLinks), links beyond it share one budget. The
//     reason is short and bounded, so a refusal amplifies little and costs little under a
//     flood.
//
// It says the same for a name that does not exist and one that is not open to the sender, so
// a sender learns nothing it could not learn by sending to the name and getting no answer.

// RefusalName is the local address a router's refusal comes from; no worker may take it.
const RefusalName = "refused"

// ErrNoService is the error of a sender whose message a router refused: there is no service at
// the address it gave that is open to it.
var ErrNoService = errors.New("unknown service")

const (
	refusalPeriod = time.Second
	refusalBurst  = 16  // per link
	refusalLinks  = 256 // links with a budget of their own within a period
	// maxRefusedName bounds the name a refusal repeats.
	maxRefusedName = 64
	// refusalLogInterval spaces the router's log lines about refusals.
	refusalLogInterval = 10 * time.Second
)

// Refusal reports whether m is a router's refusal and, if so, its reason: m comes from the
// address RefusalName (the last hop of its return route).
func Refusal(m *Message) (string, bool) {
	if t, v, ok := m.Return.last(); !ok || t != TypeLocal || string(v) != RefusalName {
		return "", false
	}
	return string(m.Payload()), true
}

// RefusalError is the error for a refusal with reason (see Refusal): it wraps ErrNoService.
func RefusalError(reason string) error {
	return fmt.Errorf("%w: %s", ErrNoService, reason)
}

// refusals limits and logs a router's refusals.
type refusals struct {
	mu    sync.Mutex
	start time.Time
	sent  map[Address]int // refusals this period by link (Link.Address); at most refusalLinks
	over  int             // refusals this period over links beyond the table
	log   *ratelog.Logger
}

// allow reports whether one more refusal may go out now over link.
func (q *refusals) allow(now time.Time, link Link) bool {
	var key Address
	if link != nil {
		key = link.Address()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if now.Sub(q.start) >= refusalPeriod || q.sent == nil {
		q.start, q.over = now, 0
		clear(q.sent)
		if q.sent == nil {
			q.sent = make(map[Address]int)
		}
	}
	n, ok := q.sent[key]
	switch {
	case !ok && len(q.sent) >= refusalLinks:
		if q.over >= refusalBurst {
			return false
		}
		q.over++
	case n >= refusalBurst:
		return false
	default:
		q.sent[key] = n + 1
	}
	return true
}

// refuse answers the remote message m, which cannot reach the worker name, with a refusal back
// the way it came, within the limits above; else drops it. It takes ownership of m.
func (r *Router) refuse(m *Message, name string, counter *atomic.Uint64, why string) {
	counter.Add(1)
	if _, ok := Refusal(m); ok || m.Local.Flow == FlowLocal || name == RefusalName {
		r.drop(m, nil, why)
		return
	}
	back, err := m.ReplyRoute()
	if err != nil || !r.refusal.allow(time.Now(), m.Local.Link) {
		r.drop(m, nil, why)
		return
	}
	if len(name) > maxRefusedName {
		name = name[:maxRefusedName] + "..."
	}
	reason := fmt.Sprintf("no service %q here open to this sender", name)
	r.stats.refused.Add(1)
	r.refusal.log.Note(slog.String("last_service", name), slog.Int64("flow", int64(m.Local.Flow)))
	m.Onward = back
	m.Return.Reset()
	m.Return.Push(LocalAddress(RefusalName))
	m.Local = Local{}
	m.SetPayload([]byte(reason))
	r.Send(m)
}

// last returns the last hop, without copying.
func (r *Route) last() (t Type, value []byte, ok bool) {
	if r.n == 0 {
		return 0, nil, false
	}
	e := r.entries()
	for i := 1; i < int(r.n); i++ {
		e = e[2+int(e[1]):]
	}
	return Type(e[0]), e[2 : 2+int(e[1])], true
}
