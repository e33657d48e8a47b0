package dataplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

var quiet = slog.New(slog.DiscardHandler)

// staticPath is a Path to an outlet on the same router.
type staticPath struct {
	to   routing.Route
	done chan struct{}
}

func (p *staticPath) Open(ctx context.Context) (PathRoute, error) {
	select {
	case <-p.done:
		return PathRoute{}, errPathDown
	default:
	}
	return PathRoute{To: p.to, Done: p.done}, nil
}

// portal is an inlet and an outlet on one router, the inlet listening on loopback.
type portal struct {
	r      *routing.Router
	in     *Inlet
	out    *Outlet
	path   *staticPath
	addr   string
	target net.Listener
}

func newPortal(t testing.TB, target net.Listener, admit func(*routing.Message) (bool, string)) *portal {
	t.Helper()
	r := routing.New(routing.Config{Logger: quiet})
	p := &portal{r: r, target: target, path: &staticPath{to: routing.MustRoute(routing.LocalAddress("outlet")), done: make(chan struct{})}}
	addr := "127.0.0.1:1"
	if target != nil {
		addr = target.Addr().String()
	}
	p.out = NewOutlet(OutletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet}, Target: addr, Admit: admit})
	if err := r.Register("outlet", p.out); err != nil {
		t.Fatal(err)
	}
	p.in = NewInlet(InletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet}, Path: p.path})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	go p.in.Serve(ln)
	t.Cleanup(func() {
		p.in.Close()
		p.out.Close()
		if target != nil {
			target.Close()
		}
	})
	return p
}

// serve runs handle for every connection to a new loopback listener.
func serve(t testing.TB, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln
}

func echoServer(c net.Conn) {
	defer c.Close()
	io.Copy(c, c)
}

func TestEchoThroughPortal(t *testing.T) {
	p := newPortal(t, serve(t, echoServer), nil)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, msg := range []string{"hello", strings.Repeat("x", 100000)} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %d bytes: %v", len(msg), err)
		}
	}
	if p.in.Stats().Active.Load() != 1 || p.out.Stats().Active.Load() != 1 {
		t.Fatalf("active sessions in/out = %d/%d", p.in.Stats().Active.Load(), p.out.Stats().Active.Load())
	}
}

// TestByteExact sends n random bytes each way at once and compares hashes.
func TestByteExact(t *testing.T) {
	const n = 64 << 20
	// The server sends its own n bytes while hashing what it receives.
	var serverGot [32]byte
	serverDone := make(chan struct{})
	serverSent := make(chan [32]byte, 1)
	p := newPortal(t, serve(t, func(c net.Conn) {
		defer c.Close()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256.New()
			io.Copy(h, c)
			copy(serverGot[:], h.Sum(nil))
		}()
		serverSent <- sendRandom(c, n)
		c.(*net.TCPConn).CloseWrite()
		wg.Wait()
		close(serverDone)
	}), nil)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recv := make(chan [32]byte, 1)
	go func() {
		h := sha256.New()
		io.Copy(h, c)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		recv <- sum
	}()
	sent := sendRandom(c, n)
	c.(*net.TCPConn).CloseWrite()
	<-serverDone
	if serverGot != sent {
		t.Fatal("server received different bytes than the client sent")
	}
	if got := <-recv; got != <-serverSent {
		t.Fatal("client received different bytes than the server sent")
	}
}

