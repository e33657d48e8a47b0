package credential

import (
	"bytes"
	"fmt"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/internal/wire"
)

// maxPartLen bounds each part of a bundle's encoding. The largest credential (32 attributes
// of the longest names and values) is about 35 KB.
const maxPartLen = 0xffff

// versionWithIssuer is the bundle version that also carries the issuer's history.
const versionWithIssuer = 2

// Bundle is a credential with the attestation of the key that signed it: what a node
// presents to its peers, and what an authority hands out. Credential and Attestation must be
// set.
//
// Wire form: version (1 byte), then the credential and the attestation encodings, each with
// a 2-byte length prefix; with Issuer, the version is 2 and the issuer's history follows,
// also with a 2-byte length prefix.
type Bundle struct {
	Credential  *Credential
	Attestation *identity.Attestation
	// Issuer, if set, is the issuer's identity history. An authority that has rotated its
	// key sends it with what it signs, so that a peer knowing an older history of it learns
	// the rotation from any bundle (Verify uses it when it extends the trusted one).
	//
	// DecodeBundle leaves it nil and keeps its encoding; Verify decodes it, and sets it, only
	// for a trusted issuer and only when it is longer than the trusted history, so that a
	// stranger's bundles cost no signature checks of histories nobody asked for.
	Issuer *identity.History

	issuerRaw []byte // the encoded Issuer as received, until Verify decodes it
}

// Encode returns the wire form of b.
func (b *Bundle) Encode() []byte { return b.AppendTo(nil) }

// AppendTo appends the wire form of b to dst.
func (b *Bundle) AppendTo(dst []byte) []byte {
	issuer := b.issuerRaw
	if b.Issuer != nil {
		issuer = b.Issuer.Encode()
	}
	if issuer == nil {
		dst = append(dst, Version)
	} else {
		dst = append(dst, versionWithIssuer)
	}
	dst = wire.AppendBytes16(dst, b.Credential.Encode())
	dst = wire.AppendBytes16(dst, b.Attestation.Encode())
	if issuer != nil {
		dst = wire.AppendBytes16(dst, issuer)
	}
	return dst
}

// DecodeBundle decodes a bundle. Like Decode it checks structure only; Verify checks the
// rest. Errors wrap ErrMalformed (and the wire or identity package's error) or ErrVersion.
func DecodeBundle(data []byte) (*Bundle, error) {
	r := wire.NewReader(data)
	v := r.U8("version")
	if r.Err() == nil && v != Version && v != versionWithIssuer {
		return nil, fmt.Errorf("credential: decode bundle: version %d: %w", v, ErrVersion)
	}
	rawCred := r.Bytes16("credential", maxPartLen)
	rawAtt := r.Bytes16("attestation", maxPartLen)
	var rawIssuer []byte
	if v == versionWithIssuer {
		rawIssuer = r.Bytes16("issuer history", maxPartLen)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("credential: decode bundle: %w: %w", ErrMalformed, err)
	}
	c, err := parse(rawCred)
	if err != nil {
		return nil, fmt.Errorf("credential: decode bundle: credential: %w", err)
	}
	a, err := identity.DecodeAttestation(rawAtt)
	if err != nil {
		return nil, fmt.Errorf("credential: decode bundle: %w: %w", ErrMalformed, err)
	}
	b := &Bundle{Credential: c, Attestation: a}
	if v == versionWithIssuer {
		if len(rawIssuer) == 0 {
			return nil, fmt.Errorf("credential: decode bundle: empty issuer history: %w", ErrMalformed)
		}
		b.issuerRaw = bytes.Clone(rawIssuer)
	}
	return b, nil
}

// Verify checks that b's credential is a valid credential for subject at now:
//
//   - its issuer is trusted: trusted returns the issuer's identity history, or nil
//     (ErrUntrustedIssuer); the bundle's own Issuer history takes its place when it extends
//     it, and one that forks from it fails (ErrSigningKey wrapping identity.ErrNotExtension);
//   - the attestation is the issuer's, for a credential-signing key, and valid at now under
//     the primary key of the issuer's that was current when it was made
//     (identity.Attestation.Verify; ErrSigningKey, also wrapping the identity error);
//   - the credential is signed by that key (ErrBadSignature);
//   - it is about subject (ErrWrongSubject);
//   - it has not expired (ErrExpired) and was not issued more than MaxClockSkew after now
//     (ErrNotYetValid).
//
// The checks run in that order and the first failure is returned.
func (b *Bundle) Verify(trusted func(identity.Identifier) *identity.History, subject identity.Identifier, now time.Time) error {
	return b.VerifyWith(trusted, subject, now, Options{AdoptIssuer: true})
}

