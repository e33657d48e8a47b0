package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/wire"
)

var staticKey = bytes.Repeat([]byte{0x42}, 32)

func attest(t testing.TB, h *History, signer Signer, created, expires time.Time) *Attestation {
	t.Helper()
	a, err := Attest(signer, h.Identifier(), PurposeSecureChannel, staticKey, created, expires)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	return a
}

func TestAttestation(t *testing.T) {
	h := newHistory(t, 1)
	a := attest(t, h, key(1), t0, t0.Add(time.Hour))
	if a.Subject() != h.Identifier() || a.Purpose() != PurposeSecureChannel ||
		!bytes.Equal(a.PublicKey(), staticKey) || !a.Created().Equal(t0) || !a.Expires().Equal(t0.Add(time.Hour)) {
		t.Errorf("Attest() = %s %v %x %v %v", a.Subject(), a.Purpose(), a.PublicKey(), a.Created(), a.Expires())
	}
	enc := a.Encode()
	d, err := DecodeAttestation(enc)
	if err != nil {
		t.Fatalf("DecodeAttestation(%x) = %v", enc, err)
	}
	if got := d.Encode(); !bytes.Equal(got, enc) {
		t.Errorf("DecodeAttestation(%x).Encode() = %x", enc, got)
	}

	rotated := newHistory(t, 1, 2)
	other := newHistory(t, 3)
	tests := []struct {
		name string
		a    *Attestation
		h    *History
		now  time.Time
		want error
	}{
		{"valid", d, h, t0.Add(time.Minute), nil},
		{"at creation", d, h, t0, nil},
		{"created within skew", d, h, t0.Add(-MaxClockSkew), nil},
		{"last second", d, h, t0.Add(time.Hour - time.Second), nil},
		{"created beyond skew", d, h, t0.Add(-MaxClockSkew - time.Second), ErrNotYetValid},
		{"at expiry", d, h, t0.Add(time.Hour), ErrExpired},
		{"after expiry", d, h, t0.Add(48 * time.Hour), ErrExpired},
		{"wrong subject", d, other, t0, ErrWrongSubject},
		{"signed by another key", attest(t, h, key(3), t0, t0.Add(time.Hour)), h, t0, ErrBadSignature},
		{"made before the key was rotated away", d, rotated, t0, nil},
		{"re-attested after rotation", attest(t, rotated, key(2), t0.Add(time.Hour), t0.Add(2*time.Hour)), rotated, t0.Add(time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Verify(tt.h, tt.now)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("Verify(%s, %v) = %v, want %v", tt.h.Identifier(), tt.now, err, tt.want)
			}
		})
	}
}

func TestAttestErrors(t *testing.T) {
	id := newHistory(t, 1).Identifier()
	tests := []struct {
		name             string
		signer           Signer
		subject          Identifier
		purpose          Purpose
		pub              []byte
		created, expires time.Time
		want             error
	}{
		{"bad subject", key(1), "alice", PurposeSecureChannel, staticKey, t0, t0.Add(time.Hour), ErrBadIdentifier},
		{"unknown purpose", key(1), id, 3, staticKey, t0, t0.Add(time.Hour), ErrPurpose},
		{"short key", key(1), id, PurposeCredentialSigning, staticKey[:31], t0, t0.Add(time.Hour), ErrPurpose},
		{"expires at creation", key(1), id, PurposeSecureChannel, staticKey, t0, t0, ErrMalformed},
		{"expires before creation", key(1), id, PurposeSecureChannel, staticKey, t0, t0.Add(-time.Hour), ErrMalformed},
		{"before 1970", key(1), id, PurposeSecureChannel, staticKey, time.Unix(-5, 0), t0, ErrMalformed},
		{"bad signer", badSigner{key(1)}, id, PurposeSecureChannel, staticKey, t0, t0.Add(time.Hour), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Attest(tt.signer, tt.subject, tt.purpose, tt.pub, tt.created, tt.expires)
			if !errors.Is(err, tt.want) {
				t.Errorf("Attest() = %v, %v, want %v", a, err, tt.want)
			}
		})
	}
}

func TestDecodeAttestationErrors(t *testing.T) {
	h := newHistory(t, 1)
	enc := attest(t, h, key(1), t0, t0.Add(time.Hour)).Encode()
	with := func(f func([]byte)) []byte { b := bytes.Clone(enc); f(b); return b }
	const created = 1 + 32 + 1 + 32
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, wire.ErrTruncated},
		{"truncated", enc[:len(enc)-1], wire.ErrTruncated},
		{"trailing", append(bytes.Clone(enc), 0), wire.ErrTrailing},
		{"version", with(func(b []byte) { b[0] = 0 }), ErrVersion},
		{"purpose", with(func(b []byte) { b[33] = 0 }), ErrPurpose},
		{"created out of range", with(func(b []byte) { b[created] = 0x80 }), ErrMalformed},
		{"expires before created", with(func(b []byte) { b[created+8+4] = 0 }), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := DecodeAttestation(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("DecodeAttestation(%x) = %v, %v, want %v", tt.in, a, err, tt.want)
			}
		})
	}
}

