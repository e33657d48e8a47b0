package authority

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/identity"
)

type testSigner struct{ priv ed25519.PrivateKey }

func (s testSigner) Public() ed25519.PublicKey       { return s.priv.Public().(ed25519.PublicKey) }
func (s testSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

func key(n int) testSigner {
	seed := sha256.Sum256(fmt.Appendf(nil, "adjacent authority test key %d", n))
	return testSigner{ed25519.NewKeyFromSeed(seed[:])}
}

// TestReattestSignsUnderTheNewKeys: after Reattest, the authority signs with the new
// credential-signing key and hands out its attestation and the rotated history, which a
// verifier knowing only the history before the rotation accepts; what it issued before stays
// valid.
func TestReattestSignsUnderTheNewKeys(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h, err := identity.New(key(1), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	att, err := identity.Attest(key(1), h.Identifier(), identity.PurposeCredentialSigning, key(2).Public(), now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clock := now
	a, err := New(Config{Project: "acme", Identity: h, Signer: key(2), Attested: att, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	last, err := credential.Issue(key(2), h.Identifier(), h.Identifier(), map[string]string{"admin": "true"}, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	before, err := a.RenewOwn(last)
	if err != nil {
		t.Fatal(err)
	}
	if before.Issuer != nil {
		t.Fatalf("a bundle before any rotation carries a history of %d changes", before.Issuer.Len())
	}

	clock = now.Add(time.Minute)
	rotated := h.Clone()
	if err := rotated.Rotate(key(1), key(3), clock); err != nil {
		t.Fatal(err)
	}
	newAtt, err := identity.Attest(key(3), h.Identifier(), identity.PurposeCredentialSigning, key(4).Public(), clock, clock.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a.Reattest(rotated, key(4), newAtt)
	after, err := a.RenewOwn(last)
	if err != nil {
		t.Fatal(err)
	}
	if after.Issuer == nil || after.Issuer.Len() != 2 || after.Attestation != newAtt {
		t.Fatalf("after Reattest: issuer history %v, attestation %v; want the rotated history and the new attestation", after.Issuer, after.Attestation)
	}
	trustOld := func(identity.Identifier) *identity.History { return h }
	trustNew := func(identity.Identifier) *identity.History { return rotated }
	for name, b := range map[string]*credential.Bundle{"issued before": before, "issued after": after} {
		d, err := credential.DecodeBundle(b.Encode())
		if err != nil {
			t.Fatal(err)
		}
		for trusted, f := range map[string]func(identity.Identifier) *identity.History{"old history": trustOld, "new history": trustNew} {
			if err := d.Verify(f, h.Identifier(), clock); err != nil {
				t.Errorf("%s, verified knowing the %s: %v", name, trusted, err)
			}
		}
	}
}
