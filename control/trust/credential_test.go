package trust

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/routing"
)

// authorityParty is a party whose credential-signing key is attested, so it can issue.
type authorityParty struct {
	*party
	signing signer
	att     *identity.Attestation
}

func newAuthority(t *testing.T, seed byte) *authorityParty {
	t.Helper()
	p := newParty(t, seed)
	k := signer{privFromSeed(seed + 100)}
	att, err := identity.Attest(p.signer, p.self.History.Identifier(), identity.PurposeCredentialSigning, k.Public(), now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &authorityParty{party: p, signing: k, att: att}
}

func (a *authorityParty) issue(t *testing.T, subject identity.Identifier, attrs map[string]string, issued, expires time.Time) *credential.Bundle {
	t.Helper()
	c, err := credential.Issue(a.signing, a.self.History.Identifier(), subject, attrs, issued, expires)
	if err != nil {
		t.Fatal(err)
	}
	return &credential.Bundle{Credential: c, Attestation: a.att}
}

func (a *authorityParty) trusts(id identity.Identifier) *identity.History {
	if id == a.self.History.Identifier() {
		return a.self.History
	}
	return nil
}

// TestCredentialRejections: each way a credential can be wrong refuses a channel that
// requires one, with a reason that says which.
func TestCredentialRejections(t *testing.T) {
	auth, rogue := newAuthority(t, 10), newAuthority(t, 11)
	alice, bob := newParty(t, 1), newParty(t, 2)
	aliceID := alice.self.History.Identifier()
	member := map[string]string{"project_member": "true"}
	tests := []struct {
		name  string
		cred  *credential.Bundle
		want  error
		words string
	}{
		{"expired", auth.issue(t, aliceID, member, now.Add(-2*time.Hour), now.Add(-time.Hour)), credential.ErrExpired, "expired"},
		{"issued in the future", auth.issue(t, aliceID, member, now.Add(10*time.Minute), now.Add(time.Hour)), credential.ErrNotYetValid, "check the clocks"},
		{"untrusted issuer", rogue.issue(t, aliceID, member, now, now.Add(time.Hour)), credential.ErrUntrustedIssuer, "not a trusted authority"},
		{"subject not the peer", auth.issue(t, bob.self.History.Identifier(), member, now, now.Add(time.Hour)), credential.ErrWrongSubject, "not for the peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			presenter := New(Config{Self: alice.self, Credentials: func() []*credential.Bundle { return []*credential.Bundle{tt.cred} }})
			payload, err := presenter.Payload()
			if err != nil {
				t.Fatal(err)
			}
			verifier := New(Config{Self: bob.self, Authority: auth.trusts, RequireCredential: true, Now: func() time.Time { return now }})
			_, err = verifier.Authenticate(payload, alice.static.Public)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.words) {
				t.Fatalf("Authenticate = %v, want %v mentioning %q", err, tt.want, tt.words)
			}
		})
	}
}

func TestCredentialAttributesAndRefresh(t *testing.T) {
	auth := newAuthority(t, 10)
	alice, bob := newParty(t, 1), newParty(t, 2)
	aliceID := alice.self.History.Identifier()
	first := auth.issue(t, aliceID, map[string]string{"project_member": "true", "role": "analyst"}, now, now.Add(time.Hour))
	presenter := New(Config{Self: alice.self, Credentials: func() []*credential.Bundle { return []*credential.Bundle{first} }})
	payload, _ := presenter.Payload()
	clock := now
	var refreshed []routing.Peer // what the node re-checks policies for
	verifier := New(Config{Self: bob.self, Authority: auth.trusts, RequireCredential: true, Now: func() time.Time { return clock },
		Refreshed: func(p routing.Peer) { refreshed = append(refreshed, p) }})
	p, err := verifier.Authenticate(payload, alice.static.Public)
	if err != nil {
		t.Fatal(err)
	}
	peer := p.(*Peer)
	if a := peer.Attributes(); a["role"] != "analyst" || a["identifier"] != string(aliceID) {
		t.Fatalf("attributes = %v", a)
	}
	if !peer.Expires().Equal(now.Add(time.Hour)) {
		t.Fatalf("Expires = %v", peer.Expires())
	}
	// A refreshed credential moves the expiry and may change attributes.
	clock = now.Add(40 * time.Minute)
	second := auth.issue(t, aliceID, map[string]string{"project_member": "true", "role": "lead"}, clock, clock.Add(time.Hour))
	if err := verifier.Refresh(peer, second.Encode()); err != nil {
		t.Fatal(err)
	}
	if peer.Attributes()["role"] != "lead" || !peer.Expires().Equal(clock.Add(time.Hour)) {
		t.Fatalf("after refresh: %v, expires %v", peer.Attributes(), peer.Expires())
	}
	if len(refreshed) != 1 || refreshed[0] != routing.Peer(peer) {
		t.Fatalf("Refreshed was told of %v, want the peer once", refreshed)
	}
	// Someone else's credential is no refresh.
	other := auth.issue(t, bob.self.History.Identifier(), map[string]string{"project_member": "true"}, clock, clock.Add(time.Hour))
	if err := verifier.Refresh(peer, other.Encode()); !errors.Is(err, credential.ErrWrongSubject) {
		t.Fatalf("refresh with another subject's credential = %v", err)
	}
	if len(refreshed) != 1 {
		t.Fatalf("Refreshed was told of a refused refresh")
	}
	// Without RequireCredential, a peer with no credential is accepted, with its identifier only.
	lenient := New(Config{Self: bob.self, Authority: auth.trusts, Now: func() time.Time { return now }})
	p, err = lenient.Authenticate(alice.payload(t), alice.static.Public)
	if err != nil || len(p.(*Peer).Attributes()) != 1 {
		t.Fatalf("lenient Authenticate = %v, %v", p, err)
	}
	if _, err := verifier.Authenticate(alice.payload(t), alice.static.Public); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("no credential where one is required = %v", err)
	}
	revoking := New(Config{Self: bob.self, Authority: auth.trusts, Revoked: func(id identity.Identifier) bool { return id == aliceID }, Now: func() time.Time { return now }})
	if _, err := revoking.Authenticate(payload, alice.static.Public); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked peer = %v", err)
	}
}
