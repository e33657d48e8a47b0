// Package trust decides who a secure channel's peer is. It builds this node's handshake
// payload (identity history, the attestation that binds the Noise static key to the
// identity, credentials) and verifies the peer's: the history's signatures, the attestation
// against the very static key the peer proved it holds in the handshake, and an optional
// list of identifiers the channel is meant for. A peer whose history does not extend the one
// this node knows for its identifier (a rotation rolled back, or forked) is refused, and a
// longer one is learned, as is an authority's rotated history carried in a credential. It
// implements securechannel.Authenticator.
//
// It does not run handshakes (securechannel does) or store keys (the vault does).
package trust
