package identity

import (
	"bytes"
	"testing"
	"time"
)

func FuzzDecodeHistory(f *testing.F) {
	f.Add(newHistory(f, 1).Encode())
	f.Add(newHistory(f, 1, 2, 3).Encode())
	f.Add([]byte{0})
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		// The structural parser reaches further than DecodeHistory on random input, whose
		// signatures never verify; both must be fixpoints and reject every prefix.
		if p, err := parseHistory(b); err == nil {
			checkFixpoint(t, "parseHistory", b, p.Encode(), func(b []byte) ([]byte, error) {
				p, err := parseHistory(b)
				if err != nil {
					return nil, err
				}
				return p.Encode(), nil
			})
		}
		h, err := DecodeHistory(b)
		if err != nil {
			return
		}
		if err := h.Verify(); err != nil {
			t.Fatalf("DecodeHistory(%x) succeeded but Verify() = %v", b, err)
		}
		checkFixpoint(t, "DecodeHistory", b, h.Encode(), func(b []byte) ([]byte, error) {
			h, err := DecodeHistory(b)
			if err != nil {
				return nil, err
			}
			return h.Encode(), nil
		})
	})
}

func FuzzDecodeAttestation(f *testing.F) {
	h := newHistory(f, 1)
	for _, p := range []Purpose{PurposeSecureChannel, PurposeCredentialSigning} {
		a, err := Attest(key(1), h.Identifier(), p, key(2).Public(), t0, t0.Add(time.Hour))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(a.Encode())
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAttestation(b)
		if err != nil {
			return
		}
		_ = a.Verify(h, t0) // must not panic
		checkFixpoint(t, "DecodeAttestation", b, a.Encode(), func(b []byte) ([]byte, error) {
			a, err := DecodeAttestation(b)
			if err != nil {
				return nil, err
			}
			return a.Encode(), nil
		})
	})
}

// checkFixpoint checks that enc, the encoding of what decode accepted from in, decodes
// and encodes back to itself, and that no proper prefix of enc decodes.
func checkFixpoint(t *testing.T, name string, in, enc []byte, decode func([]byte) ([]byte, error)) {
	t.Helper()
	if !bytes.Equal(enc, in) {
		t.Fatalf("%s(%x) re-encodes to %x", name, in, enc)
	}
	again, err := decode(enc)
	if err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("%s(%x) = %x, %v, want a fixpoint", name, enc, again, err)
	}
	for i := range enc {
		if _, err := decode(enc[:i]); err == nil {
			t.Fatalf("%s of %d-byte prefix of %x succeeded", name, i, enc)
		}
	}
}
