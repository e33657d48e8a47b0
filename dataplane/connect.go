package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// lateAnswerWait is how long an inlet session that stopped waiting for its outlet's answer
// stays listed to reset a late one: longer than the outlet's dial timeout (10 s by default).
const lateAnswerWait = 15 * time.Second

var errNoAnswer = errors.New("no answer from the outlet")

// ErrRefused is the error of a connect (or check) that the outlet, its node or the path
// refused, with the reason: the inlet counts them and keeps the last (Inlet.LastRefusal). The
// control plane wraps its own refusals of a path in it too.
var ErrRefused = errors.New("refused")

// answerOf reads the outlet's answer to a connect or check in m: the kind (msgConnected,
// msgChecked, or msgRefused for a refusal of any origin) and, for a refusal, why. ok is false
// for a message that is no answer (the session's own).
func answerOf(m *routing.Message) (a message, err error, ok bool) {
	p := m.Payload()
	if len(p) > 0 && (p[0] == msgData || p[0] == msgWindow) {
		return message{}, nil, false
	}
	if reason, refused := routing.Refusal(m); refused { // no such outlet at its node
		return message{kind: msgRefused}, fmt.Errorf("%w by the outlet's node: %w", ErrRefused, routing.RefusalError(reason)), true
	}
	if len(p) == 0 || p[0] != msgConnected && p[0] != msgRefused && p[0] != msgChecked {
		return message{}, nil, false
	}
	a, err = parse(p)
	switch {
	case err != nil:
		return message{kind: msgRefused}, fmt.Errorf("%w from the outlet", errMalformed), true
	case a.kind == msgRefused:
		return a, fmt.Errorf("%w by the outlet: %s", ErrRefused, a.body), true
	}
	return a, nil, true
}

// The connect step of an inlet session is a small state machine: the connect is out and the
// step waits; the outlet's answer (connected, or refused with a reason) or giving up (the
// timeout, the caller's context, the session ended because its path went, the inlet closed
// or the policy changed) moves it on, once. An answer after giving up is late: a late
// connected resets the outlet's session, which would otherwise hold its target for no one.
type connectState uint8

const (
	connectWaiting   connectState = iota // the connect is out, no answer yet
	connectOpen                          // the outlet connected in time: the session may start
	connectRefused                       // the outlet refused, or answered what does not parse
	connectAbandoned                     // the inlet gave up waiting
)

type connectEvent uint8

const (
	answerConnected connectEvent = iota
	answerRefused                // refused, or malformed
	giveUp
)

type connectAction uint8

const (
	ignore    connectAction = iota // an answer to drop: a second one, or a late refusal
	succeed                        // hand the session its peer and credit
	fail                           // end the session and report why
	resetLate                      // reset the outlet's session, which connected for no one
)

// step is the connect step's transition.
func step(s connectState, e connectEvent) (connectState, connectAction) {
	switch {
	case s == connectWaiting && e == answerConnected:
		return connectOpen, succeed
	case s == connectWaiting && e == answerRefused:
		return connectRefused, fail
	case s == connectWaiting && e == giveUp:
		return connectAbandoned, fail
	case s == connectAbandoned && e == answerConnected:
		return connectAbandoned, resetLate
	}
	return s, ignore
}

// dial is one inlet session's connect step, for a connection accepted by Serve (which
// waits for no answer: done starts the session) and for Dial (whose caller waits for done)
// alike. It is the worker registered under the session's name: it takes the outlet's
// answers and passes everything else to the session, which knows nothing of connecting.
type dial struct {
	in *Inlet
	s  *session
	// done gets the outcome, once: nil when the outlet connected (peer and credit are set),
	// else why not, the session having ended. It runs on the goroutine that decided.
	done func(d *dial, err error)

	mu      sync.Mutex
	state   connectState
	peer    routing.Route // the outlet's session, once connected
	credit  uint32
	early   uint32 // bytes of the client's that rode with the connect, charged to the credit
	timeout *time.Timer
	check   *time.Timer
}

