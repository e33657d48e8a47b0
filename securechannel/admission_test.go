package securechannel

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/adjacentnet/adjacent/internal/lowport"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/routing/tcp"
)

// countingHandler counts log records by message.
type countingHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Message]++
	return nil
}

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[msg]
}

// floodConn is a raw TCP connection that speaks just enough of the transport to send first
// handshake messages and count the replies.
type floodConn struct {
	nc      net.Conn
	replies atomic.Int64  // non-heartbeat frames received: messages 2
	closed  chan struct{} // the server closed the connection
}

func dialFlood(t *testing.T, from, addr string) *floodConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	f := &floodConn{nc: nc, closed: make(chan struct{})}
	nc.Write([]byte{'a', 'd', 'j', tcp.ProtocolVersion})
	go f.read()
	return f
}

func (f *floodConn) read() {
	defer close(f.closed)
	var hdr [4]byte
	if _, err := io.ReadFull(f.nc, hdr[:]); err != nil { // the server's preamble
		return
	}
	for {
		if _, err := io.ReadFull(f.nc, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 {
			continue
		}
		if _, err := io.CopyN(io.Discard, f.nc, int64(n)); err != nil {
			return
		}
		f.replies.Add(1)
	}
}

// sendFirst sends a first handshake message with a fresh ephemeral key to the listener "api".
func (f *floodConn) sendFirst(t *testing.T) {
	t.Helper()
	static, _ := noise.DH25519.GenerateKeypair(crand.Reader)
	hs, err := newHandshakeState(true, static, nil, prologue, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg1, _, _, err := hs.WriteMessage([]byte{typeHandshake}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := routing.NewMessage()
	defer m.Release()
	m.Onward = routing.MustRoute(routing.LocalAddress("api"))
	m.Return = routing.MustRoute(routing.LocalAddress("flood"))
	m.SetPayload(msg1)
	body := m.AppendTo(nil)
	f.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
}

func (f *floodConn) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

// TestHandshakeFloodOverTCP: one source (127.0.0.1) opens more connections than its share
// and floods first handshake messages with fresh ephemerals, then stalls. The transport
// refuses its connections beyond the per-source cap, the listener its handshakes beyond the
// per-source cap, both with a line per interval rather than per refusal; an honest client from
// another source (127.0.0.2) completes its handshake meanwhile, although without the
// per-source caps the flood alone would have filled both listener-wide caps. The flood's
// handshakes then time out (its source is admitted again) and its connections, never
// authenticated, are closed; nothing of them stays in the router.
func TestHandshakeFloodOverTCP(t *testing.T) {
	logs := &countingHandler{n: make(map[string]int)}
	log := slog.New(logs)
	alice, bob := newTestNode(t, "alice"), newTestNode(t, "bob")
	tb := tcp.New(bob.r, tcp.Config{
		Logger:              log,
		MaxPreAuthConns:     6,
		MaxPreAuthPerSource: 4,
		PreAuthTimeout:      4 * time.Second,
	})
	defer tb.Close()
	addr := lowport.Listen(t, tb.Listen).Addr().String()
	bc := bob.config("")
	bc.Logger = log
	bc.MaxPending, bc.MaxPendingPerLink, bc.MaxPendingPerSource = 8, 3, 6
	bc.HandshakeTimeout = 2 * time.Second
	ln, err := Listen(bob.r, "api", bc, routing.FlowTransports)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	base := bob.r.Workers()

	// The flood: 10 connections, of which the transport admits 4 (6 refused at once).
	var admitted []*floodConn
	for i := range 10 {
		f := dialFlood(t, "127.0.0.1", addr)
		if i < 4 {
			admitted = append(admitted, f)
			continue
		}
		select {
		case <-f.closed:
		case <-time.After(2 * time.Second):
			t.Fatalf("flood connection %d, over the per-source cap, was not closed", i)
		}
	}
	// 3 first messages on each admitted connection: the per-link cap (3) lets all 12 by,
	// the per-source cap (6) only half.
	for _, f := range admitted {
		for range 3 {
			f.sendFirst(t)
		}
	}
	eventually(t, "flood handshakes over the per-source cap refused", func() bool { return ln.Refused() == 6 })
	replies := func() (n int64) {
		for _, f := range admitted {
			n += f.replies.Load()
		}
		return n
	}
	eventually(t, "admitted flood handshakes answered", func() bool { return replies() == 6 })
	if n := tb.Stats().Refused; n != 6 {
		t.Fatalf("transport Refused = %d, want 6", n)
	}

	// An honest client from another source gets a connection and a pending slot.
	ta := tcp.New(alice.r, tcp.Config{Logger: quiet, LocalAddr: netip.MustParseAddr("127.0.0.2")})
	defer ta.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := ta.Connect(ctx, addr)
	if err != nil {
		t.Fatalf("honest connect during the flood: %v", err)
	}
	start := time.Now()
	ch, err := Initiate(ctx, alice.r, routing.Through(conn).Worker("api"), alice.config(""))
	if err != nil {
		t.Fatalf("honest handshake during the flood: %v", err)
	}
	defer ch.Close()
	if d := time.Since(start); d > bc.HandshakeTimeout/2 {
		t.Logf("honest handshake took %v; the flood's slots may have begun to time out", d)
	}
	for _, f := range admitted {
		if f.isClosed() {
			t.Fatal("a flood connection closed before PreAuthTimeout; the honest client did not compete with it")
		}
	}

	// The flood's handshakes time out, and its source may start one again.
	eventually(t, "a new flood handshake admitted after the timeout", func() bool {
		admitted[0].sendFirst(t)
		time.Sleep(100 * time.Millisecond)
		return replies() == 7
	})
	// Its connections, never authenticated, are closed at PreAuthTimeout.
	for i, f := range admitted {
		select {
		case <-f.closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("unauthenticated flood connection %d outlived PreAuthTimeout", i)
		}
	}
	// Nothing of the flood stays; the honest channel does.
	// (The honest connection and its channel's two addresses are what remain.)
	eventually(t, "the flood's pending channels removed", func() bool { return bob.r.Workers() == base+3 })
	select {
	case <-ch.Done():
		t.Fatalf("honest channel closed with the flood: %v", ch.Err())
	default:
	}
	for _, msg := range []string{"refused first handshake messages", "refused unauthenticated connections"} {
		if n := logs.count(msg); n < 1 || n > 2 {
			t.Errorf("%q logged %d times, want one line per interval (1 or 2)", msg, n)
		}
	}
}
