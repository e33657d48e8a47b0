package trust

import (
	"errors"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/identity"
)

// histories is a verifier's memory of identity histories, as a node keeps it.
type histories map[identity.Identifier]*identity.History

func (hs histories) known(id identity.Identifier) *identity.History { return hs[id] }
func (hs histories) learn(h *identity.History)                      { hs[h.Identifier()] = h }

// rotate returns p after a rotation of its primary key to the one from seed at when, with
// its static key attested again by the new key.
func (p *party) rotate(t *testing.T, seed byte, when time.Time) *party {
	t.Helper()
	next := signer{privFromSeed(seed)}
	h := p.self.History.Clone()
	if err := h.Rotate(p.signer, next, when); err != nil {
		t.Fatal(err)
	}
	att, err := identity.Attest(next, h.Identifier(), identity.PurposeSecureChannel, p.static.Public, when, when.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &party{self: Self{History: h, Attestation: att}, static: p.static, signer: next}
}

// TestPeerRotationNeverRolledBack: a verifier accepts a peer's longer history under its
// unchanged identifier and remembers it; from then on the older history (what a thief of the
// retired key would present), a fork, and the rotated history with a static key attested by
// the retired key are all refused.
func TestPeerRotationNeverRolledBack(t *testing.T) {
	auth := newAuthority(t, 10)
	alice, bob := newParty(t, 1), newParty(t, 2)
	rotated := alice.rotate(t, 3, now.Add(-time.Minute))
	forked := alice.rotate(t, 4, now.Add(-time.Minute))
	id := alice.self.History.Identifier()
	cred := auth.issue(t, id, map[string]string{"project_member": "true"}, now.Add(-time.Hour), now.Add(time.Hour))
	known := histories{}
	verifier := New(Config{Self: bob.self, Authority: auth.trusts, RequireCredential: true, Known: known.known, Learn: known.learn,
		Now: func() time.Time { return now }})
	present := func(p *party, att *identity.Attestation) error {
		self := p.self
		if att != nil {
			self.Attestation = att
		}
		payload, err := New(Config{Self: self, Credentials: func() []*credential.Bundle { return []*credential.Bundle{cred} }}).Payload()
		if err != nil {
			t.Fatal(err)
		}
		peer, err := verifier.Authenticate(payload, p.static.Public)
		if err == nil && peer.Identifier() != string(id) {
			t.Fatalf("peer %s, want %s", peer.Identifier(), id)
		}
		return err
	}
	if err := present(alice, nil); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}
	if err := present(rotated, nil); err != nil {
		t.Fatalf("the rotated history: %v", err)
	}
	if h := known[id]; h == nil || h.Len() != 2 {
		t.Fatalf("known history after the rotation = %v, want the rotated one", h)
	}
	if err := present(rotated, nil); err != nil {
		t.Fatalf("the rotated history again: %v", err)
	}
	retiredAfter, err := identity.Attest(alice.signer, id, identity.PurposeSecureChannel, alice.static.Public, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    *party
		att  *identity.Attestation
		want error
	}{
		{"the history before the rotation", alice, nil, identity.ErrNotExtension},
		{"a fork", forked, nil, identity.ErrNotExtension},
		{"static key attested by the retired key before the rotation", rotated, alice.self.Attestation, identity.ErrBadSignature},
		{"static key attested by the retired key after the rotation", rotated, retiredAfter, identity.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := present(tt.p, tt.att); !errors.Is(err, tt.want) {
				t.Errorf("Authenticate = %v, want %v", err, tt.want)
			}
		})
	}
	if h := known[id]; h.Len() != 2 {
		t.Errorf("known history after refusals has %d changes, want 2", h.Len())
	}
}

