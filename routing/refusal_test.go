package routing

import (
	"strings"
	"testing"
)

// TestRouterRefusesUnknownService: a remote message for a worker that does not exist, or is not
// open to its flow, is answered with a refusal back the way it came, with the same words for
// both; nothing else is answered, and not more than the burst.
func TestRouterRefusesUnknownService(t *testing.T) {
	r := New(Config{Logger: quiet})
	link := &sink{} // the worker that sends back over the link the messages came by
	must(t, r.Register("conn.1", link))
	must(t, r.Register("closed", &sink{}))
	flow := r.NewFlow()
	send := func(to string, ret Route, l Local) {
		m := NewMessage()
		m.Onward = MustRoute(LocalAddress(to))
		m.Return = ret
		m.Local = l
		m.SetPayload([]byte("hi"))
		r.Send(m)
	}
	remote := Local{Flow: flow, Spawner: FlowTransports, Link: testLink{LocalAddress("conn.1")}}
	back := MustRoute(LocalAddress("conn.1"), LocalAddress("client"))

	send("nobody", back, remote)
	send("closed", back, remote)
	if len(link.got) != 2 {
		t.Fatalf("refusals sent back: %d, want 2", len(link.got))
	}
	for i, want := range []string{`no service "nobody" here`, `no service "closed" here`} {
		m := link.got[i]
		reason, ok := Refusal(m)
		if !ok || !strings.Contains(reason, want) {
			t.Fatalf("refusal %d: %q, %v; want %q", i, reason, ok, want)
		}
		if got := m.Onward.String(); got != back.String() {
			t.Fatalf("refusal %d goes to %s, want %s", i, got, back.String())
		}
	}
	if st := r.Stats(); st.Refused != 2 || st.Unroutable != 1 || st.Denied != 1 {
		t.Fatalf("Stats() = %+v, want 2 refused, 1 unroutable, 1 denied", st)
	}

	// Not answered: a refusal, a message to the refusal address, a message that did not come
	// back the way its return route says, a local message.
	refusal := MustRoute(LocalAddress("conn.1"), LocalAddress(RefusalName))
	send("nobody", refusal, remote)
	send(RefusalName, back, remote)
	send("nobody", MustRoute(LocalAddress("conn.2"), LocalAddress("client")), remote)
	send("nobody", back, Local{})
	if len(link.got) != 2 {
		t.Fatalf("%d refusals, want still 2", len(link.got))
	}

	// A flood gets at most a burst of refusals.
	for range 3 * refusalBurst {
		send("nobody", back, remote)
	}
	if n := len(link.got) - 2; n > refusalBurst {
		t.Fatalf("%d refusals to a flood, want at most %d", n, refusalBurst)
	}
	if err := r.Register(RefusalName, &sink{}); err == nil {
		t.Fatal("a worker took the refusal address")
	}
}
