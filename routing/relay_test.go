package routing

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
)

type testPeer string

func (p testPeer) Identifier() string { return string(p) }

// testLink is a fake connection or channel: what arrives over it has its address pushed.
type testLink struct{ addr Address }

func (l testLink) Address() Address       { return l.addr }
func (l testLink) Authenticated()         {}
func (l testLink) Done() <-chan struct{}  { return nil }
func (l testLink) Guarantees() Guarantees { return Stream }

var quiet = slog.New(slog.DiscardHandler)

// testChannel is the hub's end of a member's secure channel: its encryptor (a worker opened
// to nothing, as a real one is) and the Local of what comes out of it.
type testChannel struct {
	enc   string
	local Local
	got   []*Message
}

func newTestChannel(t *testing.T, r *Router, name string, spawner FlowID) *testChannel {
	t.Helper()
	c := &testChannel{enc: name}
	c.local = Local{Flow: r.NewFlow(), Spawner: spawner, Peer: testPeer("peer of " + name), Link: testLink{LocalAddress(name)}}
	must(t, r.Register(name, WorkerFunc(func(m *Message) { c.got = append(c.got, m) })))
	return c
}

// send delivers a message from c's peer as the channel's decryptor does: the channel's
// address pushed onto the return route, the channel's Local beside it.
func (c *testChannel) send(r *Router, onward []Address, ret ...Address) {
	m := NewMessage()
	m.Onward = MustRoute(onward...)
	m.Return = MustRoute(append([]Address{LocalAddress(c.enc)}, ret...)...)
	m.Local = c.local
	m.SetPayload([]byte("x"))
	r.Send(m)
}

func (c *testChannel) take() []*Message {
	got := c.got
	c.got = nil
	return got
}

func TestRelayCarriesBothWaysAndKeepsTheSender(t *testing.T) {
	r := New(Config{Logger: quiet})
	listener := r.NewFlow()
	owner := newTestChannel(t, r, "sc.owner", listener)
	client := newTestChannel(t, r, "sc.client", listener)
	silent := newTestChannel(t, r, "sc.silent", listener)
	relay := NewRelay(r, "forward_to_db", MustRoute(LocalAddress(owner.enc)), owner.local.Flow, nil)
	must(t, r.Register("forward_to_db", relay, listener))

	client.send(r, []Address{LocalAddress("forward_to_db"), LocalAddress("api")}, LocalAddress("sc.initiator.in"))
	got := owner.take()
	if len(got) != 1 {
		t.Fatalf("owner got %d messages, want 1", len(got))
	}
	m := got[0]
	if m.Local.Flow != relay.Flow() || m.Local.Peer != client.local.Peer || m.Local.Link != client.local.Link {
		t.Fatalf("relayed to the owner with Local %+v, want the relay's flow and the client's peer and link", m.Local)
	}
	if got, want := m.Return.String(), "[0#forward_to_db, 0#sc.client, 0#sc.initiator.in]"; got != want {
		t.Fatalf("return route at the owner = %s, want %s", got, want)
	}
	// The owner answers along that return route, as it arrives from the owner's channel.
	owner.send(r, m.Return.Addresses(), LocalAddress("sc.responder.in"))
	m.Release()
	got = client.take()
	if len(got) != 1 || got[0].Local.Flow != relay.Flow() || got[0].Local.Peer != owner.local.Peer {
		t.Fatalf("client got %v, want one message of the relay's flow from the owner", got)
	}
	if got, want := got[0].Return.String(), "[0#forward_to_db, 0#sc.responder.in]"; got != want {
		t.Fatalf("return route at the client = %s, want %s", got, want)
	}
	got[0].Release()
	// A channel that never sent through the relay is out of the owner's reach.
	owner.send(r, []Address{LocalAddress("forward_to_db"), LocalAddress(silent.enc), LocalAddress("events")})
	if got := silent.take(); len(got) != 0 {
		t.Fatalf("the owner reached a channel that never used the relay: %d messages", len(got))
	}
	if relay.Clients() != 1 {
		t.Fatalf("Clients() = %d, want 1", relay.Clients())
	}
}

