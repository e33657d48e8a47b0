package tcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/racecheck"
	"github.com/adjacentnet/adjacent/routing"
)

// node is a router with a TCP transport, as a test peer.
type node struct {
	r *routing.Router
	t *Transport
}

func newNode(t *testing.T, cfg Config) *node {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := routing.New(routing.Config{Logger: cfg.Logger})
	n := &node{r: r, t: New(r, cfg)}
	t.Cleanup(func() { n.t.Close() })
	return n
}

func (n *node) listen(t *testing.T) string {
	t.Helper()
	l, err := n.t.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l.Addr().String()
}

// inbox is a worker that hands messages to a channel.
type inbox chan *routing.Message

func (in inbox) HandleMessage(m *routing.Message) { in <- m }

func (in inbox) next(t *testing.T) *routing.Message {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

func sendTo(n *node, to routing.Route, from string, payload []byte) {
	m := routing.NewMessage()
	m.Onward = to
	m.Return = routing.MustRoute(routing.LocalAddress(from))
	m.SetPayload(payload)
	n.r.Send(m)
}

func TestEchoOverTCP(t *testing.T) {
	server, client := newNode(t, Config{}), newNode(t, Config{})
	if err := server.r.Register("echo", routing.NewEcho(server.r, "echo"), routing.FlowTransports); err != nil {
		t.Fatal(err)
	}
	addr := server.listen(t)
	c, err := client.t.Connect(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	replies := make(inbox, 1)
	if err := client.r.Register("reply", replies, c.Flow()); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 1000, 15000} {
		payload := bytes.Repeat([]byte{'x'}, size)
		sendTo(client, routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("echo")), "reply", payload)
		m := replies.next(t)
		if !bytes.Equal(m.Payload(), payload) {
			t.Fatalf("echo of %d bytes returned %d bytes", size, len(m.Payload()))
		}
		if got, want := m.Return.String(), "["+c.Address().String()+", 0#echo]"; got != want {
			t.Fatalf("reply return route = %s, want %s", got, want)
		}
		m.Release()
	}
}

func TestRemoteMessageToClosedWorkerIsDropped(t *testing.T) {
	server, client := newNode(t, Config{}), newNode(t, Config{})
	private := make(inbox, 1)
	if err := server.r.Register("private", private); err != nil { // not opened to transports
		t.Fatal(err)
	}
	if err := server.r.Register("echo", routing.NewEcho(server.r, "echo"), routing.FlowTransports); err != nil {
		t.Fatal(err)
	}
	addr := server.listen(t)
	replies := make(inbox, 1)
	if err := client.r.Register("reply", replies, routing.FlowTransports); err != nil {
		t.Fatal(err)
	}
	sendTo(client, routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("private")), "reply", []byte("secret"))
	// A message that is delivered afterwards proves the first one was processed.
	sendTo(client, routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("echo")), "reply", []byte("ping"))
	replies.next(t).Release()
	select {
	case m := <-private:
		t.Fatalf("worker not opened to transports received %v", m)
	default:
	}
	if got := server.r.Stats().Denied; got != 1 {
		t.Fatalf("server Denied = %d, want 1", got)
	}
}

// TestHostilePeers: a wrong preamble, random bytes, or a huge frame header followed by a stall
// are closed within seconds, allocate nothing near the claimed size, and the node keeps
// serving others.
func TestHostilePeers(t *testing.T) {
	server := newNode(t, Config{PreambleTimeout: time.Second, FrameTimeout: time.Second})
	if err := server.r.Register("echo", routing.NewEcho(server.r, "echo"), routing.FlowTransports); err != nil {
		t.Fatal(err)
	}
	addr := server.listen(t)
	random := make([]byte, 64)
	rand.Read(random)
	huge := append(preamble[:], 0x40, 0, 0, 0) // a frame of 1 GiB
	tests := []struct {
		name string
		send []byte
	}{
		{"wrong preamble", []byte("GET / HTTP/1.1\r\n\r\n")},
		{"other version", []byte{'a', 'd', 'j', 9}},
		{"random bytes", random},
		{"1 GiB frame header then stall", huge},
		{"small frame header then stall", append(preamble[:], 0, 0, 1, 0)},
		{"nothing at all", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.Write(tt.send)
			start := time.Now()
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			// The server sends its preamble, then must close: read to EOF.
			got, err := io.ReadAll(nc)
			if errors.Is(err, syscall.ECONNRESET) {
				err = nil // closed with our bytes unread
			}
			if err != nil {
				t.Fatalf("connection not closed by the server: %v (read %d bytes)", err, len(got))
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("closed after %v, want within seconds", d)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Fatalf("allocated %d bytes serving a hostile peer", grew)
			}
		})
	}
	if server.t.Stats().Refused < uint64(len(tests)) {
		t.Errorf("Refused = %d, want at least %d", server.t.Stats().Refused, len(tests))
	}
	// Still serving honest peers.
	client := newNode(t, Config{})
	replies := make(inbox, 1)
	client.r.Register("reply", replies, routing.FlowTransports)
	sendTo(client, routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("echo")), "reply", []byte("still there"))
	if m := replies.next(t); string(m.Payload()) != "still there" {
		t.Fatalf("echo = %q", m.Payload())
	}
}