// Options says what VerifyWith accepts beyond Verify's checks.
type Options struct {
	// AdoptIssuer lets the bundle's Issuer history take the place of the trusted one when
	// it extends it. Set it only for bundles from the authority itself (a member's channel
	// to its hub): a thief of the authority's retired key can fork its history, and a
	// member that missed the rotation would take the fork from any peer.
	AdoptIssuer bool
	// RetiredKeyGrace is how long after a rotation of the issuer the signing-key
	// attestations its retired primary key made still verify
	// (identity.Attestation.VerifyWithin): the project's credential lifetime plus clock
	// skew, since what the retired key signed lives no longer. 0: identity.RetiredKeyGrace.
	RetiredKeyGrace time.Duration
}

// VerifyWith is Verify with opts.
func (b *Bundle) VerifyWith(trusted func(identity.Identifier) *identity.History, subject identity.Identifier, now time.Time, opts Options) error {
	if b.Credential == nil || b.Attestation == nil {
		return fmt.Errorf("credential: verify: bundle without a credential or an attestation: %w", ErrMalformed)
	}
	c, a := b.Credential, b.Attestation
	issuer := c.Issuer()
	h := trusted(issuer)
	if h == nil {
		return verifyErr(fmt.Sprintf("credential issuer %s is not a trusted authority", issuer), ErrUntrustedIssuer)
	}
	if opts.AdoptIssuer && b.Issuer == nil && len(b.issuerRaw) > 0 && int(b.issuerRaw[0]) > h.Len() { // its change count
		ih, err := identity.DecodeHistory(b.issuerRaw)
		if err != nil {
			return verifyErr(fmt.Sprintf("credential issuer %s: the history in the bundle: %v", issuer, err), ErrMalformed, err)
		}
		if ih.Identifier() != issuer {
			return verifyErr(fmt.Sprintf("the bundle carries the history of %s, the issuer is %s", ih.Identifier(), issuer), ErrMalformed)
		}
		b.Issuer = ih
	}
	if opts.AdoptIssuer && b.Issuer != nil && b.Issuer.Len() > h.Len() {
		if err := b.Issuer.Extends(h); err != nil {
			return verifyErr(fmt.Sprintf("credential issuer %s: the history in the bundle does not extend the trusted one: %v", issuer, err),
				ErrSigningKey, identity.ErrNotExtension)
		}
		h = b.Issuer
	}
	if got := a.Subject(); got != issuer {
		return verifyErr(fmt.Sprintf("credential signing key is attested by %s, not by the issuer %s", got, issuer),
			ErrSigningKey, identity.ErrWrongSubject)
	}
	if p := a.Purpose(); p != identity.PurposeCredentialSigning {
		return verifyErr(fmt.Sprintf("credential signing key of %s is attested for %v, not %v", issuer, p, identity.PurposeCredentialSigning),
			ErrSigningKey, identity.ErrPurpose)
	}
	if err := a.VerifyWithin(h, now, opts.RetiredKeyGrace); err != nil {
		return verifyErr(fmt.Sprintf("credential signing key of %s is not valid: %v", issuer, err), ErrSigningKey, err)
	}
	if !c.verifySignature(a.PublicKey()) {
		return verifyErr(fmt.Sprintf("credential signature does not verify under the signing key %s attested", issuer), ErrBadSignature)
	}
	if got := c.Subject(); got != subject {
		return verifyErr(fmt.Sprintf("credential is for %s, not for the peer %s", got, subject), ErrWrongSubject)
	}
	if exp := c.Expires(); !now.Before(exp) {
		return verifyErr(fmt.Sprintf("credential from %s expired at %v (now %v); the holder must refresh it", issuer, exp.UTC(), now.UTC()), ErrExpired)
	}
	if iss := c.Issued(); iss.After(now.Add(MaxClockSkew)) {
		return verifyErr(fmt.Sprintf("credential from %s is issued at %v, more than %v after now (%v); check the clocks",
			issuer, iss.UTC(), MaxClockSkew, now.UTC()), ErrNotYetValid)
	}
	return nil
}
