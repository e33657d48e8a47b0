package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/wire"
)

func TestNew(t *testing.T) {
	h := newHistory(t, 1)
	if _, err := ParseIdentifier(string(h.Identifier())); err != nil {
		t.Errorf("Identifier() = %q: %v", h.Identifier(), err)
	}
	if got, want := h.PrimaryKey(), key(1).Public(); !got.Equal(want) {
		t.Errorf("PrimaryKey() = %x, want %x", got, want)
	}
	if got := h.Created(); !got.Equal(t0) {
		t.Errorf("Created() = %v, want %v", got, t0)
	}
	if got := h.Len(); got != 1 {
		t.Errorf("Len() = %d, want 1", got)
	}
	if err := h.Verify(); err != nil {
		t.Errorf("Verify() = %v, want nil", err)
	}
	if other := newHistory(t, 2); other.Identifier() == h.Identifier() {
		t.Errorf("two keys have the same identifier %s", h.Identifier())
	}
	later, err := New(key(1), t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if later.Identifier() == h.Identifier() {
		t.Errorf("same key at two times has the same identifier %s", h.Identifier())
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		signer Signer
		now    time.Time
		want   error
	}{
		{"bad signature", badSigner{key(1)}, t0, ErrBadSignature},
		{"signer fails", failSigner{key(1)}, t0, nil},
		{"before 1970", key(1), time.Unix(-1, 0), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.signer, tt.now)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("New() = %v, %v, want error %v", h, err, tt.want)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	first := newHistory(t, 1)
	h := newHistory(t, 1, 2, 3, 4)
	if h.Identifier() != first.Identifier() {
		t.Errorf("Identifier() after rotation = %s, want %s", h.Identifier(), first.Identifier())
	}
	if got, want := h.PrimaryKey(), key(4).Public(); !got.Equal(want) {
		t.Errorf("PrimaryKey() = %x, want %x", got, want)
	}
	if got := h.Len(); got != 4 {
		t.Errorf("Len() = %d, want 4", got)
	}
	if err := h.Verify(); err != nil {
		t.Errorf("Verify() = %v", err)
	}
	enc := h.Encode()
	d, err := DecodeHistory(enc)
	if err != nil {
		t.Fatalf("DecodeHistory(%x) = %v", enc, err)
	}
	if d.Identifier() != h.Identifier() || !d.PrimaryKey().Equal(h.PrimaryKey()) || !bytes.Equal(d.Encode(), enc) {
		t.Errorf("DecodeHistory(Encode()) = %s %x, want %s %x", d.Identifier(), d.PrimaryKey(), h.Identifier(), h.PrimaryKey())
	}
	// A rotation at the same second as the previous change is fine.
	same := newHistory(t, 1)
	if err := same.Rotate(key(1), key(2), t0); err != nil {
		t.Errorf("Rotate at the creation time = %v, want nil", err)
	}
}

func TestRotateErrors(t *testing.T) {
	tests := []struct {
		name      string
		keys      []int
		old, next Signer
		now       time.Time
		want      error
	}{
		{"old is not primary", []int{1, 2}, key(1), key(3), t0.Add(2 * time.Hour), ErrWrongKey},
		{"same key", []int{1}, key(1), key(1), t0, ErrBrokenChain},
		{"reused key", []int{1, 2}, key(2), key(1), t0.Add(2 * time.Hour), ErrBrokenChain},
		{"time goes back", []int{1, 2}, key(2), key(3), t0, ErrBrokenChain},
		{"bad old signature", []int{1}, badSigner{key(1)}, key(2), t0, ErrBadSignature},
		{"bad new signature", []int{1}, key(1), badSigner{key(2)}, t0, ErrBadSignature},
		{"new signer fails", []int{1}, key(1), failSigner{key(2)}, t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(t, tt.keys...)
			before := h.Encode()
			err := h.Rotate(tt.old, tt.next, tt.now)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Rotate() = %v, want %v", err, tt.want)
			}
			if after := h.Encode(); !bytes.Equal(after, before) {
				t.Errorf("failed Rotate changed the history:\n%x\nwant\n%x", after, before)
			}
		})
	}
	t.Run("too many changes", func(t *testing.T) {
		keys := make([]int, MaxChanges)
		for i := range keys {
			keys[i] = i + 1
		}
		h := newHistory(t, keys...)
		if _, err := DecodeHistory(h.Encode()); err != nil {
			t.Fatalf("DecodeHistory of %d changes = %v", MaxChanges, err)
		}
		err := h.Rotate(key(MaxChanges), key(MaxChanges+1), t0.Add(1000*time.Hour))
		if !errors.Is(err, ErrTooManyChanges) {
			t.Errorf("Rotate() = %v, want %v", err, ErrTooManyChanges)
		}
	})
}

// TestDecodeHistoryTamper flips the low and the high bit of every byte of a valid encoding:
// every variant must fail to decode.
func TestDecodeHistoryTamper(t *testing.T) {
	enc := newHistory(t, 1, 2, 3).Encode()
	for i := range enc {
		for _, mask := range []byte{0x01, 0x80} {
			b := bytes.Clone(enc)
			b[i] ^= mask
			if h, err := DecodeHistory(b); err == nil {
				t.Fatalf("DecodeHistory with byte %d xor %#x = %s, want error", i, mask, h.Identifier())
			}
		}
	}
}

