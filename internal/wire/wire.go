package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by Reader. They are wrapped with the field being read.
var (
	ErrTruncated = errors.New("truncated")
	ErrTooLong   = errors.New("length over limit")
	ErrTrailing  = errors.New("trailing bytes")
)

// Reader decodes from a byte slice. The first error sticks: every later call returns zero
// values, and Err or Finish reports it, so a decoder reads all its fields and checks once.
// Byte strings returned by Bytes alias the input; copy them to keep them.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Reset points r at b and clears its error, so a Reader can live on the stack or be reused.
func (r *Reader) Reset(b []byte) { r.b, r.err = b, nil }

// Err returns the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Finish returns the first error met, or ErrTrailing if unread bytes remain.
func (r *Reader) Finish() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d %w", len(r.b), ErrTrailing)
	}
	return r.err
}

func (r *Reader) fail(field string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", field, err)
	}
}

func (r *Reader) take(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(field, ErrTruncated)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// U8 reads one byte.
func (r *Reader) U8(field string) uint8 {
	if v := r.take(field, 1); v != nil {
		return v[0]
	}
	return 0
}

// U16 reads a big-endian uint16.
func (r *Reader) U16(field string) uint16 {
	if v := r.take(field, 2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

// U32 reads a big-endian uint32.
func (r *Reader) U32(field string) uint32 {
	if v := r.take(field, 4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// U64 reads a big-endian uint64.
func (r *Reader) U64(field string) uint64 {
	if v := r.take(field, 8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Fixed reads exactly n bytes.
func (r *Reader) Fixed(field string, n int) []byte { return r.take(field, n) }

// Bytes8 reads a byte string with a one-byte length prefix of at most max.
func (r *Reader) Bytes8(field string, max int) []byte {
	return r.bytes(field, int(r.U8(field)), max)
}

// Bytes16 reads a byte string with a two-byte length prefix of at most max.
func (r *Reader) Bytes16(field string, max int) []byte {
	return r.bytes(field, int(r.U16(field)), max)
}

// Bytes32 reads a byte string with a four-byte length prefix of at most max.
func (r *Reader) Bytes32(field string, max int) []byte {
	n := r.U32(field)
	if r.err == nil && uint64(n) > uint64(max) {
		r.fail(field, fmt.Errorf("%d bytes, at most %d: %w", n, max, ErrTooLong))
		return nil
	}
	return r.take(field, int(n))
}

func (r *Reader) bytes(field string, n, max int) []byte {
	if r.err != nil {
		return nil
	}
	if n > max {
		r.fail(field, fmt.Errorf("%d bytes, at most %d: %w", n, max, ErrTooLong))
		return nil
	}
	return r.take(field, n)
}

// String8 reads a Bytes8 string and copies it into a string.
func (r *Reader) String8(field string, max int) string { return string(r.Bytes8(field, max)) }

// String16 reads a Bytes16 string and copies it into a string.
func (r *Reader) String16(field string, max int) string { return string(r.Bytes16(field, max)) }

// Count reads a one-byte element count of at most max. Decoders loop over it, so a count is
// never used to size an allocation before the elements have been read.
func (r *Reader) Count(field string, max int) int {
	n := int(r.U8(field))
	if r.err == nil && n > max {
		r.fail(field, fmt.Errorf("%d elements, at most %d: %w", n, max, ErrTooLong))
		return 0
	}
	return n
}

// Rest returns all unread bytes.
func (r *Reader) Rest() []byte {
	if r.err != nil {
		return nil
	}
	v := r.b
	r.b = r.b[len(r.b):]
	return v
}

// Append helpers write the encodings that Reader reads. Callers check lengths against
// the same limits their decoder enforces; the helpers panic on a length that does not fit its
// prefix, since that is a programming error, never input.

// AppendU16 appends v big-endian.
func AppendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }

// AppendU32 appends v big-endian.
func AppendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// AppendU64 appends v big-endian.
func AppendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// AppendBytes8 appends v with a one-byte length prefix.
func AppendBytes8(b []byte, v []byte) []byte {
	if len(v) > 0xff {
		panic("wire: Bytes8 value too long")
	}
	return append(append(b, byte(len(v))), v...)
}

// AppendString8 appends v with a one-byte length prefix.
func AppendString8(b []byte, v string) []byte {
	if len(v) > 0xff {
		panic("wire: String8 value too long")
	}
	return append(append(b, byte(len(v))), v...)
}

// AppendBytes16 appends v with a two-byte length prefix.
func AppendBytes16(b []byte, v []byte) []byte {
	if len(v) > 0xffff {
		panic("wire: Bytes16 value too long")
	}
	return append(AppendU16(b, uint16(len(v))), v...)
}

// AppendString16 appends v with a two-byte length prefix.
func AppendString16(b []byte, v string) []byte {
	if len(v) > 0xffff {
		panic("wire: String16 value too long")
	}
	return append(AppendU16(b, uint16(len(v))), v...)
}

// AppendBytes32 appends v with a four-byte length prefix.
func AppendBytes32(b []byte, v []byte) []byte {
	return append(AppendU32(b, uint32(len(v))), v...)
}
