package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/adjacentnet/adjacent/control/identity"
)

type signer struct{ priv ed25519.PrivateKey }

func (s signer) Public() ed25519.PublicKey       { return s.priv.Public().(ed25519.PublicKey) }
func (s signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// party is an identity with an attested Noise static key.
type party struct {
	self   Self
	static noise.DHKey
	signer signer
}

var now = time.Unix(1_800_000_000, 0)

func privFromSeed(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(append(make([]byte, 31), seed))
}

func newParty(t *testing.T, seed byte) *party {
	t.Helper()
	s := signer{privFromSeed(seed)}
	h, err := identity.New(s, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	static, _ := noise.DH25519.GenerateKeypair(rand.Reader)
	att, err := identity.Attest(s, h.Identifier(), identity.PurposeSecureChannel, static.Public, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &party{self: Self{History: h, Attestation: att}, static: static, signer: s}
}

func (p *party) payload(t *testing.T) []byte {
	t.Helper()
	b, err := New(Config{Self: p.self}).Payload()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuthenticate(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	verifier := New(Config{Self: bob.self, Now: func() time.Time { return now }})
	peer, err := verifier.Authenticate(alice.payload(t), alice.static.Public)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := peer.Identifier(), string(alice.self.History.Identifier()); got != want {
		t.Fatalf("peer = %s, want %s", got, want)
	}
}

func TestAuthenticateRejects(t *testing.T) {
	alice, bob := newParty(t, 1), newParty(t, 2)
	at := func(tm time.Time) func() time.Time { return func() time.Time { return tm } }
	otherStatic, _ := noise.DH25519.GenerateKeypair(rand.Reader)

	// An attestation by alice's key over bob's identity history: wrong subject.
	wrongSubject := *alice
	wrongSubject.self.History = bob.self.History

	wrongPurpose := *alice
	att, _ := identity.Attest(alice.signer, alice.self.History.Identifier(), identity.PurposeCredentialSigning, alice.signer.Public(), now.Add(-time.Hour), now.Add(time.Hour))
	wrongPurpose.self.Attestation = att

	tests := []struct {
		name    string
		payload []byte
		static  []byte
		cfg     Config
		want    string
	}{
		{"attestation covers another static key", alice.payload(t), otherStatic.Public, Config{Now: at(now)}, "another static key"},
		{"attestation expired", alice.payload(t), alice.static.Public, Config{Now: at(now.Add(2 * time.Hour))}, "expired"},
		{"attestation not yet valid", alice.payload(t), alice.static.Public, Config{Now: at(now.Add(-2 * time.Hour))}, "not yet valid"},
		{"attestation of another identity", wrongSubject.payload(t), alice.static.Public, Config{Now: at(now)}, "static key attestation"},
		{"key of another purpose", wrongPurpose.payload(t), alice.static.Public, Config{Now: at(now)}, "want secure-channel"},
		{"not authorized", alice.payload(t), alice.static.Public, Config{Now: at(now), Authorized: []identity.Identifier{bob.self.History.Identifier()}}, "not authorized"},
		{"garbage", []byte{1, 2, 3}, alice.static.Public, Config{Now: at(now)}, "decode handshake payload"},
		{"trailing bytes", append(alice.payload(t), 0), alice.static.Public, Config{Now: at(now)}, "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Self = bob.self
			_, err := New(tt.cfg).Authenticate(tt.payload, tt.static)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Authenticate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	_, err := New(Config{Self: bob.self, Now: at(now), Authorized: []identity.Identifier{"Ix"}}).Authenticate(alice.payload(t), alice.static.Public)
	if !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("Authenticate with another authorized identifier = %v, want ErrNotAuthorized", err)
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add((&payload{history: []byte("h"), attestation: []byte("a"), credentials: [][]byte{[]byte("c")}}).encode())
	f.Add([]byte{1, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePayload(b)
		if err != nil {
			return
		}
		enc := p.encode()
		q, err := decodePayload(enc)
		if err != nil || string(q.encode()) != string(enc) {
			t.Fatalf("decode(encode(decode(%x))) = %v", b, err)
		}
		for i := range enc {
			if _, err := decodePayload(enc[:i]); err == nil {
				t.Fatalf("prefix of %d bytes of %x decoded", i, enc)
			}
		}
	})
}