// TestRelayOwnerStaysRemote: what the owner puts after the relay hop runs with the owner's
// authority, not the hub's: no transport, no service, no channel that did not use the relay.
func TestRelayOwnerStaysRemote(t *testing.T) {
	r := New(Config{Logger: quiet})
	tr := &recordingTransport{}
	r.SetTransport(TypeTCP, tr)
	listener := r.NewFlow()
	owner := newTestChannel(t, r, "sc.owner", listener)
	other := newTestChannel(t, r, "sc.other", listener)
	service, private := &sink{}, &sink{}
	must(t, r.Register("authority", service, listener))
	must(t, r.Register("private", private))
	must(t, r.Register("echo", NewEcho(r, "echo"), listener))
	relay := NewRelay(r, "forward_to_db", MustRoute(LocalAddress(owner.enc)), owner.local.Flow, nil)
	must(t, r.Register("forward_to_db", relay, listener))

	for _, to := range [][]Address{
		{TCPAddress("127.0.0.1:9"), LocalAddress("echo")},
		{LocalAddress("authority")},
		{LocalAddress("private")},
		{LocalAddress("echo")},
		{LocalAddress(other.enc), LocalAddress("api")},
		{LocalAddress("forward_to_db"), LocalAddress("private")},
	} {
		owner.send(r, append([]Address{LocalAddress("forward_to_db")}, to...))
	}
	if len(tr.got) != 0 || len(service.got) != 0 || len(private.got) != 0 || len(other.take()) != 0 || len(owner.take()) != 0 {
		t.Fatalf("the owner's messages left the relay as the hub's: transport %d, service %d, private %d",
			len(tr.got), len(service.got), len(private.got))
	}
	if got, want := r.Stats().Denied, uint64(6); got != want {
		t.Fatalf("Denied = %d, want %d", got, want)
	}
}

func TestRelayClientCap(t *testing.T) {
	r := New(Config{Logger: quiet})
	listener := r.NewFlow()
	owner := newTestChannel(t, r, "sc.owner", listener)
	relay := NewRelay(r, "forward_to_db", MustRoute(LocalAddress(owner.enc)), owner.local.Flow, nil)
	relay.maxClients = 2
	must(t, r.Register("forward_to_db", relay, listener))
	a := newTestChannel(t, r, "sc.a", listener)
	b := newTestChannel(t, r, "sc.b", listener)
	c := newTestChannel(t, r, "sc.c", listener)
	for _, ch := range []*testChannel{a, b, a, c} {
		ch.send(r, []Address{LocalAddress("forward_to_db")})
	}
	if got := len(owner.take()); got != 3 || relay.Clients() != 2 || relay.Refused() != 1 {
		t.Fatalf("owner got %d, clients %d, refused %d; want 3, 2, 1", got, relay.Clients(), relay.Refused())
	}
	// A closed channel drops out by itself: its registration, with the relay's flow, is gone.
	r.Unregister(a.enc)
	c.send(r, []Address{LocalAddress("forward_to_db")})
	if got := len(owner.take()); got != 1 || relay.Clients() != 2 || relay.Refused() != 1 {
		t.Fatalf("after a client closed: owner got %d, clients %d, refused %d; want 1, 2, 1", got, relay.Clients(), relay.Refused())
	}
	again := &sink{}
	must(t, r.Register(a.enc, again)) // the same name again is a new worker, not opened
	owner.send(r, []Address{LocalAddress("forward_to_db"), LocalAddress(a.enc)})
	if r.Stats().Denied != 1 {
		t.Fatalf("Denied = %d, want 1: a new worker under a client's old name must not inherit its opening", r.Stats().Denied)
	}
	r.Unregister(b.enc)
	a.send(r, []Address{LocalAddress("forward_to_db")}) // until it sends through the relay
	owner.send(r, []Address{LocalAddress("forward_to_db"), LocalAddress(a.enc)})
	if len(again.got) != 1 || relay.Clients() != 2 || relay.Refused() != 1 {
		t.Fatalf("the new channel got %d answers, clients %d, refused %d; want 1, 2, 1", len(again.got), relay.Clients(), relay.Refused())
	}
}

