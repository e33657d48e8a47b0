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

// bundle wraps c with what a verifier needs to check it.
func (a *Authority) bundle(c *credential.Credential) *credential.Bundle {
	b := &credential.Bundle{Credential: c, Attestation: a.cfg.Attested}
	if a.cfg.Identity.Len() > 1 {
		b.Issuer = a.cfg.Identity
	}
	if k := a.rotated.Load(); k != nil {
		b.Attestation, b.Issuer = k.attested, k.history
	}
	return b
}
