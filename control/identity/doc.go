// Package identity is adjacent's self-certifying identity: an Ed25519 primary key whose
// history of changes names it, and the attestations by which that key vouches for purpose
// keys (a node's Noise static key, an authority's credential-signing key).
//
// The identifier is "I" followed by the hex SHA-256 of the first change, so anyone holding a
// History can check that it belongs to an Identifier without trusting the sender. Rotating
// the primary key appends a change signed by both the old and the new key; the identifier
// stays the same. A verifier that knows a history accepts only histories that extend it
// (History.Extends), never a shorter or forked one. An attestation verifies under the key that
// was primary when it was made, so a retired key's signatures made after its rotation fail,
// and its earlier ones hold for a grace after it: the caller's (VerifyWithin; a project's
// credential lifetime plus clock skew), at most RetiredKeyGrace. Every signature is domain-separated by a
// fixed context string.
//
// Private keys never enter this package: signing goes through the Signer interface, which
// the vault implements. Identity is not about authorization: credentials, attributes and
// policy live in other control packages, and this package knows nothing of channels.
package identity