// TestAuthorityRotationLearnedFromCredentials: on a member's channel to its hub
// (AuthorityChannel), a verifier that trusts the authority's history from before its rotation
// accepts a credential signed under the re-attested signing key when
// the bundle carries the authority's new history, learns that history, and keeps accepting
// credentials issued before the rotation.
func TestAuthorityRotationLearnedFromCredentials(t *testing.T) {
	auth := newAuthority(t, 10)
	alice, bob := newParty(t, 1), newParty(t, 2)
	aliceID := alice.self.History.Identifier()
	member := map[string]string{"project_member": "true"}
	before := auth.issue(t, aliceID, member, now.Add(-time.Hour), now.Add(time.Hour))

	// The authority rotates and attests its signing key again.
	newKey := signer{privFromSeed(12)}
	rotated := auth.self.History.Clone()
	if err := rotated.Rotate(auth.signer, newKey, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	att, err := identity.Attest(newKey, rotated.Identifier(), identity.PurposeCredentialSigning, auth.signing.Public(), now.Add(-time.Minute), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c, err := credential.Issue(auth.signing, rotated.Identifier(), aliceID, member, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	after := &credential.Bundle{Credential: c, Attestation: att, Issuer: rotated}

	known := histories{auth.self.History.Identifier(): auth.self.History}
	verifier := New(Config{Self: bob.self, Authority: known.known, RequireCredential: true, Learn: known.learn, Known: known.known,
		AuthorityChannel: true, Now: func() time.Time { return now }})
	payload, _ := New(Config{Self: alice.self, Credentials: func() []*credential.Bundle { return []*credential.Bundle{before} }}).Payload()
	p, err := verifier.Authenticate(payload, alice.static.Public)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.Refresh(p, after.Encode()); err != nil {
		t.Fatalf("Refresh with the credential signed after the authority's rotation: %v", err)
	}
	if h := known[rotated.Identifier()]; h.Len() != 2 {
		t.Fatalf("the authority's known history has %d changes, want 2", h.Len())
	}
	// Issued before the rotation, still valid for the grace: the member has not refreshed yet.
	if err := verifier.Refresh(p, before.Encode()); err != nil {
		t.Fatalf("Refresh with a credential from before the rotation: %v", err)
	}
	// Without the authority's history in the bundle, a verifier that knows only the old one
	// cannot check the new signing key.
	stale := New(Config{Self: bob.self, Authority: auth.trusts, Now: func() time.Time { return now }})
	p2, _ := stale.Authenticate(payload, alice.static.Public)
	bare := &credential.Bundle{Credential: c, Attestation: att}
	if err := stale.Refresh(p2, bare.Encode()); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("Refresh without the authority's history = %v, want %v", err, identity.ErrBadSignature)
	}
}

// TestForkedAuthorityHistoryNotLearnedFromPeers: a thief of the authority's retired primary
// key forks its history (the stolen key rotates to the thief's) and hands a member a
// credential signed under a key the fork attests. A verifier that missed the real rotation
// neither accepts that credential from a peer nor learns the fork; only bundles on its
// channel to the hub teach it the authority's rotation.
func TestForkedAuthorityHistoryNotLearnedFromPeers(t *testing.T) {
	auth := newAuthority(t, 10)
	alice, bob := newParty(t, 1), newParty(t, 2)
	aliceID := alice.self.History.Identifier()
	member := map[string]string{"project_member": "true"}
	thief := signer{privFromSeed(13)}
	fork := auth.self.History.Clone()
	if err := fork.Rotate(auth.signer, thief, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	att, err := identity.Attest(thief, fork.Identifier(), identity.PurposeCredentialSigning, auth.signing.Public(), now.Add(-time.Minute), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c, err := credential.Issue(auth.signing, fork.Identifier(), aliceID, member, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	forged := &credential.Bundle{Credential: c, Attestation: att, Issuer: fork}
	known := histories{auth.self.History.Identifier(): auth.self.History}
	verifier := New(Config{Self: bob.self, Authority: known.known, RequireCredential: true, Learn: known.learn, Known: known.known,
		Now: func() time.Time { return now }})
	payload, _ := New(Config{Self: alice.self, Credentials: func() []*credential.Bundle { return []*credential.Bundle{forged} }}).Payload()
	if _, err := verifier.Authenticate(payload, alice.static.Public); err == nil {
		t.Errorf("Authenticate with a credential under a forked authority history from a peer succeeded")
	}
	if h := known[fork.Identifier()]; h.Len() != 1 {
		t.Errorf("the verifier learned the authority history of %d changes from a peer, want it kept at 1", h.Len())
	}
}
