package dataplane

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/routing/transporttest"
)

// connPath is a Path straight over one transport connection to the outlet's node (no
// secure channel: the portal protocol asks only the link under it). claim is the Link the
// inlet is told about, which may differ from the connection to test the outlet's own check.
type connPath struct {
	conn  routing.Connection
	claim routing.Link
}

func (p connPath) Open(ctx context.Context) (PathRoute, error) {
	return PathRoute{
		To:   routing.MustRoute(p.conn.Address(), routing.LocalAddress("outlet")),
		Flow: p.conn.Flow(), Done: p.conn.Done(), Link: p.claim,
	}, nil
}

// memPortal runs an inlet and an outlet on two routers joined by the in-memory transport,
// whose connections state g.
func memPortal(t *testing.T, g routing.Guarantees, tellInlet bool) *Inlet {
	t.Helper()
	network := transporttest.NewNetwork()
	ri, ro := routing.New(routing.Config{Logger: quiet}), routing.New(routing.Config{Logger: quiet})
	ti := transporttest.New(ri, network, transporttest.Config{Guarantees: g})
	to := transporttest.New(ro, network, transporttest.Config{Guarantees: g})
	t.Cleanup(func() { ti.Close(); to.Close() })
	if _, err := to.Listen("outlet-node"); err != nil {
		t.Fatal(err)
	}
	target := serve(t, echoServer)
	out := NewOutlet(OutletConfig{SessionConfig: SessionConfig{Router: ro, Logger: quiet}, Target: target.Addr().String()})
	if err := ro.Register("outlet", out, routing.FlowTransports); err != nil {
		t.Fatal(err)
	}
	conn, err := ti.Dial(context.Background(), "outlet-node")
	if err != nil {
		t.Fatal(err)
	}
	path := connPath{conn: conn}
	if tellInlet {
		path.claim = conn
	}
	in := NewInlet(InletConfig{SessionConfig: SessionConfig{Router: ri, Logger: quiet}, Path: path})
	t.Cleanup(func() { in.Close(); out.Close(); target.Close() })
	return in
}

// A portal runs over any transport that promises a stream: here the in-memory one.
func TestPortalOverMemoryTransport(t *testing.T) {
	in := memPortal(t, routing.InNode(), true)
	p, err := in.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial over a stream transport: %v", err)
	}
	client, local := net.Pipe()
	defer client.Close()
	p.Attach(local)
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "hello" {
		t.Fatalf("echo through the portal = %q, %v; want hello", got, err)
	}
}

// The portal protocol refuses a path that does not promise reliable, ordered delivery: the
// inlet before it connects, and the outlet when the inlet did not know.
func TestPortalRefusesUnreliablePath(t *testing.T) {
	datagrams := routing.Guarantees{Reliable: false, Ordered: false, MaxMessage: 1400}
	for _, tt := range []struct {
		name      string
		tellInlet bool
		want      string
	}{
		{"inlet", true, "cannot carry a TCP portal"},
		{"outlet", false, "refused by the outlet: the path cannot carry a TCP portal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := memPortal(t, datagrams, tt.tellInlet)
			_, err := in.Dial(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Dial over an unreliable path = %v, want an error containing %q", err, tt.want)
			}
			if tt.tellInlet && !errors.Is(err, errPathUnfit) {
				t.Errorf("Dial error %v is not errPathUnfit", err)
			}
		})
	}
}
