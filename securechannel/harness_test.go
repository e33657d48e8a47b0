package securechannel

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/adjacentnet/adjacent/routing"
)

// testPeer is the routing.Peer of the test authenticator.
type testPeer string

func (p testPeer) Identifier() string { return string(p) }

// testAuth is a stand-in for the control plane's authenticator: the payload is a name and
// the static key the sender claims; Authenticate insists the claim matches the key used in
// the handshake (as the real attestation check does) and, if set, on one authorized name.
type testAuth struct {
	name       string
	claim      []byte // the static key claimed in the payload
	authorized string
}

func (a *testAuth) Payload() ([]byte, error) {
	return append(append([]byte{byte(len(a.name))}, a.name...), a.claim...), nil
}

func (a *testAuth) Authenticate(payload, remoteStatic []byte) (routing.Peer, error) {
	if len(payload) < 1 || len(payload) < 1+int(payload[0]) {
		return nil, errors.New("bad payload")
	}
	name, claim := string(payload[1:1+payload[0]]), payload[1+payload[0]:]
	if !bytes.Equal(claim, remoteStatic) {
		return nil, fmt.Errorf("%s: payload covers a different static key", name)
	}
	if a.authorized != "" && name != a.authorized {
		return nil, fmt.Errorf("%s is not authorized", name)
	}
	return testPeer(name), nil
}

// testNode is a router with a static key.
type testNode struct {
	name   string
	r      *routing.Router
	static noise.DHKey
}

func newTestNode(t testing.TB, name string) *testNode {
	t.Helper()
	static, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{name: name, r: routing.New(routing.Config{Logger: quiet}), static: static}
}

var quiet = slog.New(slog.DiscardHandler)

func (n *testNode) config(authorized string) Config {
	return Config{
		Static: n.static,
		Auth:   &testAuth{name: n.name, claim: n.static.Public, authorized: authorized},
		Logger: quiet,
	}
}

// testLink is a fake connection between two test nodes.
type testLink struct {
	addr routing.Address
	done chan struct{}
	once sync.Once
	auth atomic.Bool
}

func (l *testLink) Authenticated()        { l.auth.Store(true) }
func (l *testLink) Done() <-chan struct{} { return l.done }
func (l *testLink) close()                { l.once.Do(func() { close(l.done) }) }

// Address is the wire's worker that sends back, which the wire pushes on return routes.
func (l *testLink) Address() routing.Address       { return l.addr }
func (l *testLink) Guarantees() routing.Guarantees { return routing.Stream }

// wire joins two test nodes like a transport connection: on each side a worker ("to-"+peer)
// that takes messages for the other node, and a goroutine that delivers them there as if
// they had arrived over a connection, with the wire's return address pushed.
type wire struct {
	mu     sync.Mutex
	tamper func(from string, payload []byte) []byte // may rewrite a payload; nil drops it
	seen   [][]byte                                 // payloads that crossed, for replay tests
	flows  map[string]routing.FlowID                // flow of messages arriving at each node
	links  map[string]*testLink

	inflight  atomic.Int64  // messages taken by a to- worker and not yet delivered
	delivered atomic.Uint64 // messages delivered (or dropped by tamper)
}

// quiet reports whether cond holds while nothing is on the wire: no message was on it before
// cond was checked, none crossed it meanwhile, and none is on it after. Tests that count the
// messages crossing the wire wait for it, so that a late message of one step is not counted
// in the next.
func (w *wire) quiet(cond func() bool) bool {
	d := w.delivered.Load()
	if w.inflight.Load() != 0 {
		return false
	}
	ok := cond()
	return ok && w.inflight.Load() == 0 && w.delivered.Load() == d
}

func connect(t testing.TB, a, b *testNode) *wire {
	t.Helper()
	w := &wire{flows: map[string]routing.FlowID{}, links: map[string]*testLink{}}
	for _, n := range []*testNode{a, b} {
		w.flows[n.name] = n.r.NewFlow()
		w.links[n.name] = &testLink{done: make(chan struct{})}
	}
	w.links[a.name].addr, w.links[b.name].addr = routing.LocalAddress("to-"+b.name), routing.LocalAddress("to-"+a.name)
	for _, pair := range [][2]*testNode{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		q := make(chan []byte, 4096)
		if err := from.r.Register("to-"+to.name, routing.WorkerFunc(func(m *routing.Message) {
			m.Onward.Pop()
			enc := m.AppendTo(nil)
			m.Release()
			w.inflight.Add(1)
			q <- enc
		})); err != nil {
			t.Fatal(err)
		}
		go w.deliver(from.name, to, q, w.flows[to.name], w.links[to.name])
	}
	return w
}

