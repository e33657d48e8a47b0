package trust

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/routing"
)

// ErrNotAuthorized means the peer authenticated but is not one the channel is meant for.
var ErrNotAuthorized = errors.New("peer not authorized")

// Self is this node's side of a handshake.
type Self struct {
	History     *identity.History
	Attestation *identity.Attestation // of the Noise static key, by History's identity
}

// Config configures an Authenticator.
type Config struct {
	Self Self
	// Authorized, if not empty, lists the only identifiers accepted as peers.
	Authorized []identity.Identifier
	Now        func() time.Time // default time.Now
}

// Authenticator implements securechannel.Authenticator for one channel or listener.
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
	p := payload{history: a.cfg.Self.History.Encode(), attestation: a.cfg.Self.Attestation.Encode()}
	return p.encode(), nil
}

// Authenticate verifies the peer's payload against the Noise static key the peer holds and
// returns the peer.
func (a *Authenticator) Authenticate(data, remoteStatic []byte) (routing.Peer, error) {
	p, err := decodePayload(data)
	if err != nil {
		return nil, err
	}
	h, err := identity.DecodeHistory(p.history)
	if err != nil {
		return nil, fmt.Errorf("trust: peer identity: %w", err)
	}
	att, err := identity.DecodeAttestation(p.attestation)
	if err != nil {
		return nil, fmt.Errorf("trust: peer %s: %w", h.Identifier(), err)
	}
	if att.Purpose() != identity.PurposeSecureChannel {
		return nil, fmt.Errorf("trust: peer %s attested a %s key for the channel, want secure-channel", h.Identifier(), att.Purpose())
	}
	if err := att.Verify(h, a.cfg.Now()); err != nil {
		return nil, fmt.Errorf("trust: peer %s: static key attestation: %w", h.Identifier(), err)
	}
	if !bytes.Equal(att.PublicKey(), remoteStatic) {
		return nil, fmt.Errorf("trust: peer %s: attestation covers another static key than the one used in the handshake", h.Identifier())
	}
	if len(a.cfg.Authorized) > 0 && !slices.Contains(a.cfg.Authorized, h.Identifier()) {
		return nil, fmt.Errorf("trust: peer %s: %w (authorized: %v)", h.Identifier(), ErrNotAuthorized, a.cfg.Authorized)
	}
	return &Peer{id: h.Identifier(), history: h}, nil
}

// Peer is an authenticated secure-channel peer.
type Peer struct {
	id      identity.Identifier
	history *identity.History
}

// Identifier returns the peer's identifier.
func (p *Peer) Identifier() string { return string(p.id) }
