package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/policy"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/routing"
)

// subject is the outlet's node as an inlet's path sees it: a peer with attributes.
type subject struct{ attrs map[string]string }

func (s *subject) Identifier() string            { return "bank" }
func (s *subject) Attributes() map[string]string { return s.attrs }

// testRegistry is a portal registry on an in-process router: outlets reached on the local
// flow, inlets whose paths lead to them with the outlet's node the subject "bank"
// (role "db"), and policies set per resource.
type testRegistry struct {
	*portals
	mu       sync.Mutex
	policies map[string]*policy.Policy // "tcp-inlet NAME" -> policy
	buildErr error                     // while set, paths are not built
	refused  []error                   // what Refused was told
	done     chan struct{}             // the paths' channel
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{policies: map[string]*policy.Policy{}, done: make(chan struct{})}
	r.portals = newPortals(portalsConfig{
		Router:                routing.New(routing.Config{Logger: slog.New(slog.DiscardHandler)}),
		Logger:                slog.New(slog.DiscardHandler),
		Flow:                  func() routing.FlowID { return routing.FlowLocal },
		OutletSessionsPerPeer: 8,
		Policy: func(kind, name string) *policy.Policy {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.policies[kind+" "+name]
		},
		Revoked: func(*routing.Message, string) bool { return false },
		Build: func(ctx context.Context, route routing.Path) (builtPath, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.buildErr != nil {
				return builtPath{}, r.buildErr
			}
			to := routing.MustRoute(routing.LocalAddress(route[len(route)-1].Value))
			return builtPath{PathRoute: dataplane.PathRoute{To: to, Done: r.done, Peer: &subject{map[string]string{"role": "db"}}}, release: func() {}}, nil
		},
		Refused: func(err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.refused = append(r.refused, err)
		},
	})
	t.Cleanup(r.close)
	return r
}

func (r *testRegistry) setPolicy(t *testing.T, kind, name, expr string) {
	t.Helper()
	p, err := policy.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.policies[kind+" "+name] = p
}

// echoTarget is a TCP echo server, closed with the test.
func echoTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// freeAddr is a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// roundTrip connects to addr and echoes one line through it.
func roundTrip(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("round trip through %s: %q, %v", addr, buf, err)
	}
	return c
}

// startTestInlet starts an inlet at a free loopback address with a route to the outlet.
func (r *testRegistry) startTestInlet(t *testing.T, outlet string) (*inlet, string) {
	t.Helper()
	addr := freeAddr(t)
	in, err := r.startInlet(state.Inlet{Name: addr, Listen: addr, Route: "/service/" + outlet})
	if err != nil {
		t.Fatal(err)
	}
	return in, addr
}

