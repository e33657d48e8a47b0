package credential

import (
	"fmt"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/internal/wire"
)

// maxPartLen bounds each part of a bundle's encoding. The largest credential (32 attributes
// of the longest names and values) is about 35 KB.
const maxPartLen = 0xffff

// Bundle is a credential with the attestation of the key that signed it: what a node
// presents to its peers, and what an authority hands out. Both fields must be set.
//
// Wire form: version (1 byte), then the credential and the attestation encodings, each with
// a 2-byte length prefix.
type Bundle struct {
	Credential  *Credential
	Attestation *identity.Attestation
}

// Encode returns the wire form of b.
func (b *Bundle) Encode() []byte { return b.AppendTo(nil) }

// AppendTo appends the wire form of b to dst.
func (b *Bundle) AppendTo(dst []byte) []byte {
	dst = append(dst, Version)
	dst = wire.AppendBytes16(dst, b.Credential.Encode())
	return wire.AppendBytes16(dst, b.Attestation.Encode())
}

// DecodeBundle decodes a bundle. Like Decode it checks structure only; Verify checks the
// rest. Errors wrap ErrMalformed (and the wire or identity package's error) or ErrVersion.
func DecodeBundle(data []byte) (*Bundle, error) {
	r := wire.NewReader(data)
	if v := r.U8("version"); r.Err() == nil && v != Version {
		return nil, fmt.Errorf("credential: decode bundle: version %d: %w", v, ErrVersion)
	}
	rawCred := r.Bytes16("credential", maxPartLen)
	rawAtt := r.Bytes16("attestation", maxPartLen)
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
	return &Bundle{Credential: c, Attestation: a}, nil
}

// Verify checks that b's credential is a valid credential for subject at now:
//
//   - its issuer is trusted: trusted returns the issuer's identity history, or nil
//     (ErrUntrustedIssuer);
//   - the attestation is the issuer's, for a credential-signing key, and valid at now under
//     the issuer's current primary key (ErrSigningKey, also wrapping the identity error);
//   - the credential is signed by that key (ErrBadSignature);
//   - it is about subject (ErrWrongSubject);
//   - it has not expired (ErrExpired) and was not issued more than MaxClockSkew after now
//     (ErrNotYetValid).
//
// The checks run in that order and the first failure is returned.
func (b *Bundle) Verify(trusted func(identity.Identifier) *identity.History, subject identity.Identifier, now time.Time) error {
	if b.Credential == nil || b.Attestation == nil {
		return fmt.Errorf("credential: verify: bundle without a credential or an attestation: %w", ErrMalformed)
	}
	c, a := b.Credential, b.Attestation
	issuer := c.Issuer()
	h := trusted(issuer)
	if h == nil {
		return verifyErr(fmt.Sprintf("credential issuer %s is not a trusted authority", issuer), ErrUntrustedIssuer)
	}
	if got := a.Subject(); got != issuer {
		return verifyErr(fmt.Sprintf("credential signing key is attested by %s, not by the issuer %s", got, issuer),
			ErrSigningKey, identity.ErrWrongSubject)
	}
	if p := a.Purpose(); p != identity.PurposeCredentialSigning {
		return verifyErr(fmt.Sprintf("credential signing key of %s is attested for %v, not %v", issuer, p, identity.PurposeCredentialSigning),
			ErrSigningKey, identity.ErrPurpose)
	}
	if err := a.Verify(h, now); err != nil {
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
