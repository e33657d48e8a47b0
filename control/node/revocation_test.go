package node

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/event"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/vault"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// testKeys makes Ed25519 keys in a vault of the test's own.
func testKeys(t *testing.T) func() *vault.Ed25519Key {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vault")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	n := 0
	return func() *vault.Ed25519Key {
		n++
		k, err := v.GenerateEd25519(fmt.Sprintf("k%d", n))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
}

// testAuthority signs control events for project "acme" as its authority would.
type testAuthority struct {
	history *identity.History
	signer  *vault.Ed25519Key
	att     *identity.Attestation
}

func newTestAuthority(t *testing.T, key func() *vault.Ed25519Key, now time.Time) testAuthority {
	t.Helper()
	primary := key()
	h, err := identity.New(primary, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a := testAuthority{history: h, signer: key()}
	a.att, err = identity.Attest(primary, h.Identifier(), identity.PurposeCredentialSigning, a.signer.Public(), now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (a testAuthority) event(t *testing.T, e event.Event) *routing.Message {
	t.Helper()
	s, err := event.Sign(a.signer, a.att, a.history.Identifier(), e)
	if err != nil {
		t.Fatal(err)
	}
	m := routing.NewMessage()
	m.SetPayload(s.Encode())
	return m
}

func testMember(n int) identity.Identifier {
	return identity.Identifier(fmt.Sprintf("I%x", sha256.Sum256(fmt.Appendf(nil, "member %d", n))))
}

// TestRevocationsActOnlyOnTheAuthoritysEvents: a member acts on the revocations and the
// attribute changes its project's authority signed, and drops and counts the rest: a
// forger's, relayed ones, those about itself, and those past its budget of checks.
func TestRevocationsActOnlyOnTheAuthoritysEvents(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	key := testKeys(t)
	auth := newTestAuthority(t, key, now)
	forger := newTestAuthority(t, key, now)
	self := testMember(0)
	p := &project{name: "acme", authority: auth.history}
	ms := &membership{now: func() time.Time { return now }}
	ms.Store(p)
	refreshed := make(chan *project, 1)
	r := newRevocations(revocationsConfig{
		Project: ms, Self: self,
		Channels: func() []*securechannel.Channel { return nil },
		Send:     func(*routing.Message) {},
		Refresh:  func(p *project) { refreshed <- p },
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      func() time.Time { return now },
	})
	defer r.stop()
	revoke := func(id identity.Identifier) event.Event {
		return event.Event{Project: "acme", Kind: event.KindRevoked, Subject: id, Issued: now, Until: now.Add(time.Hour)}
	}

	r.handleEvent(forger.event(t, revoke(testMember(1))))
	if _, ok := p.revoked.Load(testMember(1)); ok || r.events.Load() != 1 {
		t.Fatalf("a forged revocation: revoked %v, dropped %d; want not revoked, 1 dropped", ok, r.events.Load())
	}

	relayed := auth.event(t, revoke(testMember(1)))
	relayed.Return = routing.MustRoute(routing.LocalAddress("ch"), routing.LocalAddress(relayPrefix+"x"))
	r.handleEvent(relayed)
	if _, ok := p.revoked.Load(testMember(1)); ok || r.events.Load() != 2 {
		t.Fatalf("a relayed revocation: revoked %v, dropped %d; want not revoked, 2 dropped", ok, r.events.Load())
	}

	r.handleEvent(auth.event(t, revoke(self)))
	r.handleEvent(auth.event(t, revoke(testMember(1))))
	deadline := time.Now().Add(10 * time.Second)
	for !ms.isRevoked(testMember(1)) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // enforce runs on its own goroutine
	}
	if !ms.isRevoked(testMember(1)) || ms.isRevoked(self) {
		t.Fatalf("after the authority's revocations: member revoked %v, self revoked %v; want true, false", ms.isRevoked(testMember(1)), ms.isRevoked(self))
	}

	r.handleEvent(auth.event(t, event.Event{Project: "acme", Kind: event.KindAttributes, Subject: self, Issued: now, Until: now.Add(time.Minute)}))
	select {
	case got := <-refreshed:
		if got != p {
			t.Errorf("refreshed project %v, want the node's", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an attribute change about this node did not refresh its credential")
	}

	late := auth.event(t, revoke(testMember(2)))
	r.clock = func() time.Time { return now } // the budget is not topped up meanwhile
	for r.mayVerifyEvent() {
	}
	dropped := r.events.Load()
	r.handleEvent(late)
	if ms.isRevoked(testMember(2)) || r.events.Load() != dropped+1 {
		t.Errorf("past the budget of checks: revoked %v, dropped %d more; want not revoked, 1", ms.isRevoked(testMember(2)), r.events.Load()-dropped)
	}
}

// TestMembershipRevokedUntil: a revocation holds until its end, and a node outside a
// project revokes no one.
func TestMembershipRevokedUntil(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ms := &membership{now: func() time.Time { return now }}
	if ms.isRevoked(testMember(1)) {
		t.Fatal("a node outside a project revoked a member")
	}
	p := &project{name: "acme"}
	ms.Store(p)
	p.revoked.Store(testMember(1), now.Add(time.Minute))
	if !ms.isRevoked(testMember(1)) || ms.isRevoked(testMember(2)) {
		t.Errorf("isRevoked = %v, %v; want true for the revoked member only", ms.isRevoked(testMember(1)), ms.isRevoked(testMember(2)))
	}
	now = now.Add(time.Minute)
	if ms.isRevoked(testMember(1)) {
		t.Error("a revocation held past its end")
	}
	if got := ms.retiredKeyGrace(); got != identity.RetiredKeyGrace {
		t.Errorf("retiredKeyGrace without a credential = %v, want %v", got, identity.RetiredKeyGrace)
	}
}
