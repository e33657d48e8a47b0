package securechannel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// testAdmitter stands in for the control plane's tables: members by name, and a cap of
// channels per peer.
type testAdmitter struct {
	mu      sync.Mutex
	members map[string]bool
	held    map[string]int
	max     int // per peer; 0 means no cap
}

func newTestAdmitter(max int, members ...string) *testAdmitter {
	a := &testAdmitter{members: map[string]bool{}, held: map[string]int{}, max: max}
	for _, m := range members {
		a.members[m] = true
	}
	return a
}

func (a *testAdmitter) Admit(ad Admission) (bool, func(), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := ad.Peer.Identifier()
	if a.max > 0 && a.held[id] >= a.max {
		return false, nil, errors.New("refused: capacity")
	}
	a.held[id]++
	var once sync.Once
	return a.members[id], func() {
		once.Do(func() {
			a.mu.Lock()
			a.held[id]--
			a.mu.Unlock()
		})
	}, nil
}

func (a *testAdmitter) setMember(id string) {
	a.mu.Lock()
	a.members[id] = true
	a.mu.Unlock()
}

func (a *testAdmitter) holding(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held[id]
}

// refreshingAuth accepts any refresh, as the control plane does a valid fresh credential.
type refreshingAuth struct{ *testAuth }

func (refreshingAuth) Refresh(routing.Peer, []byte) error { return nil }

// strangerPair is an echoPair whose listener has an Admitter that knows no members, and an
// echo at "enroll" open to strangers.
func strangerPair(t *testing.T, a *testAdmitter, timeout time.Duration) *echoPair {
	t.Helper()
	p := newEchoPair(t, nil, func(c *Config) {
		c.Admitter = a
		c.StrangerTimeout = timeout
		c.Auth = refreshingAuth{c.Auth.(*testAuth)}
	})
	if err := p.bob.r.Register("enroll", routing.NewEcho(p.bob.r, "enroll"), p.listener.StrangerFlow()); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStrangerChannelKeepsLinkCaps: a completed handshake with a peer the Admitter does not
// vouch for leaves its link's pre-authentication caps in place, and its messages reach only
// the workers opened to the listener's StrangerFlow, not those opened to its Flow.
func TestStrangerChannelKeepsLinkCaps(t *testing.T) {
	a := newTestAdmitter(0)
	p := strangerPair(t, a, time.Minute)
	if p.wire.links["bob"].auth.Load() {
		t.Fatal("a stranger's handshake lifted the responder's link caps")
	}
	denied := p.bob.r.Stats().Denied
	p.send([]byte("to a member's worker"))
	eventually(t, "message to echo denied", func() bool { return p.bob.r.Stats().Denied > denied })
	if r := p.replies.next(t); r != nil { // the router says no, as it would to anyone
		if why, ok := routing.Refusal(r); !ok || !strings.Contains(why, `no service "echo"`) {
			t.Fatalf("the denied message got %q, want the router's refusal", r.Payload())
		}
	}
	m := routing.NewMessage()
	m.Onward = routing.MustRoute(p.ch.Address(), routing.LocalAddress("enroll"))
	m.Return = routing.MustRoute(routing.LocalAddress("reply"))
	m.SetPayload([]byte("enroll me"))
	p.alice.r.Send(m)
	if r := p.replies.next(t); string(r.Payload()) != "enroll me" {
		t.Fatalf("stranger's worker replied %q", r.Payload())
	}
	if n := a.holding("alice"); n != 1 {
		t.Fatalf("admitter holds %d channels of alice, want 1", n)
	}

	// A member's handshake lifts them.
	p2 := newEchoPair(t, nil, func(c *Config) { c.Admitter = newTestAdmitter(0, "alice") })
	if !p2.wire.links["bob"].auth.Load() {
		t.Fatal("a member's handshake did not lift the responder's link caps")
	}
	if got := p2.echo(t, []byte("hi")); string(got) != "hi" {
		t.Fatalf("member's echo = %q", got)
	}
}

// TestStrangerChannelClosedAfterTimeout: a stranger's channel closes at StrangerTimeout and
// gives its admission back.
func TestStrangerChannelClosedAfterTimeout(t *testing.T) {
	a := newTestAdmitter(0)
	p := strangerPair(t, a, 200*time.Millisecond)
	select {
	case <-p.ch.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stranger's channel still open 10s after a StrangerTimeout of 200ms")
	}
	eventually(t, "admission released", func() bool { return a.holding("alice") == 0 })
	eventually(t, "channel gone from the listener", func() bool { return len(p.listener.Channels()) == 0 })
}

// TestStrangerBecomesMember: a stranger that presents fresh authentication data that makes
// it a member (a credential after enrolling) keeps its channel past StrangerTimeout, reaches
// members' workers, and its link leaves the pre-authentication caps.
func TestStrangerBecomesMember(t *testing.T) {
	a := newTestAdmitter(0)
	p := strangerPair(t, a, time.Second)
	a.setMember("alice")
	p.ch.SendRefresh([]byte("credential"))
	eventually(t, "link authenticated after the refresh", func() bool { return p.wire.links["bob"].auth.Load() })
	if got := p.echo(t, []byte("member now")); string(got) != "member now" {
		t.Fatalf("echo = %q", got)
	}
	time.Sleep(1500 * time.Millisecond) // past the StrangerTimeout
	if err := p.ch.Err(); err != nil {
		t.Fatalf("member's channel closed: %v", err)
	}
	if n := a.holding("alice"); n != 1 {
		t.Fatalf("admitter holds %d channels of alice, want 1", n)
	}
}

// TestAdmitterRefusalReachesInitiator: a channel over the Admitter's cap is not established,
// and the initiator learns why.
func TestAdmitterRefusalReachesInitiator(t *testing.T) {
	a := newTestAdmitter(1)
	p := strangerPair(t, a, time.Minute)
	_, err := p.initiate(p.alice.config(""))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "capacity") {
		t.Fatalf("second channel: err = %v, want a refusal for capacity", err)
	}
	if n := a.holding("alice"); n != 1 {
		t.Fatalf("admitter holds %d channels of alice, want 1", n)
	}
	p.ch.Close()
	eventually(t, "admission released", func() bool { return a.holding("alice") == 0 })
}

// TestStrangerHandshakeRefusedAtOnce: a stranger's handshake through its channel to a
// listener not open to strangers is refused with a reason, not left to time out.
func TestStrangerHandshakeRefusedAtOnce(t *testing.T) {
	p := strangerPair(t, newTestAdmitter(0), time.Minute)
	inner, err := Listen(p.bob.r, "members-only", p.bob.config(""), p.listener.Flow())
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	cfg := p.alice.config("")
	cfg.HandshakeTimeout = time.Minute
	start := time.Now()
	_, err = Initiate(context.Background(), p.alice.r, routing.Through(p.ch).Worker("members-only"), cfg)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "member") {
		t.Fatalf("nested handshake of a stranger: %v, want a refusal", err)
	}
	t.Logf("refused after %v", time.Since(start))
}
