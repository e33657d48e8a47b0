package event

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
)

type testSigner struct{ priv ed25519.PrivateKey }

func (s testSigner) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }
func (s testSigner) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, msg), nil
}

func key(n int) testSigner {
	seed := sha256.Sum256(fmt.Appendf(nil, "adjacent event test key %d", n))
	return testSigner{ed25519.NewKeyFromSeed(seed[:])}
}

var t0 = time.Unix(1_700_000_000, 0)

// authority is a project authority for the tests: its identity, and its credential-signing
// key with the attestation of it.
type authority struct {
	history *identity.History
	signer  testSigner
	att     *identity.Attestation
}

// newAuthority makes the authority whose identity key is key(n) and signing key key(n+1).
func newAuthority(t testing.TB, n int) authority {
	t.Helper()
	h, err := identity.New(key(n), t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a := authority{history: h, signer: key(n + 1)}
	a.att, err = identity.Attest(key(n), h.Identifier(), identity.PurposeCredentialSigning, a.signer.Public(), t0.Add(-time.Hour), t0.Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func subject(n int) identity.Identifier {
	return identity.Identifier(fmt.Sprintf("I%x", sha256.Sum256(fmt.Appendf(nil, "subject %d", n))))
}

func revocation() Event {
	return Event{Project: "acme", Kind: KindRevoked, Subject: subject(1), Issued: t0, Until: t0.Add(time.Hour)}
}

func (a authority) sign(t testing.TB, e Event) []byte {
	t.Helper()
	s, err := Sign(a.signer, a.att, a.history.Identifier(), e)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return s.Encode()
}

func verify(b []byte, a authority, project string, now time.Time) (Event, error) {
	s, err := Decode(b)
	if err != nil {
		return Event{}, err
	}
	return s.Verify(a.history, project, now)
}

func TestSignVerify(t *testing.T) {
	a := newAuthority(t, 1)
	want := revocation()
	got, err := verify(a.sign(t, want), a, "acme", t0.Add(time.Second))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.Project != want.Project || got.Kind != want.Kind || got.Subject != want.Subject || !got.Issued.Equal(want.Issued) || !got.Until.Equal(want.Until) {
		t.Errorf("Verify = %+v, want %+v", got, want)
	}
}

// TestVerifyRefuses: what a member must drop, and why.
func TestVerifyRefuses(t *testing.T) {
	a, other := newAuthority(t, 1), newAuthority(t, 10)
	good := a.sign(t, revocation())

	// The authority's identity with another key's attestation: a member of another project,
	// say, that signs with its own authority's key and claims to be ours.
	mixed, err := Sign(other.signer, other.att, other.history.Identifier(), revocation())
	if err != nil {
		t.Fatal(err)
	}
	forgedIssuer := mixed.Encode()
	copy(forgedIssuer[2+1+len("acme"):], hashOf(a.history.Identifier()))

	// A key the authority's identity attested for the channel, not for credentials.
	chanAtt, err := identity.Attest(key(1), a.history.Identifier(), identity.PurposeSecureChannel, make([]byte, 32), t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wrongPurpose := replaceAttestation(t, good, chanAtt)
	// A credential-signing key attested by another identity, put in the authority's event.
	wrongAttester := replaceAttestation(t, good, other.att)

	// A key whose attestation expired a minute before the event.
	shortAtt, err := identity.Attest(key(1), a.history.Identifier(), identity.PurposeCredentialSigning, a.signer.Public(), t0.Add(-time.Hour), t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	late := revocation()
	late.Issued = t0.Add(2 * time.Minute)
	late.Until = late.Issued.Add(time.Hour)
	expiredKey := authority{history: a.history, signer: a.signer, att: shortAtt}.sign(t, late)

	otherProject := revocation()
	otherProject.Project = "other"

	tests := []struct {
		name string
		data []byte
		now  time.Time
		want error
	}{
		{"signed by another authority", other.sign(t, revocation()), t0, ErrUntrustedIssuer},
		{"another authority's event relabelled with our issuer", forgedIssuer, t0, ErrSigningKey},
		{"signing key attested for another purpose", wrongPurpose, t0, ErrSigningKey},
		{"signing key attested by another identity", wrongAttester, t0, ErrSigningKey},
		{"another project", a.sign(t, otherProject), t0, ErrOtherProject},
		{"stale", good, t0.Add(MaxAge + time.Second), ErrStale},
		{"from the future", good, t0.Add(-MaxClockSkew - time.Second), ErrStale},
		{"signing key's attestation expired", expiredKey, t0.Add(2 * time.Minute), ErrSigningKey},
		{"unsigned JSON of the old format", []byte(`{"revoked":"` + string(a.history.Identifier()) + `"}`), t0, ErrVersion},
		{"empty", nil, t0, ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), t0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verify(tt.data, a, "acme", tt.now)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
	// Any change to any bit of a signed event is refused.
	for i := range good {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(good)
			b[i] ^= bit
			if got, err := verify(b, a, "acme", t0); err == nil {
				t.Fatalf("Verify of the event with byte %d ^ %#x = %+v, want an error", i, bit, got)
			}
		}
	}
}

func TestSignRefuses(t *testing.T) {
	a, other := newAuthority(t, 1), newAuthority(t, 10)
	bad := func(f func(*Event)) Event { e := revocation(); f(&e); return e }
	tests := []struct {
		name   string
		signer identity.Signer
		att    *identity.Attestation
		ev     Event
		want   error
	}{
		{"a key the attestation does not cover", other.signer, a.att, revocation(), ErrSigningKey},
		{"no attestation", a.signer, nil, revocation(), ErrMalformed},
		{"unknown kind", a.signer, a.att, bad(func(e *Event) { e.Kind = 7 }), ErrMalformed},
		{"until before issued", a.signer, a.att, bad(func(e *Event) { e.Until = e.Issued }), ErrMalformed},
		{"until too far", a.signer, a.att, bad(func(e *Event) { e.Until = e.Issued.Add(MaxRevocation + time.Second) }), ErrMalformed},
		{"bad project name", a.signer, a.att, bad(func(e *Event) { e.Project = "Acme!" }), ErrMalformed},
		{"bad subject", a.signer, a.att, bad(func(e *Event) { e.Subject = "alice" }), identity.ErrBadIdentifier},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Sign(tt.signer, tt.att, a.history.Identifier(), tt.ev); !errors.Is(err, tt.want) {
				t.Errorf("Sign = %v, want %v", err, tt.want)
			}
		})
	}
}

func hashOf(id identity.Identifier) []byte {
	h, err := id.Hash()
	if err != nil {
		panic(err)
	}
	return h[:]
}

// replaceAttestation returns the signed event b with its attestation replaced (and the
// signature left as it was).
func replaceAttestation(t *testing.T, b []byte, att *identity.Attestation) []byte {
	t.Helper()
	s, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	s.attestation = att
	return s.Encode()
}

// BenchmarkDrop is what a member spends on an event before acting on it or dropping it:
// the cost a flood of forged events through a relay imposes.
func BenchmarkDrop(b *testing.B) {
	a := newAuthority(b, 1)
	good := a.sign(b, revocation())
	badSig := bytes.Clone(good)
	badSig[len(badSig)-1] ^= 1
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"event=old-json", []byte(`{"revoked":"I` + strings.Repeat("0", 64) + `"}`)},
		{"event=stale", good},
		{"event=bad-signature", badSig},
		{"event=valid", good},
	} {
		b.Run(bc.name, func(b *testing.B) {
			now := t0
			if bc.name == "event=stale" {
				now = t0.Add(time.Hour)
			}
			b.ReportAllocs()
			for b.Loop() {
				if s, err := Decode(bc.data); err == nil {
					s.Verify(a.history, "acme", now)
				}
			}
		})
	}
}

// TestRetiredKeyEventsRefusedAfterTheProjectGrace: after the authority rotated, a thief of the
// retired primary key signs a revocation under a signing key that key attested before the
// rotation. With the project's grace (credential lifetime plus skew) it is refused once the
// grace is over, where Verify's RetiredKeyGrace would take it for 7 days.
func TestRetiredKeyEventsRefusedAfterTheProjectGrace(t *testing.T) {
	a := newAuthority(t, 1)
	rotation := t0.Add(-30 * time.Minute)
	if err := a.history.Rotate(key(1), key(9), rotation); err != nil {
		t.Fatal(err)
	}
	grace := time.Hour + identity.MaxClockSkew
	for _, tt := range []struct {
		now  time.Time
		want error
	}{{rotation.Add(grace - time.Minute), nil}, {rotation.Add(grace + time.Minute), identity.ErrRetiredKey}} {
		e := revocation()
		e.Issued, e.Until = tt.now, tt.now.Add(time.Hour)
		s, err := Decode(a.sign(t, e))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifyWithin(a.history, "acme", tt.now, grace); tt.want == nil && err != nil || !errors.Is(err, tt.want) {
			t.Errorf("VerifyWithin(now rotation+%v) = %v, want %v", tt.now.Sub(rotation), err, tt.want)
		}
	}
}
