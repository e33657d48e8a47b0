package routing

import (
	"testing"
)

type sink struct{ got []*Message }

func (s *sink) HandleMessage(m *Message) { s.got = append(s.got, m) }

func TestRouterFlowControl(t *testing.T) {
	r := New(Config{})
	open, closed, viaSpawner := &sink{}, &sink{}, &sink{}
	conn := r.NewFlow()
	listener := r.NewFlow()
	channel := r.NewFlow()
	must(t, r.Register("open", open, FlowTransports))
	must(t, r.Register("closed", closed))
	must(t, r.Register("spawned", viaSpawner, listener))

	send := func(to string, l Local) {
		m := NewMessage()
		m.Onward = MustRoute(LocalAddress(to))
		m.Local = l
		r.Send(m)
	}
	fromConn := Local{Flow: conn, Spawner: FlowTransports}
	send("open", fromConn)
	send("closed", fromConn)
	send("spawned", Local{Flow: channel, Spawner: listener})
	send("spawned", fromConn)
	send("closed", Local{}) // local senders reach every worker
	send("nobody", Local{})

	if len(open.got) != 1 || len(closed.got) != 1 || len(viaSpawner.got) != 1 {
		t.Fatalf("delivered open=%d closed=%d spawned=%d, want 1 each", len(open.got), len(closed.got), len(viaSpawner.got))
	}
	if got, want := r.Stats(), (Stats{Delivered: 3, Denied: 2, Unroutable: 1}); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
	must(t, r.Open("closed", conn))
	send("closed", fromConn)
	if len(closed.got) != 2 {
		t.Fatalf("after Open, closed got %d, want 2", len(closed.got))
	}
}

type recordingTransport struct{ got []*Message }

func (rt *recordingTransport) Send(m *Message) { rt.got = append(rt.got, m) }

func TestRouterRemoteMessageCannotLeaveThroughTransport(t *testing.T) {
	r := New(Config{})
	tr := &recordingTransport{}
	r.SetTransport(TypeTCP, tr)
	for _, l := range []Local{{}, {Flow: r.NewFlow(), Spawner: FlowTransports}} {
		m := NewMessage()
		m.Onward = MustRoute(TCPAddress("10.0.0.1:1"))
		m.Local = l
		r.Send(m)
	}
	if len(tr.got) != 1 || tr.got[0].Local.Flow != FlowLocal {
		t.Fatalf("transport got %d messages, want only the local one", len(tr.got))
	}
	if r.Stats().Denied != 1 {
		t.Fatalf("Denied = %d, want 1", r.Stats().Denied)
	}
}

func TestRouterLoop(t *testing.T) {
	r := New(Config{})
	var hops int
	must(t, r.Register("loop", WorkerFunc(func(m *Message) {
		hops++
		r.Send(m) // the route still names "loop": forward to itself
	})))
	m := NewMessage()
	m.Onward = MustRoute(LocalAddress("loop"))
	r.Send(m)
	if hops != maxDepth || r.Stats().Unroutable != 1 {
		t.Fatalf("loop ran %d hops (unroutable %d), want %d and 1", hops, r.Stats().Unroutable, maxDepth)
	}
}

func TestEcho(t *testing.T) {
	r := New(Config{})
	got := &sink{}
	must(t, r.Register("echo", NewEcho(r, "echo")))
	must(t, r.Register("reply", got))
	m := testMessage("ping")
	m.Onward = MustRoute(LocalAddress("echo"))
	r.Send(m)
	if len(got.got) != 1 || string(got.got[0].Payload()) != "ping" || got.got[0].Return.String() != "[0#echo]" {
		t.Fatalf("echo reply = %v", got.got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