func TestDecodeHistoryErrors(t *testing.T) {
	one := newHistory(t, 1).Encode()
	three := newHistory(t, 1, 2, 3).Encode()
	otherThree := newHistory(t, 5, 2, 3).Encode()
	firstLen := 1 + firstDataLen + ed25519.SignatureSize
	rotLen := rotationDataLen + 2*ed25519.SignatureSize
	with := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, wire.ErrTruncated},
		{"no changes", []byte{0}, ErrMalformed},
		{"too many changes", []byte{MaxChanges + 1}, wire.ErrTooLong},
		{"truncated", one[:len(one)-1], wire.ErrTruncated},
		{"trailing", append(bytes.Clone(one), 0), wire.ErrTrailing},
		{"count too high", with(one, func(b []byte) []byte { b[0] = 2; return b }), wire.ErrTruncated},
		{"count too low", with(three, func(b []byte) []byte { b[0] = 2; return b }), wire.ErrTrailing},
		{"version", with(one, func(b []byte) []byte { b[1] = 2; return b }), ErrVersion},
		{"created out of range", with(one, func(b []byte) []byte { b[1+1+32] = 0x80; return b }), ErrMalformed},
		{"first signature", with(one, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrBadSignature},
		{"previous hash", with(three, func(b []byte) []byte { b[firstLen+1] ^= 1; return b }), ErrBrokenChain},
		{"rotation spliced onto another first change",
			append(bytes.Clone(otherThree[:firstLen]), three[firstLen:]...), ErrBrokenChain},
		{"rotations out of order", append(append(bytes.Clone(three[:firstLen]),
			three[firstLen+rotLen:]...), three[firstLen:firstLen+rotLen]...), ErrBrokenChain},
		{"dropped middle rotation", with(append(bytes.Clone(three[:firstLen]), three[firstLen+rotLen:]...),
			func(b []byte) []byte { b[0] = 2; return b }), ErrBrokenChain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := DecodeHistory(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("DecodeHistory(%x) = %v, %v, want %v", tt.in, h, err, tt.want)
			}
		})
	}
}

// TestVerifyInMemory checks that Verify catches a history changed after it was built.
func TestVerifyInMemory(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h *History)
		want   error
	}{
		{"identifier", func(h *History) { h.id = newHistory(t, 9).id }, ErrBrokenChain},
		{"key", func(h *History) { h.changes[1].key[0] ^= 1 }, ErrBadSignature},
		{"time", func(h *History) { h.changes[2].created++ }, ErrBadSignature},
		{"negative time", func(h *History) { h.changes[0].created = -1 }, ErrMalformed},
		{"no changes", func(h *History) { h.changes = nil }, ErrMalformed},
		{"first has previous", func(h *History) { h.changes[0].prev[0] = 1 }, ErrMalformed},
		{"time backwards", func(h *History) { h.changes[2].created = h.changes[1].created - 1 }, ErrBrokenChain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(t, 1, 2, 3)
			tt.mutate(h)
			if err := h.Verify(); !errors.Is(err, tt.want) {
				t.Errorf("Verify() = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestHistoryMustExtendKnown: a verifier that knows a history accepts the same history or one
// that extends it with valid changes, and refuses a shorter one (which would bring back a
// retired key), a fork (another key rotated to from the same point) and another identity.
func TestHistoryMustExtendKnown(t *testing.T) {
	one, two, three := newHistory(t, 1), newHistory(t, 1, 2), newHistory(t, 1, 2, 3)
	fork := newHistory(t, 1, 4)
	forkLater := newHistory(t, 1, 4, 5)
	sameKeyOtherTime := newHistory(t, 1)
	if err := sameKeyOtherTime.Rotate(key(1), key(2), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		h, known *History
		want     error
	}{
		{"same", two, two, nil},
		{"same, decoded again", mustDecode(t, two.Encode()), two, nil},
		{"one rotation more", two, one, nil},
		{"two rotations more", three, one, nil},
		{"shorter", one, two, ErrNotExtension},
		{"much shorter", one, three, ErrNotExtension},
		{"fork", fork, two, ErrNotExtension},
		{"longer fork", forkLater, two, ErrNotExtension},
		{"fork of a longer history", forkLater, three, ErrNotExtension},
		{"same key rotated at another time", sameKeyOtherTime, two, ErrNotExtension},
		{"another identity", newHistory(t, 6), one, ErrWrongSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.h.Extends(tt.known); tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("(%d changes).Extends(%d changes) = %v, want %v", tt.h.Len(), tt.known.Len(), err, tt.want)
			}
		})
	}
}

func mustDecode(t *testing.T, b []byte) *History {
	t.Helper()
	h, err := DecodeHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestCloneRotates: rotating a clone leaves the original as it was, so a node can keep using
// its history while it prepares the next one.
func TestCloneRotates(t *testing.T) {
	h := newHistory(t, 1)
	c := h.Clone()
	if err := c.Rotate(key(1), key(2), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if h.Len() != 1 || c.Len() != 2 || c.Identifier() != h.Identifier() || !h.PrimaryKey().Equal(key(1).Public()) {
		t.Errorf("after rotating a clone: original %d changes, clone %d", h.Len(), c.Len())
	}
	if err := c.Verify(); err != nil {
		t.Errorf("clone.Verify() = %v", err)
	}
	if !c.Changed().Equal(t0.Add(time.Hour)) || !h.Changed().Equal(t0) {
		t.Errorf("Changed() = %v, %v", c.Changed(), h.Changed())
	}
}