// open starts the connect step of a new session for c (nil: attached later) over pr:
// registers it, sends the connect and arms the timeout and the check of the path. It fails,
// having done nothing, if the name cannot be registered or the path is already gone.
func (in *Inlet) open(pr PathRoute, c net.Conn, done func(*dial, error)) (*dial, error) {
	name := "portal." + randomID()
	d := &dial{in: in, done: done}
	d.s = newSession(in.cfg.SessionConfig, &in.stats, name, d.sessionEnded)
	d.s.subject = pr.Peer
	if c != nil {
		d.s.attach(c)
	}
	if err := in.cfg.Router.Register(name, d, pr.Flow); err != nil {
		return nil, err
	}
	if !in.groups.add(pr.Done, d.s) {
		in.cfg.Router.Unregister(name)
		return nil, errPathDown
	}
	d.mu.Lock()
	if d.state == connectWaiting { // else the path went already
		d.timeout = time.AfterFunc(in.cfg.ConnectTimeout, func() { d.giveUp(errNoAnswer) })
		d.check = time.AfterFunc(checkAfter, func() {
			if pr.Alive != nil {
				in.check(context.Background(), pr)
			}
		})
	}
	d.mu.Unlock()
	m := routing.NewMessage()
	m.Onward = pr.To
	m.Return = d.s.self
	m.SetBody(d.connectWithEarlyData())
	in.cfg.Router.Send(m)
	return d, nil
}

// connectWithEarlyData is the connect, carrying what the client has sent already: most
// clients speak first, at once, so their first request reaches the target with the connect
// instead of one round trip through the portal after it. Nothing is waited for.
func (d *dial) connectWithEarlyData() *routing.Buffer {
	b := routing.NewBuffer(5 + maxEarly)
	copy(b.Extend(5), withU32(msgConnect, uint32(d.in.cfg.Window)))
	if d.s.sockR == nil {
		return b
	}
	n, _ := d.s.sockR.TryRead(b.Available()[:maxEarly]) // an end or error: the session's reader sees it again
	if n > 0 {
		b.Extend(n)
		d.mu.Lock()
		d.early = uint32(n)
		d.mu.Unlock()
		d.in.stats.BytesIn.Add(int64(n))
	}
	return b
}

// HandleMessage takes the outlet's answer, and passes the session's messages on.
func (d *dial) HandleMessage(m *routing.Message) {
	a, err, ok := answerOf(m)
	if !ok || a.kind == msgChecked {
		d.s.HandleMessage(m)
		return
	}
	defer m.Release()
	ev := answerRefused
	if a.kind == msgConnected {
		ev = answerConnected
	}
	d.mu.Lock()
	st, act := step(d.state, ev)
	d.state = st
	if act == succeed {
		d.peer, d.credit = m.Return, a.n-min(a.n, d.early)
	}
	d.mu.Unlock()
	switch act {
	case succeed:
		d.stopTimers()
		d.s.setPeer(d.peer)
		d.done(d, nil)
	case fail:
		d.stopTimers()
		d.in.noteRefusal(err)
		d.s.end(true, nil) // a reset: the client must not take a refusal for the server's clean close
		d.done(d, err)
	case resetLate:
		if back, err := m.ReplyRoute(); err == nil {
			d.s.resetPeer(back, "the inlet stopped waiting for the outlet")
		}
	}
}

// giveUp stops waiting for the answer, if it still waits.
func (d *dial) giveUp(why error) {
	if d.abandon() {
		d.s.end(true, nil)
		d.done(d, why)
	}
}

// abandon moves a waiting step to abandoned and reports whether it did.
func (d *dial) abandon() bool {
	d.mu.Lock()
	st, act := step(d.state, giveUp)
	d.state = st
	d.mu.Unlock()
	if act != fail {
		return false
	}
	d.stopTimers()
	return true
}

// sessionEnded runs when the session ends, for whatever reason: if the step was still
// waiting it gives up (the path went, the inlet closed, the policy changed), and the name
// stays listed a while to reset a late answer.
func (d *dial) sessionEnded() {
	if d.abandon() {
		d.done(d, errPathDown)
	}
	d.mu.Lock()
	late := d.state == connectAbandoned
	d.mu.Unlock()
	name, r := d.s.name, d.in.cfg.Router
	if late {
		time.AfterFunc(lateAnswerWait, func() { r.Unregister(name) })
		return
	}
	r.Unregister(name)
}

func (d *dial) stopTimers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timeout != nil {
		d.timeout.Stop()
		d.check.Stop()
	}
}
