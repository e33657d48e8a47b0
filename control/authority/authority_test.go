package authority_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/authority/sqlitestore"
	"github.com/adjacentnet/adjacent/control/authority/storetest"
	"github.com/adjacentnet/adjacent/control/event"
	"github.com/adjacentnet/adjacent/control/identity"
)

type signer struct{ priv ed25519.PrivateKey }

func (s signer) Public() ed25519.PublicKey       { return s.priv.Public().(ed25519.PublicKey) }
func (s signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }
func newSigner(seed string) signer {
	h := sha256.Sum256([]byte(seed))
	return signer{ed25519.NewKeyFromSeed(h[:])}
}

// TestRevokeIsStoredAndAnnounced: a revocation lasts past the deleted member's last
// credential, survives a new Authority on the same store (a hub restart), and is announced as
// an event that members of the project verify.
func TestRevokeIsStoredAndAnnounced(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	clock := func() time.Time { return now }
	idKey, signKey := newSigner("identity"), newSigner("signing")
	h, err := identity.New(idKey, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	att, err := identity.Attest(idKey, h.Identifier(), identity.PurposeCredentialSigning, signKey.Public(), now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "authority.db")
	open := func() *authority.Authority {
		s, err := sqlitestore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		a, err := authority.New(authority.Config{Project: "acme", Identity: h, Signer: signKey, Attested: att, Store: s, Lifetime: 10 * time.Minute, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := open()
	member := storetest.ID(1)
	if err := a.AddMember(t.Context(), h.Identifier(), member, nil, false); err != nil {
		t.Fatal(err)
	}
	b, err := a.Issue(t.Context(), member)
	if err != nil {
		t.Fatal(err)
	}
	r, ok, err := a.Revoke(t.Context(), member)
	if !ok || err != nil {
		t.Fatalf("Revoke = %v, %v", ok, err)
	}
	if !r.Until.After(b.Credential.Expires()) {
		t.Errorf("revoked until %v, not after the member's credential expires at %v", r.Until, b.Credential.Expires())
	}
	if _, ok, err := a.Revoke(t.Context(), member); ok || err != nil {
		t.Errorf("Revoke of a non-member = %v, %v, want false, nil", ok, err)
	}
	if _, err := a.Issue(t.Context(), member); err == nil {
		t.Errorf("Issue to a revoked member succeeded")
	}

	rs, err := open().Revocations(t.Context())
	if err != nil || len(rs) != 1 || rs[0].Identifier != member || !rs[0].Until.Equal(r.Until) {
		t.Fatalf("Revocations after reopening = %+v, %v, want %+v", rs, err, r)
	}

	s, err := a.Announce(r)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := event.Decode(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dec.Verify(h, "acme", now)
	if err != nil || ev.Kind != event.KindRevoked || ev.Subject != member || !ev.Until.Equal(r.Until) {
		t.Errorf("Verify of the announced revocation = %+v, %v", ev, err)
	}
	if _, err := dec.Verify(h, "other", now); !errors.Is(err, event.ErrOtherProject) {
		t.Errorf("Verify for another project = %v, want %v", err, event.ErrOtherProject)
	}
}
