package dataplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// gatedListener hands out each accepted connection only when the test lets it, so that what
// the client sent first is waiting in the socket when the inlet opens its session.
type gatedListener struct {
	net.Listener
	gate chan struct{}
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		<-l.gate
	}
	return c, err
}

// What a client sends before its session connected rides with the connect, up to maxEarly
// bytes, and the target receives everything in order: the early bytes first, the rest
// through the session, whose credit the early bytes were charged to.
func TestEarlyDataRidesWithConnect(t *testing.T) {
	r := routing.New(routing.Config{Logger: quiet})
	target := serve(t, echoServer)
	out := NewOutlet(OutletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet}, Target: target.Addr().String()})
	var mu sync.Mutex
	var early [][]byte // the early data of each connect the outlet received
	spy := routing.WorkerFunc(func(m *routing.Message) {
		if pm, err := parse(m.Payload()); err == nil && pm.kind == msgConnect {
			mu.Lock()
			early = append(early, bytes.Clone(pm.body))
			mu.Unlock()
		}
		out.HandleMessage(m)
	})
	if err := r.Register("outlet", spy); err != nil {
		t.Fatal(err)
	}
	path := &staticPath{to: routing.MustRoute(routing.LocalAddress("outlet")), done: make(chan struct{})}
	in := NewInlet(InletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet, Window: 64 << 10}, Path: path})
	if err := in.Check(context.Background()); err != nil { // the path is known: no connect waits for it
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	go in.Serve(gatedListener{ln, gate})
	t.Cleanup(func() { close(gate); in.Close(); out.Close() })

	for _, tc := range []struct {
		name  string
		first int // bytes the client sends before its connection is accepted
		want  int // of which ride with the connect
	}{
		{"a startup message", 100, 100},
		{"more than fits", 3 * maxEarly, maxEarly},
		{"more than the window", 1 << 20, maxEarly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			early = nil
			mu.Unlock()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, tc.first)
			rand.Read(msg)
			wrote := make(chan error, 1)
			go func() { _, err := c.Write(msg); wrote <- err }()
			if tc.first <= maxEarly { // all of it is in the inlet's socket before the accept
				if err := <-wrote; err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			} else {
				time.Sleep(100 * time.Millisecond) // the socket's buffers are full
			}
			gate <- struct{}{}
			got := make([]byte, len(msg))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("echo: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("the echo differs from what was sent")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(early) != 1 || len(early[0]) != tc.want || !bytes.Equal(early[0], msg[:tc.want]) {
				var sizes []int
				for _, e := range early {
					sizes = append(sizes, len(e))
				}
				t.Fatalf("connects carried early data of %v bytes, want one of %d: the client's first bytes", sizes, tc.want)
			}
		})
	}
}
