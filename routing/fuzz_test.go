package routing

import (
	"bytes"
	"testing"
)

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"0#echo", "1#127.0.0.1:4000", "echo", "9#", "#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		b, err := ParseAddress(a.String())
		if err != nil || b != a {
			t.Fatalf("ParseAddress(%q) = %v, reparse of %q = %v, %v", s, a, a.String(), b, err)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/ip4/127.0.0.1/tcp/4000/secure/api/service/echo", "/ip6/::1/tcp/1", "/dnsaddr/a.b/tcp/2/project/x", "/service/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		text := p.String()
		q, err := ParsePath(text)
		if err != nil || q.String() != text {
			t.Fatalf("ParsePath(%q) printed %q, which reparses to %v, %v", s, text, q, err)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	m := testMessage("payload")
	f.Add(m.AppendTo(nil))
	m.Release()
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := NewMessage()
		defer m.Release()
		if err := m.Decode(b); err != nil {
			return
		}
		// Payload is the rest of the message, so the encoding reproduces the input exactly.
		enc := m.AppendTo(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("Decode(%x) re-encodes to %x", b, enc)
		}
		// A prefix that cuts into the header fails; one that cuts the payload shortens it.
		hdr := m.HeaderLen()
		for i := 0; i < len(b); i++ {
			p := NewMessage()
			err := p.Decode(b[:i])
			if i < hdr && err == nil {
				t.Fatalf("Decode of %d-byte prefix (header %d) succeeded", i, hdr)
			}
			if i >= hdr && (err != nil || !p.Onward.Equal(&m.Onward) || !bytes.Equal(p.Payload(), b[hdr:i])) {
				t.Fatalf("Decode of %d-byte prefix = %v, %v", i, p, err)
			}
			p.Release()
		}
	})
}

func BenchmarkMessageCodec(b *testing.B) {
	for _, size := range []int{64, 16 << 10} {
		b.Run("size="+itoa(size), func(b *testing.B) {
			m := testMessage(string(make([]byte, size)))
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				m.PutHeader()
				if err := m.DecodeBody(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n >= 1024 {
		return itoa(n/1024) + "KiB"
	}
	return string(rune('0'+n/10)) + string(rune('0'+n%10))
}
