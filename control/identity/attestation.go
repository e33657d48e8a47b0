package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math"
	"time"

	"github.com/adjacentnet/adjacent/internal/wire"
)

// Purpose says what an attested key is for. Each purpose fixes the key's algorithm.
type Purpose uint8

const (
	// PurposeSecureChannel: a Noise static key (X25519, 32 bytes).
	PurposeSecureChannel Purpose = 1
	// PurposeCredentialSigning: a key that signs credentials (Ed25519, 32 bytes).
	PurposeCredentialSigning Purpose = 2
)

// KeySize returns the length of a public key for p, or 0 if p is unknown.
func (p Purpose) KeySize() int {
	switch p {
	case PurposeSecureChannel:
		return 32
	case PurposeCredentialSigning:
		return ed25519.PublicKeySize
	}
	return 0
}

func (p Purpose) String() string {
	switch p {
	case PurposeSecureChannel:
		return "secure-channel"
	case PurposeCredentialSigning:
		return "credential-signing"
	}
	return fmt.Sprintf("purpose(%d)", uint8(p))
}

// MaxClockSkew is how far in the future an attestation's creation time may be and still
// verify.
const MaxClockSkew = time.Minute

// Attestation is an identity's statement, signed by its current primary key, that a public
// key serves a purpose between two times. Attestations are immutable.
//
// Wire form: version (1 byte), subject (the 32-byte hash the identifier names), purpose
// (1 byte), public key (Purpose.KeySize bytes), created and expires (unix seconds, 8 bytes
// big-endian each), then the signature (64) over "adjacent purpose key v1\x00" || everything
// before it.
type Attestation struct {
	subject [sha256.Size]byte
	purpose Purpose
	key     []byte
	created int64
	expires int64
	sig     [ed25519.SignatureSize]byte
}

// Attest has signer, the subject's current primary key, vouch that pub serves purpose from
// created until expires.
func Attest(signer Signer, subject Identifier, purpose Purpose, pub []byte, created, expires time.Time) (*Attestation, error) {
	a := &Attestation{purpose: purpose, created: created.Unix(), expires: expires.Unix()}
	var ok bool
	if a.subject, ok = subject.hash(); !ok {
		return nil, fmt.Errorf("identity: attest: subject %q: %w", subject, ErrBadIdentifier)
	}
	if n := purpose.KeySize(); n == 0 || len(pub) != n {
		return nil, fmt.Errorf("identity: attest: %d-byte key for %v: %w", len(pub), purpose, ErrPurpose)
	}
	a.key = bytes.Clone(pub)
	if err := checkTimes(a.created, a.expires); err != nil {
		return nil, fmt.Errorf("identity: attest: %w", err)
	}
	var err error
	if _, a.sig, err = sign(signer, contextAttestation, a.appendData(nil)); err != nil {
		return nil, fmt.Errorf("identity: attest: %w", err)
	}
	return a, nil
}

func checkTimes(created, expires int64) error {
	if created < 0 {
		return fmt.Errorf("created %d before 1970: %w", created, ErrMalformed)
	}
	if expires <= created {
		return fmt.Errorf("expires %v not after created %v: %w",
			time.Unix(expires, 0).UTC(), time.Unix(created, 0).UTC(), ErrMalformed)
	}
	return nil
}

// Subject returns the identifier of the identity that made the attestation.
func (a *Attestation) Subject() Identifier { return identifierOf(a.subject) }

// Purpose returns what the key is for.
func (a *Attestation) Purpose() Purpose { return a.purpose }

// PublicKey returns the attested public key (a copy).
func (a *Attestation) PublicKey() []byte { return bytes.Clone(a.key) }

// Created returns when the attestation starts to hold.
func (a *Attestation) Created() time.Time { return time.Unix(a.created, 0) }

// Expires returns when the attestation stops holding.
func (a *Attestation) Expires() time.Time { return time.Unix(a.expires, 0) }

// RetiredKeyGrace is how long after a rotation the attestations that the retired primary
// key made before it still verify. It covers what was signed under them while the key was
// current, such as credentials (which live at most a week), until they are replaced; after
// it, only attestations by keys still current verify. The time an attestation claims is the
// signer's word: a thief of the retired key can backdate one, and the grace bounds how long
// that works, so a project verifies with VerifyWithin and a grace of its own credential
// lifetime plus MaxClockSkew: what was signed before the rotation then stays valid until it
// expires and no longer.
const RetiredKeyGrace = 7 * 24 * time.Hour

// Verify checks that a was made about h by the primary key that was current when a says it
// was created, and holds at now: it was created no more than MaxClockSkew after now, and has
// not expired. The error wraps ErrWrongSubject, ErrBadSignature, ErrRetiredKey,
// ErrNotYetValid or ErrExpired.
//
// The key is chosen by a's creation time: the key of the last change made at or before it.
// So a signature by a retired key made at or after the rotation that retired it never
// verifies against the rotated history (ErrBadSignature), and one made before it verifies
// until RetiredKeyGrace after the rotation (then ErrRetiredKey). VerifyCurrent is the strict
// form, for what a holder presents of itself.
func (a *Attestation) Verify(h *History, now time.Time) error {
	return a.VerifyWithin(h, now, RetiredKeyGrace)
}

