package tcp

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/adjacentnet/adjacent/routing"
)

// TestRelayOwnerCannotDialFromHub: a relay owner that puts a TCP address after the relay hop
// does not make the hub dial it; the relay carries its messages to clients' channels only.
// (The CLI cannot write such a route, a modified node can; hence this test below the CLI.)
func TestRelayOwnerCannotDialFromHub(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	var dialed atomic.Int64
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			c.Close()
		}
	}()

	hub, owner := newNode(t, Config{}), newNode(t, Config{})
	// The hub makes the relay for whoever asks, as its relay service does for the owner's
	// channel: to the hop the request came over, for the flow it came on.
	created := make(chan struct{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(hub.r.Register("relays", routing.WorkerFunc(func(m *routing.Message) {
		relay := routing.NewRelay(hub.r, "forward_to_db", routing.MustRoute(m.Return.NextAddress()), m.Local.Flow, nil)
		must(hub.r.Register("forward_to_db", relay, routing.FlowTransports))
		m.Release()
		close(created)
	}), routing.FlowTransports))
	must(hub.r.Register("echo", routing.NewEcho(hub.r, "echo"), routing.FlowTransports))
	addr := hub.listen(t)
	c, err := owner.t.Connect(context.Background(), addr)
	must(err)
	replies := make(inbox, 1)
	must(owner.r.Register("reply", replies, c.Flow()))

	sendTo(owner, routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("relays")), "reply", nil)
	<-created
	attack := routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("forward_to_db"),
		routing.TCPAddress(target.Addr().String()), routing.LocalAddress("echo"))
	sendTo(owner, attack, "reply", []byte("dial"))
	// The hub handles one connection's messages in order: once echo answers, the relay
	// has handled the attack.
	sendTo(owner, routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("echo")), "reply", []byte("ping"))
	if m := replies.next(t); string(m.Payload()) != "ping" {
		t.Fatalf("first answer = %q, want the echo of ping", m.Payload())
	}
	if st := hub.r.Stats(); st.Denied != 1 || dialed.Load() != 0 {
		t.Fatalf("hub Denied = %d, target got %d connections; want the owner's message denied and no dial", st.Denied, dialed.Load())
	}
}
