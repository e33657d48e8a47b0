package dataplane

import (
	"bytes"
	"strings"
	"testing"
)

// portalMessages holds one message of every kind, with the longest reason and the largest
// windows: no length is claimed anywhere, so nothing may be sized by those numbers.
var portalMessages = []message{
	{kind: msgConnect, n: DefaultWindow},
	{kind: msgConnect, n: 1<<32 - 1},
	{kind: msgConnect, n: DefaultWindow, body: bytes.Repeat([]byte{0x5a}, maxEarly)},
	{kind: msgConnected, n: DefaultWindow},
	{kind: msgRefused, body: []byte("denied by the outlet's policy")},
	{kind: msgRefused},
	{kind: msgData, body: []byte("x")},
	{kind: msgData, body: bytes.Repeat([]byte{0xa5}, chunk)},
	{kind: msgFin},
	{kind: msgReset, body: []byte(strings.Repeat("r", maxReason))},
	{kind: msgWindow, n: 1<<32 - 1},
	{kind: msgWindow},
}

// variable tells the kinds whose body is the rest of the message, from offset on: a prefix of
// one that keeps its first byte of body (data), its kind (reasons) or its window (a connect's
// early data) is the same kind with less body.
func variable(kind byte) (least, offset int, ok bool) {
	switch kind {
	case msgData:
		return 2, 1, true
	case msgRefused, msgReset:
		return 1, 1, true
	case msgConnect:
		return 5, 5, true
	}
	return 0, 0, false
}

func FuzzPortalMessages(f *testing.F) {
	for _, m := range portalMessages {
		b := m.appendTo(nil)
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(b, 0))
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{msgWindow + 1, 0, 0, 0, 0})
	f.Add(append([]byte{msgReset}, strings.Repeat("r", maxReason+1)...))
	f.Add(append([]byte{msgConnect, 0, 4, 0, 0}, make([]byte, maxEarly+1)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parse(b)
		if err != nil {
			return
		}
		// No length field, so the encoding reproduces the input exactly.
		if enc := m.appendTo(nil); !bytes.Equal(enc, b) {
			t.Fatalf("parse(%x) = %+v, which encodes to %x", b, m, enc)
		}
		// Nothing is copied: a body is the rest of the input, and a reason is bounded.
		_, offset, _ := variable(m.kind)
		if len(m.body) > 0 && &m.body[0] != &b[offset] {
			t.Fatalf("parse(%x) copied the body", b)
		}
		if (m.kind == msgRefused || m.kind == msgReset) && len(m.body) > maxReason {
			t.Fatalf("parse(%x) took a reason of %d bytes, over %d", b, len(m.body), maxReason)
		}
		if m.kind == msgConnect && len(m.body) > maxEarly {
			t.Fatalf("parse took %d bytes of early data, over %d", len(m.body), maxEarly)
		}
		// A prefix is rejected, unless the kind's body is the rest of the message and the
		// prefix keeps enough of it.
		for i := range len(b) {
			p, err := parse(b[:i])
			least, offset, ok := variable(m.kind)
			if !ok || i < least {
				if err == nil {
					t.Fatalf("parse of %d-byte prefix of %x = %+v, want an error", i, b, p)
				}
				continue
			}
			if err != nil || p.kind != m.kind || !bytes.Equal(p.body, b[offset:i]) {
				t.Fatalf("parse of %d-byte prefix of %x = %+v, %v; want the same kind with body %x", i, b, p, err, b[offset:i])
			}
		}
	})
}

// TestParseAllocatesNothing: decoding a portal message, whatever window it claims, allocates
// nothing (the data path parses every received frame).
func TestParseAllocatesNothing(t *testing.T) {
	for _, m := range portalMessages {
		b := m.appendTo(nil)
		if n := testing.AllocsPerRun(100, func() {
			if _, err := parse(b); err != nil {
				t.Fatalf("parse(%x) = %v", b, err)
			}
		}); n != 0 {
			t.Errorf("parse(%x) allocates %v times, want 0", b[:min(len(b), 8)], n)
		}
	}
}