// VerifyWithin is Verify with grace in place of RetiredKeyGrace: an attestation made by a
// retired primary key verifies until grace after the rotation that retired it. A grace of
// zero or less, or more than RetiredKeyGrace, is RetiredKeyGrace.
func (a *Attestation) VerifyWithin(h *History, now time.Time, grace time.Duration) error {
	if grace <= 0 || grace > RetiredKeyGrace {
		grace = RetiredKeyGrace
	}
	i := h.changeAt(a.created)
	if err := a.verify(h, i, now); err != nil {
		return err
	}
	if i+1 < len(h.changes) {
		if retired := time.Unix(h.changes[i+1].created, 0); !now.Before(retired.Add(grace)) {
			return fmt.Errorf("identity: verify attestation of %v key: made by a primary key retired at %v, more than %v before now (%v); attest the key again with the current one: %w",
				a.purpose, retired.UTC(), grace, now.UTC(), ErrRetiredKey)
		}
	}
	return nil
}

// VerifyCurrent is Verify with h's current primary key only: an attestation by a retired
// key fails (ErrBadSignature) whenever it was made. A node presenting its own channel key
// presents one attested by its current key, so that is what a handshake asks for.
func (a *Attestation) VerifyCurrent(h *History, now time.Time) error {
	return a.verify(h, len(h.changes)-1, now)
}

// verify checks a under the key of h's change i.
func (a *Attestation) verify(h *History, i int, now time.Time) error {
	if id := identifierOf(a.subject); id != h.Identifier() {
		return fmt.Errorf("identity: verify attestation: subject %s, want %s: %w", id, h.Identifier(), ErrWrongSubject)
	}
	key := h.changes[i].key
	var buf [1 + sha256.Size + 1 + 32 + 16]byte
	if !verify(&key, contextAttestation, a.appendData(buf[:0]), &a.sig) {
		if i < len(h.changes)-1 {
			return fmt.Errorf("identity: verify attestation of %v key: not signed by primary key %d of %d, the one current at its creation (%v): %w",
				a.purpose, i+1, len(h.changes), a.Created().UTC(), ErrBadSignature)
		}
		return fmt.Errorf("identity: verify attestation of %v key: %w", a.purpose, ErrBadSignature)
	}
	if created := a.Created(); created.After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("identity: verify attestation of %v key: created %v, now %v: %w",
			a.purpose, created.UTC(), now.UTC(), ErrNotYetValid)
	}
	if expires := a.Expires(); !now.Before(expires) {
		return fmt.Errorf("identity: verify attestation of %v key: expired %v, now %v: %w",
			a.purpose, expires.UTC(), now.UTC(), ErrExpired)
	}
	return nil
}

func (a *Attestation) appendData(b []byte) []byte {
	b = append(b, Version)
	b = append(b, a.subject[:]...)
	b = append(b, byte(a.purpose))
	b = append(b, a.key...)
	b = wire.AppendU64(b, uint64(a.created))
	return wire.AppendU64(b, uint64(a.expires))
}

// Encode returns the wire form of a.
func (a *Attestation) Encode() []byte { return a.AppendTo(nil) }

// AppendTo appends the wire form of a to b.
func (a *Attestation) AppendTo(b []byte) []byte {
	return append(a.appendData(b), a.sig[:]...)
}

// DecodeAttestation decodes an attestation. It checks structure only (lengths, version,
// purpose, times in order); Verify checks the signature against the subject's history.
// Structural errors wrap ErrMalformed (and the wire package's error), ErrVersion or
// ErrPurpose.
func DecodeAttestation(b []byte) (*Attestation, error) {
	a, err := parseAttestation(b)
	if err != nil {
		return nil, fmt.Errorf("identity: decode attestation: %w", err)
	}
	return a, nil
}

func parseAttestation(b []byte) (*Attestation, error) {
	var a Attestation
	r := wire.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != Version {
		return nil, fmt.Errorf("version %d: %w", v, ErrVersion)
	}
	copy(a.subject[:], r.Fixed("subject", sha256.Size))
	a.purpose = Purpose(r.U8("purpose"))
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	n := a.purpose.KeySize()
	if n == 0 {
		return nil, fmt.Errorf("purpose %d: %w", uint8(a.purpose), ErrPurpose)
	}
	a.key = bytes.Clone(r.Fixed("key", n))
	created, expires := r.U64("created"), r.U64("expires")
	copy(a.sig[:], r.Fixed("signature", ed25519.SignatureSize))
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if created > math.MaxInt64 || expires > math.MaxInt64 {
		return nil, fmt.Errorf("times out of range: %w", ErrMalformed)
	}
	a.created, a.expires = int64(created), int64(expires)
	if err := checkTimes(a.created, a.expires); err != nil {
		return nil, err
	}
	return &a, nil
}