// TestAttestationTamper flips the low and the high bit of every byte of a valid
// attestation: every variant must fail to decode or to verify.
func TestAttestationTamper(t *testing.T) {
	h := newHistory(t, 1)
	for _, purpose := range []Purpose{PurposeSecureChannel, PurposeCredentialSigning} {
		a, err := Attest(key(1), h.Identifier(), purpose, key(7).Public(), t0, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		enc := a.Encode()
		if err := a.Verify(h, t0); err != nil {
			t.Fatalf("Verify() = %v", err)
		}
		for i := range enc {
			for _, mask := range []byte{0x01, 0x80} {
				b := bytes.Clone(enc)
				b[i] ^= mask
				d, err := DecodeAttestation(b)
				if err != nil {
					continue
				}
				if err := d.Verify(h, t0); err == nil {
					t.Fatalf("%v: byte %d xor %#x: Verify() = nil, want error", purpose, i, mask)
				}
			}
		}
	}
}

// TestDomainSeparation checks that a signature over attestation bytes made in the change
// context, or the other way round, does not verify.
func TestDomainSeparation(t *testing.T) {
	h := newHistory(t, 1)
	a := attest(t, h, key(1), t0, t0.Add(time.Hour))
	data := a.appendData(nil)
	wrong := ed25519.Sign(key(1).priv, signedMessage(contextChange, data))
	copy(a.sig[:], wrong)
	if err := a.Verify(h, t0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify() of a change-context signature = %v, want %v", err, ErrBadSignature)
	}
}

// TestRotatedHistoryRefusesRetiredKeySignatures: once a history has rotated, an attestation
// by the retired primary key verifies only if it was made before the rotation, and only for
// RetiredKeyGrace after it; one made at or after the rotation is refused, and VerifyCurrent
// refuses the retired key whenever it signed. (Before, Verify refused every attestation of a
// retired key, so a rotating authority broke every credential it had issued; and nothing said
// how a retired key's signatures stop.)
func TestRotatedHistoryRefusesRetiredKeySignatures(t *testing.T) {
	h := newHistory(t, 1, 2) // key 1 from t0, key 2 from t0+1h
	rotation := t0.Add(time.Hour)
	long := 30 * 24 * time.Hour
	before := attest(t, h, key(1), rotation.Add(-time.Second), rotation.Add(long))
	atRotation := attest(t, h, key(1), rotation, rotation.Add(long))
	after := attest(t, h, key(1), rotation.Add(time.Minute), rotation.Add(long))
	byNew := attest(t, h, key(2), rotation.Add(time.Minute), rotation.Add(long))
	newBackdated := attest(t, h, key(2), rotation.Add(-time.Minute), rotation.Add(long))
	tests := []struct {
		name    string
		a       *Attestation
		now     time.Time
		want    error
		current error // VerifyCurrent's answer
	}{
		{"retired key before the rotation", before, rotation.Add(time.Hour), nil, ErrBadSignature},
		{"retired key before the rotation, last second of grace", before, rotation.Add(RetiredKeyGrace - time.Second), nil, ErrBadSignature},
		{"retired key before the rotation, grace over", before, rotation.Add(RetiredKeyGrace), ErrRetiredKey, ErrBadSignature},
		{"retired key at the rotation", atRotation, rotation.Add(time.Hour), ErrBadSignature, ErrBadSignature},
		{"retired key after the rotation", after, rotation.Add(time.Hour), ErrBadSignature, ErrBadSignature},
		{"current key after the rotation", byNew, rotation.Add(time.Hour), nil, nil},
		{"current key after the grace", byNew, rotation.Add(RetiredKeyGrace + time.Hour), nil, nil},
		{"current key claiming a time before the rotation", newBackdated, rotation.Add(time.Hour), ErrBadSignature, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.a.Verify(h, tt.now); tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("Verify(created %v, now %v) = %v, want %v", tt.a.Created(), tt.now, err, tt.want)
			}
			if err := tt.a.VerifyCurrent(h, tt.now); tt.current == nil && err != nil || !errors.Is(err, tt.current) {
				t.Errorf("VerifyCurrent(created %v, now %v) = %v, want %v", tt.a.Created(), tt.now, err, tt.current)
			}
		})
	}
	// Against the history before the rotation, the retired key's late signature still holds:
	// only a verifier that learned the rotation can refuse it (TestHistoryMustExtendKnown).
	if err := after.Verify(newHistory(t, 1), rotation.Add(time.Hour)); err != nil {
		t.Errorf("Verify(unrotated history) = %v, want nil", err)
	}
}

// TestRetiredKeyBackdatedAttestationHoldsOnlyForTheGraceGiven: a thief of a retired primary
// key backdates an attestation to before the rotation; with VerifyWithin and a project's
// grace (its credential lifetime plus clock skew, here 1 h + 1 min), the attestation stops
// verifying when that grace is over, not RetiredKeyGrace (7 days) after the rotation.
func TestRetiredKeyBackdatedAttestationHoldsOnlyForTheGraceGiven(t *testing.T) {
	h := newHistory(t, 1, 2)
	rotation := t0.Add(time.Hour)
	stolen := attest(t, h, key(1), rotation.Add(-time.Second), rotation.Add(30*24*time.Hour))
	grace := time.Hour + MaxClockSkew
	if err := stolen.VerifyWithin(h, rotation.Add(grace-time.Second), grace); err != nil {
		t.Errorf("VerifyWithin(last second of the grace) = %v, want nil", err)
	}
	if err := stolen.VerifyWithin(h, rotation.Add(grace), grace); !errors.Is(err, ErrRetiredKey) {
		t.Errorf("VerifyWithin(grace over) = %v, want %v", err, ErrRetiredKey)
	}
	if err := stolen.VerifyWithin(h, rotation.Add(2*time.Hour), 30*24*time.Hour); err != nil {
		t.Errorf("VerifyWithin(grace above the maximum) = %v, want nil (capped at RetiredKeyGrace)", err)
	}
}
