package securechannel

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"
)

// cipherSuite is the only Noise configuration a channel speaks; there is nothing to negotiate.
var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256)

// newHandshakeState starts one side of a Noise XX handshake with the static key static.
// rng supplies the ephemeral key (nil means crypto/rand). ephemeral, non-nil only in tests and
// test vectors, fixes the ephemeral key instead: flynn/noise draws it from the random source
// when it writes the "e" token, so its private half becomes that source.
func newHandshakeState(initiator bool, static noise.DHKey, rng io.Reader, prologue []byte, ephemeral *noise.DHKey) (*noise.HandshakeState, error) {
	if ephemeral != nil {
		pub, err := curve25519.X25519(ephemeral.Private, curve25519.Basepoint)
		if err != nil {
			return nil, fmt.Errorf("securechannel: new handshake: ephemeral key: %w", err)
		}
		if len(ephemeral.Public) != 0 && subtle.ConstantTimeCompare(pub, ephemeral.Public) != 1 {
			return nil, errors.New("securechannel: new handshake: ephemeral public key does not match its private key")
		}
		rng = bytes.NewReader(ephemeral.Private)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Random:        rng,
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		Prologue:      prologue,
		StaticKeypair: static,
	})
	if err != nil {
		return nil, fmt.Errorf("securechannel: new handshake: %w", err)
	}
	return hs, nil
}
