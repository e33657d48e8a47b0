package routing

import (
	"strconv"
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

// TestRefusalBudgetPerLink: a flood of messages for no service over one link spends that
// link's refusals only: a sender over another link still learns at once that there is no such
// service. Links beyond the table share one budget, so many links cannot make the router
// answer without bound. Before, one budget of 64 a second served the whole router, and one
// flooder took every other sender's refusals.
func TestRefusalBudgetPerLink(t *testing.T) {
	r := New(Config{Logger: quiet})
	flow := r.NewFlow()
	link := func(name string) (*sink, func()) {
		s := &sink{}
		must(t, r.Register(name, s))
		return s, func() {
			m := NewMessage()
			m.Onward = MustRoute(LocalAddress("nobody"))
			m.Return = MustRoute(LocalAddress(name), LocalAddress("client"))
			m.Local = Local{Flow: flow, Spawner: FlowTransports, Link: testLink{LocalAddress(name)}}
			m.SetPayload([]byte("hi"))
			r.Send(m)
		}
	}
	flooder, flood := link("conn.flood")
	for range 10 * refusalBurst {
		flood()
	}
	if n := len(flooder.got); n != refusalBurst {
		t.Fatalf("%d refusals to the flooding link, want its burst %d", n, refusalBurst)
	}
	honest, ask := link("conn.honest")
	ask()
	if len(honest.got) != 1 {
		t.Fatalf("another link's sender got %d refusals after one link's flood, want 1", len(honest.got))
	}
	// Many links: those beyond the table share one burst.
	var answered int
	var sinks []*sink
	for i := range 2 * refusalLinks {
		s, send := link("conn.many." + strconv.Itoa(i))
		send()
		sinks = append(sinks, s)
	}
	for _, s := range sinks {
		answered += len(s.got)
	}
	if want := refusalLinks - 2 + refusalBurst; answered != want {
		t.Fatalf("%d refusals to %d links, want %d (the table's, less the 2 links above, and one shared burst)", answered, 2*refusalLinks, want)
	}
}
