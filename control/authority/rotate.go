package authority

import (
	"time"

	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/identity"
)

// issuerKeys are what the authority signs with and presents after its identity rotated:
// its history, a new credential-signing key and that key's attestation by the new primary
// key.
type issuerKeys struct {
	history  *identity.History
	signer   identity.Signer
	attested *identity.Attestation
}

// Reattest makes the authority sign what it issues from now on with signer, attested by att
// under h, its identity's history after a rotation. The history travels in each bundle, so
// that members and their peers learn the rotation from the credentials they are shown.
// Credentials issued before stay valid: their attestation, by the retired key, holds for
// identity.RetiredKeyGrace.
func (a *Authority) Reattest(h *identity.History, signer identity.Signer, att *identity.Attestation) {
	a.rotated.Store(&issuerKeys{history: h, signer: signer, attested: att})
}

// keys returns the authority's current history, credential-signing key and its attestation,
// which belong together.
func (a *Authority) keys() *issuerKeys {
	if k := a.rotated.Load(); k != nil {
		return k
	}
	return &issuerKeys{history: a.cfg.Identity, signer: a.cfg.Signer, attested: a.cfg.Attested}
}

// issue signs a credential for subject with the current keys and bundles it with what a
// verifier needs to check it: the signing key's attestation, and the authority's history
// once it has rotated.
func (a *Authority) issue(subject identity.Identifier, attrs map[string]string, now time.Time) (*credential.Bundle, error) {
	k := a.keys()
	c, err := credential.Issue(k.signer, a.Identifier(), subject, attrs, now, now.Add(a.cfg.Lifetime))
	if err != nil {
		return nil, err
	}
	b := &credential.Bundle{Credential: c, Attestation: k.attested}
	if k.history.Len() > 1 {
		b.Issuer = k.history
	}
	return b, nil
}