func TestPortalsCreateListDelete(t *testing.T) {
	r := newTestRegistry(t)
	target := echoTarget(t)
	if _, err := r.startOutlet(state.Outlet{Name: "db", Target: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.startOutlet(state.Outlet{Name: "db", Target: target}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second outlet db: %v, want that one exists", err)
	}
	if got, ok := r.outletTarget("db"); !ok || got != target {
		t.Fatalf("outletTarget(db) = %q, %v", got, ok)
	}
	_, addr := r.startTestInlet(t, "db")
	r.setPolicy(t, "tcp-inlet", addr, `(= subject.role "db")`)
	if _, err := r.startInlet(state.Inlet{Name: addr, Listen: addr, Route: "/service/db"}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second inlet on %s: %v, want that one exists", addr, err)
	}

	roundTrip(t, addr).Close()

	outs := r.outletList()
	if len(outs) != 1 || outs[0].Name != "db" || outs[0].Target != target || outs[0].Address != "/service/db" || outs[0].Total != 1 {
		t.Fatalf("outlets: %+v", outs)
	}
	ins := r.inletList()
	if len(ins) != 1 || ins[0].Name != addr || ins[0].Route != "/service/db" || !ins[0].Up || ins[0].Total != 1 || ins[0].Policy == "" {
		t.Fatalf("inlets: %+v", ins)
	}
	if rec, ok := r.inletNamed(addr); !ok || rec.Listen != addr {
		t.Fatalf("inletNamed(%s) = %+v, %v", addr, rec, ok)
	}
	var inlets, outlets int
	r.collect(func(name string, st *dataplane.Counters, up bool) {
		if name != addr || !up || st.Total.Load() != 1 {
			t.Errorf("collect: inlet %s up %v total %d", name, up, st.Total.Load())
		}
		inlets++
	}, func(name string, st *dataplane.Counters) { outlets++ })
	if inlets != 1 || outlets != 1 {
		t.Fatalf("collect saw %d inlets, %d outlets", inlets, outlets)
	}

	name, err := r.removeInlet(addr)
	if err != nil || name != addr {
		t.Fatalf("removeInlet: %q, %v", name, err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("the deleted inlet still listens")
	}
	if _, err := r.removeInlet(addr); err == nil || !strings.Contains(err.Error(), "no inlet") {
		t.Fatalf("removeInlet again: %v", err)
	}
	if err := r.removeOutlet("db"); err != nil {
		t.Fatal(err)
	}
	if r.cfg.Router.Registered("db") {
		t.Fatal("the deleted outlet is still on the router")
	}
	if err := r.removeOutlet("db"); err == nil || !strings.Contains(err.Error(), "no outlet") {
		t.Fatalf("removeOutlet again: %v", err)
	}
	if len(r.inletList()) != 0 || len(r.outletList()) != 0 {
		t.Fatal("portals left after delete")
	}
}

// A path that is refused (here: no such service) is counted by the inlet, kept as its
// last refusal, and told to the node's counters once per connect.
func TestPortalsRefusalCounted(t *testing.T) {
	r := newTestRegistry(t)
	r.mu.Lock()
	r.buildErr = fmt.Errorf("route /service/db: %w", routing.ErrNoService)
	r.mu.Unlock()
	_, addr := r.startTestInlet(t, "db")
	// The inlet resets the client; on loopback the reset may reach the dial already.
	if c, err := net.Dial("tcp", addr); err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("read %d bytes through a refused path", n)
		}
		c.Close()
	}
	ins := r.inletList()
	if len(ins) != 1 || ins[0].Refused != 1 || !strings.Contains(ins[0].LastRefusal, "no service") && !strings.Contains(ins[0].LastRefusal, routing.ErrNoService.Error()) {
		t.Fatalf("inlet after a refused path: %+v", ins)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.refused) != 1 || !errors.Is(r.refused[0], routing.ErrNoService) {
		t.Fatalf("Refused was told %v, want the one refusal", r.refused)
	}
}

// The inlet's policy applies to the outlet's node when the path is built, and recheck cuts a
// live session once the policy no longer admits it.
func TestPortalsRecheck(t *testing.T) {
	r := newTestRegistry(t)
	if _, err := r.startOutlet(state.Outlet{Name: "db", Target: echoTarget(t)}); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	r.setPolicy(t, "tcp-inlet", addr, `(= subject.role "db")`)
	if _, err := r.startInlet(state.Inlet{Name: addr, Listen: addr, Route: "/service/db"}); err != nil {
		t.Fatal(err)
	}
	c := roundTrip(t, addr)
	defer c.Close()
	if cut := r.recheck(); cut != 0 {
		t.Fatalf("recheck under an unchanged policy cut %d sessions", cut)
	}
	r.setPolicy(t, "tcp-inlet", addr, `(= subject.role "web")`)
	if cut := r.recheck(); cut != 1 {
		t.Fatalf("recheck after the policy changed cut %d sessions, want 1", cut)
	}
	io.ReadAll(c) // returns when the session ends, at EOF or a reset; the deadline fails it otherwise
	if err := c.SetDeadline(time.Now().Add(time.Second)); err == nil {
		if _, err := c.Write([]byte("x")); err == nil {
			if n, _ := c.Read(make([]byte, 1)); n > 0 {
				t.Fatal("the cut session still echoes")
			}
		}
	}
	// A new connect is refused by the inlet's policy, and counted as a policy refusal.
	if d, err := net.Dial("tcp", addr); err == nil {
		d.SetDeadline(time.Now().Add(10 * time.Second))
		d.Read(make([]byte, 1))
		d.Close()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.refused) == 0 || !errors.Is(r.refused[len(r.refused)-1], errPolicy) {
		t.Fatalf("Refused was told %v, want the policy refusal", r.refused)
	}
}
