package dataplane

import (
	"context"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/connprobe"
	"github.com/adjacentnet/adjacent/routing"
)

// BenchmarkConnect is a client's connect plus its first round trip of 64 bytes through a
// portal on one router, as internal/connprobe defines it and `make bench` (blast connect)
// measures it: p50-us is that figure, the clock stopped before the close; ns/op is the
// whole iteration, the close included.
func BenchmarkConnect(b *testing.B) {
	p := newPortal(b, serve(b, echoServer), nil)
	req, resp := make([]byte, 64), make([]byte, 64)
	dial := func() (net.Conn, error) { return net.Dial("tcp", p.addr) }
	var times []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		d, c, err := connprobe.FirstRoundTrip(dial, req, resp)
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, d)
		c.Close()
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2])/float64(time.Microsecond), "p50-us")
}

// discardConn is a connection of the transparent stack's kind (not a kernel socket, with a
// TryWrite) that takes everything. With depth set, a write first goes that many 1 KiB stack
// frames deep, as a write into gVisor does (about 20 calls to the TUN device's write).
type discardConn struct {
	net.Conn
	depth   int
	written *atomic.Int64
}

func (c discardConn) TryWrite(bufs [][]byte) (int, error) {
	n := deep(c.depth)
	for _, b := range bufs {
		n += len(b)
	}
	c.written.Add(int64(n))
	return n, nil
}

func (c discardConn) Write(p []byte) (int, error) {
	n := len(p) + deep(c.depth)
	c.written.Add(int64(n))
	return n, nil
}

// deep uses n KiB of stack and returns 0.
//
//go:noinline
func deep(n int) int {
	var pad [1024]byte
	if n <= 0 {
		return 0
	}
	pad[n%len(pad)] = byte(n)
	return deep(n-1) + int(pad[n%len(pad)]) - n%256
}

// BenchmarkDeliverToStackConn is the delivery of one 1 KiB data message to an inlet session
// whose client is a connection of the transparent stack's kind, written to at the depth of
// a plain call or of a write into gVisor.
func BenchmarkDeliverToStackConn(b *testing.B) {
	for _, depth := range []int{0, 24} {
		b.Run("depth="+strconv.Itoa(depth), func(b *testing.B) { benchmarkDeliver(b, depth) })
	}
}

func benchmarkDeliver(b *testing.B, depth int) {
	r := routing.New(routing.Config{Logger: quiet})
	connects := make(chan routing.Route, 1)
	r.Register("outlet", routing.WorkerFunc(func(m *routing.Message) { connects <- m.Return; m.Release() }))
	// The far session keeps to the inlet session's window, as an outlet's does.
	var credit atomic.Int64
	credit.Store(DefaultWindow)
	granted := make(chan struct{}, 1)
	r.Register("far", routing.WorkerFunc(func(m *routing.Message) {
		if w, err := parse(m.Payload()); err == nil && w.kind == msgWindow {
			credit.Add(int64(w.n))
			select {
			case granted <- struct{}{}:
			default:
			}
		}
		m.Release()
	}))
	path := &staticPath{to: routing.MustRoute(routing.LocalAddress("outlet")), done: make(chan struct{})}
	in := NewInlet(InletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet}, Path: path})
	defer in.Close()
	send := func(to routing.Route, p []byte) {
		m := routing.NewMessage()
		m.Onward = to
		m.Return = routing.MustRoute(routing.LocalAddress("far"))
		m.SetPayload(p)
		r.Send(m)
	}
	done := make(chan *Pending, 1)
	go func() {
		p, err := in.Dial(context.Background())
		if err != nil {
			b.Error(err)
		}
		done <- p
	}()
	to := <-connects
	send(to, withU32(msgConnected, DefaultWindow))
	p := <-done
	if p == nil {
		return
	}
	a, c := net.Pipe()
	defer c.Close()
	var written atomic.Int64
	p.Attach(discardConn{a, depth, &written})
	data := append([]byte{msgData}, make([]byte, 1024)...)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		for credit.Load() < 1024 {
			<-granted
		}
		credit.Add(-1024)
		send(to, data)
	}
	b.StopTimer()
	for want := int64(b.N) * 1024; written.Load() != want; {
		if p.d.s.isDone() {
			b.Fatalf("the session ended having written %d of %d bytes", written.Load(), want)
		}
		runtime.Gosched()
	}
}
