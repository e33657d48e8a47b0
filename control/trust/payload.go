package trust

import (
	"fmt"

	"github.com/adjacentnet/adjacent/internal/wire"
)

// payloadVersion is the first byte of a handshake payload.
const payloadVersion = 1

// Bounds of a handshake payload's parts. The whole payload travels in one Noise message
// (at most 65535 bytes) before the peer is authenticated, so every part is small.
const (
	maxHistory     = 8 << 10
	maxAttestation = 512
	maxCredentials = 8
	maxCredential  = 12 << 10 // with an authority's rotated history: up to about 6 KiB more
)

// payload is what each side of a handshake says about itself.
type payload struct {
	history     []byte   // encoded identity.History
	attestation []byte   // encoded identity.Attestation of the Noise static key
	credentials [][]byte // encoded credentials, opaque here
}

func (p *payload) encode() []byte {
	b := []byte{payloadVersion}
	b = wire.AppendBytes16(b, p.history)
	b = wire.AppendBytes16(b, p.attestation)
	b = append(b, byte(len(p.credentials)))
	for _, c := range p.credentials {
		b = wire.AppendBytes16(b, c)
	}
	return b
}

func decodePayload(b []byte) (*payload, error) {
	r := wire.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != payloadVersion {
		return nil, fmt.Errorf("trust: handshake payload version %d, want %d", v, payloadVersion)
	}
	p := &payload{
		history:     r.Bytes16("identity history", maxHistory),
		attestation: r.Bytes16("static key attestation", maxAttestation),
	}
	n := r.Count("credentials", maxCredentials)
	for i := 0; i < n; i++ {
		p.credentials = append(p.credentials, r.Bytes16("credential", maxCredential))
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("trust: decode handshake payload: %w", err)
	}
	return p, nil
}