func (w *wire) deliver(from string, to *testNode, q chan []byte, flow routing.FlowID, link *testLink) {
	for {
		select {
		case enc := <-q:
			m := routing.NewMessage()
			if err := m.Decode(enc); err != nil {
				panic(err)
			}
			w.mu.Lock()
			tamper := w.tamper
			w.seen = append(w.seen, bytes.Clone(m.Payload()))
			w.mu.Unlock()
			if tamper != nil {
				p := tamper(from, bytes.Clone(m.Payload()))
				if p == nil {
					m.Release()
					w.delivered.Add(1)
					w.inflight.Add(-1)
					continue
				}
				m.SetPayload(p)
			}
			m.Return.Push(routing.LocalAddress("to-" + from))
			m.Local = routing.Local{Flow: flow, Spawner: routing.FlowTransports, Link: link}
			to.r.Send(m)
			w.delivered.Add(1)
			w.inflight.Add(-1)
		case <-link.done:
			return
		}
	}
}

func (w *wire) setTamper(f func(from string, payload []byte) []byte) {
	w.mu.Lock()
	w.tamper = f
	w.mu.Unlock()
}

// inbox is a worker that hands over the messages it gets.
type inbox chan *routing.Message

func (in inbox) HandleMessage(m *routing.Message) {
	select {
	case in <- m:
	default:
		m.Release()
	}
}

func (in inbox) next(t testing.TB) *routing.Message {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

// echoPair sets up alice and bob joined by a wire, bob listening at "api" with an echo worker
// reachable from his channels, and returns alice's channel to bob.
type echoPair struct {
	alice, bob *testNode
	wire       *wire
	listener   *Listener
	ch         *Channel
	replies    inbox
}

func newEchoPair(t testing.TB, aliceCfg, bobCfg func(*Config)) *echoPair {
	t.Helper()
	p := &echoPair{alice: newTestNode(t, "alice"), bob: newTestNode(t, "bob")}
	p.wire = connect(t, p.alice, p.bob)
	bc := p.bob.config("")
	if bobCfg != nil {
		bobCfg(&bc)
	}
	l, err := Listen(p.bob.r, "api", bc, p.wire.flows["bob"])
	if err != nil {
		t.Fatal(err)
	}
	p.listener = l
	t.Cleanup(func() { l.Close() })
	if err := p.bob.r.Register("echo", routing.NewEcho(p.bob.r, "echo"), l.Flow()); err != nil {
		t.Fatal(err)
	}
	ac := p.alice.config("")
	if aliceCfg != nil {
		aliceCfg(&ac)
	}
	ch, err := p.initiate(ac)
	if err != nil {
		t.Fatal(err)
	}
	p.ch = ch
	t.Cleanup(func() { ch.Close() })
	p.replies = make(inbox, 1024)
	if err := p.alice.r.Register("reply", p.replies, ch.Flow()); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *echoPair) initiate(cfg Config) (*Channel, error) {
	route := routing.MustRoute(routing.LocalAddress("to-bob"), routing.LocalAddress("api"))
	return Initiate(context.Background(), p.alice.r, routing.Destination{Route: route, Flow: p.wire.flows["alice"], Link: p.wire.links["alice"]}, cfg)
}

// echo sends payload through the channel to bob's echo and returns the reply's payload.
func (p *echoPair) echo(t testing.TB, payload []byte) []byte {
	t.Helper()
	p.send(payload)
	m := p.replies.next(t)
	defer m.Release()
	return bytes.Clone(m.Payload())
}

func (p *echoPair) send(payload []byte) {
	m := routing.NewMessage()
	m.Onward = routing.MustRoute(p.ch.Address(), routing.LocalAddress("echo"))
	m.Return = routing.MustRoute(routing.LocalAddress("reply"))
	m.SetPayload(payload)
	p.alice.r.Send(m)
}

// eventually polls cond for up to 5s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
