package event

import (
	"bytes"
	"testing"
	"time"
)

func FuzzDecode(f *testing.F) {
	a := newAuthority(f, 1)
	for _, until := range []time.Duration{time.Second, time.Hour, MaxRevocation} {
		e := revocation()
		e.Until = e.Issued.Add(until)
		f.Add(a.sign(f, e))
	}
	f.Add([]byte{})
	f.Add([]byte{Version, byte(KindRevoked)})
	f.Add([]byte(`{"revoked":"I00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		enc := s.Encode()
		if !bytes.Equal(enc, data) {
			t.Fatalf("Encode(Decode(%x)) = %x", data, enc)
		}
		s2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%x))): %v", data, err)
		}
		if !bytes.Equal(s2.Encode(), enc) {
			t.Fatalf("decode -> encode -> decode is not a fixpoint for %x", data)
		}
		for i := range data {
			if _, err := Decode(data[:i]); err == nil {
				t.Fatalf("Decode of the %d-byte prefix of %x succeeds", i, data)
			}
		}
		// Verifying arbitrary input must not panic, and only the authority's signed events
		// verify.
		if _, err := s.Verify(a.history, "acme", s.Event().Issued); err == nil && s.Issuer() != a.history.Identifier() {
			t.Fatalf("Verify of %x by another issuer succeeds", data)
		}
	})
}
