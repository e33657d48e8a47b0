package trust

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/routing"
)

// Errors callers test for.
var (
	ErrNotAuthorized = errors.New("peer not authorized")
	ErrNoCredential  = errors.New("no valid credential")
	ErrRevoked       = errors.New("membership revoked")
)

// Self is this node's side of a handshake.
type Self struct {
	History     *identity.History
	Attestation *identity.Attestation // of the Noise static key, by History's identity
}

// Config configures an Authenticator.
type Config struct {
	Self Self
	// Credentials returns the credentials this node presents (nil: none).
	Credentials func() []*credential.Bundle
	// Authority returns the identity history of a trusted credential issuer, or nil.
	// With no Authority, no credential is trusted.
	Authority func(identity.Identifier) *identity.History
	// RequireCredential refuses peers without a valid credential from a trusted authority.
	RequireCredential bool
	// Revoked reports identifiers whose membership the authority has revoked.
	Revoked func(identity.Identifier) bool
	// Authorized, if not empty, lists the only identifiers accepted as peers.
	Authorized []identity.Identifier
	Now        func() time.Time // default time.Now
	// Refreshed, if set, is told of a peer whose refreshed credential was applied, so what
	// its changed attributes admit can be checked again. It must not block.
	Refreshed func(routing.Peer)

	// Known returns the longest history of an identity this node has seen, or nil. A peer
	// whose history does not extend it (shorter, so bringing back a retired key, or forked)
	// is refused.
	Known func(identity.Identifier) *identity.History
	// Learn, if set, is told of a history longer than the one Known (or Authority, for an
	// authority's history carried in a credential bundle) returned: a peer's, once the peer
	// is authenticated with a valid credential (so what it keeps is bounded by the project's
	// members), or an authority's that a credential verified with.
	Learn func(*identity.History)
	// Present, if set, maps Self to what this side presents in each handshake, re-handshakes
	// of open channels included: after the node's identity rotated, its new history with the
	// same static key attested again by the new primary key, so that channels opened before
	// the rotation re-handshake under the identity peers now know.
	Present func(Self) Self
	// AuthorityChannel marks the authenticator of a member's own channel to its hub: only
	// there is a longer history of the authority learned (from the hub's own history or the
	// issuer history in its credential bundles). Elsewhere credentials verify against the
	// authority's history this node knows, so that a thief of a retired authority key
	// cannot fork members who missed the rotation through their peers.
	AuthorityChannel bool
	// RetiredKeyGrace, if set, returns how long after the authority's rotation the
	// signing keys its retired key attested still verify: the project's credential
	// lifetime plus clock skew (credential.Options.RetiredKeyGrace).
	RetiredKeyGrace func() time.Duration
}

// Authenticator implements securechannel.Authenticator (and Refresher) for one channel or
// listener.
type Authenticator struct {
	cfg Config
}

// New returns an Authenticator.
func New(cfg Config) *Authenticator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authenticator{cfg: cfg}
}

// Payload returns this side's handshake payload.
func (a *Authenticator) Payload() ([]byte, error) {
	self := a.cfg.Self
	if a.cfg.Present != nil {
		self = a.cfg.Present(self)
	}
	p := payload{history: self.History.Encode(), attestation: self.Attestation.Encode()}
	if a.cfg.Credentials != nil {
		for _, b := range a.cfg.Credentials() {
			p.credentials = append(p.credentials, b.Encode())
		}
	}
	return p.encode(), nil
}