// TestRelayUpdateForgetsClients: when another channel takes the relay over, the clients of
// the old one are out of its reach until they send again, and the old owner's channel is
// closed to the relay.
func TestRelayUpdateForgetsClients(t *testing.T) {
	r := New(Config{Logger: quiet})
	listener := r.NewFlow()
	old := newTestChannel(t, r, "sc.old", listener)
	client := newTestChannel(t, r, "sc.client", listener)
	relay := NewRelay(r, "forward_to_db", MustRoute(LocalAddress(old.enc)), old.local.Flow, nil)
	must(t, r.Register("forward_to_db", relay, listener))
	client.send(r, []Address{LocalAddress("forward_to_db")})
	old.take()
	relay.Update(MustRoute(LocalAddress(old.enc)), old.local.Flow) // the same channel again
	if relay.Clients() != 1 {
		t.Fatalf("re-registering from the same channel dropped the clients: %d", relay.Clients())
	}
	taker := newTestChannel(t, r, "sc.new", listener)
	relay.Update(MustRoute(LocalAddress(taker.enc)), taker.local.Flow)
	taker.send(r, []Address{LocalAddress("forward_to_db"), LocalAddress(client.enc)})
	taker.send(r, []Address{LocalAddress("forward_to_db"), LocalAddress(old.enc)})
	if len(client.take()) != 0 || len(old.take()) != 0 || relay.Clients() != 0 {
		t.Fatal("the new owner reached the old owner's clients or channel")
	}
	client.send(r, []Address{LocalAddress("forward_to_db")})
	if len(taker.take()) != 1 || len(old.take()) != 0 {
		t.Fatal("a client's message did not go to the new owner only")
	}
	relay.Close()
	client.send(r, []Address{LocalAddress("forward_to_db")})
	if len(taker.take()) != 0 || relay.Dropped() != 1 {
		t.Fatalf("a closed relay still forwards (dropped %d)", relay.Dropped())
	}
}

func TestReplyGoesBackTheWayTheMessageCame(t *testing.T) {
	r := New(Config{Logger: quiet})
	listener := r.NewFlow()
	ch := newTestChannel(t, r, "sc.a", listener)
	other := newTestChannel(t, r, "sc.b", listener)
	must(t, r.Register("echo", NewEcho(r, "echo"), listener))
	ch.send(r, []Address{LocalAddress("echo")})
	if got := ch.take(); len(got) != 1 || got[0].Local.Flow != FlowLocal {
		t.Fatalf("echo answered %v, want one local reply on the channel", got)
	}
	// A message whose return route does not start at its own channel gets no answer.
	m := NewMessage()
	m.Onward = MustRoute(LocalAddress("echo"))
	m.Return = MustRoute(LocalAddress(other.enc))
	m.Local = ch.local
	r.Send(m)
	if len(other.take()) != 0 || len(ch.take()) != 0 || r.Stats().Denied != 1 {
		t.Fatalf("echo answered a message that did not come back its own way (denied %d)", r.Stats().Denied)
	}
}

// TestNoRemoteMessageBecomesLocal is the property behind relays and repliers: whatever a
// remote peer sends, through whichever relays, nothing reaches a transport or a worker that
// was not opened to the sender's own flow, except relayed messages on the channels of a
// relay's owner and clients, and an explicit reply back on the sender's own channel.
func TestNoRemoteMessageBecomesLocal(t *testing.T) {
	iterations := 20000
	if testing.Short() {
		iterations = 2000
	}
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			checkNoRemoteMessageBecomesLocal(t, rand.New(rand.NewPCG(seed, 12)), iterations/4)
		})
	}
}