// TestAuthenticatedFrameCap: frames over the pre-authentication cap are refused until the
// connection is marked authenticated, then accepted.
func TestAuthenticatedFrameCap(t *testing.T) {
	server := newNode(t, Config{MaxFramePreAuth: 1024})
	got := make(inbox, 4)
	server.r.Register("sink", got, routing.FlowTransports)
	addr := server.listen(t)
	client := newNode(t, Config{})
	c, err := client.t.Connect(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	to := routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("sink"))
	sendTo(client, to, "x", make([]byte, 100))
	m := got.next(t)
	link := m.Local.Link
	m.Release()
	link.Authenticated()
	sendTo(client, to, "x", make([]byte, 100<<10))
	if m := got.next(t); len(m.Payload()) != 100<<10 {
		t.Fatalf("after Authenticated, got %d bytes", len(m.Payload()))
	}
	// A fresh connection is capped again.
	c.Close()
	sendTo(client, to, "x", make([]byte, 100<<10))
	deadline := time.Now().Add(5 * time.Second)
	for server.t.Stats().Refused == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if server.t.Stats().Refused != 1 {
		t.Fatalf("oversized pre-authentication frame: Refused = %d, want 1", server.t.Stats().Refused)
	}
}

func TestDeadPeerDetected(t *testing.T) {
	server := newNode(t, Config{DeadAfter: 500 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond})
	addr := server.listen(t)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(preamble[:]) // then silence: no heartbeats
	start := time.Now()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatalf("silent peer not cut off: %v", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Fatalf("silent peer cut off after %v, want about DeadAfter", d)
	}
	// A live but idle peer survives thanks to heartbeats.
	client := newNode(t, Config{DeadAfter: 500 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond})
	c, err := client.t.Connect(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
		t.Fatal("idle connection with heartbeats was closed")
	case <-time.After(1500 * time.Millisecond):
	}
}

func TestConnectBackoff(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	client := newNode(t, Config{BackoffMin: 200 * time.Millisecond, BackoffMax: time.Second})
	ctx := context.Background()
	if _, err := client.t.Connect(ctx, addr); err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	start := time.Now()
	if _, err := client.t.Connect(ctx, addr); err == nil {
		t.Fatal("second connect succeeded")
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("second attempt after %v, want a backoff of at least 100ms", d)
	}
	// Once something listens again, a connect gets through.
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	ln2.Close()
	server := newNode(t, Config{})
	if _, err := server.t.Listen(addr); err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		if _, err := client.t.Connect(ctx, addr); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("no reconnection: %v", err)
		}
	}
}

func TestFramesZeroAllocs(t *testing.T) {
	if racecheck.Enabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	server, client := newNode(t, Config{}), newNode(t, Config{})
	got := make(inbox, 1)
	server.r.Register("sink", got, routing.FlowTransports)
	addr := server.listen(t)
	if _, err := client.t.Connect(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	to := routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("sink"))
	from := routing.MustRoute(routing.LocalAddress("x"))
	payload := make([]byte, 1024)
	send := func() {
		m := routing.NewMessage()
		m.Onward, m.Return = to, from
		m.SetPayload(payload)
		client.r.Send(m)
		(<-got).Release()
	}
	for range 100 {
		send() // warm the pools
	}
	if allocs := testing.AllocsPerRun(1000, send); allocs > 0.05 {
		t.Fatalf("send and receive over TCP: %v allocations per message, want 0", allocs)
	}
}