// sendRandom writes n random bytes to w and returns their hash.
func sendRandom(w io.Writer, n int) [32]byte {
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for n > 0 {
		b := buf[:min(n, len(buf))]
		rand.Read(b)
		h.Write(b)
		if _, err := w.Write(b); err != nil {
			break
		}
		n -= len(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// TestHalfClose: the client sends 8 MiB and half-closes; the server answers 1 MiB only after
// reading the end of stream; the client gets all of it, then an end of stream.
func TestHalfClose(t *testing.T) {
	answer := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	p := newPortal(t, serve(t, func(c net.Conn) {
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		if n != 8<<20 {
			return
		}
		c.Write(answer)
	}), nil)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		c.Write(make([]byte, 8<<20))
		c.(*net.TCPConn).CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, answer) {
		t.Fatalf("after half-close got %d bytes, err %v; want the 1 MiB answer and EOF", len(got), err)
	}
}

// TestPathFailureResets: when the path goes mid-transfer the client sees an error, never a
// clean end of stream.
func TestPathFailureResets(t *testing.T) {
	p := newPortal(t, serve(t, func(c net.Conn) {
		defer c.Close()
		for {
			if _, err := c.Write(make([]byte, 32<<10)); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}), nil)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	close(p.path.done)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if err == nil {
		t.Fatal("the client saw a clean end of stream when the path failed")
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client error = %v, want connection reset", err)
	}
}

func TestRefusals(t *testing.T) {
	// Nothing listens at the target.
	down := newPortal(t, nil, nil)
	pending, err := down.in.Dial(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach its target") {
		t.Fatalf("Dial to a down target = %v, %v", pending, err)
	}
	// The policy says no.
	denied := newPortal(t, serve(t, echoServer), func(*routing.Message) (bool, string) { return false, "no" })
	if _, err := denied.in.Dial(context.Background()); err == nil || !strings.Contains(err.Error(), "denied by the outlet's policy") {
		t.Fatalf("Dial denied by policy = %v", err)
	}
	c, err := net.Dial("tcp", denied.addr)
	if errors.Is(err, syscall.ECONNRESET) { // the refusal's reset came first
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a denied client read %d bytes, %v; want a reset", n, err)
	}
	c.Close()
}

// TestSlowReader: a server that stops reading holds at most the window cap at the outlet,
// while another session on the same portal keeps working.
func TestSlowReader(t *testing.T) {
	stuck := make(chan net.Conn, 1)
	p := newPortal(t, serve(t, func(c net.Conn) {
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			return
		}
		if b[0] == 's' { // the stuck one never reads again
			stuck <- c
			return
		}
		echoServer(c)
	}), nil)
	slow, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte("s"))
	defer (<-stuck).Close() // held, or a collection would close it
	go func() {
		for {
			if _, err := slow.Write(make([]byte, 1<<20)); err != nil {
				return
			}
		}
	}()
	time.Sleep(time.Second) // let everything fill up
	var maxQueued, sessions int
	p.out.groups.mu.Lock()
	for _, set := range p.out.groups.m {
		sessions += len(set)
		for s := range set {
			maxQueued = max(maxQueued, s.q.Len())
		}
	}
	p.out.groups.mu.Unlock()
	if sessions != 1 || maxQueued == 0 {
		t.Fatalf("the outlet has %d sessions holding at most %d bytes; want the stuck one, holding data", sessions, maxQueued)
	}
	if maxQueued > DefaultWindowCap+chunk {
		t.Fatalf("the stuck session holds %d bytes at the outlet, over the cap %d", maxQueued, DefaultWindowCap)
	}
	// Another session still works.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("e"))
	c.Write([]byte("fast"))
	got := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "fast" {
		t.Fatalf("second session beside a stuck one: %q, %v", got, err)
	}
}

// TestStuckReaderClosing: an application that stops reading leaves received portal data
// unwritten at its end of the portal (queued, or in the socket's buffers); when the session
// then fails — the other side resets, the path goes, or the stuck application itself goes
// away — every application still there sees a reset, never a clean end of stream, and both
// sessions end within a few seconds instead of waiting forever for the reader.
func TestStuckReaderClosing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run drives the client (at the inlet) and the server (at the outlet), neither of
		// which reads, to the failure, and returns the application that must see a reset.
		run func(p *portal, client, server net.Conn) net.Conn
		// pathDown: the inlet's path failed, which the outlet in this test cannot see.
		pathDown bool
	}{
		{"server stuck, client resets", func(p *portal, client, server net.Conn) net.Conn {
			fill(client)
			abort(client)
			return server
		}, false},
		{"client stuck, server resets", func(p *portal, client, server net.Conn) net.Conn {
			fill(server)
			abort(server)
			return client
		}, false},
		{"client stuck, path fails", func(p *portal, client, server net.Conn) net.Conn {
			fill(server)
			close(p.path.done)
			return client
		}, true},
		{"client stuck and gone", func(p *portal, client, server net.Conn) net.Conn {
			fill(server)
			client.Close() // with data unread: the kernel resets
			return server
		}, false},
		{"server stuck and gone", func(p *portal, client, server net.Conn) net.Conn {
			fill(client)
			server.Close()
			return client
		}, false},
		// Both stuck, so no one is writing to the socket that goes: only the session's own
		// check of its socket finds the reset.
		{"both stuck, client gone", func(p *portal, client, server net.Conn) net.Conn {
			server.Write(make([]byte, 1024))
			fill(client)
			client.Close()
			return server
		}, false},
		{"both stuck, server gone", func(p *portal, client, server net.Conn) net.Conn {
			client.Write(make([]byte, 1024))
			fill(server)
			server.Close()
			return client
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted := make(chan net.Conn, 1)
			p := newPortal(t, serve(t, func(c net.Conn) { accepted <- c }), nil)
			client, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			var server net.Conn
			select {
			case server = <-accepted:
			case <-time.After(5 * time.Second):
				t.Fatal("the outlet did not connect to the server")
			}
			defer server.Close()
			left := tc.run(p, client, server)
			start := time.Now()
			waitEnded(t, "inlet", p.in.Stats(), start)
			if !tc.pathDown {
				waitEnded(t, "outlet", p.out.Stats(), start)
			}
			left.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := io.Copy(io.Discard, left)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the application left read %d bytes, then %v; want a connection reset", n, err)
			}
		})
	}
}

