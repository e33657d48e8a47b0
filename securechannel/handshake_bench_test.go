package securechannel

import (
	"context"
	"testing"

	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/routing/tcp"
)

// BenchmarkHandshake measures a whole channel setup over a loopback TCP connection: the three
// Noise XX messages, both authentications, and the responder's first message.
func BenchmarkHandshake(b *testing.B) {
	alice, bob := newTestNode(b, "alice"), newTestNode(b, "bob")
	ta, tb := tcp.New(alice.r, tcp.Config{Logger: quiet}), tcp.New(bob.r, tcp.Config{Logger: quiet})
	defer ta.Close()
	defer tb.Close()
	ln, err := tb.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Listen(bob.r, "api", bob.config(""), routing.FlowTransports); err != nil {
		b.Fatal(err)
	}
	conn, err := ta.Connect(context.Background(), ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	route := routing.MustRoute(conn.Address(), routing.LocalAddress("api"))
	cfg := alice.config("")
	b.ReportAllocs()
	for b.Loop() {
		c, err := Initiate(context.Background(), alice.r, routing.Destination{Route: route, Flow: conn.Flow(), Link: conn}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
