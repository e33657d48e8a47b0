package routing_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/routing/transporttest"
)

// Route text parses the addresses of any registered kind: an opaque one (the in-memory
// transport's /mem/NAME) and a host:port one other than tcp.
func TestParsePathRegisteredKinds(t *testing.T) {
	hostPort := routing.Kind{Name: "dgram", Type: 201, HostPort: true}
	if err := routing.RegisterKind(hostPort); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, route string }{
		{"/mem/hub/service/echo", "[200#hub, 0#echo]"},
		{"/ip4/10.0.0.1/dgram/4000/service/echo", "[201#10.0.0.1:4000, 0#echo]"},
		{"/ip4/10.0.0.1/tcp/4000", "[1#10.0.0.1:4000]"},
	}
	for _, tt := range tests {
		p, err := routing.ParsePath(tt.in)
		if err != nil {
			t.Errorf("ParsePath(%q) = %v", tt.in, err)
			continue
		}
		if got := p.String(); got != tt.in {
			t.Errorf("ParsePath(%q).String() = %q, want it unchanged", tt.in, got)
		}
		if !p[0].IsTransport() {
			t.Errorf("ParsePath(%q)[0].IsTransport() = false, want true", tt.in)
		}
		r, err := p.Route()
		if err != nil || r.String() != tt.route {
			t.Errorf("ParsePath(%q).Route() = %s, %v; want %s", tt.in, &r, err, tt.route)
		}
	}
	for _, in := range []string{"/nope/x", "/ip4/10.0.0.1/mem/4000"} {
		if _, err := routing.ParsePath(in); err == nil {
			t.Errorf("ParsePath(%q) = nil error, want one (no such host:port kind)", in)
		}
	}
	for _, k := range []routing.Kind{
		{Name: "tcp", Type: 202},                       // a name taken
		{Name: "other", Type: transporttest.Type},      // a type taken
		{Name: "service", Type: 203},                   // a protocol of the text form
		{Name: "local", Type: routing.TypeLocal},       // the router's own type
		{Name: "Bad/Name", Type: 204, HostPort: false}, // not a word
	} {
		if err := routing.RegisterKind(k); err == nil {
			t.Errorf("RegisterKind(%+v) = nil, want an error", k)
		}
	}
}

// Two routers joined by the in-memory transport: a message routed by text reaches the far
// worker opened to transport flows, and the answer comes back over the same connection.
func TestRouterOverMemoryTransport(t *testing.T) {
	network := transporttest.NewNetwork()
	client, server := routing.New(routing.Config{}), routing.New(routing.Config{})
	tc := transporttest.New(client, network, transporttest.Config{})
	ts := transporttest.New(server, network, transporttest.Config{})
	defer tc.Close()
	defer ts.Close()
	if _, err := ts.Listen("server"); err != nil {
		t.Fatal(err)
	}
	if err := server.Register("echo", routing.NewEcho(server, "echo"), routing.FlowTransports); err != nil {
		t.Fatal(err)
	}
	got := make(chan *routing.Message, 1)
	if err := client.Register("reply", routing.WorkerFunc(func(m *routing.Message) { got <- m }), routing.FlowTransports); err != nil {
		t.Fatal(err)
	}
	if client.Transport(transporttest.Type) != tc {
		t.Fatalf("client.Transport(%d) is not the transport that installed itself", transporttest.Type)
	}

	p, err := routing.ParsePath("/mem/server/service/echo")
	if err != nil {
		t.Fatal(err)
	}
	route, err := p.Route()
	if err != nil {
		t.Fatal(err)
	}
	m := routing.NewMessage()
	m.Onward = route
	m.Return = routing.MustRoute(routing.LocalAddress("reply"))
	m.SetPayload([]byte("ping"))
	client.Send(m)
	select {
	case r := <-got:
		if string(r.Payload()) != "ping" || r.Local.Link == nil || !r.Local.Link.Guarantees().Covers(routing.Stream) {
			t.Errorf("reply %q over link %v, want \"ping\" over a stream link", r.Payload(), r.Local.Link)
		}
		r.Release()
	case <-time.After(5 * time.Second):
		t.Fatal("no reply over the memory transport within 5s")
	}
	if s := tc.Stats(); s.FramesOut != 1 || s.FramesIn != 1 || s.Connections != 1 {
		t.Errorf("client transport stats = %+v, want one frame each way on one connection", s)
	}

	// What flow control keeps from a transport stays kept: the server's "private" worker
	// is not opened to transport flows.
	if err := server.Register("private", routing.WorkerFunc(func(m *routing.Message) {
		t.Error("a message off the memory transport reached a worker not opened to it")
		m.Release()
	})); err != nil {
		t.Fatal(err)
	}
	conn, err := tc.Dial(context.Background(), "server")
	if err != nil {
		t.Fatal(err)
	}
	m = routing.NewMessage()
	m.Onward = routing.MustRoute(conn.Address(), routing.LocalAddress("private"))
	client.Send(m)
	deadline := time.Now().Add(5 * time.Second)
	for server.Stats().Denied == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if server.Stats().Denied != 1 {
		t.Errorf("server denied %d messages, want 1", server.Stats().Denied)
	}

	ts.Close()
	if _, err := ts.Listen("again"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Listen after Close = %v, want net.ErrClosed", err)
	}
}
