package credential

import (
	"bytes"
	"testing"
	"time"
)

func seedCredentials(f *testing.F) [][]byte {
	fx := newFixture(f)
	var out [][]byte
	for _, attrs := range []map[string]string{nil, {"role": "analyst"}, testAttrs} {
		out = append(out, fx.issue(f, attrs, t0, t0.Add(time.Hour)).Encode())
	}
	return out
}

func FuzzDecodeCredential(f *testing.F) {
	for _, s := range seedCredentials(f) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		enc := c.Encode()
		if !bytes.Equal(enc, data) {
			t.Fatalf("Encode(Decode(%x)) = %x", data, enc)
		}
		c2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%x))): %v", data, err)
		}
		if !bytes.Equal(c2.Encode(), enc) {
			t.Fatalf("decode -> encode -> decode is not a fixpoint for %x", data)
		}
		for i := range data {
			if _, err := Decode(data[:i]); err == nil {
				t.Fatalf("Decode of the %d-byte prefix of %x succeeds", i, data)
			}
		}
	})
}

func FuzzDecodeBundle(f *testing.F) {
	fx := newFixture(f)
	for _, s := range seedCredentials(f) {
		c, err := Decode(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add((&Bundle{Credential: c, Attestation: fx.att}).Encode())
		f.Add((&Bundle{Credential: c, Attestation: fx.att, Issuer: fx.authority}).Encode())
	}
	f.Add([]byte{})
	f.Add([]byte{Version, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBundle(data)
		if err != nil {
			return
		}
		enc := b.Encode()
		if !bytes.Equal(enc, data) {
			t.Fatalf("Encode(DecodeBundle(%x)) = %x", data, enc)
		}
		b2, err := DecodeBundle(enc)
		if err != nil {
			t.Fatalf("DecodeBundle(Encode(DecodeBundle(%x))): %v", data, err)
		}
		if !bytes.Equal(b2.Encode(), enc) {
			t.Fatalf("decode -> encode -> decode is not a fixpoint for %x", data)
		}
		for i := range data {
			if _, err := DecodeBundle(data[:i]); err == nil {
				t.Fatalf("DecodeBundle of the %d-byte prefix of %x succeeds", i, data)
			}
		}
		// Verification of arbitrary input must not panic either.
		_ = b.Verify(fx.trusted, fx.member.Identifier(), t0)
	})
}