func checkNoRemoteMessageBecomesLocal(t *testing.T, rnd *rand.Rand, iterations int) {
	r := New(Config{Logger: quiet})
	tr := &recordingTransport{}
	r.SetTransport(TypeTCP, tr)
	listener := r.NewFlow()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format, args...)
	}

	type channel struct {
		enc   string
		local Local
		gen   int
	}
	var (
		sender   *channel // of the message being sent
		channels []*channel
		relays   []*Relay
		owners   []int                   // index of each relay's owner channel
		opened   []map[string]bool       // per relay: encryptors a client message came out of
		byEnc    = map[string]*channel{} // live channels
		flows    = map[FlowID]*Relay{}   // relay flows
		relayIdx = map[*Relay]int{}      // position in relays
		inWorker = map[string]func(*Message){}
		answers  int // relayed from an owner back to a client
	)
	newChannel := func(i int) {
		old := channels[i]
		gen := 0
		if old != nil {
			r.Unregister(old.enc)
			delete(byEnc, old.enc)
			gen = old.gen + 1
		}
		name := fmt.Sprintf("sc.%d.%d", i, gen)
		c := &channel{enc: name, gen: gen, local: Local{Flow: r.NewFlow(), Spawner: listener, Peer: testPeer(fmt.Sprint("member ", i)), Link: testLink{LocalAddress(name)}}}
		channels[i], byEnc[name] = c, c
		must(t, r.Register(name, WorkerFunc(func(m *Message) {
			defer m.Release()
			switch rl := flows[m.Local.Flow]; {
			case m.Local.Flow == FlowLocal:
				// Only an explicit reply or the router's refusal, back on the channel the
				// request came out of.
				if ret := m.Return.String(); c != sender || ret != "[0#echo]" && ret != "[0#"+RefusalName+"]" {
					fail("local message on %s from %v (sender %s): %s", c.enc, m.Return.String(), sender.enc, m.Onward.String())
				}
			case rl != nil:
				j := relayIdx[rl]
				if m.Local.Peer != sender.local.Peer || m.Local.Link != sender.local.Link {
					fail("relay %d changed the sender: %v, want %v", j, m.Local.Peer, sender.local.Peer)
				}
				ownerEnc := channels[owners[j]].enc
				switch {
				case c.enc == ownerEnc:
					if sender.enc != ownerEnc {
						opened[j][sender.enc] = true
					}
				case sender.enc == ownerEnc && opened[j][c.enc]:
					answers++
				default:
					fail("relay %d carried a message from %s to %s, neither its owner nor a client of it", j, sender.enc, c.enc)
				}
			default:
				fail("%s got a message of flow %d", c.enc, m.Local.Flow)
			}
		})))
	}
	channels = make([]*channel, 5)
	for i := range channels {
		newChannel(i)
	}
	for j, owner := range []int{0, 1, 1} {
		name := fmt.Sprintf("forward_to_%d", j)
		c := channels[owner]
		admit := func(m *Message) bool { return m.Local.Peer != testPeer("member 4") } // a gate refusing one member
		rl := NewRelay(r, name, MustRoute(LocalAddress(c.enc)), c.local.Flow, admit)
		rl.maxClients = 3
		must(t, r.Register(name, rl, listener))
		relays, owners, opened = append(relays, rl), append(owners, owner), append(opened, map[string]bool{})
		flows[rl.Flow()], relayIdx[rl] = rl, j
	}
	// Services opened to the listener's channels, and workers opened to nothing.
	echo := NewEcho(r, "echo")
	inWorker["echo"] = echo.HandleMessage
	inWorker["authority"] = func(m *Message) { m.Release() }
	for name, w := range inWorker {
		must(t, r.Register(name, WorkerFunc(func(m *Message) {
			if m.Local != sender.local {
				fail("%s reached by %+v, want only its sender's own channel %+v", name, m.Local, sender.local)
			}
			w(m)
		}), listener))
	}
	for _, name := range []string{"private", "tcp.conn.1"} {
		must(t, r.Register(name, WorkerFunc(func(m *Message) { fail("%s reached by %+v: %s", name, m.Local, m.Onward.String()) })))
	}

	hop := func() Address {
		switch n := rnd.IntN(10); {
		case n < 3:
			return LocalAddress(fmt.Sprintf("forward_to_%d", rnd.IntN(len(relays)+1)))
		case n < 6:
			c := channels[rnd.IntN(len(channels))]
			if rnd.IntN(4) == 0 { // a closed channel's old name
				return LocalAddress(fmt.Sprintf("sc.%d.%d", rnd.IntN(len(channels)), max(0, c.gen-1)))
			}
			return LocalAddress(c.enc)
		case n == 6:
			return TCPAddress("127.0.0.1:9")
		default:
			return LocalAddress([]string{"echo", "authority", "private", "tcp.conn.1", "api"}[rnd.IntN(5)])
		}
	}
	route := func(min int) []Address {
		out := make([]Address, min+rnd.IntN(5))
		for i := range out {
			out[i] = hop()
		}
		return out
	}
	for range iterations {
		switch n := rnd.IntN(100); {
		case n < 2: // a member reconnects: its channel at the hub is a new one
			i := rnd.IntN(len(channels))
			newChannel(i)
			for j, o := range owners {
				if o == i { // the owner re-creates its relay from the new channel
					relays[j].Update(MustRoute(LocalAddress(channels[i].enc)), channels[i].local.Flow)
					opened[j] = map[string]bool{}
				}
			}
		default:
			sender = channels[rnd.IntN(len(channels))]
			onward := route(1)
			if rnd.IntN(2) == 0 {
				onward[0] = LocalAddress(fmt.Sprintf("forward_to_%d", rnd.IntN(len(relays))))
			}
			m := NewMessage()
			m.Onward = MustRoute(onward...)
			m.Return = MustRoute(append([]Address{LocalAddress(sender.enc)}, route(0)...)...)
			m.Local = sender.local
			m.SetPayload([]byte("x"))
			r.Send(m)
		}
		if len(tr.got) != 0 {
			fail("a remote message left through the transport: onward %s, Local %+v", tr.got[0].Onward.String(), tr.got[0].Local)
		}
	}
	st := r.Stats()
	if st.Delivered == 0 || st.Denied == 0 {
		t.Fatalf("Stats() = %+v: the test exercised nothing", st)
	}
	var clients int
	for _, rl := range relays {
		clients += rl.Clients()
	}
	if clients == 0 || answers == 0 {
		t.Fatalf("relays hold %d clients and carried %d answers: the test exercised nothing", clients, answers)
	}
}

