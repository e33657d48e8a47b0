package authority

import (
	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/identity"
)

// issuerKeys are what the authority presents with each credential after its identity
// rotated: its history and its credential-signing key attested by the new primary key.
type issuerKeys struct {
	history  *identity.History
	attested *identity.Attestation
}

// Reattest makes the authority present h, its identity's history after a rotation, and att,
// its credential-signing key attested by the new primary key, with every credential it
// issues from now on. The history travels in each bundle, so that members and their peers
// learn the rotation from the credentials they are shown.
func (a *Authority) Reattest(h *identity.History, att *identity.Attestation) {
	a.rotated.Store(&issuerKeys{history: h, attested: att})
}

// keys returns the authority's current history and signing-key attestation.
func (a *Authority) keys() (*identity.History, *identity.Attestation) {
	if k := a.rotated.Load(); k != nil {
		return k.history, k.attested
	}
	return a.cfg.Identity, a.cfg.Attested
}

// bundle wraps c with what a verifier needs to check it: the signing key's current
// attestation, and the authority's history once it has rotated.
func (a *Authority) bundle(c *credential.Credential) *credential.Bundle {
	h, att := a.keys()
	b := &credential.Bundle{Credential: c, Attestation: att}
	if h.Len() > 1 {
		b.Issuer = h
	}
	return b
}