// Authenticate verifies the peer's payload against the Noise static key the peer holds and
// returns the peer with the attributes of its valid credentials.
func (a *Authenticator) Authenticate(data, remoteStatic []byte) (routing.Peer, error) {
	p, err := decodePayload(data)
	if err != nil {
		return nil, err
	}
	h, err := identity.DecodeHistory(p.history)
	if err != nil {
		return nil, fmt.Errorf("trust: peer identity: %w", err)
	}
	id := h.Identifier()
	att, err := identity.DecodeAttestation(p.attestation)
	if err != nil {
		return nil, fmt.Errorf("trust: peer %s: %w", id, err)
	}
	if att.Purpose() != identity.PurposeSecureChannel {
		return nil, fmt.Errorf("trust: peer %s attested a %s key for the channel, want secure-channel", id, att.Purpose())
	}
	now := a.cfg.Now()
	if err := att.VerifyCurrent(h, now); err != nil {
		return nil, fmt.Errorf("trust: peer %s: static key attestation: %w", id, err)
	}
	if !bytes.Equal(att.PublicKey(), remoteStatic) {
		return nil, fmt.Errorf("trust: peer %s: attestation covers another static key than the one used in the handshake", id)
	}
	if len(a.cfg.Authorized) > 0 && !slices.Contains(a.cfg.Authorized, id) {
		return nil, fmt.Errorf("trust: peer %s: %w (authorized: %v)", id, ErrNotAuthorized, a.cfg.Authorized)
	}
	if a.cfg.Revoked != nil && a.cfg.Revoked(id) {
		return nil, fmt.Errorf("trust: peer %s: %w", id, ErrRevoked)
	}
	known := 1
	if a.cfg.Known != nil {
		if k := a.cfg.Known(id); k != nil {
			if err := h.Extends(k); err != nil {
				return nil, fmt.Errorf("trust: peer %s presents an older or forked identity history; refused: %w", id, err)
			}
			known = k.Len()
		}
	}
	peer := &Peer{id: id, history: h}
	var firstErr error
	for _, raw := range p.credentials {
		if err := a.apply(peer, raw, now); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if a.cfg.RequireCredential && peer.Expires().IsZero() {
		if firstErr == nil {
			firstErr = fmt.Errorf("trust: peer %s presented %w", id, ErrNoCredential)
		}
		return nil, firstErr
	}
	if peer.attrs.Load() == nil {
		attrs := withIdentifier(nil, id)
		peer.attrs.Store(&attrs)
	}
	if a.cfg.Learn != nil && h.Len() > known && !peer.Expires().IsZero() && (a.cfg.AuthorityChannel || !a.isAuthority(id)) {
		a.cfg.Learn(h)
	}
	return peer, nil
}

// Refresh applies a credential the peer sent over an open channel.
func (a *Authenticator) Refresh(rp routing.Peer, data []byte) error {
	peer, ok := rp.(*Peer)
	if !ok {
		return errors.New("trust: refresh for a peer this authenticator did not make")
	}
	if err := a.apply(peer, data, a.cfg.Now()); err != nil {
		return err
	}
	if a.cfg.Refreshed != nil {
		a.cfg.Refreshed(peer)
	}
	return nil
}

// apply verifies one credential bundle for peer and, if valid, makes its attributes the
// peer's.
func (a *Authenticator) apply(peer *Peer, raw []byte, now time.Time) error {
	b, err := credential.DecodeBundle(raw)
	if err != nil {
		return fmt.Errorf("trust: peer %s: %w", peer.id, err)
	}
	if a.cfg.Authority == nil {
		return fmt.Errorf("trust: peer %s: credential from %s: %w", peer.id, b.Credential.Issuer(), credential.ErrUntrustedIssuer)
	}
	opts := credential.Options{AdoptIssuer: a.cfg.AuthorityChannel}
	if a.cfg.RetiredKeyGrace != nil {
		opts.RetiredKeyGrace = a.cfg.RetiredKeyGrace()
	}
	if err := b.VerifyWith(a.cfg.Authority, peer.id, now, opts); err != nil {
		return fmt.Errorf("trust: peer %s: %w", peer.id, err)
	}
	if a.cfg.Learn != nil && a.cfg.AuthorityChannel && b.Issuer != nil {
		if h := a.cfg.Authority(b.Issuer.Identifier()); h != nil && b.Issuer.Len() > h.Len() {
			a.cfg.Learn(b.Issuer) // Verify checked that it extends h
		}
	}
	attrs := withIdentifier(b.Credential.Attributes(), peer.id)
	peer.attrs.Store(&attrs)
	peer.expires.Store(b.Credential.Expires().Unix())
	return nil
}

// isAuthority reports whether id is a trusted credential issuer's.
func (a *Authenticator) isAuthority(id identity.Identifier) bool {
	return a.cfg.Authority != nil && a.cfg.Authority(id) != nil
}

// Peer is an authenticated secure-channel peer and what its credentials say about it.
// Attributes change when the peer presents a refreshed credential.
type Peer struct {
	id      identity.Identifier
	history *identity.History
	attrs   atomic.Pointer[map[string]string]
	expires atomic.Int64 // unix seconds of the credential's expiry, 0 if none
}

// Identifier returns the peer's identifier.
func (p *Peer) Identifier() string { return string(p.id) }

// Attributes returns the subject attributes for policies: the credential's attributes and
// the identifier. The map is shared and must not be changed.
func (p *Peer) Attributes() map[string]string {
	return *p.attrs.Load()
}

// Expires returns when the peer's credential expires, or the zero time without one.
func (p *Peer) Expires() time.Time {
	if e := p.expires.Load(); e != 0 {
		return time.Unix(e, 0)
	}
	return time.Time{}
}

func withIdentifier(attrs map[string]string, id identity.Identifier) map[string]string {
	m := maps.Clone(attrs)
	if m == nil {
		m = map[string]string{}
	}
	m["identifier"] = string(id)
	return m
}