// BenchmarkRelay measures one message through a relay each way, against the same message
// delivered straight to the channel (direct), to compare the relay's share as a ratio.
func BenchmarkRelay(b *testing.B) {
	r := New(Config{Logger: quiet})
	listener := r.NewFlow()
	release := WorkerFunc(func(m *Message) { m.Release() })
	chans := map[string]Local{}
	for _, name := range []string{"sc.owner", "sc.client"} {
		if err := r.Register(name, release); err != nil {
			b.Fatal(err)
		}
		chans[name] = Local{Flow: r.NewFlow(), Spawner: listener, Peer: testPeer(name), Link: testLink{LocalAddress(name)}}
	}
	if err := r.Register("direct", release, listener); err != nil {
		b.Fatal(err)
	}
	relay := NewRelay(r, "forward_to_db", MustRoute(LocalAddress("sc.owner")), chans["sc.owner"].Flow, nil)
	if err := r.Register("forward_to_db", relay, listener); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1024)
	for _, bc := range []struct {
		name        string
		from        string
		onward, ret []Address
	}{
		{"direct", "sc.client", []Address{LocalAddress("direct")}, nil},
		{"client-to-owner", "sc.client", []Address{LocalAddress("forward_to_db"), LocalAddress("api")}, []Address{LocalAddress("sc.i.in")}},
		{"owner-to-client", "sc.owner", []Address{LocalAddress("forward_to_db"), LocalAddress("sc.client"), LocalAddress("sc.i.in")}, []Address{LocalAddress("sc.r.in")}},
	} {
		onward := MustRoute(bc.onward...)
		ret := MustRoute(append([]Address{LocalAddress(bc.from)}, bc.ret...)...)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				m := NewMessage()
				m.Onward, m.Return, m.Local = onward, ret, chans[bc.from]
				m.SetPayload(payload)
				r.Send(m)
			}
		})
	}
}

// TestRelayLocalClient: this node's own workers may use a relay too; the owner's answers
// reach the worker the local sender named as its return route.
func TestRelayLocalClient(t *testing.T) {
	r := New(Config{Logger: quiet})
	listener := r.NewFlow()
	owner := newTestChannel(t, r, "sc.owner", listener)
	relay := NewRelay(r, "forward_to_db", MustRoute(LocalAddress(owner.enc)), owner.local.Flow, nil)
	must(t, r.Register("forward_to_db", relay, listener))
	in := &sink{}
	must(t, r.Register("sc.local.in", in))
	m := NewMessage()
	m.Onward = MustRoute(LocalAddress("forward_to_db"), LocalAddress("api"))
	m.Return = MustRoute(LocalAddress("sc.local.in"))
	r.Send(m)
	got := owner.take()
	if len(got) != 1 {
		t.Fatalf("owner got %d messages, want 1", len(got))
	}
	owner.send(r, got[0].Return.Addresses())
	got[0].Release()
	if len(in.got) != 1 || in.got[0].Local.Flow != relay.Flow() {
		t.Fatalf("the local sender got %d answers, want 1 of the relay's flow", len(in.got))
	}
}