// fill writes to c until nothing more is taken for half a second: every buffer on the way
// to a reader that does not read is full.
func fill(c net.Conn) {
	buf := make([]byte, chunk)
	for {
		c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Write(buf); err != nil {
			break
		}
	}
	c.SetWriteDeadline(time.Time{})
}

// waitEnded fails t unless every session counted in c ends within 3 s of start.
func waitEnded(t *testing.T, side string, c *Counters, start time.Time) {
	t.Helper()
	for c.Active.Load() != 0 {
		if time.Since(start) > 3*time.Second {
			t.Fatalf("%s: %d sessions still active %v after the failure, want 0", side, c.Active.Load(), time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMalformedMessageResets: a session that receives a portal message it cannot parse (a
// credit it would miss, a reason over the bound) resets both ends instead of waiting forever.
func TestMalformedMessageResets(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"short window", []byte{msgWindow, 0, 0}},
		{"fin with a body", []byte{msgFin, 0}},
		{"empty data", []byte{msgData}},
		{"long reset reason", append([]byte{msgReset}, strings.Repeat("r", maxReason+1)...)},
		{"unknown kind", []byte{msgChecked + 1}},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted := make(chan net.Conn, 1)
			p := newPortal(t, serve(t, func(c net.Conn) { accepted <- c }), nil)
			client, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			server := <-accepted
			defer server.Close()
			for p.in.Stats().Active.Load() != 1 || p.out.Stats().Active.Load() != 1 {
				time.Sleep(time.Millisecond) // until the session runs at both ends
			}
			var s *session
			for s == nil {
				p.in.groups.mu.Lock()
				for x := range p.in.groups.m[p.path.done] {
					s = x
				}
				p.in.groups.mu.Unlock()
			}
			m := routing.NewMessage()
			m.SetPayload(tc.p)
			s.HandleMessage(m)
			start := time.Now()
			waitEnded(t, "inlet", p.in.Stats(), start)
			waitEnded(t, "outlet", p.out.Stats(), start)
			for _, c := range []net.Conn{client, server} {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("after a malformed message the application read %v, want a connection reset", err)
				}
			}
		})
	}
}

// TestLateConnected: the outlet reaches its target only after the inlet stopped waiting for
// it. The inlet's late answer resets the outlet's session, so the target's connection is
// closed instead of held with no client behind it.
func TestLateConnected(t *testing.T) {
	accepted := make(chan net.Conn, 1)
	target := serve(t, func(c net.Conn) { accepted <- c })
	r := routing.New(routing.Config{Logger: quiet})
	out := NewOutlet(OutletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet}, Target: target.Addr().String(),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			time.Sleep(500 * time.Millisecond) // longer than the inlet waits
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}})
	if err := r.Register("outlet", out); err != nil {
		t.Fatal(err)
	}
	path := &staticPath{to: routing.MustRoute(routing.LocalAddress("outlet")), done: make(chan struct{})}
	in := NewInlet(InletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet}, Path: path, ConnectTimeout: 100 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve(ln)
	t.Cleanup(func() { in.Close(); out.Close(); target.Close() })

	for _, name := range []string{"first connection (path being opened)", "second (path up)"} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("%s: the client read data from a portal that never opened", name)
		}
		c.Close()
		var sc net.Conn
		select {
		case sc = <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the outlet never reached its target", name)
		}
		sc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := sc.Read(make([]byte, 1)); errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: the target's connection is still held 5s after the outlet connected late", name)
		}
		sc.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.stats.Active.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the outlet still counts %d active sessions", out.stats.Active.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
