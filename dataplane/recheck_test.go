package dataplane

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

type testPeer string

func (p testPeer) Identifier() string { return string(p) }

// policedPath is a Path to an outlet on the same router whose far end is the node "bank",
// refused (as the control plane refuses it) while deny is set.
type policedPath struct {
	to   routing.Route
	done chan struct{}
	deny *atomic.Bool
}

func (p *policedPath) Open(ctx context.Context) (PathRoute, error) {
	if p.deny.Load() {
		return PathRoute{}, errors.New("the outlet's node does not satisfy the inlet's policy")
	}
	return PathRoute{To: p.to, Done: p.done, Peer: testPeer("bank")}, nil
}

// policedPortal is an inlet and an outlet on one router, the outlet seeing its connects come
// from the node "analysis"; each side's policy refuses while its flag is set.
func policedPortal(t *testing.T, outletDenies, inletDenies *atomic.Bool) (*Inlet, *Outlet, string) {
	t.Helper()
	r := routing.New(routing.Config{Logger: quiet})
	allow := func(deny *atomic.Bool) Allow {
		return func(peer routing.Peer) (bool, string) {
			if deny.Load() {
				return false, peer.Identifier() + " lacks subject.role"
			}
			return true, ""
		}
	}
	target := serve(t, echoServer)
	out := NewOutlet(OutletConfig{
		SessionConfig: SessionConfig{Router: r, Logger: quiet}, Target: target.Addr().String(),
		Admit: func(m *routing.Message) (bool, string) { return allow(outletDenies)(m.Local.Peer) },
		Allow: allow(outletDenies),
	})
	// What the secure channel from analysis would set.
	r.Register("outlet", routing.WorkerFunc(func(m *routing.Message) {
		m.Local.Peer = testPeer("analysis")
		out.HandleMessage(m)
	}))
	path := &policedPath{to: routing.MustRoute(routing.LocalAddress("outlet")), done: make(chan struct{}), deny: inletDenies}
	in := NewInlet(InletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet}, Path: path, Allow: allow(inletDenies)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go in.Serve(ln)
	t.Cleanup(func() {
		in.Close()
		out.Close()
		target.Close()
	})
	return in, out, ln.Addr().String()
}

// echoing dials addr and checks one round trip.
func echoing(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	return c
}

// resetSeen fails t unless c ends in a reset (not a clean end of stream).
func resetSeen(t *testing.T, what string, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: the client's read ended with %v, want a connection reset", what, err)
	}
}

// TestRecheckCutsSessions: a Recheck after a policy tightened resets the live sessions of
// the side whose policy refuses, at both ends, and counts them; a new connection is refused
// with a reset, never a clean close.
func TestRecheckCutsSessions(t *testing.T) {
	for _, side := range []string{"outlet", "inlet"} {
		t.Run(side, func(t *testing.T) {
			var outletDenies, inletDenies atomic.Bool
			in, out, addr := policedPortal(t, &outletDenies, &inletDenies)
			c := echoing(t, addr)
			if n := in.Recheck() + out.Recheck(); n != 0 {
				t.Fatalf("Recheck with the policies passing reset %d sessions", n)
			}
			type portalSide interface {
				Recheck() int
				Stats() *Counters
			}
			var cutter, other portalSide = out, in
			deny := &outletDenies
			if side == "inlet" {
				deny, cutter, other = &inletDenies, in, out
			}
			deny.Store(true)
			start := time.Now()
			if n := cutter.Recheck(); n != 1 {
				t.Fatalf("%s Recheck = %d, want 1", side, n)
			}
			resetSeen(t, "the cut session", c)
			waitEnded(t, "the other side", other.Stats(), start)
			if got := cutter.Stats().PolicyResets.Load(); got != 1 {
				t.Errorf("PolicyResets = %d, want 1", got)
			}
			if c2, err := net.Dial("tcp", addr); err == nil { // else the refusal's reset came first
				defer c2.Close()
				resetSeen(t, "a new connection", c2)
			} else if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("a new connection: %v, want a reset", err)
			}
			if n := cutter.Stats().Total.Load(); n != 1 {
				t.Errorf("%s sessions ever = %d, want 1: the new connection was served", side, n)
			}
		})
	}
}

// BenchmarkRecheck is the cost of one backstop run over an outlet's live sessions, all of
// which still pass, from 16 peers: it runs once a second, never per frame.
func BenchmarkRecheck(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run("sessions="+strconv.Itoa(n), func(b *testing.B) {
			r := routing.New(routing.Config{Logger: quiet})
			var g groups
			done := make(chan struct{})
			defer close(done)
			var stats Counters
			for i := range n {
				s := newSession(SessionConfig{Router: r, Logger: quiet}.withDefaults(), &stats, "s", nil)
				s.subject = testPeer("peer" + strconv.Itoa(i%16))
				g.add(done, s)
			}
			rc := newRechecker(func(routing.Peer) (bool, string) { return true, "" }, "the outlet's policy", quiet)
			b.ReportAllocs()
			for b.Loop() {
				if rc.run(&g, &stats) != 0 {
					b.Fatal("cut a passing session")
				}
			}
		})
	}
}
