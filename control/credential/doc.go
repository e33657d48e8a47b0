// Package credential is an authority's signed statement about a member: the subject's
// identifier, its attributes, and when the statement was issued and expires. A Bundle is a
// credential together with the attestation of the authority's credential-signing key, which
// is what a node presents in a handshake or a refresh so that a peer can check it knowing only
// the authority's identity history. An authority that has rotated its key puts its history
// in the bundle too, so that a peer that knows an older one learns the rotation.
//
// The package encodes, decodes, issues and verifies credentials. It is not the authority:
// who gets which attributes, how long credentials live and how they are refreshed live in
// control/authority; what attributes admit lives in control/policy.
package credential
