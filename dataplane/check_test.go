package dataplane

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// TestCheck: an inlet's check is answered by the outlet after its policy, without a dial; a
// refusal comes back with the outlet's reason, is counted and kept as the inlet's last.
func TestCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Nothing listens at the target: the check does not dial it.
	ok := newPortal(t, nil, nil)
	if err := ok.in.Check(ctx); err != nil {
		t.Fatalf("Check of an open outlet: %v", err)
	}
	if n := ok.out.Stats().Total.Load(); n != 0 {
		t.Fatalf("the check opened %d sessions", n)
	}
	denied := newPortal(t, nil, func(*routing.Message) (bool, string) { return false, "no" })
	err := denied.in.Check(ctx)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "denied by the outlet's policy") {
		t.Fatalf("Check denied by policy = %v", err)
	}
	if _, err := denied.in.Dial(ctx); !errors.Is(err, ErrRefused) {
		t.Fatalf("Dial denied by policy = %v", err)
	}
	why, at := denied.in.LastRefusal()
	if n := denied.in.Stats().Refused.Load(); n != 2 || !strings.Contains(why, "denied by the outlet's policy") || at.IsZero() {
		t.Fatalf("refusals %d, last %q at %v; want 2 with the policy's reason", n, why, at)
	}
	// An outlet at its cap of sessions for this peer refuses the check as it would the connect.
	full := newPortal(t, nil, nil)
	full.out.cfg.MaxSessionsPerPeer = 1
	full.out.take("")
	if err := full.in.Check(ctx); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "refused: capacity") {
		t.Fatalf("Check at the outlet's cap = %v", err)
	}
	// A path that refuses (the control plane's, wrapped in ErrRefused) is a refusal too.
	refusing := NewInlet(InletConfig{SessionConfig: SessionConfig{Router: routing.New(routing.Config{Logger: quiet}), Logger: quiet},
		Path: pathFunc(func(context.Context) (PathRoute, error) {
			return PathRoute{}, errors.Join(ErrRefused, errors.New("no relay"))
		})})
	if err := refusing.Check(ctx); !errors.Is(err, ErrRefused) || refusing.Stats().Refused.Load() != 1 {
		t.Fatalf("Check on a refused path = %v, %d refusals", err, refusing.Stats().Refused.Load())
	}
}

// TestRouterRefusalReachesInlet: a connect to an outlet that does not exist at the far node
// comes back as a refusal naming it, within one round trip.
func TestRouterRefusalReachesInlet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := routing.New(routing.Config{Logger: quiet})
	flow := r.NewFlow()
	// A fake link: what the inlet sends to "link" arrives back at the router as a remote
	// message of flow, as if from the outlet's node, with the link's address pushed.
	link := routing.WorkerFunc(func(m *routing.Message) {
		m.Onward.Pop()
		m.Return.Push(routing.LocalAddress("link"))
		m.Local = routing.Local{Flow: flow, Spawner: routing.FlowTransports, Link: fakeLink{}}
		r.Send(m)
	})
	if err := r.Register("link", link); err != nil {
		t.Fatal(err)
	}
	to := routing.MustRoute(routing.LocalAddress("link"), routing.LocalAddress("nosuch"))
	done := make(chan struct{})
	in := NewInlet(InletConfig{SessionConfig: SessionConfig{Router: r, Logger: quiet},
		Path: pathFunc(func(context.Context) (PathRoute, error) { return PathRoute{To: to, Flow: flow, Done: done}, nil })})
	defer in.Close()
	for _, try := range []func() error{func() error { return in.Check(ctx) }, func() error { _, err := in.Dial(ctx); return err }} {
		err := try()
		if !errors.Is(err, ErrRefused) || !errors.Is(err, routing.ErrNoService) || !strings.Contains(err.Error(), `no service "nosuch"`) {
			t.Fatalf("= %v, want a refusal naming the service", err)
		}
	}
}

type pathFunc func(context.Context) (PathRoute, error)

func (f pathFunc) Open(ctx context.Context) (PathRoute, error) { return f(ctx) }

type fakeLink struct{}

func (fakeLink) Address() routing.Address       { return routing.LocalAddress("link") }
func (fakeLink) Authenticated()                 {}
func (fakeLink) Done() <-chan struct{}          { return nil }
func (fakeLink) Guarantees() routing.Guarantees { return routing.Stream }
