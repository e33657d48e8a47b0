package securechannel

import (
	"bytes"
	"context"
	"testing"

	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/routing/transporttest"
)

// A secure channel runs over any routing.Transport: here the in-memory one, dialed by the
// route text of its registered kind. The channel states the transport's guarantees.
func TestChannelOverMemoryTransport(t *testing.T) {
	network := transporttest.NewNetwork()
	alice, bob := newTestNode(t, "alice"), newTestNode(t, "bob")
	ta := transporttest.New(alice.r, network, transporttest.Config{})
	tb := transporttest.New(bob.r, network, transporttest.Config{
		Guarantees: routing.Guarantees{MaxMessage: 1 << 16}, // as a datagram transport's
	})
	defer ta.Close()
	defer tb.Close()
	if _, err := tb.Listen("bob"); err != nil {
		t.Fatal(err)
	}
	l, err := Listen(bob.r, "api", bob.config(""), routing.FlowTransports)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := bob.r.Register("echo", routing.NewEcho(bob.r, "echo"), l.Flow()); err != nil {
		t.Fatal(err)
	}

	path, err := routing.ParsePath("/mem/bob/secure/api")
	if err != nil {
		t.Fatal(err)
	}
	a, err := path[0].Address()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := alice.r.Transport(a.Type).Dial(context.Background(), a.Value)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := Initiate(context.Background(), alice.r, routing.Through(conn).Worker("api"), alice.config(""))
	if err != nil {
		t.Fatalf("Initiate over the memory transport: %v", err)
	}
	defer ch.Close()
	if !conn.(*transporttest.Conn).WasAuthenticated() {
		t.Error("the transport's connection was not told the handshake authenticated")
	}
	if g := ch.Guarantees(); !g.Reliable || !g.Ordered {
		t.Errorf("channel over a stream transport: Guarantees() = %v, want reliable and ordered", g)
	}

	replies := make(inbox, 1)
	if err := alice.r.Register("reply", replies, ch.Flow()); err != nil {
		t.Fatal(err)
	}
	m := routing.NewMessage()
	m.Onward = routing.MustRoute(ch.Address(), routing.LocalAddress("echo"))
	m.Return = routing.MustRoute(routing.LocalAddress("reply"))
	m.SetPayload([]byte("over memory"))
	alice.r.Send(m)
	got := replies.next(t)
	defer got.Release()
	if !bytes.Equal(got.Payload(), []byte("over memory")) {
		t.Fatalf("echo = %q, want %q", got.Payload(), "over memory")
	}

	// bob's end of the channel runs over bob's end of the connection, which states less.
	chs := l.Channels()
	if len(chs) != 1 {
		t.Fatalf("bob's channels: %d, want 1", len(chs))
	}
	if g := chs[0].Guarantees(); g.Covers(routing.Stream) {
		t.Errorf("channel over an unreliable transport: Guarantees() = %v, want it not to cover a stream", g)
	}
}
