package credential

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/internal/wire"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// testSigner is an in-memory Signer with a key derived from a fixed seed.
type testSigner struct{ priv ed25519.PrivateKey }

func (s testSigner) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }
func (s testSigner) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, msg), nil
}

// key returns the test signer number n; the same n always gives the same key.
func key(n int) testSigner {
	seed := sha256.Sum256(fmt.Appendf(nil, "adjacent credential test key %d", n))
	return testSigner{ed25519.NewKeyFromSeed(seed[:])}
}

// badSigner returns signatures that do not verify.
type badSigner struct{ testSigner }

func (s badSigner) Sign(msg []byte) ([]byte, error) {
	sig := ed25519.Sign(s.priv, msg)
	sig[0] ^= 1
	return sig, nil
}

// failSigner cannot sign.
type failSigner struct{ testSigner }

func (failSigner) Sign([]byte) ([]byte, error) { return nil, errors.New("vault locked") }

// shortSigner has a public key of the wrong length.
type shortSigner struct{ testSigner }

func (shortSigner) Public() ed25519.PublicKey { return make(ed25519.PublicKey, 31) }

var t0 = time.Unix(1_700_000_000, 0)

// Key numbers of the fixture.
const (
	keyAuthority = 1 // the authority's primary key
	keySigning   = 2 // its credential-signing key
	keyMember    = 3 // the member's primary key
	keyOther     = 4 // another identity's primary key
	keyStray     = 5 // a key nobody attested
)

// fixture is an authority with an attested signing key, a member, and another identity.
type fixture struct {
	authority, member, other *identity.History
	att                      *identity.Attestation
}

func newHistory(t testing.TB, n int) *identity.History {
	t.Helper()
	h, err := identity.New(key(n), t0.Add(-time.Hour))
	if err != nil {
		t.Fatalf("identity.New: %v", err)
	}
	return h
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{authority: newHistory(t, keyAuthority), member: newHistory(t, keyMember), other: newHistory(t, keyOther)}
	f.att = f.attest(t, key(keyAuthority), f.authority.Identifier(), identity.PurposeCredentialSigning, key(keySigning).Public(), t0.Add(-time.Hour), t0.Add(24*time.Hour))
	return f
}

func (f *fixture) attest(t testing.TB, by identity.Signer, subject identity.Identifier, p identity.Purpose, pub []byte, created, expires time.Time) *identity.Attestation {
	t.Helper()
	a, err := identity.Attest(by, subject, p, pub, created, expires)
	if err != nil {
		t.Fatalf("identity.Attest: %v", err)
	}
	return a
}

// trusted trusts the fixture's authority only.
func (f *fixture) trusted(id identity.Identifier) *identity.History {
	if id == f.authority.Identifier() {
		return f.authority
	}
	return nil
}

var testAttrs = map[string]string{
	"role":           "analyst",
	"project_member": "true",
	"team.name":      "Zürich – 東京 🚀",
	"e":              "",
}

func (f *fixture) issue(t testing.TB, attrs map[string]string, issued, expires time.Time) *Credential {
	t.Helper()
	c, err := Issue(key(keySigning), f.authority.Identifier(), f.member.Identifier(), attrs, issued, expires)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return c
}

func (f *fixture) bundle(t testing.TB) *Bundle {
	t.Helper()
	return &Bundle{Credential: f.issue(t, testAttrs, t0, t0.Add(time.Hour)), Attestation: f.att}
}

