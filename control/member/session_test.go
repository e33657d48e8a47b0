package member_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/member"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// channel is a fake channel to the hub: a worker of the test's router that answers as
// the hub's services would, on the channel's flow.
type channel struct {
	name string
	flow routing.FlowID
	done chan struct{}
}

func (c *channel) Address() routing.Address { return routing.LocalAddress(c.name) }
func (c *channel) Flow() routing.FlowID     { return c.flow }
func (c *channel) Done() <-chan struct{}    { return c.done }
func (c *channel) Err() error               { return errors.New("closed by the test") }

// fakeHub answers requests that reach any of its channels and records them.
type fakeHub struct {
	router *routing.Router
	mu     sync.Mutex
	seen   []string // "channel worker op name"
	// revoked, if set, is how many revocations the hub holds: it answers them in pages of
	// hub.MaxRevocationsAnswer, as a hub does.
	revoked int
}

// revokedID is the fake hub's identifier of revocation i, in identifier order.
func revokedID(i int) string { return fmt.Sprintf("I%064x", i) }

func (h *fakeHub) channel(t *testing.T, name string) *channel {
	c := &channel{name: name, flow: h.router.NewFlow(), done: make(chan struct{})}
	err := h.router.Register(name, routing.WorkerFunc(func(m *routing.Message) {
		defer m.Release()
		m.Onward.Pop()
		worker := m.Onward.NextAddress().Value
		var req struct{ Op, Name, After string }
		json.Unmarshal(m.Payload(), &req)
		h.mu.Lock()
		h.seen = append(h.seen, fmt.Sprint(name, " ", worker, " ", req.Op, " ", req.Name))
		h.mu.Unlock()
		var result any
		switch req.Op {
		case "credential":
			result = hub.CredentialAnswer{Credential: []byte("fresh"), Project: "acme"}
		case "revocations":
			if h.revoked == 0 {
				result = hub.RevocationsAnswer{Events: [][]byte{[]byte("ev")}}
				break
			}
			ans := hub.RevocationsAnswer{Events: [][]byte{}}
			for i := range h.revoked {
				if revokedID(i) > req.After && len(ans.Events) < hub.MaxRevocationsAnswer {
					ans.Events = append(ans.Events, []byte(revokedID(i)))
				}
			}
			if n := len(ans.Events); n == hub.MaxRevocationsAnswer && string(ans.Events[n-1]) != revokedID(h.revoked-1) {
				ans.Next = string(ans.Events[n-1])
			}
			result = ans
		default:
			result = map[string]string{"name": req.Name}
		}
		b, _ := json.Marshal(map[string]any{"result": result})
		a := routing.NewMessage()
		a.Onward = m.Return
		a.Local.Flow = c.flow // as if it came out of the channel
		a.SetPayload(b)
		h.router.Send(a)
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *fakeHub) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSessionReconnects: the session retries a hub that does not answer with the backoff,
// opens the node to each new channel before offering it, runs Up, registers the member's
// relays again on every channel, reconnects when the channel closes and stops with its
// context.
func TestSessionReconnects(t *testing.T) {
	h := &fakeHub{router: routing.New(routing.Config{})}
	chans := make(chan *channel, 2)
	chans <- h.channel(t, "sc.1")
	chans <- h.channel(t, "sc.2")
	var (
		mu       sync.Mutex
		attempts int
		waits    []int
		events   []string
	)
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	var s *member.Session[*channel]
	s = member.NewSession(member.Config[*channel]{
		Project: "acme", Router: h.router,
		Connect: func(ctx context.Context) (*channel, error) {
			mu.Lock()
			attempts++
			n := attempts
			mu.Unlock()
			if n <= 2 {
				return nil, errors.New("connection refused")
			}
			select {
			case c := <-chans:
				return c, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		Open: func(c *channel) {
			if _, up := s.Channel(); up {
				t.Errorf("channel offered before Open")
			}
			note("open " + c.name)
		},
		Up:      func(_ context.Context, c *channel) { note("up " + c.name) },
		Relays:  func(context.Context) ([]string, error) { return []string{"db", "web"}, nil },
		Backoff: func(f int) time.Duration { mu.Lock(); waits = append(waits, f); mu.Unlock(); return time.Millisecond },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	c, err := s.Wait(ctx)
	if err != nil || c.name != "sc.1" {
		t.Fatalf("Wait = %v, %v", c, err)
	}
	eventually(t, "relays registered on sc.1", func() bool { return len(h.requests()) == 2 })
	close(c.done)
	eventually(t, "relays registered on sc.2", func() bool { return len(h.requests()) == 4 })
	if c, up := s.Channel(); !up || c.name != "sc.2" {
		t.Errorf("channel after the reconnect: %v, %v", c, up)
	}
	cancel()
	<-done
	if _, up := s.Channel(); up {
		t.Errorf("channel still offered after Run ended")
	}
	want := []string{"sc.1 relays create db", "sc.1 relays create web", "sc.2 relays create db", "sc.2 relays create web"}
	if got := h.requests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hub saw %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(waits) != "[1 2]" {
		t.Errorf("backoffs after failures %v, want [1 2]", waits)
	}
	if fmt.Sprint(events) != "[open sc.1 up sc.1 open sc.2 up sc.2]" {
		t.Errorf("hooks ran %v", events)
	}
}

// TestSessionCalls: credentials, revocations and relays go to the hub's services over the
// channel; without one, Credential says the hub is not connected, Wait waits and says why
// the hub is down, and a hub that refused the node makes Wait return at once.
func TestSessionCalls(t *testing.T) {
	h := &fakeHub{router: routing.New(routing.Config{})}
	c := h.channel(t, "sc.1")
	fail := make(chan error, 1)
	fail <- errors.New("no route to host")
	connect := make(chan struct{})
	s := member.NewSession(member.Config[*channel]{
		Router: h.router, CallTimeout: 200 * time.Millisecond,
		Connect: func(ctx context.Context) (*channel, error) {
			select {
			case err := <-fail:
				return nil, err
			default:
			}
			<-connect
			return c, nil
		},
		Backoff: func(int) time.Duration { return time.Millisecond },
	})
	if _, err := s.Credential(t.Context()); !errors.Is(err, member.ErrNotConnected) {
		t.Errorf("Credential before Run: %v, want %v", err, member.ErrNotConnected)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() { s.Run(ctx); close(done) }()
	eventually(t, "first attempt failed", func() bool { return len(fail) == 0 })
	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := s.Wait(wctx)
	wcancel()
	if !errors.Is(err, member.ErrHubDown) || !strings.Contains(err.Error(), "no route to host") {
		t.Errorf("Wait while down: %v, want the hub down for the last reason", err)
	}
	close(connect)
	if _, err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Credential(ctx); err != nil || string(b) != "fresh" {
		t.Errorf("Credential = %q, %v", b, err)
	}
	if evs, err := s.Revocations(ctx); err != nil || len(evs) != 1 || string(evs[0]) != "ev" {
		t.Errorf("Revocations = %q, %v", evs, err)
	}
	if r, err := s.CreateRelay(ctx, "db"); err != nil || r.Name != "db" {
		t.Errorf("CreateRelay = %+v, %v", r, err)
	}
	want := "[sc.1 authority credential  sc.1 authority revocations  sc.1 relays create db]"
	if got := fmt.Sprint(h.requests()); got != want {
		t.Errorf("hub saw %s, want %s", got, want)
	}
}

// TestSessionRefused: a hub that refused the node is not down: Wait says so at once.
func TestSessionRefused(t *testing.T) {
	s := member.NewSession(member.Config[*channel]{
		Router: routing.New(routing.Config{}),
		Connect: func(context.Context) (*channel, error) {
			return nil, fmt.Errorf("handshake: %w", securechannel.ErrRefused)
		},
		Backoff: func(int) time.Duration { return time.Hour },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() { s.Run(ctx); close(done) }()
	eventually(t, "refused", func() bool {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer wcancel()
		_, err := s.Wait(wctx)
		return errors.Is(err, securechannel.ErrRefused)
	})
}

// TestSessionStopsWhenNotAlive: a session whose project is no longer the node's stops.
func TestSessionStopsWhenNotAlive(t *testing.T) {
	var calls int
	s := member.NewSession(member.Config[*channel]{
		Router:  routing.New(routing.Config{}),
		Connect: func(context.Context) (*channel, error) { calls++; return nil, errors.New("down") },
		Alive:   func() bool { return calls < 3 },
		Backoff: func(int) time.Duration { return 0 },
	})
	s.Run(t.Context()) // returns
	if calls != 3 {
		t.Errorf("%d attempts, want 3", calls)
	}
}

// TestBackoff: the wait grows from 50–100ms to 0.8–1.6s and stays there.
func TestBackoff(t *testing.T) {
	for f, lo := range map[int]time.Duration{0: 50 * time.Millisecond, 1: 100 * time.Millisecond, 4: 800 * time.Millisecond, 40: 800 * time.Millisecond} {
		for range 100 {
			if d := member.Backoff(f); d < lo || d > 2*lo {
				t.Fatalf("Backoff(%d) = %v, want in [%v, %v]", f, d, lo, 2*lo)
			}
		}
	}
}

// TestSessionReadsEveryRevocationPage: a member that reconnects to a hub holding more
// revocations than one answer carries (hub.MaxRevocationsAnswer, 128) asks page after page
// and learns every one. (Before, it learned the first 128 and missed the rest.)
func TestSessionReadsEveryRevocationPage(t *testing.T) {
	h := &fakeHub{router: routing.New(routing.Config{}), revoked: 2*hub.MaxRevocationsAnswer + 44}
	c := h.channel(t, "sc.1")
	s := member.NewSession(member.Config[*channel]{
		Router: h.router, CallTimeout: 2 * time.Second,
		Connect: func(ctx context.Context) (*channel, error) { return c, nil },
		Backoff: func(int) time.Duration { return time.Millisecond },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() { s.Run(ctx); close(done) }()
	if _, err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != h.revoked {
		t.Fatalf("Revocations = %d events, want all %d", len(evs), h.revoked)
	}
	for i, ev := range evs {
		if string(ev) != revokedID(i) {
			t.Fatalf("event %d is %s, want %s (each once, in order)", i, ev, revokedID(i))
		}
	}
	if n := len(h.requests()); n != 3 {
		t.Errorf("%d requests, want 3 pages", n)
	}
}