// BenchmarkFrames measures one-way message throughput over a loopback connection, with at
// most 64 messages in flight so the queue never reaches its cap.
func BenchmarkFrames(b *testing.B) {
	for _, size := range []int{64, 1024, 16 << 10, 64 << 10} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			quiet := slog.New(slog.DiscardHandler)
			r1, r2 := routing.New(routing.Config{Logger: quiet}), routing.New(routing.Config{Logger: quiet})
			server, client := New(r1, Config{Logger: quiet}), New(r2, Config{Logger: quiet})
			defer server.Close()
			defer client.Close()
			inflight := make(chan struct{}, 64)
			r1.Register("sink", routing.WorkerFunc(func(m *routing.Message) {
				m.Local.Link.Authenticated() // as a secure channel would: lift the frame cap
				m.Release()
				<-inflight
			}), routing.FlowTransports)
			l, err := server.Listen("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			addr := l.Addr().String()
			if _, err := client.Connect(context.Background(), addr); err != nil {
				b.Fatal(err)
			}
			to := routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("sink"))
			payload := make([]byte, size)
			warm := routing.NewMessage() // the first frame lifts the cap before big ones follow
			warm.Onward = to
			inflight <- struct{}{}
			r2.Send(warm)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				inflight <- struct{}{}
				m := routing.NewMessage()
				m.Onward = to
				m.SetPayload(payload)
				r2.Send(m)
			}
			for range cap(inflight) {
				inflight <- struct{}{}
			}
		})
	}
}

