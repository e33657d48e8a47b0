package tcp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/lowport"
	"github.com/adjacentnet/adjacent/routing"
)

// dialFrom connects to addr from the loopback address from.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// closedWithin reports whether the server closes nc within d, reading and dropping whatever
// it sends first (its preamble, heartbeats).
func closedWithin(nc net.Conn, d time.Duration) bool {
	nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// countingHandler counts the log records of one message.
type countingHandler struct {
	msg string
	mu  sync.Mutex
	n   int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Message == h.msg {
		h.n++
	}
	return nil
}

func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// TestPreAuthPerSource: one source cannot hold more unauthenticated connections than its
// cap; the next is closed at once while another source still gets in; unauthenticated
// connections close at PreAuthTimeout even while they send heartbeats, and an authenticated
// one frees its slot and stays. Refusals are one log line, not one per connection.
func TestPreAuthPerSource(t *testing.T) {
	logs := &countingHandler{msg: "refused unauthenticated connections"}
	server := newNode(t, Config{
		Logger:              slog.New(logs),
		MaxPreAuthConns:     6,
		MaxPreAuthPerSource: 3,
		PreAuthTimeout:      1500 * time.Millisecond,
	})
	got := make(inbox, 8)
	server.r.Register("sink", got, routing.FlowTransports)
	addr := lowport.Listen(t, server.t.Listen).Addr().String()

	var flood []net.Conn
	for range 3 {
		nc := dialFrom(t, "127.0.0.1", addr)
		nc.Write(preamble[:])
		flood = append(flood, nc)
	}
	for i := range 5 { // beyond the cap: closed at once
		if nc := dialFrom(t, "127.0.0.1", addr); !closedWithin(nc, 2*time.Second) {
			t.Fatalf("connection %d over the per-source cap was not closed", 3+i)
		}
	}
	if n := server.t.Stats().Refused; n != 5 {
		t.Fatalf("Refused = %d, want 5", n)
	}

	// Another source is admitted, and once authenticated it no longer counts.
	client := newNode(t, Config{LocalAddr: netip.MustParseAddr("127.0.0.2")})
	c, err := client.t.Connect(context.Background(), addr)
	if err != nil {
		t.Fatalf("connect from another source during the flood: %v", err)
	}
	sendTo(client, routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("sink")), "x", []byte("hello"))
	m := got.next(t)
	if src := m.Local.Link.(*Conn).Source(); src != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("Source() = %v, want 127.0.0.2", src)
	}
	m.Local.Link.Authenticated()
	m.Release()

	// The flood's connections close at PreAuthTimeout although they send heartbeats.
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	for _, nc := range flood {
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
					if _, err := nc.Write([]byte{0, 0, 0, 0}); err != nil {
						return
					}
				}
			}
		}()
	}
	for i, nc := range flood {
		if !closedWithin(nc, 5*time.Second) {
			t.Fatalf("unauthenticated connection %d outlived PreAuthTimeout", i)
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("unauthenticated connections closed after %v, want about PreAuthTimeout", d)
	}
	select {
	case <-c.Done():
		t.Fatal("the authenticated connection was closed with the unauthenticated ones")
	default:
	}
	// Their slots are free again.
	if nc := dialFrom(t, "127.0.0.1", addr); closedWithin(nc, 300*time.Millisecond) {
		t.Fatal("the flood's source was refused after its connections timed out")
	}
	if n := logs.count(); n > 2 {
		t.Fatalf("%d log lines for 8 refusals, want at most 2 (one per interval)", n)
	}
}

// TestPreAuthFairAmongSources is hole 4 of issue 12 at the transport: when sources hold every
// unauthenticated place, a source holding fewer than another still gets in, and the oldest
// connection of the source holding the most gives up its place; a source holding as many as
// any other is refused. Before, a few sources at their per-source cap locked every other
// source out.
func TestPreAuthFairAmongSources(t *testing.T) {
	server := newNode(t, Config{Logger: slog.New(slog.DiscardHandler), MaxPreAuthConns: 4, MaxPreAuthPerSource: 3})
	ln := lowport.Listen(t, server.t.Listen)
	addr := ln.Addr().String()
	// dial connects from the address and waits for the server's preamble: once it is read,
	// the server has admitted the connection and listed it.
	dial := func(from string) net.Conn {
		t.Helper()
		nc := dialFrom(t, from, addr)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var pre [len(preamble)]byte
		if _, err := io.ReadFull(nc, pre[:]); err != nil {
			t.Fatalf("connection from %s refused: %v", from, err)
		}
		return nc
	}
	var one []net.Conn
	for range 3 {
		one = append(one, dial("127.0.0.1"))
	}
	two := dial("127.0.0.2") // every place taken: 3 + 1
	three := dial("127.0.0.3")
	if !closedWithin(one[0], 2*time.Second) {
		t.Fatal("the oldest connection of the source holding the most kept its place for a newcomer")
	}
	four := dial("127.0.0.4")
	if !closedWithin(one[1], 2*time.Second) {
		t.Fatal("the next oldest of the source holding the most kept its place")
	}
	// Now every source holds one: a fifth source still gets in, for one of them; a second
	// connection of the fifth, holding as many as any, is refused.
	five := dial("127.0.0.5")
	closed := 0
	for _, nc := range []net.Conn{one[2], two, three, four} {
		if closedWithin(nc, 200*time.Millisecond) {
			closed++
		}
	}
	if closed != 1 {
		t.Fatalf("%d connections of sources holding one place closed for a fifth source, want 1", closed)
	}
	if nc := dialFrom(t, "127.0.0.5", addr); !closedWithin(nc, 2*time.Second) {
		t.Fatal("a source took another's place while holding as many")
	}
	if closedWithin(five, 200*time.Millisecond) {
		t.Fatal("the fifth source's first connection was closed")
	}
}
