package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b []byte
	b = append(b, 7)
	b = AppendU16(b, 0x1234)
	b = AppendU32(b, 0xdeadbeef)
	b = AppendU64(b, 1<<60)
	b = AppendBytes8(b, []byte("abc"))
	b = AppendString16(b, "hello")
	b = AppendBytes32(b, []byte{1, 2})
	r := NewReader(b)
	if v := r.U8("a"); v != 7 {
		t.Errorf("U8 = %d, want 7", v)
	}
	if v := r.U16("b"); v != 0x1234 {
		t.Errorf("U16 = %#x", v)
	}
	if v := r.U32("c"); v != 0xdeadbeef {
		t.Errorf("U32 = %#x", v)
	}
	if v := r.U64("d"); v != 1<<60 {
		t.Errorf("U64 = %#x", v)
	}
	if v := r.Bytes8("e", 3); string(v) != "abc" {
		t.Errorf("Bytes8 = %q", v)
	}
	if v := r.String16("f", 5); v != "hello" {
		t.Errorf("String16 = %q", v)
	}
	if v := r.Bytes32("g", 2); !bytes.Equal(v, []byte{1, 2}) {
		t.Errorf("Bytes32 = %x", v)
	}
	if err := r.Finish(); err != nil {
		t.Fatalf("Finish = %v", err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		read func(*Reader)
		want error
	}{
		{"truncated u32", []byte{1, 2}, func(r *Reader) { r.U32("x") }, ErrTruncated},
		{"over limit", []byte{5, 1, 2, 3, 4, 5}, func(r *Reader) { r.Bytes8("x", 4) }, ErrTooLong},
		{"huge bytes32", []byte{0x40, 0, 0, 0}, func(r *Reader) { r.Bytes32("x", 1<<20) }, ErrTooLong},
		{"prefix past end", []byte{9, 1}, func(r *Reader) { r.Bytes8("x", 100) }, ErrTruncated},
		{"trailing", []byte{1, 2}, func(r *Reader) { r.U8("x") }, ErrTrailing},
		{"count", []byte{200}, func(r *Reader) { r.Count("x", 16) }, ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.in)
			tt.read(r)
			if err := r.Finish(); !errors.Is(err, tt.want) {
				t.Errorf("Finish() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStickyError(t *testing.T) {
	r := NewReader([]byte{1})
	r.U16("first")
	if v := r.U8("second"); v != 0 {
		t.Errorf("U8 after error = %d, want 0", v)
	}
	if err := r.Err(); err == nil || err.Error() != "first: truncated" {
		t.Errorf("Err() = %v, want first: truncated", err)
	}
}