// Frames keep their order whether the sender writes them itself or hands them to the writer
// goroutine on a full socket, and the queue cap counts only what waits: many times MaxQueue
// passes through with a bounded number in flight.
func TestOrderAndQueueCapUnderBackpressure(t *testing.T) {
	const frames, size, inflight = 2000, 16 << 10, 32
	server, client := newNode(t, Config{MaxQueue: 1 << 20}), newNode(t, Config{MaxQueue: 1 << 20})
	slots := make(chan struct{}, inflight)
	errs := make(chan error, 1)
	next := uint32(0)
	server.r.Register("sink", routing.WorkerFunc(func(m *routing.Message) {
		m.Local.Link.Authenticated()
		defer m.Release()
		defer func() { <-slots }()
		if p := m.Payload(); len(p) == size {
			if got := binary.BigEndian.Uint32(p); got != next {
				select {
				case errs <- fmt.Errorf("frame %d arrived as number %d", got, next):
				default:
				}
			}
			next++
			if next%100 == 0 {
				time.Sleep(time.Millisecond) // let the sender's socket fill
			}
		}
	}), routing.FlowTransports)
	addr := server.listen(t)
	c, err := client.t.Connect(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	to := routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("sink"))
	take := func() {
		select {
		case slots <- struct{}{}:
		case err := <-errs:
			t.Fatal(err)
		case <-c.Done():
			t.Fatal("the connection closed: the queue cap counted frames already written")
		case <-time.After(10 * time.Second):
			t.Fatal("no progress within 10s")
		}
	}
	take()
	sendTo(client, to, "x", []byte("lift the pre-authentication cap"))
	payload := make([]byte, size)
	for i := range uint32(frames) {
		take()
		binary.BigEndian.PutUint32(payload, i)
		sendTo(client, to, "x", payload)
	}
	for range inflight {
		take()
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if next != frames {
		t.Fatalf("%d of %d frames arrived", next, frames)
	}
}

// TestSteadyTrafficOutlivesWriteDeadline: frames that senders write themselves, never filling
// the socket, for several DeadAfter in a row. The write deadline bounds a peer that stopped
// reading; it must not end a connection whose writes all go through. It used to: only the
// writer goroutine refreshed the deadline, and it writes nothing while senders do, so the
// senders' next write after DeadAfter failed with "i/o timeout" and the connection closed
// (with every portal session over it).
func TestSteadyTrafficOutlivesWriteDeadline(t *testing.T) {
	cfg := Config{DeadAfter: 400 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond}
	server, client := newNode(t, cfg), newNode(t, cfg)
	if err := server.r.Register("echo", routing.NewEcho(server.r, "echo"), routing.FlowTransports); err != nil {
		t.Fatal(err)
	}
	addr := server.listen(t)
	c, err := client.t.Connect(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	replies := make(inbox, 1)
	if err := client.r.Register("reply", replies, c.Flow()); err != nil {
		t.Fatal(err)
	}
	to := routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("echo"))
	// A round trip every 10ms, more often than the heartbeat: neither side's writer
	// goroutine has a heartbeat to send.
	for start := time.Now(); time.Since(start) < 4*cfg.DeadAfter; time.Sleep(10 * time.Millisecond) {
		sendTo(client, to, "reply", []byte("ping"))
		select {
		case m := <-replies:
			m.Release()
		case <-c.Done():
			t.Fatalf("connection closed after %v of steady traffic (DeadAfter %v)", time.Since(start).Round(time.Millisecond), cfg.DeadAfter)
		case <-time.After(5 * time.Second):
			t.Fatalf("no echo after %v of steady traffic (DeadAfter %v)", time.Since(start).Round(time.Millisecond), cfg.DeadAfter)
		}
	}
}

// TestSlowSteadyReaderOutlivesWriteDeadline: a peer that reads slowly but steadily while a
// large queue waits for it. The write deadline bounds a peer that makes no progress; it
// must not end one that takes longer than DeadAfter for the whole queue. It used to: the
// writer goroutine gave the socket up to 1024 queued frames in one write under one deadline.
func TestSlowSteadyReaderOutlivesWriteDeadline(t *testing.T) {
	// The whole queue takes at least frames*5ms = 3s, more than DeadAfter; DeadAfter itself is
	// long enough that a loaded machine's scheduling pauses do not look like a stall.
	const frames, size = 600, 64 << 10
	// The server's heartbeats keep the client's read side alive; its writes are what is
	// under test.
	server := newNode(t, Config{HeartbeatInterval: 50 * time.Millisecond})
	client := newNode(t, Config{DeadAfter: 2 * time.Second, HeartbeatInterval: 50 * time.Millisecond})
	got := make(chan int, frames+1)
	server.r.Register("sink", routing.WorkerFunc(func(m *routing.Message) {
		m.Local.Link.Authenticated()
		n := len(m.Payload())
		m.Release()
		time.Sleep(5 * time.Millisecond) // about 13 MB/s
		got <- n
	}), routing.FlowTransports)
	addr := server.listen(t)
	c, err := client.t.Connect(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	to := routing.MustRoute(routing.TCPAddress(addr), routing.LocalAddress("sink"))
	sendTo(client, to, "x", []byte("lift the pre-authentication cap"))
	<-got
	payload := make([]byte, size)
	for range frames {
		sendTo(client, to, "x", payload)
	}
	for i := range frames {
		select {
		case <-got:
		case <-c.Done():
			t.Fatalf("the connection closed after %d of %d frames, though the peer kept reading", i, frames)
		case <-time.After(10 * time.Second):
			t.Fatalf("no progress after %d of %d frames", i, frames)
		}
	}
}

// TestFrameLengthOver2GiB: a length of 0x80000000 or more, negative as a 32-bit int, is
// refused like any length over the limit, on every word size: before lengths were compared
// as uint32, a 32-bit build took it for a small frame and panicked slicing the buffer
// (issue 12, item 6). The test suite runs this package with GOARCH=386 too.
func TestFrameLengthOver2GiB(t *testing.T) {
	for _, hdr := range []uint32{0x80000000, 0xfffffff0, 0xffffffff} {
		n, err := checkLength(hdr, 16<<10)
		if err == nil {
			t.Errorf("checkLength(%#x, 16 KiB) = %d, nil; want an error", hdr, n)
		}
	}
	server := newNode(t, Config{PreambleTimeout: time.Second, FrameTimeout: time.Second})
	addr := server.listen(t)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The preamble, then one 8-byte frame: its length and 4 bytes of body.
	nc.Write(append(preamble[:], 0x80, 0, 0, 0, 1, 2, 3, 4))
	if !closedWithin(nc, 10*time.Second) {
		t.Fatal("connection not closed after a frame length of 0x80000000")
	}
	deadline := time.Now().Add(5 * time.Second)
	for server.t.Stats().Refused == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := server.t.Stats().Refused; got != 1 {
		t.Fatalf("Refused = %d, want 1", got)
	}
}

// TestPendingDialsCapped: at most MaxPendingDials dials are in progress at once; one more
// fails at once and is counted, and a dial that ends gives its place back.
func TestPendingDialsCapped(t *testing.T) {
	n := newNode(t, Config{MaxPendingDials: 2})
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	n.t.mu.Lock()
	for _, a := range addrs { // each waits out a long backoff before dialing
		n.t.failures[a] = failure{count: 1, next: time.Now().Add(time.Minute)}
	}
	n.t.mu.Unlock()
	for _, a := range addrs[:2] {
		if _, err := n.t.outgoingConn(a); err != nil {
			t.Fatalf("dial %d of 2: %v", 1, err)
		}
	}
	if _, err := n.t.outgoingConn(addrs[2]); err == nil {
		t.Fatal("a third dial started with MaxPendingDials 2")
	}
	if got := n.t.Stats().DialsRefused; got != 1 {
		t.Fatalf("DialsRefused = %d, want 1", got)
	}
	// One dial ends (its connection closed: it dials at once and fails): a new one may start.
	n.t.mu.Lock()
	c := n.t.outgoing[addrs[0]]
	n.t.mu.Unlock()
	c.Close()
	<-c.ready
	if _, err := n.t.outgoingConn(addrs[2]); err != nil {
		t.Fatalf("dial after one ended: %v", err)
	}
}
