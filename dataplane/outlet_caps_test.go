package dataplane

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

type namedPeer string

func (p namedPeer) Identifier() string { return string(p) }

// answers is a worker that hands over the outlet's answers.
type answers chan *routing.Message

func (a answers) HandleMessage(m *routing.Message) { a <- m }

func (a answers) next(t *testing.T) (message, routing.Route) {
	t.Helper()
	select {
	case m := <-a:
		defer m.Release()
		pm, err := parse(m.Payload())
		if err != nil {
			t.Fatal(err)
		}
		pm.body = []byte(string(pm.body))
		return pm, m.Return
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from the outlet within 10s")
		return message{}, routing.Route{}
	}
}

// TestOutletSessionsPerPeerCapped: one peer's connects beyond MaxSessionsPerPeer are refused
// with a reason, without a dial, while another peer still connects; a session that ends
// gives its place back. Before the cap, every connect cost a goroutine, a dial and a target
// connection (issue 12, item 5).
func TestOutletSessionsPerPeerCapped(t *testing.T) {
	const max, tries = 4, 10
	held := make(chan net.Conn, 64)
	target := serve(t, func(c net.Conn) { held <- c })
	r := routing.New(routing.Config{Logger: quiet})
	out := NewOutlet(OutletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet}, Target: target.Addr().String(), MaxSessionsPerPeer: max})
	if err := r.Register("outlet", out); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close(); target.Close() })
	replies := map[string]answers{"alice": make(answers, 64), "bob": make(answers, 64)}
	for name, a := range replies {
		r.Register("reply-"+name, a)
	}
	connect := func(peer string) {
		m := routing.NewMessage()
		m.Onward = routing.MustRoute(routing.LocalAddress("outlet"))
		m.Return = routing.MustRoute(routing.LocalAddress("reply-" + peer))
		m.SetPayload(withU32(msgConnect, DefaultWindow))
		m.Local = routing.Local{Peer: namedPeer(peer)}
		r.Send(m)
	}

	for range tries {
		connect("alice")
	}
	var connected, refused int
	var session routing.Route
	for range tries {
		pm, ret := replies["alice"].next(t)
		switch pm.kind {
		case msgConnected:
			connected++
			session = ret
		case msgRefused:
			refused++
			if !strings.Contains(string(pm.body), "capacity") {
				t.Errorf("refusal reason %q, want one about capacity", pm.body)
			}
		}
	}
	if connected != max || refused != tries-max {
		t.Fatalf("alice: %d connected, %d refused; want %d and %d", connected, refused, max, tries-max)
	}
	if got := out.Stats().Refused.Load(); got != tries-max {
		t.Errorf("Stats().Refused = %d, want %d", got, tries-max)
	}
	for deadline := time.Now().Add(5 * time.Second); len(held) < max && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a connection too many to show up
	if got := len(held); got != max {
		t.Errorf("the target got %d connections, want %d", got, max)
	}

	connect("bob")
	if pm, _ := replies["bob"].next(t); pm.kind != msgConnected {
		t.Fatalf("bob's connect answered with type %d, want connected", pm.kind)
	}

	// One of alice's sessions ends: she may open another.
	m := routing.NewMessage()
	m.Onward = session
	m.SetPayload(withReason(msgReset, "done"))
	r.Send(m)
	deadline := time.Now().Add(10 * time.Second)
	for {
		connect("alice")
		pm, _ := replies["alice"].next(t)
		if pm.kind == msgConnected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice still refused 10s after one of her sessions ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