func TestIssueRoundTrip(t *testing.T) {
	f := newFixture(t)
	c := f.issue(t, testAttrs, t0.Add(1500*time.Millisecond), t0.Add(time.Hour))
	for _, got := range []*Credential{c, mustDecode(t, c.Encode())} {
		if got.Issuer() != f.authority.Identifier() {
			t.Errorf("Issuer() = %s, want %s", got.Issuer(), f.authority.Identifier())
		}
		if got.Subject() != f.member.Identifier() {
			t.Errorf("Subject() = %s, want %s", got.Subject(), f.member.Identifier())
		}
		if want := t0.Add(time.Second); !got.Issued().Equal(want) {
			t.Errorf("Issued() = %v, want %v (kept to the second)", got.Issued(), want)
		}
		if want := t0.Add(time.Hour); !got.Expires().Equal(want) {
			t.Errorf("Expires() = %v, want %v", got.Expires(), want)
		}
		if a := got.Attributes(); !maps.Equal(a, testAttrs) {
			t.Errorf("Attributes() = %v, want %v", a, testAttrs)
		}
	}
	if enc := mustDecode(t, c.Encode()).Encode(); !bytes.Equal(enc, c.Encode()) {
		t.Errorf("Encode(Decode(%x)) = %x", c.Encode(), enc)
	}

	b := &Bundle{Credential: c, Attestation: f.att}
	got, err := DecodeBundle(b.Encode())
	if err != nil {
		t.Fatalf("DecodeBundle: %v", err)
	}
	if !bytes.Equal(got.Encode(), b.Encode()) {
		t.Errorf("Encode(DecodeBundle(%x)) = %x", b.Encode(), got.Encode())
	}
	if err := got.Verify(f.trusted, f.member.Identifier(), t0); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestAttributesIsACopy(t *testing.T) {
	c := newFixture(t).issue(t, map[string]string{"role": "analyst"}, t0, t0.Add(time.Hour))
	c.Attributes()["role"] = "admin"
	if got := c.Attributes()["role"]; got != "analyst" {
		t.Errorf("after changing the returned map, role = %q, want analyst", got)
	}
}

func TestIssueDoesNotKeepTheCallersMap(t *testing.T) {
	attrs := map[string]string{"role": "analyst"}
	c := newFixture(t).issue(t, attrs, t0, t0.Add(time.Hour))
	attrs["role"] = "admin"
	if got := c.Attributes()["role"]; got != "analyst" {
		t.Errorf("after changing the caller's map, role = %q, want analyst", got)
	}
}

// TestLargest issues and decodes a credential with every attribute at its maximum size.
func TestLargest(t *testing.T) {
	f := newFixture(t)
	attrs := map[string]string{}
	for i := range MaxAttributes {
		k := fmt.Sprintf("k%02d", i) + strings.Repeat("x", MaxKeyLen-3)
		attrs[k] = strings.Repeat("é", MaxValueLen/2)
	}
	b := &Bundle{Credential: f.issue(t, attrs, t0, t0.Add(time.Hour)), Attestation: f.att}
	got, err := DecodeBundle(b.Encode())
	if err != nil {
		t.Fatalf("DecodeBundle of the largest bundle (%d bytes): %v", len(b.Encode()), err)
	}
	if !maps.Equal(got.Credential.Attributes(), attrs) {
		t.Errorf("attributes did not round-trip")
	}
	if err := got.Verify(f.trusted, f.member.Identifier(), t0); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestIssueRejects(t *testing.T) {
	f := newFixture(t)
	many := map[string]string{}
	for i := range MaxAttributes + 1 {
		many[fmt.Sprintf("a%d", i)] = "v"
	}
	auth, member := f.authority.Identifier(), f.member.Identifier()
	tests := []struct {
		name            string
		signer          identity.Signer
		issuer, subject identity.Identifier
		attrs           map[string]string
		issued, expires time.Time
		want            error
	}{
		{"issuer not an identifier", key(keySigning), "Ixyz", member, nil, t0, t0.Add(time.Hour), identity.ErrBadIdentifier},
		{"subject not an identifier", key(keySigning), auth, identity.Identifier(strings.ToUpper(string(member))), nil, t0, t0.Add(time.Hour), identity.ErrBadIdentifier},
		{"empty name", key(keySigning), auth, member, map[string]string{"": "v"}, t0, t0.Add(time.Hour), ErrMalformed},
		{"upper-case name", key(keySigning), auth, member, map[string]string{"Role": "v"}, t0, t0.Add(time.Hour), ErrMalformed},
		{"name starting with a digit", key(keySigning), auth, member, map[string]string{"1role": "v"}, t0, t0.Add(time.Hour), ErrMalformed},
		{"name with a space", key(keySigning), auth, member, map[string]string{"my role": "v"}, t0, t0.Add(time.Hour), ErrMalformed},
		{"non-ASCII name", key(keySigning), auth, member, map[string]string{"rôle": "v"}, t0, t0.Add(time.Hour), ErrMalformed},
		{"name of 65 bytes", key(keySigning), auth, member, map[string]string{"a" + strings.Repeat("b", 64): "v"}, t0, t0.Add(time.Hour), ErrMalformed},
		{"value of 1025 bytes", key(keySigning), auth, member, map[string]string{"a": strings.Repeat("v", 1025)}, t0, t0.Add(time.Hour), ErrMalformed},
		{"value not UTF-8", key(keySigning), auth, member, map[string]string{"a": "\xff"}, t0, t0.Add(time.Hour), ErrMalformed},
		{"33 attributes", key(keySigning), auth, member, many, t0, t0.Add(time.Hour), ErrMalformed},
		{"expires at issue", key(keySigning), auth, member, nil, t0, t0, ErrMalformed},
		{"expires before issue", key(keySigning), auth, member, nil, t0, t0.Add(-time.Second), ErrMalformed},
		{"issued before 1970", key(keySigning), auth, member, nil, time.Unix(-1, 0), t0, ErrMalformed},
		{"signer fails", failSigner{key(keySigning)}, auth, member, nil, t0, t0.Add(time.Hour), nil},
		{"signer signs badly", badSigner{key(keySigning)}, auth, member, nil, t0, t0.Add(time.Hour), ErrBadSignature},
		{"signer key of 31 bytes", shortSigner{key(keySigning)}, auth, member, nil, t0, t0.Add(time.Hour), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Issue(tt.signer, tt.issuer, tt.subject, tt.attrs, tt.issued, tt.expires)
			if err == nil {
				t.Fatalf("Issue = %x, want an error", c.Encode())
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Issue: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestIssueAcceptsLimits(t *testing.T) {
	f := newFixture(t)
	for _, attrs := range []map[string]string{
		nil,
		{},
		{"a": ""},
		{"a" + strings.Repeat("-", 63): strings.Repeat("v", 1024)},
		{"z0_.-": "ok"},
	} {
		if _, err := Issue(key(keySigning), f.authority.Identifier(), f.member.Identifier(), attrs, t0, t0.Add(time.Second)); err != nil {
			t.Errorf("Issue(%q): %v", attrs, err)
		}
	}
}

func mustDecode(t testing.TB, b []byte) *Credential {
	t.Helper()
	c, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode(%x): %v", b, err)
	}
	return c
}

// rawCredential builds a credential encoding field by field, to make encodings that Issue
// refuses to.
type rawCredential struct {
	version         byte
	issued, expires uint64
	count           int // -1: len(attrs)
	attrs           [][2]string
	trailing        []byte
}

func (r rawCredential) encode() []byte {
	b := []byte{r.version}
	b = append(b, bytes.Repeat([]byte{1}, 32)...)
	b = append(b, bytes.Repeat([]byte{2}, 32)...)
	b = wire.AppendU64(b, r.issued)
	b = wire.AppendU64(b, r.expires)
	n := r.count
	if n < 0 {
		n = len(r.attrs)
	}
	b = append(b, byte(n))
	for _, a := range r.attrs {
		b = wire.AppendString8(b, a[0])
		b = wire.AppendString16(b, a[1])
	}
	b = append(b, make([]byte, 64)...)
	return append(b, r.trailing...)
}

func TestDecodeRejects(t *testing.T) {
	ok := rawCredential{version: Version, issued: 10, expires: 20, count: -1, attrs: [][2]string{{"a", "1"}, {"b", "2"}}}
	if _, err := Decode(ok.encode()); err != nil {
		t.Fatalf("Decode of the base case: %v", err)
	}
	with := func(change func(*rawCredential)) []byte {
		r := ok
		r.attrs = append([][2]string(nil), ok.attrs...)
		change(&r)
		return r.encode()
	}
	long := rawCredential{version: Version, issued: 10, expires: 20, count: -1, attrs: [][2]string{{"a", strings.Repeat("v", 1025)}}}.encode()
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version 0", with(func(r *rawCredential) { r.version = 0 }), ErrVersion},
		{"version 2", with(func(r *rawCredential) { r.version = 2 }), ErrVersion},
		{"unsorted names", with(func(r *rawCredential) { r.attrs[0], r.attrs[1] = r.attrs[1], r.attrs[0] }), ErrMalformed},
		{"duplicate names", with(func(r *rawCredential) { r.attrs[1][0] = "a" }), ErrMalformed},
		{"bad name", with(func(r *rawCredential) { r.attrs[1][0] = "B" }), ErrMalformed},
		{"empty name", with(func(r *rawCredential) { r.attrs[0][0] = "" }), ErrMalformed},
		{"value not UTF-8", with(func(r *rawCredential) { r.attrs[0][1] = "\xc3" }), ErrMalformed},
		{"value of 1025 bytes", long, wire.ErrTooLong},
		{"name of 65 bytes", with(func(r *rawCredential) { r.attrs[1][0] = "b" + strings.Repeat("c", 64) }), wire.ErrTooLong},
		{"count 33", with(func(r *rawCredential) { r.count = 33 }), wire.ErrTooLong},
		{"count over the attributes", with(func(r *rawCredential) { r.count = 3 }), ErrMalformed},
		{"count under the attributes", with(func(r *rawCredential) { r.count = 1 }), ErrMalformed},
		{"trailing byte", with(func(r *rawCredential) { r.trailing = []byte{0} }), wire.ErrTrailing},
		{"expires before issued", with(func(r *rawCredential) { r.issued, r.expires = 20, 10 }), ErrMalformed},
		{"expires at issued", with(func(r *rawCredential) { r.expires = r.issued }), ErrMalformed},
		{"issued over int64", with(func(r *rawCredential) { r.issued = math.MaxInt64 + 1 }), ErrMalformed},
		{"expires over int64", with(func(r *rawCredential) { r.expires = math.MaxUint64 }), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("Decode(%x) = %v, %v, want %v", tt.in, c, err, tt.want)
			}
		})
	}
}

func TestDecodeBundleRejects(t *testing.T) {
	f := newFixture(t)
	b := f.bundle(t)
	cred, att := b.Credential.Encode(), b.Attestation.Encode()
	build := func(version byte, cred, att []byte) []byte {
		out := []byte{version}
		out = wire.AppendBytes16(out, cred)
		return wire.AppendBytes16(out, att)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version 3", build(3, cred, att), ErrVersion},
		{"version 2 without the issuer", build(2, cred, att), ErrMalformed},
		{"version 2 with an empty history", wire.AppendBytes16(build(2, cred, att), nil), ErrMalformed},
		{"no attestation", append([]byte{Version}, wire.AppendBytes16(nil, cred)...), ErrMalformed},
		{"trailing byte", append(build(Version, cred, att), 0), wire.ErrTrailing},
		{"bad credential", build(Version, cred[:len(cred)-1], att), ErrMalformed},
		{"bad attestation", build(Version, cred, att[:len(att)-1]), identity.ErrMalformed},
		{"swapped", build(Version, att, cred), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBundle(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("DecodeBundle(%x) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	auth, member := f.authority.Identifier(), f.member.Identifier()
	good := f.issue(t, testAttrs, t0, t0.Add(time.Hour))
	signing := key(keySigning).Public()
	otherAuthority := func(id identity.Identifier) *identity.History {
		if id == auth {
			return f.other // a callback that answers with the wrong history
		}
		return nil
	}
	strayCred, err := Issue(key(keyStray), auth, member, testAttrs, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherCred, err := Issue(key(keySigning), f.other.Identifier(), member, nil, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		cred    *Credential
		att     *identity.Attestation
		trusted func(identity.Identifier) *identity.History
		subject identity.Identifier
		now     time.Time
		want    []error // every error the result must match; nil: valid
		text    string  // a substring of the message
	}{
		{name: "valid", now: t0},
		{name: "valid, just before expiry", now: t0.Add(time.Hour - time.Second)},
		{name: "valid, issued a minute ahead", now: t0.Add(-time.Minute)},
		{
			name: "issuer not trusted", cred: otherCred, now: t0,
			want: []error{ErrUntrustedIssuer}, text: "credential issuer " + string(f.other.Identifier()) + " is not a trusted authority",
		},
		{
			name: "nothing trusted", trusted: func(identity.Identifier) *identity.History { return nil }, now: t0,
			want: []error{ErrUntrustedIssuer},
		},
		{
			name: "signing key attested by another identity",
			att:  f.attest(t, key(keyOther), f.other.Identifier(), identity.PurposeCredentialSigning, signing, t0.Add(-time.Hour), t0.Add(time.Hour)),
			now:  t0, want: []error{ErrSigningKey, identity.ErrWrongSubject}, text: "not by the issuer",
		},
		{
			name:    "trusted history is another identity's",
			trusted: otherAuthority, now: t0, want: []error{ErrSigningKey, identity.ErrWrongSubject},
		},
		{
			name: "signing key attested for the secure channel",
			att:  f.attest(t, key(keyAuthority), auth, identity.PurposeSecureChannel, signing, t0.Add(-time.Hour), t0.Add(time.Hour)),
			now:  t0, want: []error{ErrSigningKey, identity.ErrPurpose}, text: "attested for secure-channel, not credential-signing",
		},
		{
			name: "signing key attestation expired",
			att:  f.attest(t, key(keyAuthority), auth, identity.PurposeCredentialSigning, signing, t0.Add(-time.Hour), t0.Add(-time.Second)),
			now:  t0, want: []error{ErrSigningKey, identity.ErrExpired},
		},
		{
			name: "signing key attestation not yet valid",
			att:  f.attest(t, key(keyAuthority), auth, identity.PurposeCredentialSigning, signing, t0.Add(2*time.Minute), t0.Add(time.Hour)),
			now:  t0, want: []error{ErrSigningKey, identity.ErrNotYetValid},
		},
		{
			name: "signing key attestation signed by a stranger",
			att:  f.attest(t, key(keyStray), auth, identity.PurposeCredentialSigning, signing, t0.Add(-time.Hour), t0.Add(time.Hour)),
			now:  t0, want: []error{ErrSigningKey, identity.ErrBadSignature},
		},
		{
			name: "credential signed by another key than the attested one", cred: strayCred, now: t0,
			want: []error{ErrBadSignature},
		},
		{
			name: "credential for another identity", subject: f.other.Identifier(), now: t0,
			want: []error{ErrWrongSubject},
			text: "credential is for " + string(member) + ", not for the peer " + string(f.other.Identifier()),
		},
		{name: "expired at expiry", now: t0.Add(time.Hour), want: []error{ErrExpired}, text: "expired at"},
		{name: "expired after expiry", now: t0.Add(2 * time.Hour), want: []error{ErrExpired}},
		{
			name: "issued more than a minute ahead", now: t0.Add(-time.Minute - time.Second),
			want: []error{ErrNotYetValid}, text: "check the clocks",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Bundle{Credential: good, Attestation: f.att}
			if tt.cred != nil {
				b.Credential = tt.cred
			}
			if tt.att != nil {
				b.Attestation = tt.att
			}
			trusted, subject := f.trusted, member
			if tt.trusted != nil {
				trusted = tt.trusted
			}
			if tt.subject != "" {
				subject = tt.subject
			}
			err := b.Verify(trusted, subject, tt.now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify = nil, want %v", tt.want)
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("Verify = %v, want %v", err, want)
				}
			}
			for _, other := range []error{ErrUntrustedIssuer, ErrSigningKey, ErrBadSignature, ErrWrongSubject, ErrExpired, ErrNotYetValid} {
				if other != tt.want[0] && errors.Is(err, other) {
					t.Errorf("Verify = %v, which also matches %v", err, other)
				}
			}
			if msg := err.Error(); !strings.Contains(msg, tt.text) || strings.Contains(msg, "\n") {
				t.Errorf("Verify = %q, want one line containing %q", msg, tt.text)
			}
		})
	}
}

// TestVerifyAfterRotation: once the authority rotates its primary key, a signing key the old
// key attested before the rotation verifies for identity.RetiredKeyGrace, so that the
// credentials issued under it keep working until they are replaced; one the old key attested
// after the rotation never does.
func TestVerifyAfterRotation(t *testing.T) {
	f := newFixture(t)
	b := f.bundle(t)
	rotation := t0.Add(-time.Minute)
	if err := f.authority.Rotate(key(keyAuthority), key(keyStray), rotation); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(f.trusted, f.member.Identifier(), t0); err != nil {
		t.Errorf("Verify after rotation, attested before it = %v, want nil", err)
	}
	late := &Bundle{Credential: b.Credential, Attestation: f.attest(t, key(keyAuthority), f.authority.Identifier(),
		identity.PurposeCredentialSigning, key(keySigning).Public(), rotation, t0.Add(24*time.Hour))}
	if err := late.Verify(f.trusted, f.member.Identifier(), t0); !errors.Is(err, ErrSigningKey) || !errors.Is(err, identity.ErrBadSignature) {
		t.Errorf("Verify after rotation, attested by the retired key at it = %v, want %v and %v", err, ErrSigningKey, identity.ErrBadSignature)
	}
}

// TestBundleTeachesIssuerRotation: a bundle that carries its issuer's rotated history verifies
// for a peer that trusts only the history before the rotation, and survives encoding; one that
// carries a fork of the trusted history is refused.
func TestBundleTeachesIssuerRotation(t *testing.T) {
	f := newFixture(t)
	rotated := f.authority.Clone()
	if err := rotated.Rotate(key(keyAuthority), key(keyStray), t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	att := f.attest(t, key(keyStray), f.authority.Identifier(), identity.PurposeCredentialSigning, key(keySigning).Public(), t0, t0.Add(24*time.Hour))
	b := &Bundle{Credential: f.issue(t, testAttrs, t0, t0.Add(time.Hour)), Attestation: att}
	if err := b.Verify(f.trusted, f.member.Identifier(), t0); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("Verify without the issuer's history = %v, want %v", err, identity.ErrBadSignature)
	}
	b.Issuer = rotated
	d, err := DecodeBundle(b.Encode())
	if err != nil {
		t.Fatalf("DecodeBundle: %v", err)
	}
	if !bytes.Equal(d.Encode(), b.Encode()) {
		t.Fatalf("DecodeBundle(Encode()) lost the issuer's history")
	}
	if err := d.Verify(f.trusted, f.member.Identifier(), t0); err != nil {
		t.Errorf("Verify with the issuer's rotated history = %v, want nil", err)
	}
	if d.Issuer == nil || d.Issuer.Len() != 2 {
		t.Fatalf("after Verify, Issuer = %v, want the rotated history", d.Issuer)
	}
	// A history in the bundle that is not the issuer's, or does not decode, fails Verify.
	another := f.member.Clone()
	if err := another.Rotate(key(keyMember), key(keyOther), t0); err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string][]byte{"another's": another.Encode(), "truncated": rotated.Encode()[:20]} {
		bad := &Bundle{Credential: b.Credential, Attestation: att, issuerRaw: raw}
		if d, err := DecodeBundle(bad.Encode()); err != nil {
			t.Fatalf("DecodeBundle(%s history): %v", name, err)
		} else if err := d.Verify(f.trusted, f.member.Identifier(), t0); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify with %s history = %v, want %v", name, err, ErrMalformed)
		}
	}
	fork := f.authority.Clone()
	if err := fork.Rotate(key(keyAuthority), key(keyOther), t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := fork.Rotate(key(keyOther), key(keyStray), t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	trustRotated := func(identity.Identifier) *identity.History { return rotated }
	d.Issuer = fork
	if err := d.Verify(trustRotated, f.member.Identifier(), t0); !errors.Is(err, identity.ErrNotExtension) {
		t.Errorf("Verify with a forked issuer history = %v, want %v", err, identity.ErrNotExtension)
	}
}

func TestVerifyIncompleteBundle(t *testing.T) {
	f := newFixture(t)
	for _, b := range []*Bundle{{}, {Credential: f.bundle(t).Credential}, {Attestation: f.att}} {
		if err := b.Verify(f.trusted, f.member.Identifier(), t0); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%+v) = %v, want %v", b, err, ErrMalformed)
		}
	}
}

// TestTamper changes every byte of an encoded bundle in two ways; each change must make
// decoding or verification fail.
func TestTamper(t *testing.T) {
	f := newFixture(t)
	enc := f.bundle(t).Encode()
	for i := range enc {
		for _, mask := range []byte{0x01, 0xff} {
			tampered := bytes.Clone(enc)
			tampered[i] ^= mask
			b, err := DecodeBundle(tampered)
			if err != nil {
				continue
			}
			if err := b.Verify(f.trusted, f.member.Identifier(), t0); err == nil {
				t.Errorf("byte %d ^ %#x: DecodeBundle and Verify succeed, want a failure", i, mask)
			}
		}
	}
}

// TestGolden pins the bundle encoding made from fixed keys and times, so that a change to the
// encoding is noticed: credentials already issued would stop verifying.
func TestGolden(t *testing.T) {
	f := newFixture(t)
	got := hex.EncodeToString(f.bundle(t).Encode()) + "\n"
	path := filepath.Join("testdata", "bundle.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("bundle encoding:\n%s\nwant (testdata):\n%s", got, want)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(want)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeBundle(raw)
	if err != nil {
		t.Fatalf("DecodeBundle(golden): %v", err)
	}
	if err := b.Verify(f.trusted, f.member.Identifier(), t0); err != nil {
		t.Errorf("Verify(golden): %v", err)
	}
}

// TestPeerBundleCannotTeachAForkedIssuerHistory: a thief of the authority's retired key forks
// its history (the stolen key rotates to the thief's) and mints a credential under it. A
// verifier that missed the real rotation takes the fork from a bundle with Verify (a bundle
// from the hub itself), but not with VerifyWith without AdoptIssuer (any peer's), so a peer
// cannot make a member trust the thief's key.
func TestPeerBundleCannotTeachAForkedIssuerHistory(t *testing.T) {
	f := newFixture(t)
	fork := f.authority.Clone()
	if err := fork.Rotate(key(keyAuthority), key(keyStray), t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	att := f.attest(t, key(keyStray), f.authority.Identifier(), identity.PurposeCredentialSigning, key(keySigning).Public(), t0, t0.Add(24*time.Hour))
	b := &Bundle{Credential: f.issue(t, testAttrs, t0, t0.Add(time.Hour)), Attestation: att, Issuer: fork}
	d, err := DecodeBundle(b.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.VerifyWith(f.trusted, f.member.Identifier(), t0, Options{}); !errors.Is(err, ErrSigningKey) {
		t.Errorf("VerifyWith(a peer's bundle with a forked issuer history) = %v, want %v", err, ErrSigningKey)
	}
	if d.Issuer != nil {
		t.Errorf("VerifyWith without AdoptIssuer set Issuer to %v", d.Issuer)
	}
}

// TestRetiredKeyCredentialsLiveOnlyTheProjectLifetime: after the authority rotated, a
// credential under a signing key the retired key attested (backdated by a thief) verifies with
// a grace of the project's credential lifetime plus skew until that grace is over, and not for
// identity.RetiredKeyGrace.
func TestRetiredKeyCredentialsLiveOnlyTheProjectLifetime(t *testing.T) {
	f := newFixture(t)
	b := f.bundle(t)
	rotation := t0.Add(-time.Minute)
	if err := f.authority.Rotate(key(keyAuthority), key(keyStray), rotation); err != nil {
		t.Fatal(err)
	}
	grace := time.Hour + identity.MaxClockSkew
	stolen := &Bundle{Credential: f.issue(t, testAttrs, rotation, rotation.Add(48*time.Hour)), Attestation: b.Attestation}
	if err := stolen.VerifyWith(f.trusted, f.member.Identifier(), rotation.Add(grace-time.Second), Options{RetiredKeyGrace: grace}); err != nil {
		t.Errorf("VerifyWith(within the grace) = %v, want nil", err)
	}
	if err := stolen.VerifyWith(f.trusted, f.member.Identifier(), rotation.Add(grace), Options{RetiredKeyGrace: grace}); !errors.Is(err, identity.ErrRetiredKey) {
		t.Errorf("VerifyWith(grace over) = %v, want %v", err, identity.ErrRetiredKey)
	}
}
