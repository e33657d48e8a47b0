package identity

import (
	"crypto/ed25519"
	"fmt"
)

// Signer signs with an Ed25519 key the caller cannot see, typically one held by the vault.
// Sign gets the complete message (already domain-separated by this package) and returns a
// plain Ed25519 signature of it.
type Signer interface {
	Public() ed25519.PublicKey
	Sign(msg []byte) ([]byte, error)
}

// Signing contexts, prefixed to every signed message so that a signature made for one
// purpose can never be replayed as another.
const (
	contextChange      = "adjacent identity change v1\x00"
	contextAttestation = "adjacent purpose key v1\x00"
)

// signedMessage returns context followed by data.
func signedMessage(context string, data []byte) []byte {
	m := make([]byte, 0, len(context)+len(data))
	return append(append(m, context...), data...)
}

// sign has s sign context||data and checks the result under s's public key, so that a
// faulty signer can never produce an object that fails verification later.
func sign(s Signer, context string, data []byte) (pub [ed25519.PublicKeySize]byte, sig [ed25519.SignatureSize]byte, err error) {
	p := s.Public()
	if len(p) != ed25519.PublicKeySize {
		return pub, sig, fmt.Errorf("signer public key of %d bytes: %w", len(p), ErrMalformed)
	}
	copy(pub[:], p)
	msg := signedMessage(context, data)
	got, err := s.Sign(msg)
	if err != nil {
		return pub, sig, fmt.Errorf("sign: %w", err)
	}
	if len(got) != ed25519.SignatureSize || !ed25519.Verify(pub[:], msg, got) {
		return pub, sig, fmt.Errorf("signer returned a signature that does not verify: %w", ErrBadSignature)
	}
	copy(sig[:], got)
	return pub, sig, nil
}

// verify reports whether sig is pub's signature of context||data.
func verify(pub *[ed25519.PublicKeySize]byte, context string, data []byte, sig *[ed25519.SignatureSize]byte) bool {
	return ed25519.Verify(pub[:], signedMessage(context, data), sig[:])
}
