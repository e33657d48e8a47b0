// Package trust decides who a secure channel's peer is. It builds this node's handshake
// payload (identity history, the attestation that binds the Noise static key to the
// identity, credentials) and verifies the peer's: the history's signatures, the attestation
// against the very static key the peer proved it holds in the handshake, and an optional
// list of identifiers the channel is meant for. A peer whose history does not extend the one
// this node knows for its identifier (a rotation rolled back, or forked) is refused, and a
// longer one is learned. The authority's rotated history (its own, or the one its credential
// bundles carry) is learned only on a member's channel to its hub (Config.AuthorityChannel):
// from any other peer it could be a fork by a thief of a retired authority key. Signing keys a
// retired authority key attested verify for the project's credential lifetime plus clock skew
// after the rotation (Config.RetiredKeyGrace). It implements securechannel.Authenticator.
//
// It does not run handshakes (securechannel does) or store keys (the vault does).
package trust
